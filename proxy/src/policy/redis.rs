//! Global rate limits in Redis: one token bucket per key, refilled from Redis's own clock so
//! replicas agree. Checking every limit of a request is one script call (one round trip):
//! either all buckets have enough and all are charged, or none is and the answer is how long
//! to wait.

use std::sync::OnceLock;
use std::time::Duration;

use redis::aio::ConnectionManager;

/// KEYS: bucket keys. ARGV per key: capacity, refill per ms, needed, amount, ttl ms.
/// Returns `{1, remaining...}` when admitted, `{0, wait_ms}` when not.
const ACQUIRE: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local levels = {}
local wait = 0
for i, key in ipairs(KEYS) do
  local a = (i - 1) * 5
  local cap, rate, need = tonumber(ARGV[a + 1]), tonumber(ARGV[a + 2]), tonumber(ARGV[a + 3])
  local b = redis.call('HMGET', key, 'l', 't')
  local level, ts = tonumber(b[1]), tonumber(b[2])
  if level == nil or ts == nil then level = cap; ts = now end
  level = math.min(cap, level + math.max(0, now - ts) * rate)
  levels[i] = level
  if level < need then
    local w = math.ceil((need - level) / rate)
    if w > wait then wait = w end
  end
end
if wait > 0 then return {0, wait} end
local out = {1}
for i, key in ipairs(KEYS) do
  local a = (i - 1) * 5
  local level = levels[i] - tonumber(ARGV[a + 4])
  redis.call('HSET', key, 'l', tostring(level), 't', now)
  redis.call('PEXPIRE', key, tonumber(ARGV[a + 5]))
  out[#out + 1] = math.floor(math.max(level, 0))
end
return out
";

/// KEYS: bucket keys. ARGV per key: capacity, refill per ms, delta (more used than acquired;
/// negative gives back), ttl ms.
const SETTLE: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
for i, key in ipairs(KEYS) do
  local a = (i - 1) * 4
  local cap, rate, delta = tonumber(ARGV[a + 1]), tonumber(ARGV[a + 2]), tonumber(ARGV[a + 3])
  local b = redis.call('HMGET', key, 'l', 't')
  local level, ts = tonumber(b[1]), tonumber(b[2])
  if level == nil or ts == nil then level = cap; ts = now end
  level = math.min(cap, math.min(cap, level + math.max(0, now - ts) * rate) - delta)
  redis.call('HSET', key, 'l', tostring(level), 't', now)
  redis.call('PEXPIRE', key, tonumber(ARGV[a + 4]))
end
return 1
";

/// How long settlements are collected before they go to Redis together.
const SETTLE_BATCH: Duration = Duration::from_millis(50);

/// One bucket to charge.
#[derive(Debug, Clone)]
pub struct Charge {
    pub key: String,
    pub capacity: u64,
    /// Units per second.
    pub rate: f64,
    pub needed: u64,
    pub amount: u64,
    pub window: Duration,
}

/// The outcome of a check.
#[derive(Debug, PartialEq)]
pub enum Outcome {
    /// Remaining units per bucket, in order.
    Admitted(Vec<u64>),
    Refused(Duration),
}

/// A lazily connected Redis client (reconnects on its own).
pub struct Redis {
    url: Option<String>,
    conn: tokio::sync::OnceCell<ConnectionManager>,
    acquire: redis::Script,
    settle: redis::Script,
    settler: OnceLock<tokio::sync::mpsc::UnboundedSender<(Charge, i64)>>,
}

/// How long a command may take before the limit's failure mode applies.
const TIMEOUT: Duration = Duration::from_millis(500);

impl Redis {
    pub fn new(url: Option<String>) -> Redis {
        Redis {
            url,
            conn: tokio::sync::OnceCell::new(),
            acquire: redis::Script::new(ACQUIRE),
            settle: redis::Script::new(SETTLE),
            settler: OnceLock::new(),
        }
    }

    /// Whether a Redis URL was given.
    pub fn configured(&self) -> bool {
        self.url.is_some()
    }

    /// Tokens and micro-dollars spent under a budget key.
    pub async fn read_spend(&self, key: &str) -> Result<(u64, u64), String> {
        let mut conn = self.conn().await?;
        let cmd = redis::cmd("HMGET").arg(key).arg("t").arg("c").to_owned();
        let r: (Option<u64>, Option<u64>) = bounded(cmd.query_async(&mut conn)).await?;
        Ok((r.0.unwrap_or(0), r.1.unwrap_or(0)))
    }

    /// Adds spend under a budget key (kept `ttl_secs`); returns the new totals.
    pub async fn add_spend(
        &self,
        key: &str,
        tokens: u64,
        micros: u64,
        ttl_secs: u64,
    ) -> Result<(u64, u64), String> {
        let mut conn = self.conn().await?;
        let pipe = redis::pipe()
            .atomic()
            .cmd("HINCRBY")
            .arg(key)
            .arg("t")
            .arg(tokens)
            .cmd("HINCRBY")
            .arg(key)
            .arg("c")
            .arg(micros)
            .cmd("EXPIRE")
            .arg(key)
            .arg(ttl_secs.max(1))
            .ignore()
            .to_owned();
        let r: (u64, u64) = bounded(pipe.query_async(&mut conn)).await?;
        Ok(r)
    }

    async fn conn(&self) -> Result<ConnectionManager, String> {
        let url = self
            .url
            .as_deref()
            .ok_or("no Redis configured (agora-proxy --redis URL)")?;
        self.conn
            .get_or_try_init(|| async {
                let client = redis::Client::open(url).map_err(|e| format!("redis {url}: {e}"))?;
                let cfg = redis::aio::ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(TIMEOUT))
                    .set_response_timeout(Some(TIMEOUT))
                    .set_number_of_retries(1);
                tokio::time::timeout(TIMEOUT * 2, ConnectionManager::new_with_config(client, cfg))
                    .await
                    .map_err(|_| format!("redis {url}: connect timed out"))?
                    .map_err(|e| format!("redis {url}: {e}"))
            })
            .await
            .cloned()
    }

    /// Charges every bucket, or none.
    pub async fn acquire(&self, charges: &[Charge]) -> Result<Outcome, String> {
        let mut conn = self.conn().await?;
        let mut inv = self.acquire.prepare_invoke();
        for c in charges {
            inv.key(&c.key)
                .arg(c.capacity)
                .arg(c.rate / 1000.0)
                .arg(c.needed)
                .arg(c.amount)
                .arg(ttl_ms(c));
        }
        let r: Vec<i64> = bounded(inv.invoke_async(&mut conn)).await?;
        match r.first() {
            Some(1) => Ok(Outcome::Admitted(
                r[1..]
                    .iter()
                    .map(|v| u64::try_from(*v).unwrap_or(0))
                    .collect(),
            )),
            Some(0) => Ok(Outcome::Refused(Duration::from_millis(
                r.get(1).copied().unwrap_or(1000).max(1) as u64,
            ))),
            _ => Err(format!("redis: unexpected script answer {r:?}")),
        }
    }

    /// Corrects a token bucket after the response: queued, and sent with the other
    /// corrections of the next [`SETTLE_BATCH`] in one script call (deltas to one bucket
    /// added up).
    pub fn settle_later(&'static self, charge: Charge, delta: i64) {
        if delta == 0 {
            return;
        }
        let tx = self.settler.get_or_init(|| {
            let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
            tokio::spawn(self.settle_loop(rx));
            tx
        });
        let _ = tx.send((charge, delta));
    }

    async fn settle_loop(
        &'static self,
        mut rx: tokio::sync::mpsc::UnboundedReceiver<(Charge, i64)>,
    ) {
        while let Some(first) = rx.recv().await {
            tokio::time::sleep(SETTLE_BATCH).await;
            let mut batch: std::collections::HashMap<String, (Charge, i64)> = Default::default();
            let mut add = |(c, d): (Charge, i64)| {
                batch.entry(c.key.clone()).or_insert((c, 0)).1 += d;
            };
            add(first);
            while let Ok(x) = rx.try_recv() {
                add(x);
            }
            let list: Vec<(Charge, i64)> = batch.into_values().filter(|(_, d)| *d != 0).collect();
            if let Err(e) = self.settle(&list).await {
                tracing::warn!(error = %e, buckets = list.len(), "settling token limits failed");
            }
        }
    }

    /// Corrects token buckets in one script call.
    pub async fn settle(&self, list: &[(Charge, i64)]) -> Result<(), String> {
        if list.is_empty() {
            return Ok(());
        }
        let mut conn = self.conn().await?;
        let mut inv = self.settle.prepare_invoke();
        for (c, delta) in list {
            inv.key(&c.key)
                .arg(c.capacity)
                .arg(c.rate / 1000.0)
                .arg(*delta)
                .arg(ttl_ms(c));
        }
        let _: i64 = bounded(inv.invoke_async(&mut conn)).await?;
        Ok(())
    }
}

/// A Redis call under [`TIMEOUT`], its error as text.
async fn bounded<T>(
    call: impl std::future::Future<Output = redis::RedisResult<T>>,
) -> Result<T, String> {
    tokio::time::timeout(TIMEOUT, call)
        .await
        .map_err(|_| "redis: timed out".to_string())?
        .map_err(|e| format!("redis: {e}"))
}

/// A bucket untouched for two windows is full again; Redis may forget it.
fn ttl_ms(c: &Charge) -> u64 {
    (c.window.as_millis() as u64).saturating_mul(2).max(1000)
}

static REDIS: OnceLock<Redis> = OnceLock::new();

/// Sets the Redis URL (`agora-proxy --redis`); runs once at startup, before any request.
pub fn init(url: Option<String>) {
    let _ = REDIS.set(Redis::new(url));
}

/// The process-wide Redis client.
pub fn global() -> &'static Redis {
    REDIS.get_or_init(|| Redis::new(None))
}
