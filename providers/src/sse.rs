//! Server-sent events: an incremental parser that accepts bytes in arbitrary chunks (split
//! mid-line or mid-UTF-8 character), and a writer.
//!
//! The parser follows the SSE spec's line rules: lines end in `\n`, `\r\n` or `\r`; a line
//! starting with `:` is a comment; `data` lines are joined with `\n`; a blank line ends the
//! event. Only complete lines are decoded, so a UTF-8 character split across chunks is fine.

use serde::Serialize;

use crate::Error;

/// Longest event the parser buffers before giving up (a broken or hostile upstream that never
/// ends a line must not grow memory without bound).
pub const MAX_EVENT_BYTES: usize = 16 * 1024 * 1024;

/// One SSE event.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Event {
    /// The `event:` field, if any.
    pub event: Option<String>,
    /// The `data:` lines joined with `\n`.
    pub data: String,
}

/// One event block as received: the parsed event and the exact bytes it came from (comment
/// lines included), for byte-for-byte passthrough.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RawEvent {
    /// The parsed event.
    pub event: Event,
    /// Whether the block had at least one `data` line (a block of comments only has none).
    pub has_data: bool,
    /// The block's bytes, up to and including the blank line that ended it (at the end of a
    /// stream, whatever was left, which may lack the blank line).
    pub raw: Vec<u8>,
}

/// Incremental SSE parser.
#[derive(Debug, Default)]
pub struct SseParser {
    /// Unconsumed bytes; starts at the beginning of the current event block.
    buf: Vec<u8>,
    /// Offset in `buf` of the first line not yet processed.
    scan: usize,
    /// Offset in `buf` up to which no line end was found (so a long line arriving in small
    /// chunks is not searched again from its start each time).
    searched: usize,
    event: Option<String>,
    data: String,
    has_data: bool,
    /// Whether the first line of the stream has been seen (a leading BOM is dropped).
    seen_line: bool,
    /// The current block had a bad line and will be dropped.
    bad_block: bool,
}

impl SseParser {
    /// A new parser at the start of a stream.
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds bytes; returns the events they complete (blocks without data are skipped, as
    /// the spec says). On error, see [`SseParser::feed`]; the events are lost.
    pub fn push(&mut self, bytes: &[u8]) -> Result<Vec<Event>, Error> {
        Ok(self
            .push_raw(bytes)?
            .into_iter()
            .filter(|b| b.has_data)
            .map(|b| b.event)
            .collect())
    }

    /// Feeds bytes; returns every block they complete, comment-only blocks included, each
    /// with its raw bytes. On error, see [`SseParser::feed`]; the events are lost.
    pub fn push_raw(&mut self, bytes: &[u8]) -> Result<Vec<RawEvent>, Error> {
        let mut out = Vec::new();
        self.feed(bytes, &mut out)?;
        Ok(out)
    }

    /// Feeds bytes; appends every block they complete to `out` (comment-only blocks
    /// included). A block with a line that is not UTF-8, or longer than [`MAX_EVENT_BYTES`],
    /// is dropped and reported as an error once all the bytes have been parsed: the events
    /// around it are still in `out`, and the parser goes on with the next block.
    pub fn feed(&mut self, bytes: &[u8], out: &mut Vec<RawEvent>) -> Result<(), Error> {
        // Lines are decoded where they lie: the buffer is taken out of `self` meanwhile.
        let mut buf = std::mem::take(&mut self.buf);
        buf.extend_from_slice(bytes);
        let mut error = None;
        let mut block_start = 0;
        loop {
            let from = self.scan.max(self.searched);
            let Some(pos) = buf[from..].iter().position(|&b| b == b'\n' || b == b'\r') else {
                self.searched = buf.len();
                break;
            };
            let line_end = from + pos;
            let term_len = if buf[line_end] == b'\r' {
                match buf.get(line_end + 1) {
                    Some(b'\n') => 2,
                    Some(_) => 1,
                    // A `\r` at the very end: wait to see whether `\n` follows.
                    None => {
                        self.searched = line_end;
                        break;
                    }
                }
            } else {
                1
            };
            let line_start = self.scan;
            self.scan = line_end + term_len;
            if line_end == line_start {
                let raw = buf[block_start..self.scan].to_vec();
                out.extend(self.dispatch(raw));
                block_start = self.scan;
            } else if !self.bad_block
                && let Err(e) = self.line(&buf[line_start..line_end])
            {
                self.bad_block = true;
                error.get_or_insert(e);
            }
        }
        self.buf = buf;
        self.buf.drain(..block_start);
        self.scan -= block_start;
        self.searched = self.searched.saturating_sub(block_start);
        if self.buf.len() > MAX_EVENT_BYTES {
            self.buf.clear();
            self.scan = 0;
            self.searched = 0;
            self.bad_block = true;
            error.get_or_insert(Error::InvalidResponse(format!(
                "SSE event longer than {MAX_EVENT_BYTES} bytes"
            )));
        }
        match error {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// End of stream: returns the last block if the stream stopped without the blank line
    /// that should end it (lenient: the spec would discard it).
    pub fn finish(&mut self) -> Result<Option<RawEvent>, Error> {
        let mut result = Ok(());
        if self.scan < self.buf.len() && !self.bad_block {
            let mut line = self.buf[self.scan..].to_vec();
            if line.last() == Some(&b'\r') {
                line.pop();
            }
            if !line.is_empty() {
                result = self.line(&line);
            }
        }
        let raw = std::mem::take(&mut self.buf);
        self.scan = 0;
        self.searched = 0;
        if let Err(e) = result {
            self.bad_block = true;
            self.dispatch(raw);
            return Err(e);
        }
        if raw.is_empty() {
            return Ok(None);
        }
        Ok(self.dispatch(raw))
    }

    /// Ends the current block; `None` if it was dropped.
    fn dispatch(&mut self, raw: Vec<u8>) -> Option<RawEvent> {
        let event = RawEvent {
            event: Event {
                event: self.event.take(),
                data: std::mem::take(&mut self.data),
            },
            has_data: std::mem::take(&mut self.has_data),
            raw,
        };
        (!std::mem::take(&mut self.bad_block)).then_some(event)
    }

    fn line(&mut self, line: &[u8]) -> Result<(), Error> {
        let mut line = std::str::from_utf8(line)
            .map_err(|_| Error::InvalidResponse("SSE line is not valid UTF-8".into()))?;
        if !self.seen_line {
            self.seen_line = true;
            line = line.strip_prefix('\u{feff}').unwrap_or(line);
        }
        if line.starts_with(':') {
            return Ok(());
        }
        let (field, value) = match line.split_once(':') {
            Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
            None => (line, ""),
        };
        match field {
            "event" => self.event = Some(value.to_string()),
            "data" => {
                if self.has_data {
                    self.data.push('\n');
                }
                self.data.push_str(value);
                self.has_data = true;
            }
            _ => {}
        }
        Ok(())
    }
}

/// Appends one event: an optional `event:` line, one `data:` line per line of `data`, and the
/// blank line.
pub fn write_event(out: &mut Vec<u8>, event: Option<&str>, data: &str) {
    if let Some(name) = event {
        out.extend_from_slice(b"event: ");
        out.extend_from_slice(name.as_bytes());
        out.push(b'\n');
    }
    for line in data.split('\n') {
        out.extend_from_slice(b"data: ");
        out.extend_from_slice(line.as_bytes());
        out.push(b'\n');
    }
    out.push(b'\n');
}

/// Appends one event whose data is `value` as compact JSON (always a single line).
pub fn write_json_event<T: Serialize + ?Sized>(
    out: &mut Vec<u8>,
    event: Option<&str>,
    value: &T,
) -> Result<(), Error> {
    let json = serde_json::to_string(value).map_err(Error::response)?;
    write_event(out, event, &json);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(event: Option<&str>, data: &str) -> Event {
        Event {
            event: event.map(str::to_string),
            data: data.to_string(),
        }
    }

    #[test]
    fn parses_fields_comments_and_multiline_data() {
        let mut p = SseParser::new();
        let input = b": keepalive\n\nevent: a\ndata: one\ndata:two\nid: 7\nretry: 10\n\ndata\n\n";
        let got = p.push(input).unwrap();
        assert_eq!(got, vec![ev(Some("a"), "one\ntwo"), ev(None, "")]);
        assert_eq!(p.finish().unwrap(), None);
    }

    #[test]
    fn all_line_endings_and_every_split() {
        let lf = b"event: x\ndata: h\xc3\xa9llo\n\ndata: [DONE]\n\n".to_vec();
        let crlf = b"event: x\r\ndata: h\xc3\xa9llo\r\n\r\ndata: [DONE]\r\n\r\n".to_vec();
        let cr = b"event: x\rdata: h\xc3\xa9llo\r\rdata: [DONE]\r\r".to_vec();
        let want = vec![ev(Some("x"), "héllo"), ev(None, "[DONE]")];
        for input in [lf, crlf, cr] {
            for split in 0..=input.len() {
                let mut p = SseParser::new();
                let mut got = p.push(&input[..split]).unwrap();
                got.extend(p.push(&input[split..]).unwrap());
                if let Some(last) = p.finish().unwrap() {
                    got.push(last.event);
                }
                assert_eq!(got, want, "split at {split}");
            }
            let mut p = SseParser::new();
            let mut got = Vec::new();
            for b in &input {
                got.extend(p.push(std::slice::from_ref(b)).unwrap());
            }
            if let Some(last) = p.finish().unwrap() {
                got.push(last.event);
            }
            assert_eq!(got, want);
        }
    }

    #[test]
    fn raw_blocks_keep_exact_bytes() {
        let input = b": ping\r\n\r\nevent: e\r\ndata: 1\r\n\r\ndata: tail";
        let mut p = SseParser::new();
        let blocks = p.push_raw(input).unwrap();
        assert_eq!(blocks.len(), 2);
        assert_eq!(blocks[0].raw, b": ping\r\n\r\n");
        assert!(!blocks[0].has_data);
        assert_eq!(blocks[1].raw, b"event: e\r\ndata: 1\r\n\r\n");
        let last = p.finish().unwrap().unwrap();
        assert_eq!(last.raw, b"data: tail");
        assert_eq!(last.event, ev(None, "tail"));
    }

    #[test]
    fn bom_is_dropped_and_invalid_utf8_is_an_error() {
        let mut p = SseParser::new();
        let got = p.push("\u{feff}data: x\n\n".as_bytes()).unwrap();
        assert_eq!(got, vec![ev(None, "x")]);
        let mut p = SseParser::new();
        assert!(p.push(b"data: \xff\n\n").is_err());
    }

    #[test]
    fn bad_blocks_are_dropped_and_parsing_goes_on() {
        let mut p = SseParser::new();
        let mut out = Vec::new();
        let input = b"data: a\n\ndata: \xff\ndata: b\n\ndata: c\n\n";
        assert!(p.feed(input, &mut out).is_err());
        let data: Vec<_> = out.iter().map(|e| e.event.data.as_str()).collect();
        assert_eq!(data, ["a", "c"]);
        assert_eq!(out[1].raw, b"data: c\n\n");

        let mut p = SseParser::new();
        let mut out = Vec::new();
        let long = vec![b'x'; MAX_EVENT_BYTES + 1];
        assert!(p.feed(b"data: ", &mut out).is_ok());
        assert!(p.feed(&long, &mut out).is_err());
        assert!(p.feed(b"tail\n\ndata: ok\n\n", &mut out).is_ok());
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].raw, b"data: ok\n\n");
        assert_eq!(p.finish().unwrap(), None);

        let mut p = SseParser::new();
        assert!(p.push(b"data: \xff").unwrap().is_empty());
        assert!(p.finish().is_err());
        assert_eq!(p.finish().unwrap(), None);
    }

    #[test]
    fn writer_splits_lines() {
        let mut out = Vec::new();
        write_event(&mut out, Some("e"), "a\nb");
        write_json_event(&mut out, None, &serde_json::json!({"k": "v\nw"})).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "event: e\ndata: a\ndata: b\n\ndata: {\"k\":\"v\\nw\"}\n\n"
        );
    }
}
