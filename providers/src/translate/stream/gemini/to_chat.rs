//! Gemini stream chunks → OpenAI `chat.completion.chunk`s.
//!
//! The first chunk opens the answer (`role: assistant`, `content: ""`); thought parts become
//! `reasoning_content` deltas, text parts `content` deltas; each function call becomes one
//! `tool_calls` delta holding all of it (index, id `call_<n>`, name and the whole arguments).
//! The finish reason gets its chunk as soon as it is seen; the usage chunk (`choices: []`, if
//! the client asked for it) and `data: [DONE]` follow when the upstream stream ends (see the
//! parent module). An error object becomes an OpenAI error event, then `[DONE]`. Only
//! candidate 0 is translated.

use super::super::{DONE, EventHandler, TRUNCATED_MESSAGE, openai_error_event, truncated};
use super::{error_kind, parse_chunk};
use crate::openai::{ChatChunk, ChunkChoice, Delta, FunctionDelta, ToolCallDelta};
use crate::sse::{self, RawEvent};
use crate::translate::gemini::to_client::{finish_reason, response_id};
use crate::translate::gemini::wire::{Response, UsageMetadata};
use crate::{Error, Usage};

pub(in crate::translate) struct GeminiToChat {
    include_usage: bool,
    usage: Usage,
    counts: UsageMetadata,
    id: String,
    model: String,
    started: bool,
    /// Function calls sent so far.
    calls: u32,
    output_started: bool,
    /// The finish chunk was sent (only usage may follow).
    complete: bool,
    /// `[DONE]` sent; everything after is ignored.
    done: bool,
}

impl GeminiToChat {
    pub(in crate::translate) fn new(include_usage: bool) -> Self {
        Self {
            include_usage,
            usage: Usage::default(),
            counts: UsageMetadata::default(),
            id: String::new(),
            model: String::new(),
            started: false,
            calls: 0,
            output_started: false,
            complete: false,
            done: false,
        }
    }

    fn chunk(&self, delta: Delta, finish_reason: Option<&str>) -> ChatChunk {
        ChatChunk {
            id: self.id.clone(),
            object: "chat.completion.chunk".into(),
            created: 0,
            model: self.model.clone(),
            system_fingerprint: None,
            choices: vec![ChunkChoice {
                index: 0,
                delta,
                logprobs: None,
                finish_reason: finish_reason.map(str::to_string),
            }],
            usage: None,
            error: None,
        }
    }

    fn emit(&self, out: &mut Vec<u8>, delta: Delta, finish: Option<&str>) -> Result<(), Error> {
        sse::write_json_event(out, None, &self.chunk(delta, finish))
    }

    /// Sends an output delta.
    fn output(&mut self, out: &mut Vec<u8>, delta: Delta) -> Result<(), Error> {
        self.output_started = true;
        self.emit(out, delta, None)
    }

    /// The usage chunk (if asked for) and `[DONE]`.
    fn close(&mut self, out: &mut Vec<u8>) -> Result<(), Error> {
        if self.include_usage {
            let mut chunk = self.chunk(Delta::default(), None);
            chunk.choices.clear();
            chunk.usage = Some(self.counts.chat_usage());
            sse::write_json_event(out, None, &chunk)?;
        }
        out.extend_from_slice(DONE);
        self.done = true;
        Ok(())
    }

    fn handle(&mut self, r: Response, out: &mut Vec<u8>) -> Result<(), Error> {
        if let Some(message) = r.error_message() {
            openai_error_event(out, error_kind(r.error_status(), false), &message)?;
            out.extend_from_slice(DONE);
            self.done = true;
            return Ok(());
        }
        if let Some(m) = &r.model_version {
            self.usage.note_model(m);
        }
        if let Some(u) = &r.usage_metadata {
            u.apply(&mut self.usage);
            self.counts = u.clone();
        }
        if !self.started {
            self.started = true;
            self.id = response_id(&r);
            self.model = r.model_version.clone().unwrap_or_default();
            let delta = Delta {
                role: Some("assistant".into()),
                content: Some(String::new()),
                ..Default::default()
            };
            self.emit(out, delta, None)?;
        }
        if self.complete {
            return Ok(());
        }
        let candidate = r.candidate();
        for part in candidate.map_or(&[][..], |c| c.parts()) {
            if let Some(t) = part.thought_text().filter(|t| !t.is_empty()) {
                let delta = Delta {
                    reasoning_content: Some(t.to_string()),
                    ..Default::default()
                };
                self.output(out, delta)?;
            } else if let Some(t) = part.answer_text().filter(|t| !t.is_empty()) {
                let delta = Delta {
                    content: Some(t.to_string()),
                    ..Default::default()
                };
                self.output(out, delta)?;
            } else if let Some(call) = &part.function_call {
                let index = self.calls;
                self.calls += 1;
                let delta = Delta {
                    tool_calls: Some(vec![ToolCallDelta {
                        index: Some(index),
                        id: Some(format!("call_{index}")),
                        kind: Some("function".into()),
                        function: Some(FunctionDelta {
                            name: Some(call.name.clone()),
                            arguments: Some(call.arguments()),
                        }),
                    }]),
                    ..Default::default()
                };
                self.output(out, delta)?;
            }
        }
        let finish = match candidate {
            Some(c) => c
                .finish_reason
                .as_deref()
                .map(|f| finish_reason(Some(f), self.calls > 0)),
            None => r
                .block_reason()
                .map(|_| finish_reason(None, self.calls > 0)),
        };
        if let Some(reason) = finish {
            self.complete = true;
            self.emit(out, Delta::default(), Some(reason))?;
        }
        Ok(())
    }
}

impl EventHandler for GeminiToChat {
    fn event(&mut self, ev: RawEvent, out: &mut Vec<u8>) -> Result<(), Error> {
        if self.done || !ev.has_data {
            return Ok(());
        }
        let r = parse_chunk(&ev.event.data)?;
        self.handle(r, out)
    }

    fn end(&mut self, out: &mut Vec<u8>) -> Result<(), Error> {
        if self.done {
            return Ok(());
        }
        if self.complete {
            return self.close(out);
        }
        openai_error_event(out, None, TRUNCATED_MESSAGE)?;
        out.extend_from_slice(DONE);
        self.done = true;
        Err(truncated())
    }

    fn usage(&self) -> &Usage {
        &self.usage
    }

    fn output_started(&self) -> bool {
        self.output_started
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
