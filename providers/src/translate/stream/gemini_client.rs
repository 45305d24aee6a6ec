//! Streams to a Gemini client (`streamGenerateContent?alt=sse`) from a provider of another
//! format: the provider's stream goes through the chat completions translator
//! ([`ViaChat`]), whose chunks [`GeminiOut`] turns into Gemini's.
//!
//! Each event written is a whole `GenerateContentResponse` (`data: {…}`) holding the next
//! piece of candidate 0: reasoning deltas as `thought: true` text parts, text (and refusal)
//! deltas as text parts, each as it arrives. Tool calls are gathered from their argument
//! pieces and sent whole, as Gemini does: a call is complete when the next call starts, when
//! other output follows, or at the end; calls complete together share one event. The last
//! event carries the `finishReason`, the `usageMetadata` and any calls still gathered; it is
//! sent when the chat stream ends (`[DONE]`), so that usage sent after the finish reason
//! counts. Every event has the provider's `modelVersion` and `responseId`.
//!
//! An error chunk, or a stream that ends before its finish reason, ends the stream with a
//! Google error object (`data: {"error":{"code","message","status"}}`), the calls still being
//! gathered dropped.

use super::via_chat::{ChatSink, Failure, ViaChat};
use super::{StreamTranslator, TRUNCATED_MESSAGE};
use crate::openai::{ChunkChoice, ToolCallDelta};
use crate::translate::error_body::gemini_error;
use crate::translate::gemini::wire::{Part, UsageMetadata};
use crate::translate::gemini_client::{
    Candidate, GenerateContentResponse, call_part, finish_reason, thought_part,
};
use crate::{Error, Usage, WireFormat, sse};

/// The translator for a Gemini client's stream from a provider of format `from` (not Gemini).
pub(super) fn translator(from: WireFormat) -> Box<dyn StreamTranslator> {
    Box::new(ViaChat::new(from, GeminiOut::default()))
}

/// The Gemini stream being written and what has been sent on it.
#[derive(Default)]
pub(super) struct GeminiOut {
    /// `responseId`: the first chunk id seen.
    id: String,
    /// `modelVersion`: the first model seen.
    model: String,
    /// Tool calls being gathered, in the order they started.
    calls: Vec<Call>,
    /// Tool calls started so far (ids for those that come without one).
    started: u32,
    /// The chat finish reason, once seen.
    finish_reason: Option<String>,
}

/// A tool call being gathered.
struct Call {
    /// The chat tool call index.
    index: Option<u32>,
    id: String,
    name: String,
    arguments: String,
}

impl ChatSink for GeminiOut {
    fn open(&mut self, id: &str, model: &str, _out: &mut Vec<u8>) -> Result<(), Error> {
        if self.id.is_empty() {
            self.id = id.to_string();
        }
        if self.model.is_empty() {
            self.model = model.to_string();
        }
        Ok(())
    }

    fn choices(&mut self, choices: Vec<ChunkChoice>, out: &mut Vec<u8>) -> Result<(), Error> {
        let mut result = Ok(());
        for choice in choices.into_iter().filter(|c| c.index == 0) {
            let d = choice.delta;
            let mut parts = Vec::new();
            if let Some(r) = d.reasoning_text().filter(|r| !r.is_empty()) {
                parts.push(thought_part(r.to_string()));
            }
            let text = d.content.unwrap_or_default() + d.refusal.as_deref().unwrap_or_default();
            if !text.is_empty() {
                parts.push(Part::text(text));
            }
            if !parts.is_empty() {
                // Other output after calls: the calls are complete.
                self.send_calls(out)?;
                self.emit(parts, None, None, out)?;
            }
            for call in d.tool_calls.unwrap_or_default() {
                if let Err(e) = self.tool_call(call, out) {
                    result = result.and(Err(e));
                }
            }
            if let Some(reason) = choice.finish_reason {
                self.finish_reason = Some(reason);
            }
        }
        result
    }

    fn has_finish_reason(&self) -> bool {
        self.finish_reason.is_some()
    }

    /// Sends the last event: the calls still gathered, the finish reason and the usage.
    fn complete(&mut self, usage: &Usage, out: &mut Vec<u8>) -> Result<(), Error> {
        let parts = self.take_calls();
        let finish = finish_reason(self.finish_reason.as_deref());
        self.emit(
            parts,
            Some(finish),
            Some(UsageMetadata::from_usage(usage)),
            out,
        )
    }

    /// Ends the stream with a Google error object, dropping the calls being gathered.
    fn fail(
        &mut self,
        failure: Failure<'_>,
        _usage: &Usage,
        out: &mut Vec<u8>,
    ) -> Result<(), Error> {
        let (status, message) = match failure {
            Failure::Upstream { kind, message } => (error_status(kind), message),
            Failure::Truncated => (502, TRUNCATED_MESSAGE),
        };
        self.calls.clear();
        out.extend_from_slice(b"data: ");
        out.extend_from_slice(&gemini_error(status, message));
        out.extend_from_slice(b"\n\n");
        Ok(())
    }
}

impl GeminiOut {
    /// Writes one `GenerateContentResponse` event.
    fn emit(
        &self,
        parts: Vec<Part>,
        finish: Option<&'static str>,
        usage: Option<UsageMetadata>,
        out: &mut Vec<u8>,
    ) -> Result<(), Error> {
        let r = GenerateContentResponse {
            candidates: vec![Candidate::new(parts, finish)],
            usage_metadata: usage,
            model_version: self.model.clone(),
            response_id: self.id.clone(),
        };
        sse::write_json_event(out, None, &r)
    }

    /// Sends the calls gathered so far, whole, in one event (nothing if there are none).
    fn send_calls(&mut self, out: &mut Vec<u8>) -> Result<(), Error> {
        let parts = self.take_calls();
        if parts.is_empty() {
            return Ok(());
        }
        self.emit(parts, None, None, out)
    }

    /// The gathered calls as `functionCall` parts, forgetting them.
    fn take_calls(&mut self) -> Vec<Part> {
        self.calls
            .drain(..)
            .map(|c| call_part(c.id, c.name, &c.arguments))
            .collect()
    }

    /// Gathers one tool call piece; a new call completes the ones before it.
    fn tool_call(&mut self, call: ToolCallDelta, out: &mut Vec<u8>) -> Result<(), Error> {
        let (name, arguments) = call
            .function
            .map(|f| (f.name, f.arguments))
            .unwrap_or_default();
        let known = call
            .index
            .and_then(|i| self.calls.iter().position(|c| c.index == Some(i)));
        let at = match known {
            Some(at) => at,
            None => {
                if call.id.is_none() && name.is_none() {
                    return Err(Error::InvalidResponse(format!(
                        "arguments for tool call {}, which is not being streamed",
                        call.index.unwrap_or_default()
                    )));
                }
                self.send_calls(out)?;
                let id = call.id.unwrap_or_else(|| format!("call_{}", self.started));
                self.started += 1;
                self.calls.push(Call {
                    index: call.index,
                    id,
                    name: String::new(),
                    arguments: String::new(),
                });
                self.calls.len() - 1
            }
        };
        let c = &mut self.calls[at];
        if let Some(n) = name.filter(|_| c.name.is_empty()) {
            c.name = n;
        }
        if let Some(a) = arguments {
            c.arguments.push_str(&a);
        }
        Ok(())
    }
}

/// The HTTP status a chat error type stands for (which picks the Google error status).
fn error_status(kind: Option<&str>) -> u16 {
    match kind {
        Some("invalid_request_error") => 400,
        Some("authentication_error") => 401,
        Some("permission_error") => 403,
        Some("not_found_error") => 404,
        Some("rate_limit_error" | "rate_limit_exceeded") => 429,
        Some("overloaded_error") => 503,
        _ => 500,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(chunks: &[&str]) -> (String, Result<(), Error>) {
        let mut g = super::super::via_chat::Relay::new(GeminiOut::default());
        let mut out = Vec::new();
        let usage = Usage {
            input_tokens: 5,
            output_tokens: 3,
            ..Default::default()
        };
        for c in chunks {
            g.event(c, &usage, &mut out).unwrap();
        }
        let end = g.end(&usage, &mut out);
        (String::from_utf8(out).unwrap(), end)
    }

    #[test]
    fn calls_are_sent_whole_when_the_next_starts() {
        let (out, end) = run(&[
            r#"{"id":"c1","model":"m","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"a","function":{"name":"f","arguments":"{\"x\""}}]}}]}"#,
            r#"{"id":"c1","model":"m","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":":1}"}}]}}]}"#,
            r#"{"id":"c1","model":"m","choices":[{"index":0,"delta":{"tool_calls":[{"index":1,"id":"b","function":{"name":"g","arguments":""}}]}}]}"#,
            r#"{"id":"c1","model":"m","choices":[{"index":0,"delta":{},"finish_reason":"tool_calls"}]}"#,
            "[DONE]",
        ]);
        assert!(end.is_ok());
        let events: Vec<&str> = out.split("\n\n").filter(|e| !e.is_empty()).collect();
        assert_eq!(events.len(), 2, "{out}");
        assert!(
            events[0]
                .contains(r#""parts":[{"functionCall":{"id":"a","name":"f","args":{"x":1}}}]"#),
            "{out}"
        );
        assert!(events[1].contains(r#""functionCall":{"id":"b","name":"g","args":{}}"#));
        assert!(events[1].contains(r#""finishReason":"STOP""#));
        assert!(events[1].contains(r#""usageMetadata":{"promptTokenCount":5"#));
    }

    #[test]
    fn errors_and_cuts_end_with_google_errors() {
        let (out, end) = run(&[
            r#"{"id":"c1","model":"m","choices":[{"index":0,"delta":{"content":"Hi"}}]}"#,
            r#"{"error":{"type":"rate_limit_error","message":"slow down"}}"#,
        ]);
        assert!(end.is_ok());
        assert!(out.ends_with(
            "data: {\"error\":{\"code\":429,\"message\":\"slow down\",\"status\":\"RESOURCE_EXHAUSTED\"}}\n\n"
        ), "{out}");
        let (out, end) =
            run(&[r#"{"id":"c1","model":"m","choices":[{"index":0,"delta":{"content":"Hi"}}]}"#]);
        assert!(end.is_err());
        assert!(out.ends_with("\"status\":\"INTERNAL\"}}\n\n"), "{out}");
    }
}
