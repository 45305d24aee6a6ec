//! Global rate limits in Redis: one token bucket per key, refilled from Redis's own clock so
//! replicas agree. Checking every limit of a request is one script call (one round trip):
//! either all buckets have enough and all are charged, or none is and the answer is how long
//! to wait.

mod wire;

use std::sync::OnceLock;
use std::time::Duration;

use bytes::BytesMut;
use redis::aio::ConnectionManager;

/// Checks and charges the buckets of a batch of requests, in order, each all or nothing (a
/// request sees the charges of the requests before it in the batch).
///
/// KEYS: every request's bucket keys, in order. ARGV[1]: the number of requests; then per
/// request its number of keys, then per key: capacity, refill per ms, needed, amount, ttl ms.
/// Returns two numbers per request: `1, least remaining` when admitted, `0, wait ms` when
/// not. Only charged buckets are written.
const ACQUIRE: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local level, ttl, out = {}, {}, {}
local a, k = 2, 0
for r = 1, tonumber(ARGV[1]) do
  local n = tonumber(ARGV[a])
  a = a + 1
  local wait = 0
  for j = 0, n - 1 do
    local key, p = KEYS[k + j + 1], a + j * 5
    local cap, rate, need = tonumber(ARGV[p]), tonumber(ARGV[p + 1]), tonumber(ARGV[p + 2])
    if level[key] == nil then
      local b = redis.call('HMGET', key, 'l', 't')
      local l, ts = tonumber(b[1]), tonumber(b[2])
      if l == nil or ts == nil then l = cap; ts = now end
      level[key] = math.min(cap, l + math.max(0, now - ts) * rate)
    end
    if level[key] < need then
      local w = math.ceil((need - level[key]) / rate)
      if w > wait then wait = w end
    end
  end
  if wait > 0 then
    out[#out + 1] = 0
    out[#out + 1] = wait
  else
    local least = -1
    for j = 0, n - 1 do
      local key, p = KEYS[k + j + 1], a + j * 5
      level[key] = level[key] - tonumber(ARGV[p + 3])
      ttl[key] = math.max(ttl[key] or 0, tonumber(ARGV[p + 4]))
      local left = math.floor(math.max(level[key], 0))
      if least < 0 or left < least then least = left end
    end
    out[#out + 1] = 1
    out[#out + 1] = math.max(least, 0)
  end
  a = a + n * 5
  k = k + n
end
for key, ms in pairs(ttl) do
  redis.call('HSET', key, 'l', tostring(level[key]), 't', now)
  redis.call('PEXPIRE', key, ms)
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
    pub key: std::sync::Arc<str>,
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
    /// Admitted; the units left in the emptiest bucket.
    Admitted(u64),
    Refused(Duration),
}

/// A request's charges waiting for the next batch, and where its outcome goes.
type Queued = (
    Vec<Charge>,
    tokio::sync::oneshot::Sender<Result<Outcome, String>>,
);

/// The most requests checked by one script call.
const MAX_BATCH: usize = 256;

/// A lazily connected Redis client (reconnects on its own).
pub struct Redis {
    url: Option<String>,
    conn: tokio::sync::OnceCell<ConnectionManager>,
    acquire: redis::Script,
    settle: redis::Script,
    settler: OnceLock<tokio::sync::mpsc::UnboundedSender<(Charge, i64)>>,
    acquirer: OnceLock<tokio::sync::mpsc::UnboundedSender<Queued>>,
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
            acquirer: OnceLock::new(),
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

    /// Charges every bucket of one request, or none. Requests arriving while a check is in
    /// flight go to Redis together in the next script call (one round trip for all of
    /// them, no added wait), evaluated in arrival order.
    pub async fn acquire(&'static self, charges: Vec<Charge>) -> Result<Outcome, String> {
        let tx = self.acquirer.get_or_init(|| {
            let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
            tokio::spawn(self.acquire_loop(rx));
            tx
        });
        let (reply, answer) = tokio::sync::oneshot::channel();
        tx.send((charges, reply))
            .map_err(|_| "redis: the rate limiter stopped".to_string())?;
        answer
            .await
            .map_err(|_| "redis: the rate limiter stopped".to_string())?
    }

    async fn acquire_loop(&'static self, mut rx: tokio::sync::mpsc::UnboundedReceiver<Queued>) {
        // A plain TCP Redis gets the limiter's own connection (see `wire`).
        let target = self.url.as_deref().and_then(wire::Target::from_url);
        let mut conn = None;
        let mut out = BytesMut::new();
        let mut queued = Vec::with_capacity(MAX_BATCH);
        while rx.recv_many(&mut queued, MAX_BATCH).await > 0 {
            let (charges, replies): (Vec<_>, Vec<_>) = queued.drain(..).unzip();
            let result = match &target {
                Some(t) => self.acquire_wire(t, &mut conn, &mut out, &charges).await,
                None => self.acquire_batch(&charges).await,
            };
            match result {
                Ok(outcomes) => {
                    for (reply, outcome) in replies.into_iter().zip(outcomes) {
                        let _ = reply.send(Ok(outcome));
                    }
                }
                Err(e) => {
                    for reply in replies {
                        let _ = reply.send(Err(e.clone()));
                    }
                }
            }
        }
    }

    /// Checks the requests of a batch in one script call; one outcome per request.
    pub async fn acquire_batch(&self, requests: &[Vec<Charge>]) -> Result<Vec<Outcome>, String> {
        let mut conn = self.conn().await?;
        let mut inv = self.acquire.prepare_invoke();
        inv.arg(requests.len());
        for charges in requests {
            inv.arg(charges.len());
            for c in charges {
                inv.key(&*c.key)
                    .arg(c.capacity)
                    .arg(c.rate / 1000.0)
                    .arg(c.needed)
                    .arg(c.amount)
                    .arg(ttl_ms(c));
            }
        }
        let r: Vec<i64> = bounded(inv.invoke_async(&mut conn)).await?;
        outcomes(&r, requests.len())
    }

    /// [`Redis::acquire_batch`] over the limiter's own connection (`conn`, opened when
    /// missing, dropped after a failure that may have left it out of step).
    async fn acquire_wire(
        &self,
        target: &wire::Target,
        conn: &mut Option<wire::Conn>,
        out: &mut BytesMut,
        requests: &[Vec<Charge>],
    ) -> Result<Vec<Outcome>, String> {
        let c = match conn {
            Some(c) => c,
            None => conn.insert(wire::Conn::connect(target, TIMEOUT).await?),
        };
        out.clear();
        wire::acquire_command(out, Err(self.acquire.get_hash()), requests);
        let mut reply = c.call(out, TIMEOUT).await;
        if matches!(&reply, Ok(wire::Reply::Error(e)) if e.starts_with("NOSCRIPT")) {
            out.clear();
            wire::acquire_command(out, Ok(ACQUIRE), requests);
            reply = c.call(out, TIMEOUT).await;
        }
        match reply {
            Ok(wire::Reply::Array(items)) => {
                let ints: Vec<i64> = items
                    .into_iter()
                    .map(|r| match r {
                        wire::Reply::Int(i) => Ok(i),
                        other => Err(format!("redis: unexpected script answer {other:?}")),
                    })
                    .collect::<Result<_, _>>()?;
                outcomes(&ints, requests.len())
            }
            Ok(wire::Reply::Error(e)) => Err(format!("redis: {e}")),
            Ok(other) => Err(format!("redis: unexpected script answer {other:?}")),
            Err(e) => {
                *conn = None;
                Err(e)
            }
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
            let mut batch: std::collections::HashMap<std::sync::Arc<str>, (Charge, i64)> =
                Default::default();
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
            inv.key(&*c.key)
                .arg(c.capacity)
                .arg(c.rate / 1000.0)
                .arg(*delta)
                .arg(ttl_ms(c));
        }
        let _: i64 = bounded(inv.invoke_async(&mut conn)).await?;
        Ok(())
    }
}

/// The acquire script's answer for `n` requests: two numbers per request.
fn outcomes(r: &[i64], n: usize) -> Result<Vec<Outcome>, String> {
    if r.len() != n * 2 {
        return Err(format!("redis: unexpected script answer {r:?}"));
    }
    Ok(r.chunks(2)
        .map(|p| match p[0] {
            1 => Outcome::Admitted(u64::try_from(p[1]).unwrap_or(0)),
            _ => Outcome::Refused(Duration::from_millis(p[1].max(1) as u64)),
        })
        .collect())
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
