//! OpenAI `chat.completion.chunk`s → Anthropic stream events.
//!
//! The first chunk opens the message (`message_start`, input usage 0 until the usage chunk
//! says). Reasoning, text and each tool call become content blocks with increasing indexes:
//! `content_block_start`, deltas (`thinking_delta`, `text_delta`, `input_json_delta`),
//! `content_block_stop` when the next block starts or the choice finishes. The
//! `finish_reason` is held until the usage chunk that follows it (or `[DONE]`, or the end of
//! the stream), then `message_delta` (stop reason and usage) and `message_stop` are sent.
//! A mid-stream `{"error": ...}` becomes an `error` event. Only choice 0 is translated.
//!
//! Tool call pieces are routed by their `index` (by `id` when a vendor omits the index). A
//! piece for a tool call whose block was already closed is sent with that block's index.

use serde_json::{Value, json};

use super::EventHandler;
use super::messages_out::{MessagesOut, delta_usage};
use crate::Error;
use crate::anthropic::{Block, BlockDelta, MessagesUsage};
use crate::openai::{ChatChunk, ToolCallDelta};
use crate::sse::RawEvent;
use crate::translate::messages_via_openai::messages_usage;
use crate::translate::stop_reason;
use crate::translate::stream::Progress;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Thinking,
    Text,
    /// A tool call, by position in `tools`.
    Tool(usize),
}

#[derive(Default)]
pub(in crate::translate) struct OpenAiToMessages {
    out: MessagesOut<Kind>,
    counts: MessagesUsage,
    /// Tool calls seen: OpenAI index, id, Anthropic block index.
    tools: Vec<(u32, Option<String>, u32)>,
    finish_reason: Option<String>,
}

impl OpenAiToMessages {
    fn start_message(&mut self, chunk: &ChatChunk, out: &mut Vec<u8>) -> Result<(), Error> {
        if self.out.started {
            return Ok(());
        }
        let usage = chunk
            .usage
            .as_ref()
            .map(messages_usage)
            .unwrap_or(MessagesUsage {
                input_tokens: 0,
                output_tokens: 0,
                cache_creation_input_tokens: None,
                cache_read_input_tokens: None,
            });
        self.out
            .message_start(out, chunk.id.clone(), chunk.model.clone(), usage)
    }

    fn tool_call(&mut self, call: ToolCallDelta, out: &mut Vec<u8>) -> Result<(), Error> {
        let known = match call.index {
            Some(i) => self.tools.iter().position(|(idx, _, _)| *idx == i),
            None => match &call.id {
                Some(id) => self
                    .tools
                    .iter()
                    .position(|(_, t, _)| t.as_ref() == Some(id)),
                None => self.tools.len().checked_sub(1),
            },
        };
        let function = call.function.unwrap_or_default();
        let pos = match known {
            Some(pos) => pos,
            None => {
                let pos = self.tools.len();
                let openai_index = call.index.unwrap_or(pos as u32);
                let id = call.id.clone().unwrap_or_else(|| format!("call_{pos}"));
                let block = || Block::ToolUse {
                    id: id.clone(),
                    name: function.name.clone().unwrap_or_default(),
                    input: json!({}),
                    cache_control: None,
                };
                let index = self.out.block_for(out, Kind::Tool(pos), block)?;
                self.tools.push((openai_index, Some(id), index));
                pos
            }
        };
        if let Some(args) = function.arguments.filter(|a| !a.is_empty()) {
            let index = self.tools[pos].2;
            let delta = BlockDelta::InputJsonDelta { partial_json: args };
            self.out.delta(out, index, delta)?;
        }
        Ok(())
    }

    /// `message_delta` and `message_stop`.
    fn stop(&mut self, out: &mut Vec<u8>) -> Result<(), Error> {
        let reason = stop_reason(self.finish_reason.as_deref(), !self.tools.is_empty());
        self.out.stop(out, reason, None, delta_usage(&self.counts))
    }

    fn chunk(&mut self, chunk: ChatChunk, out: &mut Vec<u8>) -> Result<(), Error> {
        if let Some(err) = &chunk.error {
            let message = err
                .get("message")
                .and_then(Value::as_str)
                .map_or_else(|| err.to_string(), str::to_string);
            return self.out.error(out, None, &message);
        }
        self.out.progress.usage.note_model(&chunk.model);
        self.start_message(&chunk, out)?;
        if let Some(u) = &chunk.usage {
            u.apply(&mut self.out.progress.usage);
            self.counts = messages_usage(u);
        }
        for choice in chunk.choices.into_iter().filter(|c| c.index == 0) {
            let d = choice.delta;
            if let Some(r) = d.reasoning_text().map(str::to_string) {
                let block = || Block::Thinking {
                    thinking: String::new(),
                    signature: String::new(),
                };
                let index = self.out.block_for(out, Kind::Thinking, block)?;
                self.out
                    .delta(out, index, BlockDelta::ThinkingDelta { thinking: r })?;
            }
            for text in [d.content, d.refusal].into_iter().flatten() {
                if text.is_empty() {
                    continue;
                }
                let block = || Block::Text {
                    text: String::new(),
                    citations: None,
                    cache_control: None,
                };
                let index = self.out.block_for(out, Kind::Text, block)?;
                self.out.delta(out, index, BlockDelta::TextDelta { text })?;
            }
            for call in d.tool_calls.unwrap_or_default() {
                self.tool_call(call, out)?;
            }
            if let Some(reason) = choice.finish_reason {
                self.out.close_block(out)?;
                self.finish_reason = Some(reason);
            }
        }
        Ok(())
    }
}

impl EventHandler for OpenAiToMessages {
    fn event(&mut self, ev: RawEvent, out: &mut Vec<u8>) -> Result<(), Error> {
        if self.out.stopped || !ev.has_data {
            return Ok(());
        }
        let data = ev.event.data.trim();
        if data == "[DONE]" {
            self.start_message(&ChatChunk::default(), out)?;
            return self.stop(out);
        }
        let chunk: ChatChunk = serde_json::from_str(data)
            .map_err(|e| Error::InvalidResponse(format!("stream chunk is not valid: {e}")))?;
        let usage_only = chunk.choices.is_empty() && chunk.usage.is_some();
        self.chunk(chunk, out)?;
        if usage_only && self.finish_reason.is_some() && !self.out.stopped {
            self.stop(out)?;
        }
        Ok(())
    }

    fn end(&mut self, out: &mut Vec<u8>) -> Result<(), Error> {
        if self.out.stopped {
            return Ok(());
        }
        if self.finish_reason.is_some() {
            return self.stop(out);
        }
        self.out.truncated_end(out)
    }

    fn progress(&self) -> &Progress {
        &self.out.progress
    }
}

#[cfg(test)]
mod tests {
    use super::super::StreamTranslator;
    use super::*;
    use crate::Usage;

    fn run(input: &str) -> (String, Usage) {
        let mut t = super::super::Driver::new(OpenAiToMessages::default());
        let mut out = Vec::new();
        t.push(input.as_bytes(), &mut out).unwrap();
        t.finish(&mut out).unwrap();
        (String::from_utf8(out).unwrap(), t.usage().clone())
    }

    fn events(out: &str) -> Vec<String> {
        out.lines()
            .filter_map(|l| l.strip_prefix("data: "))
            .map(str::to_string)
            .collect()
    }

    #[test]
    fn whole_tool_calls_without_index() {
        let (out, usage) = run(concat!(
            r#"data: {"id":"x","model":"gemini-2.5-flash","choices":[{"index":0,"delta":{"role":"assistant","tool_calls":[{"id":"a","type":"function","function":{"name":"f","arguments":"{\"q\":1}"}},{"id":"b","type":"function","function":{"name":"g","arguments":"{}"}}]},"finish_reason":"tool_calls"}],"usage":{"prompt_tokens":10,"completion_tokens":5,"total_tokens":15}}"#,
            "\n\ndata: [DONE]\n\n"
        ));
        let ev = events(&out);
        assert_eq!(ev.len(), 9, "{out}");
        assert!(
            ev[1].contains(r#""index":0,"content_block":{"type":"tool_use","id":"a","name":"f""#)
        );
        assert!(ev[2].contains(
            r#""index":0,"delta":{"type":"input_json_delta","partial_json":"{\"q\":1}"}"#
        ));
        assert!(ev[3].contains(r#"content_block_stop","index":0"#));
        assert!(
            ev[4].contains(r#""index":1,"content_block":{"type":"tool_use","id":"b","name":"g""#)
        );
        assert!(ev[7].contains(r#""stop_reason":"tool_use""#), "{}", ev[7]);
        assert!(
            ev[7].contains(r#""output_tokens":5,"input_tokens":10"#),
            "{}",
            ev[7]
        );
        assert_eq!(usage.input_tokens, 10);
        assert_eq!(usage.response_model.as_deref(), Some("gemini-2.5-flash"));
    }

    #[test]
    fn other_choices_are_ignored_and_empty_streams_still_close() {
        let (out, _) = run(concat!(
            r#"data: {"id":"x","model":"m","choices":[{"index":1,"delta":{"content":"no"}},{"index":0,"delta":{"content":"yes"}}]}"#,
            "\n\n",
            r#"data: {"id":"x","model":"m","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}"#,
            "\n\n",
        ));
        assert!(out.contains(r#""text":"yes""#) && !out.contains(r#""text":"no""#));
        assert!(out.ends_with("event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n"));

        let (out, _) = run("data: [DONE]\n\n");
        let ev = events(&out);
        assert_eq!(ev.len(), 3, "{out}");
        assert!(ev[1].contains(r#""stop_reason":"end_turn""#));
    }
}
