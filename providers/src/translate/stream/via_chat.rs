//! A provider's stream taken through the chat completions translator of its format, whose
//! chunks a [`ChatSink`] turns into the client's format: how Responses API and Gemini clients
//! are served by providers of other formats.

use serde_json::Value;

use super::{StreamTranslator, truncated};
use crate::openai::{ChatChunk, ChunkChoice};
use crate::sse::{RawEvent, SseParser};
use crate::{ClientApi, Error, Usage, WireFormat};

/// Writes a client's stream from chat completion chunks, as [`Relay`] tells it.
pub(super) trait ChatSink: Send + Sync {
    /// Runs for every chunk (an error chunk too) before it is handled: its id and model.
    fn open(&mut self, id: &str, model: &str, out: &mut Vec<u8>) -> Result<(), Error>;
    /// Handles the choices of a chunk that is not an error.
    fn choices(&mut self, choices: Vec<ChunkChoice>, out: &mut Vec<u8>) -> Result<(), Error>;
    /// Whether the chat stream gave its finish reason (it is complete once it ends).
    fn has_finish_reason(&self) -> bool;
    /// Writes the end of a complete stream; `usage` is the whole stream's.
    fn complete(&mut self, usage: &Usage, out: &mut Vec<u8>) -> Result<(), Error>;
    /// Ends the client's stream with `failure`; `usage` is the usage so far.
    fn fail(&mut self, failure: Failure<'_>, usage: &Usage, out: &mut Vec<u8>)
    -> Result<(), Error>;
}

/// Why a client's stream ends without completing.
pub(super) enum Failure<'a> {
    /// An error chunk: its OpenAI error `type` and its message.
    Upstream {
        kind: Option<&'a str>,
        message: &'a str,
    },
    /// The chat stream ended before its finish reason.
    Truncated,
}

/// What every [`ChatSink`] does with the chat stream's events: `[DONE]` completes the
/// client's stream, an error chunk fails it, other chunks go to the sink; after the first
/// two, or once the chat stream ended, nothing more is written.
pub(super) struct Relay<S> {
    pub(super) sink: S,
    /// The client's stream was completed or failed.
    closed: bool,
}

impl<S: ChatSink> Relay<S> {
    pub(super) fn new(sink: S) -> Self {
        Self {
            sink,
            closed: false,
        }
    }

    /// Handles the data of one chat chunk event (`[DONE]` included); `usage` is the usage
    /// so far.
    pub(super) fn event(
        &mut self,
        data: &str,
        usage: &Usage,
        out: &mut Vec<u8>,
    ) -> Result<(), Error> {
        if self.closed {
            return Ok(());
        }
        if data.trim() == "[DONE]" {
            self.closed = true;
            return self.sink.complete(usage, out);
        }
        let chunk: ChatChunk = serde_json::from_str(data)
            .map_err(|e| Error::InvalidResponse(format!("chat chunk is not valid: {e}")))?;
        self.sink.open(&chunk.id, &chunk.model, out)?;
        if let Some(err) = &chunk.error {
            let kind = err.get("type").and_then(Value::as_str);
            let message = err
                .get("message")
                .and_then(Value::as_str)
                .unwrap_or("upstream error");
            self.closed = true;
            return self
                .sink
                .fail(Failure::Upstream { kind, message }, usage, out);
        }
        self.sink.choices(chunk.choices, out)
    }

    /// Closes the client's stream once the chat stream has ended: completes it if the chat
    /// stream gave its finish reason, else fails it and returns `Err` (it was cut short).
    /// Nothing if it is closed already.
    pub(super) fn end(&mut self, usage: &Usage, out: &mut Vec<u8>) -> Result<(), Error> {
        if std::mem::replace(&mut self.closed, true) {
            return Ok(());
        }
        if self.sink.has_finish_reason() {
            return self.sink.complete(usage, out);
        }
        self.sink.fail(Failure::Truncated, usage, out)?;
        Err(truncated())
    }
}

/// A provider's stream to chat chunks (`inner`), then to the client's format (`sink`).
pub(super) struct ViaChat<S> {
    inner: Box<dyn StreamTranslator>,
    /// Reads the chat chunks `inner` writes.
    parser: SseParser,
    relay: Relay<S>,
    finished: bool,
    /// The chat chunk bytes of one upstream chunk; kept (empty) for the next one.
    chat: Vec<u8>,
    /// The chat events parsed from `chat`; kept (empty) for the next upstream chunk.
    events: Vec<RawEvent>,
}

impl<S: ChatSink> ViaChat<S> {
    /// A stream from a provider of format `from`, written by `sink`.
    pub(super) fn new(from: WireFormat, sink: S) -> Self {
        Self {
            inner: super::stream_translator(ClientApi::ChatCompletions, from, false),
            parser: SseParser::new(),
            relay: Relay::new(sink),
            finished: false,
            chat: Vec::new(),
            events: Vec::new(),
        }
    }

    /// Turns the chat chunk bytes in `self.chat` into the client's events, leaving both
    /// buffers empty.
    fn relay(&mut self, out: &mut Vec<u8>) -> Result<(), Error> {
        let mut result = self.parser.feed(&self.chat, &mut self.events);
        self.chat.clear();
        for ev in self.events.drain(..).filter(|e| e.has_data) {
            if let Err(e) = self.relay.event(&ev.event.data, self.inner.usage(), out) {
                result = result.and(Err(e));
            }
        }
        result
    }
}

impl<S: ChatSink> StreamTranslator for ViaChat<S> {
    fn push(&mut self, chunk: &[u8], out: &mut Vec<u8>) -> Result<(), Error> {
        if self.finished {
            return Ok(());
        }
        let pushed = self.inner.push(chunk, &mut self.chat);
        let relayed = self.relay(out);
        pushed.and(relayed)
    }

    fn finish(&mut self, out: &mut Vec<u8>) -> Result<(), Error> {
        if std::mem::replace(&mut self.finished, true) {
            return Ok(());
        }
        let finished = self.inner.finish(&mut self.chat);
        // The chat translators end every event they write; a relay error is reported by
        // `end` below if it left the stream unfinished.
        self.relay(out).ok();
        let ended = self.relay.end(self.inner.usage(), out);
        finished.and(ended)
    }

    fn usage(&self) -> &Usage {
        self.inner.usage()
    }

    fn output_started(&self) -> bool {
        self.inner.output_started()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Records what the relay asks of it.
    #[derive(Default)]
    struct Log {
        calls: Vec<String>,
        finished: bool,
    }

    impl ChatSink for Log {
        fn open(&mut self, id: &str, model: &str, _: &mut Vec<u8>) -> Result<(), Error> {
            self.calls.push(format!("open {id} {model}"));
            Ok(())
        }
        fn choices(&mut self, choices: Vec<ChunkChoice>, _: &mut Vec<u8>) -> Result<(), Error> {
            self.finished |= choices.iter().any(|c| c.finish_reason.is_some());
            self.calls.push(format!("choices {}", choices.len()));
            Ok(())
        }
        fn has_finish_reason(&self) -> bool {
            self.finished
        }
        fn complete(&mut self, _: &Usage, _: &mut Vec<u8>) -> Result<(), Error> {
            self.calls.push("complete".into());
            Ok(())
        }
        fn fail(&mut self, f: Failure<'_>, _: &Usage, _: &mut Vec<u8>) -> Result<(), Error> {
            self.calls.push(match f {
                Failure::Upstream { kind, message } => format!("fail {kind:?} {message}"),
                Failure::Truncated => "truncated".into(),
            });
            Ok(())
        }
    }

    fn run(events: &[&str]) -> (Vec<String>, Result<(), Error>) {
        let mut r = Relay::new(Log::default());
        let (u, mut out) = (Usage::default(), Vec::new());
        for e in events {
            r.event(e, &u, &mut out).ok();
        }
        let end = r.end(&u, &mut out);
        (r.sink.calls, end)
    }

    #[test]
    fn done_errors_and_cuts_close_the_stream_once() {
        let chunk = r#"{"id":"c","model":"m","choices":[{"index":0,"delta":{"content":"a"}}]}"#;
        let finish =
            r#"{"id":"c","model":"m","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}"#;
        let (calls, end) = run(&[chunk, " [DONE] ", chunk]);
        assert_eq!(calls, ["open c m", "choices 1", "complete"]);
        assert!(end.is_ok());
        let error = r#"{"error":{"type":"rate_limit_error","message":"slow"}}"#;
        let (calls, end) = run(&[chunk, error, chunk]);
        assert_eq!(
            calls,
            [
                "open c m",
                "choices 1",
                "open  ",
                "fail Some(\"rate_limit_error\") slow"
            ]
        );
        assert!(end.is_ok());
        let (calls, end) = run(&[chunk, finish]);
        assert_eq!(calls.last().map(String::as_str), Some("complete"));
        assert!(
            end.is_ok(),
            "a finish reason completes a stream that ends without [DONE]"
        );
        let (calls, end) = run(&[chunk]);
        assert_eq!(calls.last().map(String::as_str), Some("truncated"));
        assert!(end.is_err());
        let mut r = Relay::new(Log::default());
        assert!(r.event("{", &Usage::default(), &mut Vec::new()).is_err());
    }
}
