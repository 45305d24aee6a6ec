//! JSON access log lines on stdout, one per request (and one per TCP/TLS connection). Lines
//! are serialized into a shared buffer and written by a background thread every 100 ms (or
//! sooner once 64 KiB are waiting), so request threads never block on stdout; past 8 MiB of
//! backlog, lines are dropped and counted rather than growing memory without bound.

use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Condvar, Mutex, OnceLock};
use std::time::Duration;

use serde::Serialize;

/// One access log record.
#[derive(Debug, Serialize)]
pub struct Record<'a> {
    pub ts: String,
    pub gateway: &'a str,
    pub listener: &'a str,
    pub route: &'a str,
    pub backend: &'a str,
    pub endpoint: Option<String>,
    pub client: Option<String>,
    pub method: &'a str,
    pub host: &'a str,
    pub path: &'a str,
    pub protocol: &'a str,
    pub status: u16,
    pub duration_ms: f64,
    pub attempts: u32,
    /// LLM requests: the provider of the last attempt, the model the client asked for, and
    /// the model sent upstream (a virtual model's concrete target).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provider: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_model: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

const FLUSH_AT: usize = 64 * 1024;
const MAX_BACKLOG: usize = 8 * 1024 * 1024;

struct Sink {
    buf: Mutex<Vec<u8>>,
    wake: Condvar,
    dropped: AtomicU64,
}

fn sink() -> &'static Sink {
    static SINK: OnceLock<&'static Sink> = OnceLock::new();
    SINK.get_or_init(|| {
        let sink: &'static Sink = Box::leak(Box::new(Sink {
            buf: Mutex::new(Vec::with_capacity(FLUSH_AT)),
            wake: Condvar::new(),
            dropped: AtomicU64::new(0),
        }));
        let _ = std::thread::Builder::new()
            .name("access-log".into())
            .spawn(move || {
                loop {
                    let data = {
                        let guard = sink.buf.lock().unwrap_or_else(|e| e.into_inner());
                        let (mut guard, _) = sink
                            .wake
                            .wait_timeout(guard, Duration::from_millis(100))
                            .unwrap_or_else(|e| e.into_inner());
                        std::mem::replace(&mut *guard, Vec::with_capacity(FLUSH_AT))
                    };
                    write_out(&data);
                }
            });
        sink
    })
}

fn write_out(data: &[u8]) {
    if !data.is_empty() {
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(data);
        let _ = out.flush();
    }
}

/// Queues the record as one JSON line for stdout.
pub fn write(r: &Record<'_>) {
    write_json(r);
}

/// Queues any record (an L4 connection's, say) as one JSON line for stdout.
pub fn write_json<T: Serialize + ?Sized>(r: &T) {
    let s = sink();
    let mut buf = s.buf.lock().unwrap_or_else(|e| e.into_inner());
    if buf.len() > MAX_BACKLOG {
        s.dropped.fetch_add(1, Ordering::Relaxed);
        return;
    }
    if serde_json::to_writer(&mut *buf, r).is_ok() {
        buf.push(b'\n');
    }
    if buf.len() >= FLUSH_AT {
        s.wake.notify_one();
    }
}

/// Writes out whatever is queued (at shutdown).
pub fn flush() {
    let data = std::mem::take(&mut *sink().buf.lock().unwrap_or_else(|e| e.into_inner()));
    write_out(&data);
}

/// Lines dropped because stdout could not keep up.
pub fn dropped() -> u64 {
    sink().dropped.load(Ordering::Relaxed)
}

/// RFC 3339 UTC timestamp with milliseconds, without pulling in a date crate.
pub fn timestamp() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let secs = now.as_secs() as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        now.subsec_millis()
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn timestamp_shape() {
        let t = super::timestamp();
        assert_eq!(t.len(), 24, "{t}");
        assert!(t.starts_with("20") && t.ends_with('Z'), "{t}");
    }
}
