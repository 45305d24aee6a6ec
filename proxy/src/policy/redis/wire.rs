//! The global limiter's own Redis connection: the acquire loop is its only user and sends
//! one script call per batch, so it needs no multiplexing — it writes the RESP command into
//! a reused buffer and reads the reply itself (no driver task, no per-argument allocations).
//! Plain `redis://` TCP only; other URLs (TLS, Unix sockets) go through redis-rs.

use std::fmt::Write as _;
use std::time::Duration;

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::Charge;

/// Where and how to connect, from the `--redis` URL.
#[derive(Debug, Clone)]
pub struct Target {
    pub host: String,
    pub port: u16,
    pub db: i64,
    pub username: Option<String>,
    pub password: Option<String>,
}

impl Target {
    /// The target of a plain TCP `redis://` URL; `None` for anything else.
    pub fn from_url(url: &str) -> Option<Target> {
        let client = redis::Client::open(url).ok()?;
        let info = client.get_connection_info();
        let redis::ConnectionAddr::Tcp(host, port) = info.addr() else {
            return None;
        };
        let s = info.redis_settings();
        Some(Target {
            host: host.clone(),
            port: *port,
            db: s.db(),
            username: s.username().map(str::to_string),
            password: s.password().map(str::to_string),
        })
    }
}

/// A RESP reply, as far as the limiter needs one.
#[derive(Debug, PartialEq)]
pub enum Reply {
    Status(String),
    Error(String),
    Int(i64),
    Bulk(Option<Vec<u8>>),
    Array(Vec<Reply>),
}

/// Parses one reply from the front of `buf`: `Ok(None)` when it is not complete yet, else
/// the reply and how many bytes it took.
pub fn parse(buf: &[u8]) -> Result<Option<(Reply, usize)>, String> {
    let Some(end) = buf.windows(2).position(|w| w == b"\r\n") else {
        return Ok(None);
    };
    let line = std::str::from_utf8(&buf[1..end]).map_err(|_| "redis: reply is not UTF-8")?;
    let next = end + 2;
    let int = |s: &str| {
        s.parse::<i64>()
            .map_err(|_| format!("redis: bad number {s:?}"))
    };
    match buf.first() {
        Some(b'+') => Ok(Some((Reply::Status(line.to_string()), next))),
        Some(b'-') => Ok(Some((Reply::Error(line.to_string()), next))),
        Some(b':') => Ok(Some((Reply::Int(int(line)?), next))),
        Some(b'$') => {
            let n = int(line)?;
            if n < 0 {
                return Ok(Some((Reply::Bulk(None), next)));
            }
            let n = n as usize;
            if buf.len() < next + n + 2 {
                return Ok(None);
            }
            Ok(Some((
                Reply::Bulk(Some(buf[next..next + n].to_vec())),
                next + n + 2,
            )))
        }
        Some(b'*') => {
            let n = int(line)?;
            let mut items = Vec::with_capacity(n.max(0) as usize);
            let mut at = next;
            for _ in 0..n.max(0) {
                match parse(&buf[at..])? {
                    Some((r, used)) => {
                        items.push(r);
                        at += used;
                    }
                    None => return Ok(None),
                }
            }
            Ok(Some((Reply::Array(items), at)))
        }
        _ => Err("redis: unexpected reply type".into()),
    }
}

/// Appends a RESP command (an array of bulk strings) to `out`.
pub struct Command<'a> {
    out: &'a mut BytesMut,
    scratch: String,
}

impl<'a> Command<'a> {
    pub fn new(out: &'a mut BytesMut, args: usize) -> Self {
        let _ = write!(Bytes(out), "*{args}\r\n");
        Command {
            out,
            scratch: String::new(),
        }
    }

    pub fn arg(&mut self, a: &[u8]) -> &mut Self {
        let _ = write!(Bytes(self.out), "${}\r\n", a.len());
        self.out.extend_from_slice(a);
        self.out.extend_from_slice(b"\r\n");
        self
    }

    pub fn display(&mut self, v: impl std::fmt::Display) -> &mut Self {
        self.scratch.clear();
        let _ = write!(self.scratch, "{v}");
        let s = std::mem::take(&mut self.scratch);
        self.arg(s.as_bytes());
        self.scratch = s;
        self
    }
}

/// `fmt::Write` into a `BytesMut`.
struct Bytes<'a>(&'a mut BytesMut);

impl std::fmt::Write for Bytes<'_> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.0.extend_from_slice(s.as_bytes());
        Ok(())
    }
}

/// Writes the acquire script's call for a batch of requests (see `ACQUIRE` for the layout);
/// `script`: `Err(sha)` for EVALSHA, `Ok(source)` for EVAL.
pub fn acquire_command(out: &mut BytesMut, script: Result<&str, &str>, requests: &[Vec<Charge>]) {
    let keys: usize = requests.iter().map(Vec::len).sum();
    let args = 3 + keys + 1 + requests.len() + keys * 5;
    let mut c = Command::new(out, args);
    match script {
        Ok(source) => c.arg(b"EVAL").arg(source.as_bytes()),
        Err(sha) => c.arg(b"EVALSHA").arg(sha.as_bytes()),
    };
    c.display(keys);
    for r in requests {
        for ch in r {
            c.arg(ch.key.as_bytes());
        }
    }
    c.display(requests.len());
    for r in requests {
        c.display(r.len());
        for ch in r {
            c.display(ch.capacity)
                .display(ch.rate / 1000.0)
                .display(ch.needed)
                .display(ch.amount)
                .display(super::ttl_ms(ch));
        }
    }
}

/// One connection to Redis, set up (AUTH, SELECT) and ready for commands.
pub struct Conn {
    stream: TcpStream,
    read: BytesMut,
}

impl Conn {
    pub async fn connect(t: &Target, timeout: Duration) -> Result<Conn, String> {
        let stream = tokio::time::timeout(timeout, TcpStream::connect((t.host.as_str(), t.port)))
            .await
            .map_err(|_| format!("redis {}:{}: connect timed out", t.host, t.port))?
            .map_err(|e| format!("redis {}:{}: {e}", t.host, t.port))?;
        let _ = stream.set_nodelay(true);
        let mut conn = Conn {
            stream,
            read: BytesMut::with_capacity(4096),
        };
        let mut out = BytesMut::new();
        if let Some(p) = &t.password {
            match &t.username {
                Some(u) => Command::new(&mut out, 3)
                    .arg(b"AUTH")
                    .arg(u.as_bytes())
                    .arg(p.as_bytes()),
                None => Command::new(&mut out, 2).arg(b"AUTH").arg(p.as_bytes()),
            };
            conn.expect_ok(&mut out, timeout).await?;
        }
        if t.db != 0 {
            Command::new(&mut out, 2).arg(b"SELECT").display(t.db);
            conn.expect_ok(&mut out, timeout).await?;
        }
        Ok(conn)
    }

    async fn expect_ok(&mut self, out: &mut BytesMut, timeout: Duration) -> Result<(), String> {
        match self.call(out, timeout).await? {
            Reply::Status(_) => Ok(()),
            Reply::Error(e) => Err(format!("redis: {e}")),
            other => Err(format!("redis: unexpected answer {other:?}")),
        }
    }

    /// Sends the command in `out` (which is emptied) and reads its reply, within `timeout`.
    pub async fn call(&mut self, out: &mut BytesMut, timeout: Duration) -> Result<Reply, String> {
        tokio::time::timeout(timeout, async {
            self.stream
                .write_all(out)
                .await
                .map_err(|e| format!("redis: {e}"))?;
            out.clear();
            loop {
                if let Some((reply, used)) = parse(&self.read)? {
                    self.read.advance(used);
                    return Ok(reply);
                }
                if self.read.capacity() - self.read.len() < 1024 {
                    self.read.reserve(4096);
                }
                let n = self
                    .stream
                    .read_buf(&mut self.read)
                    .await
                    .map_err(|e| format!("redis: {e}"))?;
                if n == 0 {
                    return Err("redis: connection closed".to_string());
                }
            }
        })
        .await
        .map_err(|_| "redis: timed out".to_string())?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_replies_whole_and_in_pieces() {
        let wire = b"*4\r\n:1\r\n:-7\r\n$3\r\nabc\r\n$-1\r\n+OK\r\n";
        let (r, used) = parse(wire).unwrap().unwrap();
        assert_eq!(
            r,
            Reply::Array(vec![
                Reply::Int(1),
                Reply::Int(-7),
                Reply::Bulk(Some(b"abc".to_vec())),
                Reply::Bulk(None)
            ])
        );
        assert_eq!(&wire[used..], b"+OK\r\n");
        for cut in 0..used {
            assert_eq!(parse(&wire[..cut]).unwrap(), None, "cut at {cut}");
        }
        assert_eq!(
            parse(b"-NOSCRIPT No matching script\r\n")
                .unwrap()
                .unwrap()
                .0,
            Reply::Error("NOSCRIPT No matching script".into())
        );
        assert!(parse(b"?what\r\n").is_err());
    }

    #[test]
    fn writes_the_acquire_call() {
        let charge = |key: &str| Charge {
            key: key.into(),
            capacity: 10,
            rate: 500.0,
            needed: 1,
            amount: 1,
            window: Duration::from_secs(60),
        };
        let mut out = BytesMut::new();
        acquire_command(
            &mut out,
            Err("abc"),
            &[vec![charge("k1")], vec![charge("k2")]],
        );
        let (r, used) = parse(&out).unwrap().unwrap();
        assert_eq!(used, out.len());
        let Reply::Array(args) = r else { panic!() };
        let s: Vec<String> = args
            .into_iter()
            .map(|a| match a {
                Reply::Bulk(Some(b)) => String::from_utf8(b).unwrap(),
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(
            s,
            [
                "EVALSHA", "abc", "2", "k1", "k2", "2", "1", "10", "0.5", "1", "1", "120000", "1",
                "10", "0.5", "1", "1", "120000"
            ]
        );
    }
}
