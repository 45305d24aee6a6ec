//! An incremental decoder of the AWS event-stream binary framing
//! (`application/vnd.amazon.eventstream`).
//!
//! A message is: total length (u32 BE), headers length (u32 BE), prelude CRC-32 (of the 8
//! bytes before), the headers, the payload, and a message CRC-32 of everything before it.
//! A header is: name length (u8), name, value type (u8), value: 0 true and 1 false (no
//! bytes), 2 byte (1), 3 short (2), 4 integer (4), 5 long (8), 6 byte array and 7 string
//! (u16 BE length + bytes), 8 timestamp (8), 9 UUID (16). Only string headers are kept.
//!
//! Bytes may arrive split anywhere. A CRC mismatch or an impossible length means the framing
//! is lost: the decoder reports it and decodes nothing more.

use crate::Error;

/// Largest message accepted (a broken or hostile upstream must not grow memory unbounded).
pub(super) const MAX_FRAME_BYTES: usize = 16 * 1024 * 1024;

/// Prelude (12 bytes) + message CRC (4 bytes).
const MIN_FRAME_BYTES: usize = 16;

/// One decoded message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Frame {
    /// String headers, in order.
    pub headers: Vec<(String, String)>,
    /// The payload (JSON for Bedrock).
    pub payload: Vec<u8>,
}

impl Frame {
    /// The value of a string header.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Incremental decoder.
#[derive(Debug, Default)]
pub(super) struct FrameDecoder {
    buf: Vec<u8>,
    failed: bool,
}

impl FrameDecoder {
    /// Feeds bytes; appends every message they complete to `out`. After an error, nothing
    /// more is decoded.
    pub fn push(&mut self, bytes: &[u8], out: &mut Vec<Frame>) -> Result<(), Error> {
        if self.failed {
            return Ok(());
        }
        self.buf.extend_from_slice(bytes);
        let mut pos = 0;
        let result = loop {
            match decode(&self.buf[pos..]) {
                Ok(Some((frame, len))) => {
                    out.push(frame);
                    pos += len;
                }
                Ok(None) => break Ok(()),
                Err(e) => break Err(e),
            }
        };
        if result.is_err() {
            self.failed = true;
            self.buf = Vec::new();
        } else if pos > 0 {
            self.buf.drain(..pos);
        }
        result
    }

    /// Whether bytes of an incomplete message are waiting.
    #[cfg(test)]
    pub fn has_partial(&self) -> bool {
        !self.buf.is_empty()
    }
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    let s = b.get(at..at.checked_add(4)?)?;
    Some(u32::from_be_bytes([s[0], s[1], s[2], s[3]]))
}

fn invalid(msg: impl Into<String>) -> Error {
    Error::InvalidResponse(format!("event stream: {}", msg.into()))
}

/// Decodes the message at the start of `b`: `None` if incomplete, else it and its length.
fn decode(b: &[u8]) -> Result<Option<(Frame, usize)>, Error> {
    let (Some(total), Some(headers_len), Some(prelude_crc)) =
        (u32_at(b, 0), u32_at(b, 4), u32_at(b, 8))
    else {
        return Ok(None);
    };
    if crc32(&b[..8]) != prelude_crc {
        return Err(invalid("prelude CRC mismatch"));
    }
    let total = total as usize;
    let headers_len = headers_len as usize;
    if total > MAX_FRAME_BYTES {
        return Err(invalid(format!(
            "message of {total} bytes is larger than {MAX_FRAME_BYTES}"
        )));
    }
    if total < MIN_FRAME_BYTES || headers_len > total - MIN_FRAME_BYTES {
        return Err(invalid("impossible message lengths"));
    }
    let Some(message) = b.get(..total) else {
        return Ok(None);
    };
    let body_end = total - 4;
    if Some(crc32(&message[..body_end])) != u32_at(message, body_end) {
        return Err(invalid("message CRC mismatch"));
    }
    let headers = parse_headers(&message[12..12 + headers_len])?;
    let payload = message[12 + headers_len..body_end].to_vec();
    Ok(Some((Frame { headers, payload }, total)))
}

fn parse_headers(mut b: &[u8]) -> Result<Vec<(String, String)>, Error> {
    let bad = || invalid("malformed headers");
    let mut out = Vec::new();
    while let Some((&name_len, rest)) = b.split_first() {
        let name_len = usize::from(name_len);
        let name = rest.get(..name_len).ok_or_else(bad)?;
        let name = std::str::from_utf8(name).map_err(|_| bad())?.to_string();
        let (&kind, rest) = rest
            .get(name_len..)
            .ok_or_else(bad)?
            .split_first()
            .ok_or_else(bad)?;
        let value_len = match kind {
            0 | 1 => 0,
            2 => 1,
            3 => 2,
            4 => 4,
            5 | 8 => 8,
            9 => 16,
            6 | 7 => {
                let l = rest.get(..2).ok_or_else(bad)?;
                2 + usize::from(u16::from_be_bytes([l[0], l[1]]))
            }
            _ => return Err(invalid(format!("unknown header value type {kind}"))),
        };
        let value = rest.get(..value_len).ok_or_else(bad)?;
        if kind == 7 {
            let s = std::str::from_utf8(&value[2..]).map_err(|_| bad())?;
            out.push((name, s.to_string()));
        }
        b = &rest[value_len..];
    }
    Ok(out)
}

/// CRC-32 (IEEE 802.3, reflected, polynomial `0xEDB88320`), as AWS event streams use.
fn crc32(data: &[u8]) -> u32 {
    let mut c = !0u32;
    for &b in data {
        c = CRC_TABLE[((c ^ u32::from(b)) & 0xff) as usize] ^ (c >> 8);
    }
    !c
}

const CRC_TABLE: [u32; 256] = crc_table();

const fn crc_table() -> [u32; 256] {
    let mut table = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 {
                0xEDB8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
            k += 1;
        }
        table[i] = c;
        i += 1;
    }
    table
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A message with the given raw header bytes and payload.
    fn message(headers: &[u8], payload: &[u8]) -> Vec<u8> {
        let total = (16 + headers.len() + payload.len()) as u32;
        let mut m = total.to_be_bytes().to_vec();
        m.extend_from_slice(&(headers.len() as u32).to_be_bytes());
        m.extend_from_slice(&crc32(&m).to_be_bytes());
        m.extend_from_slice(headers);
        m.extend_from_slice(payload);
        m.extend_from_slice(&crc32(&m).to_be_bytes());
        m
    }

    #[test]
    fn crc() {
        assert_eq!(crc32(b""), 0);
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
    }

    #[test]
    fn every_header_type_is_skipped_or_read() {
        let mut h = Vec::new();
        let mut header = |name: &str, kind: u8, value: &[u8]| {
            h.push(name.len() as u8);
            h.extend_from_slice(name.as_bytes());
            h.push(kind);
            h.extend_from_slice(value);
        };
        header("t", 0, &[]);
        header("f", 1, &[]);
        header("b", 2, &[7]);
        header("s", 3, &[0, 1]);
        header("i", 4, &[0; 4]);
        header("l", 5, &[0; 8]);
        header("a", 6, &[0, 3, 1, 2, 3]);
        header(":event-type", 7, &[0, 5, b'h', b'e', b'l', b'l', b'o']);
        header("ts", 8, &[0; 8]);
        header("u", 9, &[0; 16]);
        let m = message(&h, b"{}");
        let mut d = FrameDecoder::default();
        let mut out = Vec::new();
        d.push(&m, &mut out).unwrap();
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].headers, vec![(":event-type".into(), "hello".into())]);
        assert_eq!(out[0].header(":event-type"), Some("hello"));
        assert_eq!(out[0].payload, b"{}");
        assert!(!d.has_partial());
    }

    #[test]
    fn bad_input_is_an_error_never_a_panic() {
        let good = message(&[], b"{}");
        let mut cases: Vec<Vec<u8>> = Vec::new();
        // A flipped bit anywhere.
        for i in 0..good.len() {
            let mut m = good.clone();
            m[i] ^= 0x10;
            cases.push(m);
        }
        // Header bytes that overrun, and an unknown header type.
        cases.push(message(&[5, b'a'], b""));
        cases.push(message(&[1, b'a', 7, 0, 9, b'x'], b""));
        cases.push(message(&[1, b'a', 42], b""));
        cases.push(message(&[1, b'a', 7, 0, 1, 0xff], b""));
        // Lengths too small or too large.
        let mut tiny = 8u32.to_be_bytes().to_vec();
        tiny.extend_from_slice(&0u32.to_be_bytes());
        tiny.extend_from_slice(&crc32(&tiny).to_be_bytes());
        cases.push(tiny);
        let mut huge = (MAX_FRAME_BYTES as u32 + 1).to_be_bytes().to_vec();
        huge.extend_from_slice(&0u32.to_be_bytes());
        huge.extend_from_slice(&crc32(&huge).to_be_bytes());
        cases.push(huge);
        for case in cases {
            let mut d = FrameDecoder::default();
            let mut out = Vec::new();
            let r = d.push(&case, &mut out);
            // A flipped length bit may make the message look incomplete instead.
            assert!(
                r.is_err() || (out.is_empty() && d.has_partial()),
                "{case:?}"
            );
            // Nothing more is decoded after an error.
            if r.is_err() {
                assert!(d.push(&good, &mut out).is_ok());
                assert!(out.is_empty());
            }
        }
    }
}
