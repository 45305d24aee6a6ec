//! Gemini stream chunks → OpenAI `chat.completion.chunk`s.
//!
//! The first chunk opens the answer (`role: assistant`, `content: ""`); thought parts become
//! `reasoning_content` deltas, text parts `content` deltas; each function call becomes one
//! `tool_calls` delta holding all of it (index, id `call_<n>`, name and the whole arguments).
//! The finish reason gets its chunk as soon as it is seen; the usage chunk (`choices: []`, if
//! the client asked for it) and `data: [DONE]` follow when the upstream stream ends (see the
//! parent module). An error object becomes an OpenAI error event, then `[DONE]`. Only
//! candidate 0 is translated.

use super::super::EventHandler;
use super::super::chat_out::ChatOut;
use super::{error_kind, parse_chunk};
use crate::Error;
use crate::sse::RawEvent;
use crate::translate::gemini::to_client::{finish_reason, response_id};
use crate::translate::gemini::wire::{Response, UsageMetadata};
use crate::translate::stream::Progress;

pub(in crate::translate) struct GeminiToChat {
    out: ChatOut,
    counts: UsageMetadata,
}

impl GeminiToChat {
    pub(in crate::translate) fn new(include_usage: bool) -> Self {
        Self {
            out: ChatOut::new(include_usage, false, String::new()),
            counts: UsageMetadata::default(),
        }
    }

    fn handle(&mut self, r: Response, out: &mut Vec<u8>) -> Result<(), Error> {
        if let Some(message) = r.error_message() {
            return self
                .out
                .error(out, error_kind(r.error_status(), false), &message);
        }
        if let Some(m) = &r.model_version {
            self.out.progress.usage.note_model(m);
        }
        if let Some(u) = &r.usage_metadata {
            u.apply(&mut self.out.progress.usage);
            self.counts = u.clone();
        }
        if !self.out.role_sent() {
            self.out.id = response_id(&r);
            self.out.model = r.model_version.clone().unwrap_or_default();
            self.out.role_chunk(out)?;
        }
        if self.out.complete {
            return Ok(());
        }
        let candidate = r.candidate();
        for part in candidate.map_or(&[][..], |c| c.parts()) {
            if let Some(t) = part.thought_text().filter(|t| !t.is_empty()) {
                self.out.reasoning_delta(out, t.to_string())?;
            } else if let Some(t) = part.answer_text().filter(|t| !t.is_empty()) {
                self.out.content_delta(out, t.to_string())?;
            } else if let Some(call) = &part.function_call {
                let index = self.out.tool_count();
                let id = format!("call_{index}");
                self.out
                    .tool_call_start(out, index, id, call.name.clone(), call.arguments())?;
            }
        }
        let has_calls = self.out.tool_count() > 0;
        let finish = match candidate {
            Some(c) => c
                .finish_reason
                .as_deref()
                .map(|f| finish_reason(Some(f), has_calls)),
            None => r.block_reason().map(|_| finish_reason(None, has_calls)),
        };
        if let Some(reason) = finish {
            self.out.finish(out, reason)?;
        }
        Ok(())
    }
}

impl EventHandler for GeminiToChat {
    fn event(&mut self, ev: RawEvent, out: &mut Vec<u8>) -> Result<(), Error> {
        if self.out.done || !ev.has_data {
            return Ok(());
        }
        let r = parse_chunk(&ev.event.data)?;
        self.handle(r, out)
    }

    fn end(&mut self, out: &mut Vec<u8>) -> Result<(), Error> {
        self.out.end(out, self.counts.chat_usage())
    }

    fn progress(&self) -> &Progress {
        &self.out.progress
    }
}

#[cfg(test)]
mod tests {
    use super::super::super::{Driver, StreamTranslator};
    use super::*;

    fn run(input: &str, include_usage: bool) -> (String, Result<(), Error>) {
        let mut t = Driver::new(GeminiToChat::new(include_usage));
        let mut out = Vec::new();
        let pushed = t.push(input.as_bytes(), &mut out);
        let finished = t.finish(&mut out);
        (String::from_utf8(out).unwrap(), pushed.and(finished))
    }

    #[test]
    fn blocked_prompt_finishes_with_content_filter() {
        let (out, r) = run(
            "data: {\"promptFeedback\":{\"blockReason\":\"SAFETY\"},\"usageMetadata\":{\"promptTokenCount\":3}}\n\n",
            true,
        );
        assert!(r.is_ok());
        assert!(
            out.contains("\"finish_reason\":\"content_filter\""),
            "{out}"
        );
        assert!(out.contains("\"prompt_tokens\":3"), "{out}");
        assert!(out.ends_with("data: [DONE]\n\n"));
    }

    #[test]
    fn errors_and_bad_chunks() {
        let (out, r) = run(
            "data: {\"error\":{\"code\":429,\"message\":\"Quota exceeded\",\"status\":\"RESOURCE_EXHAUSTED\"}}\n\n",
            false,
        );
        assert!(r.is_ok());
        assert_eq!(
            out,
            "data: {\"error\":{\"message\":\"Quota exceeded\",\"type\":\"rate_limit_error\",\"param\":null,\"code\":null}}\n\ndata: [DONE]\n\n"
        );
        // A bad chunk is reported; the chunks around it are still translated.
        let (out, r) = run(
            "data: [1]\n\ndata: nope\n\ndata: {\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"ok\"}]},\"finishReason\":\"STOP\"}]}\n\n",
            false,
        );
        assert!(matches!(r, Err(Error::InvalidResponse(_))));
        assert!(out.contains("\"content\":\"ok\""));
        assert!(out.ends_with("data: [DONE]\n\n"));
    }
}
