//! Streaming (SSE) responses: one [`StreamTranslator`] per response, fed the upstream bytes as
//! they arrive.
//!
//! Every translator handles the end of a stream the same way. An upstream stream that ends
//! cleanly (OpenAI: `[DONE]`, a `finish_reason` or an error; Anthropic: `message_stop`, a
//! `stop_reason` or an error) is closed in the client's format (`data: [DONE]`,
//! `message_stop`). One cut short is closed with an error event in the client's format and
//! [`StreamTranslator::finish`] returns an error (for the logs; the closing bytes are in `out`
//! all the same and should be sent).

mod bedrock;
mod chat_out;
mod chat_via_anthropic;
mod gemini;
mod gemini_client;
mod messages_out;
mod messages_via_openai;
mod passthrough;
mod responses;
mod via_chat;

use crate::sse::{self, RawEvent, SseParser};
use crate::{ClientApi, Error, Usage, WireFormat};

/// Translates one streamed response, chunk by chunk.
pub trait StreamTranslator: Send + Sync {
    /// Feeds raw upstream SSE bytes (arbitrary chunk boundaries, even mid-line or mid-UTF-8);
    /// appends complete translated SSE events to `out` as soon as they are complete.
    fn push(&mut self, chunk: &[u8], out: &mut Vec<u8>) -> Result<(), Error>;
    /// End of upstream stream: flushes what remains (the final `data: [DONE]` for OpenAI
    /// clients, `message_stop` for Anthropic clients). Returns an error if the upstream stream
    /// was cut short; `out` then holds an error event to send to the client.
    fn finish(&mut self, out: &mut Vec<u8>) -> Result<(), Error>;
    /// Usage so far (complete once the stream has ended).
    fn usage(&self) -> &Usage;
    /// True once the first output token (text, reasoning or tool call delta) has been seen.
    fn output_started(&self) -> bool;
}

/// The translator for a stream from a provider of format `from` to a client of `api`.
/// `hide_usage_chunk` is [`crate::Translated::hide_usage_chunk`] of the request.
pub fn stream_translator(
    api: ClientApi,
    from: WireFormat,
    hide_usage_chunk: bool,
) -> Box<dyn StreamTranslator> {
    if api == ClientApi::Responses {
        return responses::translator(from);
    }
    if api == ClientApi::GenerateContent && from != WireFormat::Gemini {
        return gemini_client::translator(from);
    }
    match (api.format(), from) {
        (WireFormat::OpenAi, WireFormat::OpenAi) => Box::new(Driver::new(
            passthrough::OpenAiPassthrough::new(hide_usage_chunk),
        )),
        (WireFormat::Anthropic, WireFormat::Anthropic) => {
            Box::new(Driver::new(passthrough::AnthropicPassthrough::default()))
        }
        (WireFormat::OpenAi, WireFormat::Anthropic) => Box::new(Driver::new(
            chat_via_anthropic::AnthropicToChat::new(!hide_usage_chunk),
        )),
        (WireFormat::Anthropic, WireFormat::OpenAi) => {
            Box::new(Driver::new(messages_via_openai::OpenAiToMessages::default()))
        }
        (_, WireFormat::Gemini) | (WireFormat::Gemini, _) => {
            gemini::translator(api, from, hide_usage_chunk)
        }
        (_, WireFormat::Bedrock) | (WireFormat::Bedrock, _) => {
            bedrock::translator(api, hide_usage_chunk)
        }
    }
}

/// The per-event logic of a translator; [`Driver`] does the SSE framing.
trait EventHandler: Send + Sync {
    /// Handles one complete event block.
    fn event(&mut self, ev: RawEvent, out: &mut Vec<u8>) -> Result<(), Error>;
    /// Handles the last block of a stream that ended without a blank line after it (its raw
    /// bytes lack the terminator).
    fn last_event(&mut self, ev: RawEvent, out: &mut Vec<u8>) -> Result<(), Error> {
        self.event(ev, out)
    }
    /// Closes the client's stream; `Err` if the upstream stream was cut short.
    fn end(&mut self, out: &mut Vec<u8>) -> Result<(), Error>;
    /// Usage and first output seen so far.
    fn progress(&self) -> &Progress;
}

/// What the logs learn from a stream as it goes.
#[derive(Default)]
struct Progress {
    /// Usage so far (complete once the stream has ended).
    usage: Usage,
    /// The first output token (text, reasoning or tool call delta) has been seen.
    output_started: bool,
}

struct Driver<H> {
    parser: SseParser,
    handler: H,
    finished: bool,
}

impl<H: EventHandler> Driver<H> {
    fn new(handler: H) -> Self {
        Self {
            parser: SseParser::new(),
            handler,
            finished: false,
        }
    }
}

impl<H: EventHandler> StreamTranslator for Driver<H> {
    fn push(&mut self, chunk: &[u8], out: &mut Vec<u8>) -> Result<(), Error> {
        if self.finished {
            return Ok(());
        }
        // A bad event is reported, and the events around it are still handled.
        let mut events = Vec::new();
        let mut result = self.parser.feed(chunk, &mut events);
        for ev in events {
            if let Err(e) = self.handler.event(ev, out) {
                result = result.and(Err(e));
            }
        }
        result
    }

    fn finish(&mut self, out: &mut Vec<u8>) -> Result<(), Error> {
        if std::mem::replace(&mut self.finished, true) {
            return Ok(());
        }
        // A last event without its blank line is taken if it reads; a half event is dropped
        // (the end below then reports the cut).
        if let Ok(Some(ev)) = self.parser.finish() {
            let mut tail = Vec::new();
            if self.handler.last_event(ev, &mut tail).is_ok() {
                out.extend_from_slice(&tail);
            }
        }
        self.handler.end(out)
    }

    fn usage(&self) -> &Usage {
        &self.handler.progress().usage
    }

    fn output_started(&self) -> bool {
        self.handler.progress().output_started
    }
}

/// What the client and the logs are told when the upstream stream was cut short.
const TRUNCATED_MESSAGE: &str = "upstream stream ended before completion";

/// The error for a stream cut short.
fn truncated() -> Error {
    Error::InvalidResponse(TRUNCATED_MESSAGE.into())
}

/// Appends an OpenAI-format error event.
fn openai_error_event(out: &mut Vec<u8>, kind: Option<&str>, message: &str) -> Result<(), Error> {
    let mut body = super::error_body::openai_error_detail(502, kind, message);
    // Like OpenAI's own mid-stream errors: no HTTP status applies to a stream already under way.
    body.error.code = None;
    sse::write_json_event(out, None, &body)
}

/// Appends an Anthropic-format error event.
fn anthropic_error_event(
    out: &mut Vec<u8>,
    kind: Option<&str>,
    message: &str,
) -> Result<(), Error> {
    let body = super::error_body::anthropic_error_body(502, kind, message);
    sse::write_json_event(out, Some("error"), &body)
}

const DONE: &[u8] = b"data: [DONE]\n\n";

/// A translator for a pair that is not implemented yet: every call fails.
pub(super) struct NotImplemented(pub(super) String, pub(super) Usage);

impl StreamTranslator for NotImplemented {
    fn push(&mut self, _chunk: &[u8], _out: &mut Vec<u8>) -> Result<(), Error> {
        Err(Error::Unsupported(self.0.clone()))
    }
    fn finish(&mut self, _out: &mut Vec<u8>) -> Result<(), Error> {
        Err(Error::Unsupported(self.0.clone()))
    }
    fn usage(&self) -> &Usage {
        &self.1
    }
    fn output_started(&self) -> bool {
        false
    }
}
