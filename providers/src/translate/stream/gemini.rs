//! Gemini `streamGenerateContent?alt=sse` streams: passthrough for Gemini clients, translation
//! for OpenAI ([`to_chat`]) and Anthropic ([`to_messages`]) clients.
//!
//! Each Gemini event is a whole `GenerateContentResponse` holding the next piece of the
//! answer: text deltas, whole function calls (arguments are never split), `usageMetadata`
//! (cumulative; at least on the last chunk) and, on the last chunk, the `finishReason`. There
//! is no end marker: a stream is complete once a finish reason (or a blocked prompt's
//! `promptFeedback.blockReason`, or an error object) has been seen. The translators therefore
//! send the client's closing events (usage, `[DONE]`; `message_delta`, `message_stop`) when
//! the upstream stream ends, so that usage sent after the finish reason still counts; a
//! stream that ends before any finish reason was cut short.
//!
//! Gemini clients of other providers are served by the `gemini_client` stream module; any
//! other pairing that reaches this module gets a translator that fails every call
//! ([`NotImplemented`]).

mod to_chat;
mod to_messages;

use super::passthrough::forward_last;
use super::{Driver, NotImplemented, StreamTranslator};
use super::{EventHandler, TRUNCATED_MESSAGE, truncated};
use crate::sse::RawEvent;
use crate::translate::gemini::wire::Response;
use crate::translate::stream::Progress;
use crate::{ClientApi, Error, Usage, WireFormat};

/// The translator for a Gemini stream (`from` Gemini) or a Gemini client (`api`).
pub(super) fn translator(
    api: ClientApi,
    from: WireFormat,
    hide_usage_chunk: bool,
) -> Box<dyn StreamTranslator> {
    match (api, from) {
        (ClientApi::GenerateContent, WireFormat::Gemini) => {
            Box::new(Driver::new(Passthrough::default()))
        }
        (ClientApi::ChatCompletions, WireFormat::Gemini) => {
            Box::new(Driver::new(to_chat::GeminiToChat::new(!hide_usage_chunk)))
        }
        (ClientApi::Messages, WireFormat::Gemini) => {
            Box::new(Driver::new(to_messages::GeminiToMessages::default()))
        }
        _ => Box::new(NotImplemented(
            format!("{api:?} streams from a {from:?} provider are not supported"),
            Usage::default(),
        )),
    }
}

/// Parses one event's data.
fn parse_chunk(data: &str) -> Result<Response, Error> {
    crate::translate::from_object(data.as_bytes())
        .map_err(|e| Error::InvalidResponse(format!("stream chunk is not valid: {e}")))
}

/// Whether a chunk ends the answer: a finish reason, a blocked prompt or an error.
fn ends_answer(r: &Response) -> bool {
    r.error.is_some()
        || r.block_reason().is_some()
        || r.candidate().is_some_and(|c| c.finish_reason.is_some())
}

/// Whether a chunk carries output (text, thoughts or a function call).
fn has_output(r: &Response) -> bool {
    r.candidate().is_some_and(|c| {
        c.parts()
            .iter()
            .any(|p| p.text.as_deref().is_some_and(|t| !t.is_empty()) || p.function_call.is_some())
    })
}

/// The error type for a Google API error status, in OpenAI or Anthropic terms.
fn error_kind(status: Option<&str>, anthropic: bool) -> Option<&'static str> {
    Some(match status? {
        "RESOURCE_EXHAUSTED" => "rate_limit_error",
        "UNAVAILABLE" if anthropic => "overloaded_error",
        "INVALID_ARGUMENT" | "FAILED_PRECONDITION" | "OUT_OF_RANGE" => "invalid_request_error",
        "PERMISSION_DENIED" => "permission_error",
        "UNAUTHENTICATED" => "authentication_error",
        "NOT_FOUND" => "not_found_error",
        _ => return None,
    })
}

/// Gemini chunks to a Gemini client: forwarded byte for byte as they complete, read on the
/// way for usage, the model and the first output. Chunks that cannot be read are forwarded
/// all the same. A stream cut short gets a Google error object as its last event.
#[derive(Default)]
struct Passthrough {
    progress: Progress,
    complete: bool,
}

impl Passthrough {
    fn read(&mut self, ev: &RawEvent) {
        if !ev.has_data {
            return;
        }
        let Ok(r) = parse_chunk(&ev.event.data) else {
            return;
        };
        if let Some(u) = &r.usage_metadata {
            u.apply(&mut self.progress.usage);
        }
        if let Some(m) = &r.model_version {
            self.progress.usage.note_model(m);
        }
        self.progress.output_started |= has_output(&r);
        self.complete |= ends_answer(&r);
    }
}

impl EventHandler for Passthrough {
    fn event(&mut self, ev: RawEvent, out: &mut Vec<u8>) -> Result<(), Error> {
        self.read(&ev);
        out.extend_from_slice(&ev.raw);
        Ok(())
    }

    fn last_event(&mut self, ev: RawEvent, out: &mut Vec<u8>) -> Result<(), Error> {
        forward_last(ev, out, |ev| self.read(ev))
    }

    fn end(&mut self, out: &mut Vec<u8>) -> Result<(), Error> {
        if self.complete {
            return Ok(());
        }
        out.extend_from_slice(b"data: ");
        out.extend_from_slice(&crate::translate::error_body::gemini_error(
            502,
            TRUNCATED_MESSAGE,
        ));
        out.extend_from_slice(b"\n\n");
        Err(truncated())
    }

    fn progress(&self) -> &Progress {
        &self.progress
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unsupported_pairs_fail() {
        for (api, from) in [
            (ClientApi::Embeddings, WireFormat::Gemini),
            (ClientApi::Models, WireFormat::Gemini),
        ] {
            let mut t = super::super::stream_translator(api, from, false);
            let mut out = Vec::new();
            assert!(matches!(
                t.push(b"data: {}\n\n", &mut out),
                Err(Error::Unsupported(_))
            ));
            assert!(t.finish(&mut out).is_err());
            assert!(out.is_empty());
        }
    }

    #[test]
    fn passthrough_closes_cut_streams_with_a_google_error() {
        let mut t =
            super::super::stream_translator(ClientApi::GenerateContent, WireFormat::Gemini, false);
        let mut out = Vec::new();
        let chunk = b"data: {\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"Hi\"}]}}],\"modelVersion\":\"g\"}\r\n\r\n";
        t.push(chunk, &mut out).unwrap();
        assert!(t.finish(&mut out).is_err());
        let text = String::from_utf8(out).unwrap();
        assert!(text.starts_with(std::str::from_utf8(chunk).unwrap()));
        assert!(text.ends_with(
            "data: {\"error\":{\"code\":502,\"message\":\"upstream stream ended before completion\",\"status\":\"INTERNAL\"}}\n\n"
        ), "{text}");
        assert!(t.output_started());
        assert_eq!(t.usage().response_model.as_deref(), Some("g"));
    }
}
