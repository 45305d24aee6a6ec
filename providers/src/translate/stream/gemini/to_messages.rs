//! Gemini stream chunks → Anthropic stream events.
//!
//! The first chunk opens the message (`message_start`, with the input usage when the chunk has
//! it). Thought parts and text parts become thinking and text blocks (`thinking_delta`,
//! `text_delta`), a block staying open while parts of its kind follow; each function call
//! becomes a whole `tool_use` block (id `toolu_<n>`): `content_block_start`, one
//! `input_json_delta` with all the arguments, `content_block_stop`. The finish reason closes
//! the open block; `message_delta` (stop reason and usage) and `message_stop` follow when the
//! upstream stream ends (see the parent module). An error object becomes an `error` event.
//! Only candidate 0 is translated.

use serde_json::json;

use super::super::EventHandler;
use super::super::messages_out::{MessagesOut, delta_usage};
use super::{error_kind, parse_chunk};
use crate::Error;
use crate::anthropic::{Block, BlockDelta};
use crate::sse::RawEvent;
use crate::translate::gemini::to_client::{anthropic_stop_reason, response_id};
use crate::translate::gemini::wire::{Response, UsageMetadata};
use crate::translate::stream::Progress;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Thinking,
    Text,
    /// A whole function call (closed as soon as it is sent).
    Tool,
}

#[derive(Default)]
pub(in crate::translate) struct GeminiToMessages {
    out: MessagesOut<Kind>,
    counts: UsageMetadata,
    /// Function calls sent so far.
    calls: u32,
    /// Set by the finish reason; the message is complete.
    stop_reason: Option<&'static str>,
}

impl GeminiToMessages {
    fn start_message(&mut self, r: &Response, out: &mut Vec<u8>) -> Result<(), Error> {
        let mut usage = self.counts.messages_usage();
        usage.output_tokens = 0;
        let model = r.model_version.clone().unwrap_or_default();
        self.out.message_start(out, response_id(r), model, usage)
    }

    /// A delta for a thinking or text block, opening one of `kind` if needed.
    fn stream_delta(&mut self, kind: Kind, text: &str, out: &mut Vec<u8>) -> Result<(), Error> {
        let (block, delta) = match kind {
            Kind::Thinking => (
                Block::Thinking {
                    thinking: String::new(),
                    signature: String::new(),
                },
                BlockDelta::ThinkingDelta {
                    thinking: text.to_string(),
                },
            ),
            Kind::Text | Kind::Tool => (
                Block::Text {
                    text: String::new(),
                    citations: None,
                    cache_control: None,
                },
                BlockDelta::TextDelta {
                    text: text.to_string(),
                },
            ),
        };
        let index = self.out.block_for(out, kind, || block)?;
        self.out.delta(out, index, delta)
    }

    /// `message_delta` and `message_stop`.
    fn stop(&mut self, reason: &str, out: &mut Vec<u8>) -> Result<(), Error> {
        let counts = self.counts.messages_usage();
        self.out.stop(out, reason, None, delta_usage(&counts))
    }

    fn handle(&mut self, r: Response, out: &mut Vec<u8>) -> Result<(), Error> {
        if let Some(message) = r.error_message() {
            return self
                .out
                .error(out, error_kind(r.error_status(), true), &message);
        }
        if let Some(m) = &r.model_version {
            self.out.progress.usage.note_model(m);
        }
        if let Some(u) = &r.usage_metadata {
            u.apply(&mut self.out.progress.usage);
            self.counts = u.clone();
        }
        if !self.out.started {
            self.start_message(&r, out)?;
        }
        if self.stop_reason.is_some() {
            return Ok(());
        }
        let candidate = r.candidate();
        for part in candidate.map_or(&[][..], |c| c.parts()) {
            if let Some(t) = part.thought_text().filter(|t| !t.is_empty()) {
                self.stream_delta(Kind::Thinking, t, out)?;
            } else if let Some(t) = part.answer_text().filter(|t| !t.is_empty()) {
                self.stream_delta(Kind::Text, t, out)?;
            } else if let Some(call) = &part.function_call {
                let block = Block::ToolUse {
                    id: format!("toolu_{}", self.calls),
                    name: call.name.clone(),
                    input: json!({}),
                    cache_control: None,
                };
                self.calls += 1;
                let index = self.out.open_block(out, Kind::Tool, block)?;
                let partial_json = call.arguments();
                self.out
                    .delta(out, index, BlockDelta::InputJsonDelta { partial_json })?;
                self.out.close_block(out)?;
            }
        }
        let has_calls = self.calls > 0;
        let reason = match candidate {
            Some(c) => c
                .finish_reason
                .as_deref()
                .map(|f| anthropic_stop_reason(Some(f), has_calls)),
            None => r
                .block_reason()
                .map(|_| anthropic_stop_reason(None, has_calls)),
        };
        if let Some(reason) = reason {
            self.out.close_block(out)?;
            self.stop_reason = Some(reason);
        }
        Ok(())
    }
}

impl EventHandler for GeminiToMessages {
    fn event(&mut self, ev: RawEvent, out: &mut Vec<u8>) -> Result<(), Error> {
        if self.out.stopped || !ev.has_data {
            return Ok(());
        }
        let r = parse_chunk(&ev.event.data)?;
        self.handle(r, out)
    }

    fn end(&mut self, out: &mut Vec<u8>) -> Result<(), Error> {
        if self.out.stopped {
            return Ok(());
        }
        if let Some(reason) = self.stop_reason {
            return self.stop(reason, out);
        }
        self.out.truncated_end(out)
    }

    fn progress(&self) -> &Progress {
        &self.out.progress
    }
}

#[cfg(test)]
mod tests {
    use super::super::super::{Driver, StreamTranslator};
    use super::*;

    fn run(input: &str) -> (String, Result<(), Error>) {
        let mut t = Driver::new(GeminiToMessages::default());
        let mut out = Vec::new();
        let pushed = t.push(input.as_bytes(), &mut out);
        let finished = t.finish(&mut out);
        (String::from_utf8(out).unwrap(), pushed.and(finished))
    }

    #[test]
    fn overloaded_error_mid_stream() {
        let (out, r) = run(concat!(
            "data: {\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"Hel\"}]}}],\"responseId\":\"r1\",\"modelVersion\":\"g\"}\n\n",
            "data: {\"error\":{\"code\":503,\"message\":\"The model is overloaded.\",\"status\":\"UNAVAILABLE\"}}\n\n",
        ));
        assert!(r.is_ok());
        assert!(out.ends_with(concat!(
            "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n",
            "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"The model is overloaded.\"}}\n\n"
        )), "{out}");
        assert!(out.starts_with(
            "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"r1\""
        ));
    }

    #[test]
    fn usage_after_the_finish_reason_counts() {
        let (out, r) = run(concat!(
            "data: {\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"Hi\"}]},\"finishReason\":\"MAX_TOKENS\"}]}\n\n",
            "data: {\"usageMetadata\":{\"promptTokenCount\":4,\"candidatesTokenCount\":2}}\n\n",
        ));
        assert!(r.is_ok());
        assert!(out.contains(
            "{\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"max_tokens\",\"stop_sequence\":null},\"usage\":{\"output_tokens\":2,\"input_tokens\":4,\"cache_read_input_tokens\":0}}"
        ), "{out}");
    }
}
