//! A provider's stream taken through the chat completions translator of its format, whose
//! chunks a [`ChatSink`] turns into the client's format: how Responses API and Gemini clients
//! are served by providers of other formats.

use super::StreamTranslator;
use crate::sse::{RawEvent, SseParser};
use crate::{ClientApi, Error, Usage, WireFormat};

/// Writes a client's stream from chat completion chunks.
pub(super) trait ChatSink: Send + Sync {
    /// Handles the data of one chat chunk event (`[DONE]` included); `usage` is the usage
    /// so far.
    fn event(&mut self, data: &str, usage: &Usage, out: &mut Vec<u8>) -> Result<(), Error>;
    /// Closes the client's stream once the chat stream has ended; `Err` if it was cut short.
    fn end(&mut self, usage: &Usage, out: &mut Vec<u8>) -> Result<(), Error>;
}

/// A provider's stream to chat chunks (`inner`), then to the client's format (`sink`).
pub(super) struct ViaChat<S> {
    inner: Box<dyn StreamTranslator>,
    /// Reads the chat chunks `inner` writes.
    parser: SseParser,
    sink: S,
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
            sink,
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
            if let Err(e) = self.sink.event(&ev.event.data, self.inner.usage(), out) {
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
        let ended = self.sink.end(self.inner.usage(), out);
        finished.and(ended)
    }

    fn usage(&self) -> &Usage {
        self.inner.usage()
    }

    fn output_started(&self) -> bool {
        self.inner.output_started()
    }
}
