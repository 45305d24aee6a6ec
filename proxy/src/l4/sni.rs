//! The server name (SNI) of a TLS ClientHello, read from the first bytes of a connection
//! without terminating TLS. Handles a ClientHello split over several TLS records and over
//! several reads (`Incomplete` until it has it all); every length is checked against what
//! is there, so malformed or hostile input is an error, never a panic.

use std::fmt;

/// Most bytes read while waiting for a whole ClientHello. Real ones are a few hundred bytes to
/// a few KiB (post-quantum key shares included).
pub const MAX_HELLO: usize = 16 * 1024;

/// What the bytes so far hold.
#[derive(Debug, PartialEq, Eq)]
pub enum Hello {
    /// A prefix of a ClientHello: read more.
    Incomplete,
    /// A whole ClientHello, with its server name (lowercase, without a trailing dot) if it
    /// sent one.
    Complete(Option<String>),
}

/// Why the bytes are not a ClientHello we can route.
#[derive(Debug, PartialEq, Eq)]
pub enum SniError {
    /// Not a TLS handshake record (plaintext, or SSLv2).
    NotTls,
    /// A handshake message other than ClientHello came first.
    NotClientHello,
    /// A length field points past its container, or a field is out of range.
    Malformed(&'static str),
    /// The ClientHello is larger than [`MAX_HELLO`].
    TooLarge,
    /// The server name is not a DNS hostname.
    BadName,
}

impl fmt::Display for SniError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SniError::NotTls => f.write_str("not a TLS handshake"),
            SniError::NotClientHello => f.write_str("first handshake message is not a ClientHello"),
            SniError::Malformed(what) => write!(f, "malformed ClientHello: {what}"),
            SniError::TooLarge => write!(f, "ClientHello larger than {MAX_HELLO} bytes"),
            SniError::BadName => f.write_str("server name is not a DNS hostname"),
        }
    }
}

const RECORD_HANDSHAKE: u8 = 22;
const HANDSHAKE_CLIENT_HELLO: u8 = 1;
const EXT_SERVER_NAME: u16 = 0;
const NAME_TYPE_HOST: u8 = 0;

/// Reads the ClientHello at the start of `buf` (the bytes received so far).
pub fn parse(buf: &[u8]) -> Result<Hello, SniError> {
    // The handshake message, reassembled from the records' payloads.
    let mut msg: Vec<u8> = Vec::new();
    let mut rest = buf;
    loop {
        if rest.len() < 5 {
            // The record header itself is not complete yet; what we have must look like one.
            if rest.first().is_some_and(|&t| t != RECORD_HANDSHAKE) {
                return Err(SniError::NotTls);
            }
            if rest.len() >= 2 && rest[1] != 3 {
                return Err(SniError::NotTls);
            }
            return Ok(Hello::Incomplete);
        }
        if rest[0] != RECORD_HANDSHAKE || rest[1] != 3 {
            return Err(SniError::NotTls);
        }
        let len = usize::from(u16::from_be_bytes([rest[3], rest[4]]));
        if len == 0 || len > (1 << 14) {
            return Err(SniError::Malformed("record length"));
        }
        let Some(payload) = rest.get(5..5 + len) else {
            return Ok(Hello::Incomplete);
        };
        msg.extend_from_slice(payload);
        rest = &rest[5 + len..];
        if msg.len() >= 4 {
            if msg[0] != HANDSHAKE_CLIENT_HELLO {
                return Err(SniError::NotClientHello);
            }
            let body_len =
                (usize::from(msg[1]) << 16) | (usize::from(msg[2]) << 8) | usize::from(msg[3]);
            if body_len + 4 > MAX_HELLO {
                return Err(SniError::TooLarge);
            }
            if msg.len() >= body_len + 4 {
                return client_hello(&msg[4..4 + body_len]).map(Hello::Complete);
            }
        }
        if msg.len() > MAX_HELLO {
            return Err(SniError::TooLarge);
        }
    }
}

/// A bounds-checked reader over a byte slice.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], SniError> {
        if self.0.len() < n {
            return Err(SniError::Malformed(what));
        }
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Ok(head)
    }

    fn u8(&mut self, what: &'static str) -> Result<u8, SniError> {
        Ok(self.take(1, what)?[0])
    }

    fn u16(&mut self, what: &'static str) -> Result<u16, SniError> {
        let b = self.take(2, what)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    /// A vector with a one-byte length prefix.
    fn vec8(&mut self, what: &'static str) -> Result<&'a [u8], SniError> {
        let n = usize::from(self.u8(what)?);
        self.take(n, what)
    }

    /// A vector with a two-byte length prefix.
    fn vec16(&mut self, what: &'static str) -> Result<&'a [u8], SniError> {
        let n = usize::from(self.u16(what)?);
        self.take(n, what)
    }
}

/// The server name of a ClientHello body (RFC 8446 §4.1.2, RFC 6066 §3).
fn client_hello(body: &[u8]) -> Result<Option<String>, SniError> {
    let mut r = Reader(body);
    let version = r.take(2, "legacy_version")?;
    if version[0] != 3 {
        return Err(SniError::Malformed("legacy_version"));
    }
    r.take(32, "random")?;
    if r.vec8("session_id")?.len() > 32 {
        return Err(SniError::Malformed("session_id"));
    }
    let suites = r.vec16("cipher_suites")?;
    if suites.is_empty() || suites.len() % 2 != 0 {
        return Err(SniError::Malformed("cipher_suites"));
    }
    if r.vec8("compression_methods")?.is_empty() {
        return Err(SniError::Malformed("compression_methods"));
    }
    if r.0.is_empty() {
        // A ClientHello without extensions (TLS 1.2 allows it): no server name.
        return Ok(None);
    }
    let mut exts = Reader(r.vec16("extensions")?);
    let mut name = None;
    while !exts.0.is_empty() {
        let kind = exts.u16("extension type")?;
        let data = exts.vec16("extension data")?;
        if kind != EXT_SERVER_NAME {
            continue;
        }
        if name.is_some() {
            return Err(SniError::Malformed("two server_name extensions"));
        }
        name = Some(server_name(data)?);
    }
    Ok(name.flatten())
}

/// The host name of a `server_name` extension: the first entry of type host_name.
fn server_name(data: &[u8]) -> Result<Option<String>, SniError> {
    let mut ext = Reader(data);
    let mut list = Reader(ext.vec16("server_name_list")?);
    if !ext.0.is_empty() {
        return Err(SniError::Malformed("server_name extension length"));
    }
    while !list.0.is_empty() {
        let kind = list.u8("name_type")?;
        let host = list.vec16("host_name")?;
        if kind == NAME_TYPE_HOST {
            return hostname(host).map(Some);
        }
    }
    Ok(None)
}

/// A server name as routing compares it: ASCII letters, digits, `-` and `.` (lowercased, one
/// trailing dot dropped), labels of 1..=63 characters, at most 253 in all.
fn hostname(raw: &[u8]) -> Result<String, SniError> {
    let raw = raw.strip_suffix(b".").unwrap_or(raw);
    if raw.is_empty() || raw.len() > 253 {
        return Err(SniError::BadName);
    }
    for label in raw.split(|&b| b == b'.') {
        let ok = !label.is_empty()
            && label.len() <= 63
            && label
                .iter()
                .all(|b| b.is_ascii_alphanumeric() || *b == b'-' || *b == b'_');
        if !ok {
            return Err(SniError::BadName);
        }
    }
    // Checked ASCII above.
    Ok(String::from_utf8_lossy(raw).to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The first flight of a real rustls client (TLS 1.2 and 1.3 offered) for `name`.
    fn rustls_hello(name: &str) -> Vec<u8> {
        use std::sync::Arc;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let cfg = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_root_certificates(rustls::RootCertStore::empty())
            .with_no_client_auth();
        let server = rustls::pki_types::ServerName::try_from(name.to_string()).expect("name");
        let mut conn = rustls::ClientConnection::new(Arc::new(cfg), server).expect("client");
        let mut out = Vec::new();
        while conn.wants_write() {
            conn.write_tls(&mut out).expect("write");
        }
        out
    }

    #[test]
    fn reads_the_server_name_of_a_rustls_client_hello() {
        let hello = rustls_hello("Api.Example.com");
        assert_eq!(
            parse(&hello),
            Ok(Hello::Complete(Some("api.example.com".into())))
        );
    }

    #[test]
    fn every_prefix_is_incomplete() {
        let hello = rustls_hello("a.test");
        for n in 0..hello.len() {
            assert_eq!(
                parse(&hello[..n]),
                Ok(Hello::Incomplete),
                "prefix of {n} bytes"
            );
        }
        // Bytes after the ClientHello (early data, the next record) do not matter.
        let mut more = hello.clone();
        more.extend_from_slice(&[23, 3, 3, 0, 1, 0]);
        assert_eq!(parse(&more), Ok(Hello::Complete(Some("a.test".into()))));
    }

    #[test]
    fn a_client_hello_split_over_records() {
        let hello = rustls_hello("split.example.com");
        let msg = &hello[5..];
        let mut split = Vec::new();
        for chunk in msg.chunks(100) {
            split.extend_from_slice(&[22, 3, 1]);
            split.extend_from_slice(&(chunk.len() as u16).to_be_bytes());
            split.extend_from_slice(chunk);
        }
        assert_eq!(
            parse(&split),
            Ok(Hello::Complete(Some("split.example.com".into())))
        );
        for n in 0..split.len() {
            assert_eq!(
                parse(&split[..n]),
                Ok(Hello::Incomplete),
                "prefix of {n} bytes"
            );
        }
    }

    /// A minimal ClientHello record with the given extensions block (None: no extensions).
    fn hello_with(extensions: Option<&[u8]>) -> Vec<u8> {
        let mut body = vec![3, 3];
        body.extend_from_slice(&[7; 32]);
        body.push(0); // session id
        body.extend_from_slice(&[0, 2, 0x13, 0x01]); // one suite
        body.extend_from_slice(&[1, 0]); // null compression
        if let Some(ext) = extensions {
            body.extend_from_slice(&(ext.len() as u16).to_be_bytes());
            body.extend_from_slice(ext);
        }
        let mut msg = vec![1, 0];
        msg.extend_from_slice(&(body.len() as u16).to_be_bytes());
        msg.extend_from_slice(&body);
        let mut rec = vec![22, 3, 1];
        rec.extend_from_slice(&(msg.len() as u16).to_be_bytes());
        rec.extend_from_slice(&msg);
        rec
    }

    fn sni_ext(entries: &[(u8, &[u8])]) -> Vec<u8> {
        let mut list = Vec::new();
        for (kind, name) in entries {
            list.push(*kind);
            list.extend_from_slice(&(name.len() as u16).to_be_bytes());
            list.extend_from_slice(name);
        }
        let mut data = (list.len() as u16).to_be_bytes().to_vec();
        data.extend_from_slice(&list);
        let mut ext = vec![0, 0];
        ext.extend_from_slice(&(data.len() as u16).to_be_bytes());
        ext.extend_from_slice(&data);
        ext
    }

    #[test]
    fn hand_made_hellos() {
        assert_eq!(parse(&hello_with(None)), Ok(Hello::Complete(None)));
        assert_eq!(parse(&hello_with(Some(&[]))), Ok(Hello::Complete(None)));
        let ext = sni_ext(&[(0, b"trailing.dot.")]);
        assert_eq!(
            parse(&hello_with(Some(&ext))),
            Ok(Hello::Complete(Some("trailing.dot".into())))
        );
        // An unknown name type is skipped; the host name after it counts.
        let ext = sni_ext(&[(9, b"x"), (0, b"second.test")]);
        assert_eq!(
            parse(&hello_with(Some(&ext))),
            Ok(Hello::Complete(Some("second.test".into())))
        );
        let mut two = sni_ext(&[(0, b"a.test")]);
        two.extend(sni_ext(&[(0, b"b.test")]));
        assert_eq!(
            parse(&hello_with(Some(&two))),
            Err(SniError::Malformed("two server_name extensions"))
        );
        for bad in [
            &b"a..b"[..],
            b"",
            b"sp ace.test",
            b"\xff.test",
            b"1.2.3.4\x00",
        ] {
            let ext = sni_ext(&[(0, bad)]);
            assert_eq!(
                parse(&hello_with(Some(&ext))),
                Err(SniError::BadName),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn garbage_is_refused_not_panicked_on() {
        assert_eq!(parse(b"GET / HTTP/1.1\r\n"), Err(SniError::NotTls));
        assert_eq!(parse(b"G"), Err(SniError::NotTls));
        assert_eq!(parse(&[22, 2]), Err(SniError::NotTls));
        assert_eq!(parse(&[0x80, 0x2e, 1, 3, 1]), Err(SniError::NotTls));
        // A ServerHello where a ClientHello belongs.
        assert_eq!(
            parse(&[22, 3, 3, 0, 4, 2, 0, 0, 0]),
            Err(SniError::NotClientHello)
        );
        assert_eq!(
            parse(&[22, 3, 3, 0, 0]),
            Err(SniError::Malformed("record length"))
        );
        // A message announcing more than the limit.
        assert_eq!(
            parse(&[22, 3, 3, 0, 4, 1, 1, 0, 0]),
            Err(SniError::TooLarge)
        );
        // Lengths pointing past their containers, at every position of a real hello.
        let hello = rustls_hello("fuzz.example.com");
        for i in 5..hello.len() {
            for v in [0u8, 0x7f, 0xff] {
                let mut h = hello.clone();
                h[i] = v;
                let _ = parse(&h);
            }
        }
        // Truncating the handshake body while keeping the lengths consistent.
        let mut cut = hello_with(Some(&sni_ext(&[(0, b"abc.test")])));
        let n = cut.len();
        cut.truncate(n - 3);
        let body_len = cut.len() - 9;
        let record_len = (cut.len() - 5) as u16;
        cut[3..5].copy_from_slice(&record_len.to_be_bytes());
        cut[6..9].copy_from_slice(&[0, (body_len >> 8) as u8, body_len as u8]);
        assert!(matches!(parse(&cut), Err(SniError::Malformed(_))));
    }
}
