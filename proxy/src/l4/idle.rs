//! The idle timeout of an L4 connection: bytes are copied both ways (half-closes passed on,
//! as `tokio::io::copy_bidirectional` does) until both sides are done, or until no byte has
//! moved in either direction for the idle timeout, which closes a connection whose peer
//! vanished without a FIN or a reset.

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Instant;

/// How long an L4 connection may carry no byte in either direction (Envoy's TCP proxy
/// default).
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(3600);

/// When bytes last moved, as milliseconds since `base`.
struct Clock {
    base: Instant,
    last_ms: AtomicU64,
}

impl Clock {
    fn touch(&self) {
        let ms = u64::try_from(self.base.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_ms.store(ms, Ordering::Relaxed);
    }

    fn last(&self) -> Instant {
        self.base + Duration::from_millis(self.last_ms.load(Ordering::Relaxed))
    }
}

/// A stream that touches the clock whenever it reads or writes a byte.
struct Watched<'a, S> {
    inner: &'a mut S,
    clock: &'a Clock,
}

impl<S: AsyncRead + Unpin> AsyncRead for Watched<'_, S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut *self.inner).poll_read(cx, buf);
        if matches!(r, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.clock.touch();
        }
        r
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Watched<'_, S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut *self.inner).poll_write(cx, buf);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            self.clock.touch();
        }
        r
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.inner).poll_shutdown(cx)
    }
}

/// Copies between `a` and `b` until both are done (bytes a→b, b→a), or fails with
/// `ErrorKind::TimedOut` once nothing moved for `idle`.
pub async fn copy<A, B>(a: &mut A, b: &mut B, idle: Duration) -> io::Result<(u64, u64)>
where
    A: AsyncRead + AsyncWrite + Unpin,
    B: AsyncRead + AsyncWrite + Unpin,
{
    let clock = Clock {
        base: Instant::now(),
        last_ms: AtomicU64::new(0),
    };
    let mut a = Watched {
        inner: a,
        clock: &clock,
    };
    let mut b = Watched {
        inner: b,
        clock: &clock,
    };
    let copy = tokio::io::copy_bidirectional(&mut a, &mut b);
    tokio::pin!(copy);
    loop {
        let deadline = clock.last() + idle;
        tokio::select! {
            r = &mut copy => return r,
            () = tokio::time::sleep_until(deadline) => {
                if clock.last() + idle <= Instant::now() {
                    return Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        format!("no byte in either direction for {idle:?}"),
                    ));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn a_silent_connection_is_closed_after_the_idle_timeout() {
        let (mut client, mut proxy_side) = tokio::io::duplex(64);
        let (mut upstream_side, mut server) = tokio::io::duplex(64);
        let idle = Duration::from_millis(200);
        let relay =
            tokio::spawn(async move { copy(&mut proxy_side, &mut upstream_side, idle).await });
        // Traffic for longer than the idle timeout keeps the connection open.
        for _ in 0..4 {
            client.write_all(b"ping").await.unwrap();
            let mut buf = [0u8; 4];
            server.read_exact(&mut buf).await.unwrap();
            assert_eq!(&buf, b"ping");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(!relay.is_finished());
        // Then silence: closed with TimedOut.
        let started = std::time::Instant::now();
        let r = relay.await.unwrap();
        assert_eq!(r.unwrap_err().kind(), io::ErrorKind::TimedOut);
        assert!(started.elapsed() < Duration::from_secs(2));
    }

    #[tokio::test]
    async fn both_sides_closing_ends_the_copy_with_the_byte_counts() {
        let (mut client, mut proxy_side) = tokio::io::duplex(64);
        let (mut upstream_side, mut server) = tokio::io::duplex(64);
        let relay = tokio::spawn(async move {
            copy(&mut proxy_side, &mut upstream_side, Duration::from_secs(60)).await
        });
        client.write_all(b"hello").await.unwrap();
        client.shutdown().await.unwrap();
        let mut got = Vec::new();
        server.read_to_end(&mut got).await.unwrap();
        assert_eq!(got, b"hello");
        server.write_all(b"bye!").await.unwrap();
        server.shutdown().await.unwrap();
        let mut back = Vec::new();
        client.read_to_end(&mut back).await.unwrap();
        assert_eq!(back, b"bye!");
        assert_eq!(relay.await.unwrap().unwrap(), (5, 4));
    }
}
