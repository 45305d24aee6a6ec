//! A credential that expires, cached and refreshed ahead of expiry: one fetch at a time
//! (single flight), in the background while the cached value is still valid.

use std::sync::{Arc, Mutex};

use arc_swap::ArcSwapOption;

use super::Clock;
use crate::error::{Error, Result};

/// Refresh this long before expiry (or at half the lifetime, for shorter-lived values).
const REFRESH_AHEAD: u64 = 300;
/// A value with less than this left is not used: it could expire in flight.
const MIN_VALIDITY: u64 = 10;
/// After a failed background refresh, wait this long before the next one.
const RETRY_AFTER: u64 = 5;

/// A fetched value and when it expires (Unix seconds; `None`: never).
#[derive(Debug, Clone)]
pub struct Expiring<T> {
    pub value: T,
    pub expires_at: Option<u64>,
}

/// A cached value: what requests use.
#[derive(Debug)]
pub struct Entry<T> {
    pub value: T,
    pub expires_at: Option<u64>,
    /// From then on, a request starts a background refresh.
    refresh_at: u64,
}

impl<T> Entry<T> {
    fn new(e: Expiring<T>, now: u64) -> Self {
        let refresh_at = match e.expires_at {
            None => u64::MAX,
            Some(exp) => exp.saturating_sub(REFRESH_AHEAD.min(exp.saturating_sub(now) / 2)),
        };
        Self {
            value: e.value,
            expires_at: e.expires_at,
            refresh_at,
        }
    }

    /// Whether a request at `now` may still use this value.
    fn usable(&self, now: u64) -> bool {
        self.expires_at
            .is_none_or(|exp| now.saturating_add(MIN_VALIDITY) < exp)
    }
}

/// Where values come from (a token endpoint, a metadata server, ...).
#[async_trait::async_trait]
pub trait Source<T>: Send + Sync {
    /// Fetches a fresh value. Runs when nothing valid is cached, or ahead of expiry.
    async fn fetch(&self) -> Result<Expiring<T>>;
    /// Names the source in log lines (never secret material).
    fn describe(&self) -> String;
}

#[derive(Default)]
struct Attempts {
    /// Counts finished fetches.
    generation: u64,
    /// The last fetch's error, if it failed.
    last_error: Option<String>,
    failed_at: u64,
}

/// A cached, self-refreshing credential.
pub struct Refreshing<T> {
    source: Option<Box<dyn Source<T>>>,
    current: ArcSwapOption<Entry<T>>,
    /// Held by the one fetch in flight.
    fetching: Arc<tokio::sync::Mutex<()>>,
    attempts: Mutex<Attempts>,
    clock: Clock,
}

impl<T> std::fmt::Debug for Refreshing<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let what = self
            .source
            .as_ref()
            .map_or_else(|| "fixed".to_string(), |s| s.describe());
        f.debug_struct("Refreshing").field("source", &what).finish()
    }
}

impl<T: Send + Sync + 'static> Refreshing<T> {
    /// A source fetched on first use.
    pub fn new(source: impl Source<T> + 'static, clock: Clock) -> Self {
        Self {
            source: Some(Box::new(source)),
            current: ArcSwapOption::empty(),
            fetching: Arc::new(tokio::sync::Mutex::new(())),
            attempts: Mutex::new(Attempts::default()),
            clock,
        }
    }

    /// A value that never changes (static keys).
    pub fn fixed(value: T) -> Self {
        Self {
            source: None,
            current: ArcSwapOption::from_pointee(Entry::new(
                Expiring {
                    value,
                    expires_at: None,
                },
                0,
            )),
            fetching: Arc::new(tokio::sync::Mutex::new(())),
            attempts: Mutex::new(Attempts::default()),
            clock: super::system_clock(),
        }
    }

    /// The cached value, whatever its age.
    pub fn cached(&self) -> Option<Arc<Entry<T>>> {
        self.current.load_full()
    }

    /// The value to use for a request now. A valid cached value comes back at once (and
    /// starts a background refresh when it is near expiry); otherwise the caller waits for
    /// the one fetch in flight. Callers that queued behind a fetch that failed get its
    /// error rather than each trying again.
    pub async fn get(self: &Arc<Self>) -> Result<Arc<Entry<T>>> {
        let now = (self.clock)();
        if let Some(c) = self.current.load_full() {
            if now < c.refresh_at {
                return Ok(c);
            }
            if c.usable(now) {
                self.refresh_in_background(now);
                return Ok(c);
            }
        }
        let seen = self.lock_attempts().generation;
        let _guard = self.fetching.lock().await;
        if let Some(c) = self.current.load_full()
            && c.usable((self.clock)())
        {
            return Ok(c);
        }
        {
            let a = self.lock_attempts();
            if a.generation != seen
                && let Some(e) = &a.last_error
            {
                return Err(Error::Credentials(e.clone()));
            }
        }
        self.fetch_and_store().await
    }

    /// Starts the first fetch in the background when nothing is cached yet (runs when a
    /// config is built), so the first request finds a credential and a source that cannot
    /// work is logged at once. Does nothing without a Tokio runtime.
    pub fn warm(self: &Arc<Self>) {
        if self.source.is_some() && self.current.load().is_none() {
            self.refresh_in_background((self.clock)());
        }
    }

    fn lock_attempts(&self) -> std::sync::MutexGuard<'_, Attempts> {
        self.attempts.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Starts one refresh in the background, unless one is in flight or the last one
    /// failed moments ago (or there is no runtime to run it on).
    fn refresh_in_background(self: &Arc<Self>, now: u64) {
        {
            let a = self.lock_attempts();
            if a.last_error.is_some() && now < a.failed_at.saturating_add(RETRY_AFTER) {
                return;
            }
        }
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let Ok(guard) = self.fetching.clone().try_lock_owned() else {
            return;
        };
        let this = self.clone();
        rt.spawn(async move {
            let _guard = guard;
            let _ = this.fetch_and_store().await;
        });
    }

    /// Fetches (the caller holds `fetching`), stores a success, remembers a failure; logs
    /// either way without the value.
    async fn fetch_and_store(&self) -> Result<Arc<Entry<T>>> {
        let Some(source) = &self.source else {
            return self
                .current
                .load_full()
                .ok_or_else(|| Error::Credentials("no credentials".into()));
        };
        let result = source.fetch().await;
        let now = (self.clock)();
        let mut a = self.lock_attempts();
        a.generation += 1;
        match result {
            Ok(fresh) => {
                tracing::debug!(
                    source = %source.describe(),
                    expires_in = fresh.expires_at.map(|e| e.saturating_sub(now)),
                    "obtained cloud credentials"
                );
                let entry = Arc::new(Entry::new(fresh, now));
                self.current.store(Some(entry.clone()));
                a.last_error = None;
                Ok(entry)
            }
            Err(e) => {
                tracing::warn!(source = %source.describe(), error = %e, "cannot obtain cloud credentials");
                a.last_error = Some(match &e {
                    Error::Credentials(m) => m.clone(),
                    other => other.to_string(),
                });
                a.failed_at = now;
                Err(e)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

    /// Hands out "token-N" valid for `ttl` seconds, failing while `fail` is set.
    struct Counter {
        calls: Arc<AtomicUsize>,
        now: Arc<AtomicU64>,
        ttl: u64,
        fail: Arc<std::sync::atomic::AtomicBool>,
        delay_ms: u64,
    }

    #[async_trait::async_trait]
    impl Source<String> for Counter {
        async fn fetch(&self) -> Result<Expiring<String>> {
            let n = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
            if self.delay_ms > 0 {
                tokio::time::sleep(std::time::Duration::from_millis(self.delay_ms)).await;
            }
            if self.fail.load(Ordering::SeqCst) {
                return Err(Error::Credentials("token endpoint said no".into()));
            }
            Ok(Expiring {
                value: format!("token-{n}"),
                expires_at: Some(self.now.load(Ordering::SeqCst) + self.ttl),
            })
        }
        fn describe(&self) -> String {
            "counter".into()
        }
    }

    struct Fixture {
        calls: Arc<AtomicUsize>,
        now: Arc<AtomicU64>,
        fail: Arc<std::sync::atomic::AtomicBool>,
        cache: Arc<Refreshing<String>>,
    }

    fn fixture(ttl: u64, delay_ms: u64) -> Fixture {
        let calls = Arc::new(AtomicUsize::new(0));
        let now = Arc::new(AtomicU64::new(1_000_000));
        let fail = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let source = Counter {
            calls: calls.clone(),
            now: now.clone(),
            ttl,
            fail: fail.clone(),
            delay_ms,
        };
        let clock_now = now.clone();
        let clock: Clock = Arc::new(move || clock_now.load(Ordering::SeqCst));
        Fixture {
            calls,
            now,
            fail,
            cache: Arc::new(Refreshing::new(source, clock)),
        }
    }

    async fn settle() {
        for _ in 0..20 {
            tokio::task::yield_now().await;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }

    #[tokio::test]
    async fn fetches_once_then_serves_from_cache() {
        let f = fixture(3600, 0);
        assert_eq!(f.cache.get().await.unwrap().value, "token-1");
        f.now.fetch_add(3000, Ordering::SeqCst); // 600 s left: before the refresh point
        assert_eq!(f.cache.get().await.unwrap().value, "token-1");
        assert_eq!(f.calls.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn refreshes_in_background_ahead_of_expiry() {
        let f = fixture(3600, 0);
        f.cache.get().await.unwrap();
        f.now.fetch_add(3400, Ordering::SeqCst); // 200 s left: refresh window
        // The request is served the still-valid token without waiting...
        assert_eq!(f.cache.get().await.unwrap().value, "token-1");
        settle().await;
        // ...and the next one gets the refreshed token.
        assert_eq!(f.calls.load(Ordering::SeqCst), 2);
        assert_eq!(f.cache.get().await.unwrap().value, "token-2");
    }

    #[tokio::test]
    async fn expired_value_waits_for_a_fetch() {
        let f = fixture(3600, 0);
        f.cache.get().await.unwrap();
        f.now.fetch_add(3595, Ordering::SeqCst); // 5 s left: too little to use
        assert_eq!(f.cache.get().await.unwrap().value, "token-2");
    }

    #[tokio::test]
    async fn short_lived_values_refresh_at_half_life() {
        let f = fixture(120, 0);
        f.cache.get().await.unwrap();
        f.now.fetch_add(59, Ordering::SeqCst);
        f.cache.get().await.unwrap();
        settle().await;
        assert_eq!(f.calls.load(Ordering::SeqCst), 1);
        f.now.fetch_add(2, Ordering::SeqCst);
        f.cache.get().await.unwrap();
        settle().await;
        assert_eq!(f.calls.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn concurrent_requests_share_one_fetch() {
        let f = fixture(3600, 50);
        let mut tasks = Vec::new();
        for _ in 0..8 {
            let c = f.cache.clone();
            tasks.push(tokio::spawn(async move {
                c.get().await.map(|e| e.value.clone())
            }));
        }
        for t in tasks {
            assert_eq!(t.await.unwrap().unwrap(), "token-1");
        }
        assert_eq!(f.calls.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn waiters_behind_a_failed_fetch_share_its_error() {
        let f = fixture(3600, 50);
        f.fail.store(true, Ordering::SeqCst);
        let mut tasks = Vec::new();
        for _ in 0..4 {
            let c = f.cache.clone();
            tasks.push(tokio::spawn(async move {
                c.get().await.map(|e| e.value.clone())
            }));
        }
        for t in tasks {
            let e = t.await.unwrap().unwrap_err();
            assert!(e.to_string().contains("token endpoint said no"), "{e}");
        }
        assert_eq!(f.calls.load(Ordering::SeqCst), 1);
        // A later request tries again.
        f.fail.store(false, Ordering::SeqCst);
        assert_eq!(f.cache.get().await.unwrap().value, "token-2");
    }

    #[tokio::test]
    async fn failed_background_refresh_keeps_the_valid_value() {
        let f = fixture(3600, 0);
        f.cache.get().await.unwrap();
        f.fail.store(true, Ordering::SeqCst);
        f.now.fetch_add(3400, Ordering::SeqCst);
        assert_eq!(f.cache.get().await.unwrap().value, "token-1");
        settle().await;
        // Within RETRY_AFTER, no new attempt.
        assert_eq!(f.cache.get().await.unwrap().value, "token-1");
        settle().await;
        assert_eq!(f.calls.load(Ordering::SeqCst), 2);
        f.now.fetch_add(RETRY_AFTER, Ordering::SeqCst);
        f.fail.store(false, Ordering::SeqCst);
        f.cache.get().await.unwrap();
        settle().await;
        assert_eq!(f.cache.get().await.unwrap().value, "token-3");
    }

    #[tokio::test]
    async fn warming_fetches_ahead_of_the_first_request() {
        let f = fixture(3600, 0);
        f.cache.warm();
        settle().await;
        assert_eq!(f.calls.load(Ordering::SeqCst), 1);
        f.cache.warm();
        assert_eq!(f.cache.get().await.unwrap().value, "token-1");
        settle().await;
        assert_eq!(f.calls.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn fixed_values_never_fetch() {
        let c = Arc::new(Refreshing::fixed("static".to_string()));
        assert_eq!(c.get().await.unwrap().value, "static");
    }
}
