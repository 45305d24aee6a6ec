//! A small, fast HTTP/1.1 keep-alive mock upstream for benchmarks.
//!
//! Plain tokio, no HTTP library: every request (any method, any path) gets
//! `200 OK` with a tiny JSON body reporting how many body bytes were received;
//! paths ending in `/chat/completions` or `/messages` get LLM answers (`llm.rs`),
//! and paths ending in `/mcp` a minimal MCP server over Streamable HTTP (`mcp.rs`).
//! Request bodies (`Content-Length` or `Transfer-Encoding: chunked`) are read
//! and discarded. Pipelined requests are answered in order and their responses
//! are batched into one write. Malformed requests get `400` and the connection
//! is closed.
//!
//! Usage: `agora-mock-upstream [--host ADDR] [--port N] [--threads N]`

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

mod llm;
mod mcp;

/// Largest request head (request line + headers) we accept.
const MAX_HEAD: usize = 64 * 1024;
/// Most header lines we accept in one request.
const MAX_HEADERS: usize = 128;
/// Longest chunk-size line or trailer line we accept.
const MAX_CHUNK_LINE: usize = 4096;
/// Read granularity; the read buffer grows at least this much before a read.
const READ_CHUNK: usize = 16 * 1024;
/// Flush pending pipelined responses once they exceed this.
const MAX_PENDING_OUT: usize = 64 * 1024;
/// Most body bytes kept for an MCP request (the rest is read and discarded).
const MAX_MCP_BODY: usize = 1024 * 1024;

// ---------------------------------------------------------------------------
// Parsing
// ---------------------------------------------------------------------------

/// Why a request was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ParseError {
    HeadTooLarge,
    BadRequestLine,
    BadVersion,
    BadHeader,
    TooManyHeaders,
    BadContentLength,
    BadTransferEncoding,
    BadChunk,
}

/// How the request body is framed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Body {
    None,
    Length(u64),
    Chunked,
}

/// A parsed request head.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Head {
    /// Bytes of the buffer taken by the head, including the blank line.
    consumed: usize,
    body: Body,
    /// The connection must be closed after answering.
    close: bool,
    method: Method,
    /// Client sent `Expect: 100-continue`.
    expect_continue: bool,
    /// What kind of answer the path asks for.
    api: Api,
    /// The request carries an `Mcp-Session-Id` header.
    mcp_session: bool,
}

/// The request methods the answers tell apart (`HEAD`: the response carries no body).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Method {
    Get,
    Head,
    Post,
    Delete,
    Other,
}

impl Method {
    fn of(m: &[u8]) -> Self {
        match m {
            b"GET" => Self::Get,
            b"HEAD" => Self::Head,
            b"POST" => Self::Post,
            b"DELETE" => Self::Delete,
            _ => Self::Other,
        }
    }
}

/// The answer a request path selects: a small JSON document, an LLM API imitation
/// (OpenAI chat completions, Anthropic messages), JSON or SSE depending on the body's
/// `"stream":true`, or an MCP server (Streamable HTTP).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Api {
    Plain,
    Chat,
    Messages,
    Mcp,
}

fn api_of(target: &[u8]) -> Api {
    let path = target.split(|&b| b == b'?').next().unwrap_or(target);
    if path.ends_with(b"/chat/completions") {
        Api::Chat
    } else if path.ends_with(b"/messages") {
        Api::Messages
    } else if path.ends_with(b"/mcp") {
        Api::Mcp
    } else {
        Api::Plain
    }
}

/// Splits the next line off `buf[pos..]`; returns the line (without CR/LF)
/// and the position after its LF, or `None` when no full line is buffered.
fn next_line(buf: &[u8], pos: usize) -> Option<(&[u8], usize)> {
    let rest = buf.get(pos..)?;
    let nl = rest.iter().position(|&b| b == b'\n')?;
    let mut line = &rest[..nl];
    if let [init @ .., b'\r'] = line {
        line = init;
    }
    Some((line, pos + nl + 1))
}

fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

fn is_token(s: &[u8]) -> bool {
    !s.is_empty() && s.iter().all(|&b| is_tchar(b))
}

fn trim_ows(mut s: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = s {
        s = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = s {
        s = rest;
    }
    s
}

/// Parses a decimal Content-Length value (digits only, no sign, no overflow).
fn parse_decimal(s: &[u8]) -> Option<u64> {
    if s.is_empty() || s.len() > 19 {
        return None;
    }
    let mut n: u64 = 0;
    for &b in s {
        if !b.is_ascii_digit() {
            return None;
        }
        n = n.checked_mul(10)?.checked_add(u64::from(b - b'0'))?;
    }
    Some(n)
}

/// Parses the request head at the start of `buf`.
///
/// `Ok(None)` means more bytes are needed. Leading empty lines are skipped,
/// bare-LF line endings are tolerated.
fn parse_head(buf: &[u8]) -> Result<Option<Head>, ParseError> {
    let mut pos = 0;
    // Request line (skipping stray CRLFs between pipelined requests).
    let request_line = loop {
        match next_line(buf, pos) {
            None => {
                return if buf.len() > MAX_HEAD {
                    Err(ParseError::HeadTooLarge)
                } else {
                    Ok(None)
                };
            }
            Some((line, next)) => {
                pos = next;
                if !line.is_empty() {
                    break line;
                }
                if pos > MAX_HEAD {
                    return Err(ParseError::HeadTooLarge);
                }
            }
        }
    };

    let mut parts = request_line.split(|&b| b == b' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(ParseError::BadRequestLine);
    };
    if !is_token(method) || target.is_empty() || target.iter().any(|&b| b <= b' ' || b == 0x7f) {
        return Err(ParseError::BadRequestLine);
    }
    let http10 = match version {
        b"HTTP/1.1" => false,
        b"HTTP/1.0" => true,
        _ => return Err(ParseError::BadVersion),
    };

    let mut content_length: Option<u64> = None;
    let mut chunked = false;
    let mut saw_te = false;
    let mut conn_close = false;
    let mut conn_keep_alive = false;
    let mut expect_continue = false;
    let mut mcp_session = false;
    let mut headers = 0usize;

    loop {
        let Some((line, next)) = next_line(buf, pos) else {
            return if buf.len() > MAX_HEAD {
                Err(ParseError::HeadTooLarge)
            } else {
                Ok(None)
            };
        };
        pos = next;
        if pos > MAX_HEAD {
            return Err(ParseError::HeadTooLarge);
        }
        if line.is_empty() {
            break;
        }
        headers += 1;
        if headers > MAX_HEADERS {
            return Err(ParseError::TooManyHeaders);
        }
        let colon = line
            .iter()
            .position(|&b| b == b':')
            .ok_or(ParseError::BadHeader)?;
        let name = &line[..colon];
        let value = trim_ows(&line[colon + 1..]);
        // Rejects obs-fold (leading whitespace) and whitespace before the colon.
        if !is_token(name) {
            return Err(ParseError::BadHeader);
        }
        if value.iter().any(|&b| (b < b' ' && b != b'\t') || b == 0x7f) {
            return Err(ParseError::BadHeader);
        }

        if name.eq_ignore_ascii_case(b"content-length") {
            for item in value.split(|&b| b == b',') {
                let n = parse_decimal(trim_ows(item)).ok_or(ParseError::BadContentLength)?;
                match content_length {
                    Some(prev) if prev != n => return Err(ParseError::BadContentLength),
                    _ => content_length = Some(n),
                }
            }
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            // The final coding across all TE headers decides; it must be chunked.
            for item in value.split(|&b| b == b',') {
                let coding = trim_ows(item);
                if coding.is_empty() {
                    continue;
                }
                saw_te = true;
                chunked = coding.eq_ignore_ascii_case(b"chunked");
            }
        } else if name.eq_ignore_ascii_case(b"connection") {
            for item in value.split(|&b| b == b',') {
                let opt = trim_ows(item);
                if opt.eq_ignore_ascii_case(b"close") {
                    conn_close = true;
                } else if opt.eq_ignore_ascii_case(b"keep-alive") {
                    conn_keep_alive = true;
                }
            }
        } else if name.eq_ignore_ascii_case(b"expect") {
            expect_continue = value.eq_ignore_ascii_case(b"100-continue");
        } else if name.eq_ignore_ascii_case(b"mcp-session-id") {
            mcp_session = !value.is_empty();
        }
    }

    if saw_te && !chunked {
        return Err(ParseError::BadTransferEncoding);
    }
    let body = if chunked {
        Body::Chunked
    } else {
        match content_length {
            Some(0) | None => Body::None,
            Some(n) => Body::Length(n),
        }
    };
    // TE + CL together is a smuggling smell: honour chunked, then close.
    let close = conn_close || (http10 && !conn_keep_alive) || (chunked && content_length.is_some());

    Ok(Some(Head {
        consumed: pos,
        body,
        close,
        method: Method::of(method),
        expect_continue: expect_continue && body != Body::None,
        api: api_of(target),
        mcp_session,
    }))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ChunkState {
    /// Expecting a `size[;ext]` line.
    Size,
    /// Inside chunk data; bytes left in this chunk.
    Data(u64),
    /// Expecting the CRLF after chunk data.
    DataEnd,
    /// After the last chunk: trailer lines until an empty line.
    Trailer,
    Done,
}

/// Incremental decoder for a chunked body; counts data bytes, and keeps the first
/// `keep` of them in `data` (the rest is discarded).
#[derive(Debug)]
struct ChunkDecoder {
    state: ChunkState,
    body_bytes: u64,
    keep: usize,
    data: Vec<u8>,
}

impl ChunkDecoder {
    /// A decoder that keeps no data.
    #[cfg(test)]
    fn new() -> Self {
        Self::keeping(0)
    }

    fn keeping(keep: usize) -> Self {
        Self {
            state: ChunkState::Size,
            body_bytes: 0,
            keep,
            data: Vec::new(),
        }
    }

    fn is_done(&self) -> bool {
        self.state == ChunkState::Done
    }

    /// Consumes as much of `buf` as possible and returns how many bytes were
    /// used. When it returns without being done, more input is needed.
    fn feed(&mut self, buf: &[u8]) -> Result<usize, ParseError> {
        let mut pos = 0;
        loop {
            match self.state {
                ChunkState::Done => return Ok(pos),
                ChunkState::Size => {
                    let Some((line, next)) = next_line(buf, pos) else {
                        return Self::need_line(buf, pos);
                    };
                    if next - pos > MAX_CHUNK_LINE {
                        return Err(ParseError::BadChunk);
                    }
                    let size_part = match line.iter().position(|&b| b == b';') {
                        Some(i) => &line[..i],
                        None => line,
                    };
                    let size = parse_hex(trim_ows(size_part)).ok_or(ParseError::BadChunk)?;
                    pos = next;
                    self.state = if size == 0 {
                        ChunkState::Trailer
                    } else {
                        ChunkState::Data(size)
                    };
                }
                ChunkState::Data(left) => {
                    let avail = (buf.len() - pos) as u64;
                    if avail == 0 {
                        return Ok(pos);
                    }
                    let take = avail.min(left);
                    // `take <= avail`, which came from a usize.
                    let n = usize::try_from(take).map_err(|_| ParseError::BadChunk)?;
                    let room = self.keep.saturating_sub(self.data.len()).min(n);
                    self.data.extend_from_slice(&buf[pos..pos + room]);
                    pos += n;
                    self.body_bytes += take;
                    self.state = if take == left {
                        ChunkState::DataEnd
                    } else {
                        ChunkState::Data(left - take)
                    };
                }
                ChunkState::DataEnd => match buf.get(pos..) {
                    Some([b'\r', b'\n', ..]) => {
                        pos += 2;
                        self.state = ChunkState::Size;
                    }
                    Some([b'\n', ..]) => {
                        pos += 1;
                        self.state = ChunkState::Size;
                    }
                    Some([] | [b'\r']) | None => return Ok(pos),
                    Some(_) => return Err(ParseError::BadChunk),
                },
                ChunkState::Trailer => {
                    let Some((line, next)) = next_line(buf, pos) else {
                        return Self::need_line(buf, pos);
                    };
                    if next - pos > MAX_CHUNK_LINE {
                        return Err(ParseError::BadChunk);
                    }
                    pos = next;
                    if line.is_empty() {
                        self.state = ChunkState::Done;
                    }
                }
            }
        }
    }

    /// No complete line at `buf[pos..]`: wait for more, unless it is already too long.
    fn need_line(buf: &[u8], pos: usize) -> Result<usize, ParseError> {
        if buf.len() - pos > MAX_CHUNK_LINE {
            Err(ParseError::BadChunk)
        } else {
            Ok(pos)
        }
    }
}

fn parse_hex(s: &[u8]) -> Option<u64> {
    if s.is_empty() || s.len() > 16 {
        return None;
    }
    let mut n: u64 = 0;
    for &b in s {
        let d = match b {
            b'0'..=b'9' => b - b'0',
            b'a'..=b'f' => b - b'a' + 10,
            b'A'..=b'F' => b - b'A' + 10,
            _ => return None,
        };
        n = (n << 4) | u64::from(d);
    }
    Some(n)
}

// ---------------------------------------------------------------------------
// Responses
// ---------------------------------------------------------------------------

/// Appends the decimal form of `n` to `out` without going through `fmt`.
fn push_u64(out: &mut Vec<u8>, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[i..]);
}

fn decimal_len(mut n: u64) -> u64 {
    let mut len = 1;
    while n >= 10 {
        n /= 10;
        len += 1;
    }
    len
}

const BODY_PREFIX: &[u8] = br#"{"ok":true,"id":"mock","bytes_received":"#;
const BODY_SUFFIX: &[u8] = b"}";

/// Appends a `200 OK` JSON response to `out`.
fn write_ok(out: &mut Vec<u8>, bytes_received: u64, close: bool, with_body: bool) {
    let body_len =
        BODY_PREFIX.len() as u64 + decimal_len(bytes_received) + BODY_SUFFIX.len() as u64;
    out.extend_from_slice(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: ");
    push_u64(out, body_len);
    if close {
        out.extend_from_slice(b"\r\nconnection: close");
    }
    out.extend_from_slice(b"\r\n\r\n");
    if with_body {
        out.extend_from_slice(BODY_PREFIX);
        push_u64(out, bytes_received);
        out.extend_from_slice(BODY_SUFFIX);
    }
}

const BAD_REQUEST: &[u8] = b"HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\n\
content-length: 35\r\nconnection: close\r\n\r\n{\"ok\":false,\"error\":\"bad request\"}\n";

// ---------------------------------------------------------------------------
// Connection handling
// ---------------------------------------------------------------------------

/// One client connection: a read buffer (`buf[pos..]` is unconsumed input)
/// and an output buffer of responses not yet written.
struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
    pos: usize,
    out: Vec<u8>,
}

impl Conn {
    fn new(stream: TcpStream) -> Self {
        Self {
            stream,
            buf: Vec::with_capacity(READ_CHUNK),
            pos: 0,
            out: Vec::with_capacity(1024),
        }
    }

    fn pending(&self) -> &[u8] {
        self.buf.get(self.pos..).unwrap_or(&[])
    }

    async fn flush(&mut self) -> std::io::Result<()> {
        if !self.out.is_empty() {
            self.stream.write_all(&self.out).await?;
            self.out.clear();
        }
        Ok(())
    }

    /// Flushes pending responses, then reads more input. `Ok(false)` on EOF.
    async fn fill(&mut self) -> std::io::Result<bool> {
        self.flush().await?;
        if self.pos >= self.buf.len() {
            self.buf.clear();
            self.pos = 0;
        } else if self.pos > 0 {
            self.buf.drain(..self.pos);
            self.pos = 0;
        }
        self.buf.reserve(READ_CHUNK);
        Ok(self.stream.read_buf(&mut self.buf).await? > 0)
    }

    async fn reject(&mut self) -> std::io::Result<()> {
        self.out.extend_from_slice(BAD_REQUEST);
        self.flush().await?;
        let _ = self.stream.shutdown().await;
        Ok(())
    }

    async fn serve(mut self) -> std::io::Result<()> {
        loop {
            let head = loop {
                match parse_head(self.pending()) {
                    Ok(Some(head)) => break head,
                    Ok(None) => {
                        if !self.fill().await? {
                            return Ok(());
                        }
                    }
                    Err(_) => return self.reject().await,
                }
            };
            self.pos += head.consumed;

            if head.expect_continue {
                self.out.extend_from_slice(b"HTTP/1.1 100 Continue\r\n\r\n");
                self.flush().await?;
            }

            let mut stream = false;
            // The body of an MCP request, which its answer depends on.
            let mut kept = Vec::new();
            let keep = if head.api == Api::Mcp {
                MAX_MCP_BODY
            } else {
                0
            };
            let received = match head.body {
                Body::None => 0,
                Body::Length(n) => {
                    let mut left = n;
                    loop {
                        let avail = self.pending().len();
                        let take = usize::try_from(left).map_or(avail, |l| l.min(avail));
                        if matches!(head.api, Api::Chat | Api::Messages) && !stream {
                            stream = contains(&self.pending()[..take], STREAM_FLAG);
                        }
                        let room = keep.saturating_sub(kept.len()).min(take);
                        kept.extend_from_slice(&self.pending()[..room]);
                        self.pos += take;
                        left -= take as u64;
                        if left == 0 {
                            break;
                        }
                        if !self.fill().await? {
                            return Ok(());
                        }
                    }
                    n
                }
                Body::Chunked => {
                    let mut dec = ChunkDecoder::keeping(keep);
                    loop {
                        match dec.feed(self.pending()) {
                            Ok(used) => self.pos += used,
                            Err(_) => return self.reject().await,
                        }
                        if dec.is_done() {
                            break;
                        }
                        if !self.fill().await? {
                            return Ok(());
                        }
                    }
                    kept = dec.data;
                    dec.body_bytes
                }
            };

            let with_body = head.method != Method::Head;
            match head.api {
                Api::Plain => write_ok(&mut self.out, received, head.close, with_body),
                Api::Mcp => {
                    let answer = mcp::answer(head.method, head.mcp_session, &kept);
                    mcp::write(&mut self.out, &answer, head.close, with_body);
                }
                api => llm::write(&mut self.out, api == Api::Chat, stream, head.close),
            }
            if head.close {
                self.flush().await?;
                let _ = self.stream.shutdown().await;
                return Ok(());
            }
            // Pipelined requests already buffered are answered in one batch;
            // `fill` flushes before it would block on a read.
            if self.out.len() >= MAX_PENDING_OUT {
                self.flush().await?;
            }
        }
    }
}

const STREAM_FLAG: &[u8] = br#""stream":true"#;

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

// ---------------------------------------------------------------------------
// Main
// ---------------------------------------------------------------------------

struct Args {
    host: String,
    port: u16,
    threads: usize,
}

const USAGE: &str = "usage: agora-mock-upstream [--host ADDR] [--port N] [--threads N]\n\
  --host ADDR    address to bind (default 127.0.0.1)\n\
  --port N       port to listen on (default 18000)\n\
  --threads N    tokio worker threads (default 1)";

fn parse_args(mut it: impl Iterator<Item = String>) -> Result<Args, String> {
    let mut args = Args {
        host: "127.0.0.1".to_owned(),
        port: 18000,
        threads: 1,
    };
    while let Some(flag) = it.next() {
        let (name, inline) = match flag.split_once('=') {
            Some((n, v)) => (n.to_owned(), Some(v.to_owned())),
            None => (flag.clone(), None),
        };
        if name == "-h" || name == "--help" {
            return Err(String::new());
        }
        let Some(value) = inline.or_else(|| it.next()) else {
            return Err(format!("missing value for {name}"));
        };
        match name.as_str() {
            "--host" => args.host = value,
            "--port" => {
                args.port = value
                    .parse()
                    .map_err(|e| format!("bad --port {value:?}: {e}"))?;
            }
            "--threads" => {
                args.threads = value
                    .parse()
                    .map_err(|e| format!("bad --threads {value:?}: {e}"))?;
                if args.threads == 0 {
                    return Err("--threads must be at least 1".to_owned());
                }
            }
            _ => return Err(format!("unknown argument {name}")),
        }
    }
    Ok(args)
}

async fn run(addr: SocketAddr) -> std::io::Result<()> {
    let listener = TcpListener::bind(addr).await?;
    eprintln!(
        "agora-mock-upstream listening on http://{}",
        listener.local_addr()?
    );
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                let _ = stream.set_nodelay(true);
                tokio::spawn(async move {
                    let _ = Conn::new(stream).serve().await;
                });
            }
            Err(e) => {
                // e.g. EMFILE: back off instead of spinning.
                eprintln!("accept error: {e}");
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }
}

fn main() -> std::process::ExitCode {
    let args = match parse_args(std::env::args().skip(1)) {
        Ok(a) => a,
        Err(msg) => {
            if !msg.is_empty() {
                eprintln!("error: {msg}");
            }
            eprintln!("{USAGE}");
            return std::process::ExitCode::from(if msg.is_empty() { 0 } else { 2 });
        }
    };
    let addr: SocketAddr = match format!("{}:{}", args.host, args.port).parse() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("error: bad address {}:{}: {e}", args.host, args.port);
            return std::process::ExitCode::from(2);
        }
    };
    let runtime = if args.threads == 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(args.threads)
            .enable_all()
            .build()
    };
    let result = match runtime {
        Ok(rt) => rt.block_on(run(addr)),
        Err(e) => Err(e),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

// ---------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn head(s: &[u8]) -> Head {
        parse_head(s).unwrap().unwrap()
    }

    #[test]
    fn simple_get() {
        let req = b"GET /bench HTTP/1.1\r\nHost: x\r\n\r\n";
        let h = head(req);
        assert_eq!(h.consumed, req.len());
        assert_eq!(h.body, Body::None);
        assert!(!h.close);
        assert_eq!(h.method, Method::Get);
        assert!(!h.mcp_session);
    }

    #[test]
    fn partial_head_needs_more() {
        let req = b"POST /bench HTTP/1.1\r\nContent-Length: 5\r\n\r\n";
        for cut in 0..req.len() {
            assert_eq!(parse_head(&req[..cut]), Ok(None), "cut at {cut}");
        }
        assert_eq!(head(req).body, Body::Length(5));
    }

    #[test]
    fn pipelined_heads_and_leading_crlf() {
        let a = b"GET /a HTTP/1.1\r\n\r\n";
        let b = b"\r\nGET /b HTTP/1.1\nConnection: close\n\n";
        let mut both = a.to_vec();
        both.extend_from_slice(b);
        let first = head(&both);
        assert_eq!(first.consumed, a.len());
        let second = head(&both[first.consumed..]);
        assert_eq!(second.consumed, b.len());
        assert!(second.close);
    }

    #[test]
    fn connection_semantics() {
        assert!(head(b"GET / HTTP/1.0\r\n\r\n").close);
        assert!(!head(b"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n").close);
        assert!(head(b"GET / HTTP/1.1\r\nConnection: foo, CLOSE\r\n\r\n").close);
        assert_eq!(head(b"HEAD / HTTP/1.1\r\n\r\n").method, Method::Head);
    }

    #[test]
    fn body_framing() {
        assert_eq!(
            head(b"POST / HTTP/1.1\r\ncontent-length:  0 \r\n\r\n").body,
            Body::None
        );
        assert_eq!(
            head(b"POST / HTTP/1.1\r\nContent-Length: 7, 7\r\n\r\n").body,
            Body::Length(7)
        );
        assert_eq!(
            head(b"POST / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n").body,
            Body::Chunked
        );
        let both =
            head(b"POST / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n");
        assert_eq!(both.body, Body::Chunked);
        assert!(both.close);
        let exp = head(b"POST / HTTP/1.1\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\n");
        assert!(exp.expect_continue);
    }

    #[test]
    fn rejects_garbage() {
        let bad: &[&[u8]] = &[
            b"\x00\x01\x02\r\n\r\n",
            b"GET /\r\n\r\n",
            b"GET / HTTP/2.0\r\n\r\n",
            b"GET  / HTTP/1.1\r\n\r\n",
            b"G(T / HTTP/1.1\r\n\r\n",
            b"GET / HTTP/1.1\r\nNoColon\r\n\r\n",
            b"GET / HTTP/1.1\r\nBad Name: x\r\n\r\n",
            b"GET / HTTP/1.1\r\nA: b\r\n folded\r\n\r\n",
            b"GET / HTTP/1.1\r\nA: b\x01c\r\n\r\n",
            b"POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
            b"POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
            b"POST / HTTP/1.1\r\nContent-Length: 99999999999999999999\r\n\r\n",
            b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked, gzip\r\n\r\n",
        ];
        for req in bad {
            assert!(
                parse_head(req).is_err(),
                "accepted {:?}",
                String::from_utf8_lossy(req)
            );
        }
        let huge = vec![b'a'; MAX_HEAD + 10];
        assert_eq!(parse_head(&huge), Err(ParseError::HeadTooLarge));
    }

    #[test]
    fn chunked_whole_and_byte_by_byte() {
        let body = b"5\r\nhello\r\nA;ext=1\r\n0123456789\r\n0\r\nTrailer: x\r\n\r\nNEXT";
        let mut dec = ChunkDecoder::new();
        let used = dec.feed(body).unwrap();
        assert!(dec.is_done());
        assert_eq!(dec.body_bytes, 15);
        assert_eq!(&body[used..], b"NEXT");

        // Same input arriving one byte at a time (unconsumed bytes stay buffered).
        let mut dec = ChunkDecoder::new();
        let mut buffered = Vec::new();
        let mut total = 0;
        for &b in &body[..body.len() - 4] {
            buffered.push(b);
            let used = dec.feed(&buffered).unwrap();
            buffered.drain(..used);
            total += used;
        }
        assert!(dec.is_done());
        assert!(buffered.is_empty());
        assert_eq!(total, body.len() - 4);
        assert_eq!(dec.body_bytes, 15);
    }

    #[test]
    fn chunked_rejects_bad_input() {
        for bad in [
            &b"zz\r\n"[..],
            b"5\r\nhelloXX",
            b"11111111111111111\r\n",
            b"-1\r\n",
        ] {
            assert!(ChunkDecoder::new().feed(bad).is_err(), "{bad:?}");
        }
        let long = vec![b'1'; MAX_CHUNK_LINE + 1];
        assert!(ChunkDecoder::new().feed(&long).is_err());
    }

    #[test]
    fn response_format() {
        let mut out = Vec::new();
        write_ok(&mut out, 1024, false, true);
        let text = String::from_utf8(out).unwrap();
        let (headers, body) = text.split_once("\r\n\r\n").unwrap();
        assert_eq!(body, r#"{"ok":true,"id":"mock","bytes_received":1024}"#);
        assert!(headers.starts_with("HTTP/1.1 200 OK\r\n"));
        assert!(headers.contains(&format!("content-length: {}", body.len())));
        assert!(!headers.contains("connection"));

        let mut out = Vec::new();
        write_ok(&mut out, 0, true, false);
        let text = String::from_utf8(out).unwrap();
        assert!(text.ends_with("connection: close\r\n\r\n"));

        let (h, b) = std::str::from_utf8(BAD_REQUEST)
            .unwrap()
            .split_once("\r\n\r\n")
            .unwrap();
        assert!(h.contains(&format!("content-length: {}", b.len())));
    }

    #[test]
    fn numbers() {
        for n in [0u64, 7, 10, 99, 12345, u64::MAX] {
            let mut out = Vec::new();
            push_u64(&mut out, n);
            assert_eq!(out, n.to_string().as_bytes());
            assert_eq!(decimal_len(n), n.to_string().len() as u64);
        }
        assert_eq!(parse_hex(b"fF"), Some(255));
        assert_eq!(parse_decimal(b"0012"), Some(12));
    }

    #[test]
    fn args() {
        let a = parse_args(
            ["--port", "19000", "--threads=2"]
                .into_iter()
                .map(String::from),
        )
        .unwrap();
        assert_eq!(
            (a.port, a.threads, a.host.as_str()),
            (19000, 2, "127.0.0.1")
        );
        assert!(parse_args(["--threads", "0"].into_iter().map(String::from)).is_err());
        assert!(parse_args(["--bogus", "1"].into_iter().map(String::from)).is_err());
    }

    /// End to end over loopback: pipelined keep-alive requests, a chunked
    /// body split across writes, then garbage getting a 400 and a close.
    #[tokio::test]
    async fn serves_pipelined_and_rejects_garbage() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((s, _)) = listener.accept().await {
                tokio::spawn(Conn::new(s).serve());
            }
        });

        let mut c = TcpStream::connect(addr).await.unwrap();
        c.write_all(b"POST /a HTTP/1.1\r\nContent-Length: 3\r\n\r\nabcGET /b HTTP/1.1\r\n\r\nPOST /c HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nwi")
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(20)).await;
        c.write_all(b"ki\r\n0\r\n\r\nBAD REQUEST LINE HERE\r\n\r\n")
            .await
            .unwrap();
        let mut got = Vec::new();
        c.read_to_end(&mut got).await.unwrap();
        let text = String::from_utf8(got).unwrap();
        let bodies: Vec<&str> = text
            .match_indices("\"bytes_received\":")
            .map(|(i, _)| &text[i + 17..i + 18])
            .collect();
        assert_eq!(bodies, ["3", "0", "4"], "{text}");
        assert!(text.contains("HTTP/1.1 400 Bad Request"), "{text}");
        assert_eq!(text.matches("HTTP/1.1 200 OK").count(), 3);
    }

    #[test]
    fn mcp_paths_and_kept_chunked_bodies() {
        assert_eq!(api_of(b"/mcp"), Api::Mcp);
        assert_eq!(api_of(b"/a/mcp?x=1"), Api::Mcp);
        assert_eq!(api_of(b"/mcp/x"), Api::Plain);
        let h = head(b"DELETE /mcp HTTP/1.1\r\nMcp-Session-Id: ab\r\n\r\n");
        assert_eq!(
            (h.method, h.api, h.mcp_session),
            (Method::Delete, Api::Mcp, true)
        );

        let mut dec = ChunkDecoder::keeping(7);
        dec.feed(b"5\r\nhello\r\n5\r\nworld\r\n0\r\n\r\n").unwrap();
        assert!(dec.is_done());
        assert_eq!((dec.data.as_slice(), dec.body_bytes), (&b"hellowo"[..], 10));
    }

    /// End to end over loopback: initialize, then a chunked tools/call split across writes
    /// (carrying the session id), a notification and a GET, pipelined on one connection.
    #[tokio::test]
    async fn serves_mcp() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((s, _)) = listener.accept().await {
                tokio::spawn(Conn::new(s).serve());
            }
        });

        let init = br#"{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-06-18"}}"#;
        let call = br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"text":"hi there"}}}"#;
        let note = br#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#;
        let mut req = format!(
            "POST /mcp HTTP/1.1\r\nContent-Length: {}\r\n\r\n",
            init.len()
        )
        .into_bytes();
        req.extend_from_slice(init);
        req.extend_from_slice(
            b"POST /mcp HTTP/1.1\r\nMcp-Session-Id: s1\r\nTransfer-Encoding: chunked\r\n\r\n",
        );
        let (a, b) = call.split_at(40);
        req.extend_from_slice(format!("{:x}\r\n", a.len()).as_bytes());
        req.extend_from_slice(a);
        let mut c = TcpStream::connect(addr).await.unwrap();
        c.write_all(&req).await.unwrap();
        tokio::time::sleep(Duration::from_millis(20)).await;
        let mut rest = format!("\r\n{:x}\r\n", b.len()).into_bytes();
        rest.extend_from_slice(b);
        rest.extend_from_slice(b"\r\n0\r\n\r\n");
        rest.extend_from_slice(
            format!(
                "POST /mcp HTTP/1.1\r\nMcp-Session-Id: s1\r\nContent-Length: {}\r\n\r\n",
                note.len()
            )
            .as_bytes(),
        );
        rest.extend_from_slice(note);
        rest.extend_from_slice(b"GET /mcp HTTP/1.1\r\nConnection: close\r\n\r\n");
        c.write_all(&rest).await.unwrap();
        let mut got = Vec::new();
        c.read_to_end(&mut got).await.unwrap();
        let text = String::from_utf8(got).unwrap();
        let statuses: Vec<&str> = text
            .match_indices("HTTP/1.1 ")
            .map(|(i, _)| &text[i + 9..i + 12])
            .collect();
        assert_eq!(statuses, ["200", "200", "202", "405"], "{text}");
        assert_eq!(text.matches("mcp-session-id: ").count(), 1, "{text}");
        assert!(text.contains(r#""protocolVersion":"2025-06-18""#), "{text}");
        assert!(text.contains(r#""text":"hi there""#), "{text}");
    }
}
