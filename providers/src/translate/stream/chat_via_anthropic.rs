//! Anthropic stream events → OpenAI `chat.completion.chunk`s.
//!
//! `message_start` → the first chunk (`role: assistant`, `content: ""`); text deltas →
//! `content`; thinking deltas → `reasoning_content`; a `tool_use` block start → a `tool_calls`
//! delta with index, id, name and `arguments: ""`; `input_json_delta` → `arguments` pieces;
//! `message_delta` with a stop reason → the `finish_reason` chunk; `message_stop` → the usage
//! chunk (`choices: []`) if the client asked for it, then `data: [DONE]`. An `error` event
//! becomes an OpenAI error object, then `[DONE]`. `ping` and unknown events are dropped.

use serde_json::Value;

use super::EventHandler;
use super::chat_out::ChatOut;
use crate::Error;
use crate::anthropic::{Block, BlockDelta, MessagesUsage, StreamEvent};
use crate::sse::RawEvent;
use crate::translate::stream::Progress;
use crate::translate::{chat_via_anthropic::chat_usage, finish_reason};

pub(in crate::translate) struct AnthropicToChat {
    out: ChatOut,
    counts: MessagesUsage,
}

impl AnthropicToChat {
    pub(in crate::translate) fn new(include_usage: bool) -> Self {
        Self {
            out: ChatOut::new(include_usage, false, String::new()),
            counts: MessagesUsage::default(),
        }
    }

    fn handle(&mut self, event: StreamEvent, out: &mut Vec<u8>) -> Result<(), Error> {
        match event {
            StreamEvent::MessageStart { message } => {
                self.out.id = message.id;
                self.out.model = message.model;
                self.out.progress.usage.note_model(&self.out.model);
                self.counts = message.usage;
                self.counts.apply(&mut self.out.progress.usage);
                self.out.role_chunk(out)?;
            }
            StreamEvent::ContentBlockStart {
                index,
                content_block,
            } => match content_block {
                Block::Text { text, .. } => self.out.content_delta(out, text)?,
                Block::Thinking { thinking, .. } => self.out.reasoning_delta(out, thinking)?,
                Block::ToolUse {
                    id, name, input, ..
                } => {
                    self.out
                        .tool_call_start(out, index, id, name, String::new())?;
                    // Input is normally `{}` here and streamed as deltas; send any given now.
                    if input.as_object().is_some_and(|o| !o.is_empty()) {
                        let args = serde_json::to_string(&input).map_err(Error::response)?;
                        self.arguments(out, index, args)?;
                    }
                }
                _ => {}
            },
            StreamEvent::ContentBlockDelta { index, delta } => match delta {
                BlockDelta::TextDelta { text } => self.out.content_delta(out, text)?,
                BlockDelta::ThinkingDelta { thinking } => {
                    self.out.reasoning_delta(out, thinking)?
                }
                BlockDelta::InputJsonDelta { partial_json } => {
                    self.arguments(out, index, partial_json)?
                }
                _ => {}
            },
            StreamEvent::MessageDelta { delta, usage } => {
                if let Some(u) = usage {
                    u.apply(&mut self.counts, &mut self.out.progress.usage);
                }
                if let Some(reason) = delta.stop_reason {
                    self.out.finish(out, finish_reason(Some(&reason)))?;
                }
            }
            StreamEvent::MessageStop => self.out.close(out, chat_usage(&self.counts))?,
            StreamEvent::Error { error } => {
                let kind = (!error.kind.is_empty()).then_some(error.kind.as_str());
                self.out.error(out, kind, &error.message)?;
            }
            StreamEvent::ContentBlockStop { .. } | StreamEvent::Ping | StreamEvent::Other(_) => {}
        }
        Ok(())
    }

    fn arguments(&mut self, out: &mut Vec<u8>, block: u32, args: String) -> Result<(), Error> {
        if self.out.tool_args_delta(out, block, args)? {
            return Ok(());
        }
        Err(Error::InvalidResponse(format!(
            "input_json_delta for block {block}, which is not a tool_use block"
        )))
    }
}

/// Event types whose shape is known: one of these that did not parse is malformed.
const KNOWN_EVENTS: &[&str] = &[
    "message_start",
    "content_block_start",
    "content_block_delta",
    "content_block_stop",
    "message_delta",
    "message_stop",
    "ping",
    "error",
];
const KNOWN_BLOCKS: &[&str] = &["text", "tool_use", "thinking", "redacted_thinking"];
const KNOWN_DELTAS: &[&str] = &[
    "text_delta",
    "input_json_delta",
    "thinking_delta",
    "signature_delta",
];

fn malformed(v: &Value, known: &[&str]) -> bool {
    match v.get("type").and_then(Value::as_str) {
        Some(t) => known.contains(&t),
        None => true,
    }
}

/// Parses an event's data; a known event (or block, or delta) of the wrong shape is an error.
fn parse_event(data: &str) -> Result<StreamEvent, Error> {
    let event: StreamEvent = serde_json::from_str(data)
        .map_err(|e| Error::InvalidResponse(format!("stream event is not valid JSON: {e}")))?;
    let bad = match &event {
        StreamEvent::Other(v) => malformed(v, KNOWN_EVENTS),
        StreamEvent::ContentBlockStart {
            content_block: Block::Other(v),
            ..
        } => malformed(v, KNOWN_BLOCKS),
        StreamEvent::ContentBlockDelta {
            delta: BlockDelta::Other(v),
            ..
        } => malformed(v, KNOWN_DELTAS),
        _ => false,
    };
    if bad {
        return Err(Error::InvalidResponse(format!(
            "malformed stream event: {data}"
        )));
    }
    Ok(event)
}

impl EventHandler for AnthropicToChat {
    fn event(&mut self, ev: RawEvent, out: &mut Vec<u8>) -> Result<(), Error> {
        if self.out.done || !ev.has_data {
            return Ok(());
        }
        let event = parse_event(&ev.event.data)?;
        self.handle(event, out)
    }

    fn end(&mut self, out: &mut Vec<u8>) -> Result<(), Error> {
        self.out.end(out, chat_usage(&self.counts))
    }

    fn progress(&self) -> &Progress {
        &self.out.progress
    }
}
