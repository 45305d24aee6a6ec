//! Anthropic stream events → OpenAI `chat.completion.chunk`s.
//!
//! `message_start` → the first chunk (`role: assistant`, `content: ""`); text deltas →
//! `content`; thinking deltas → `reasoning_content`; a `tool_use` block start → a `tool_calls`
//! delta with index, id, name and `arguments: ""`; `input_json_delta` → `arguments` pieces;
//! `message_delta` with a stop reason → the `finish_reason` chunk; `message_stop` → the usage
//! chunk (`choices: []`) if the client asked for it, then `data: [DONE]`. An `error` event
//! becomes an OpenAI error object, then `[DONE]`. `ping` and unknown events are dropped.

use serde_json::Value;

use super::{DONE, EventHandler, TRUNCATED_MESSAGE, openai_error_event, truncated};
use crate::anthropic::{Block, BlockDelta, MessagesUsage, StreamEvent};
use crate::openai::{ChatChunk, ChunkChoice, Delta, FunctionDelta, ToolCallDelta};
use crate::sse::{self, RawEvent};
use crate::translate::{chat_via_anthropic::chat_usage, finish_reason};
use crate::{Error, Usage};

pub(in crate::translate) struct AnthropicToChat {
    include_usage: bool,
    usage: Usage,
    counts: MessagesUsage,
    id: String,
    model: String,
    /// OpenAI tool call index of each Anthropic block index that is a tool call.
    tool_blocks: Vec<(u32, u32)>,
    output_started: bool,
    /// A stop reason was seen (the stream is complete even without `message_stop`).
    complete: bool,
    /// `[DONE]` sent; everything after is ignored.
    done: bool,
}

impl AnthropicToChat {
    pub(in crate::translate) fn new(include_usage: bool) -> Self {
        Self {
            include_usage,
            usage: Usage::default(),
            counts: MessagesUsage::default(),
            id: String::new(),
            model: String::new(),
            tool_blocks: Vec::new(),
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

    fn emit(&mut self, out: &mut Vec<u8>, delta: Delta, finish: Option<&str>) -> Result<(), Error> {
        sse::write_json_event(out, None, &self.chunk(delta, finish))
    }

    fn tool_delta(&mut self, out: &mut Vec<u8>, d: ToolCallDelta) -> Result<(), Error> {
        self.output_started = true;
        let delta = Delta {
            tool_calls: Some(vec![d]),
            ..Default::default()
        };
        self.emit(out, delta, None)
    }

    /// The usage chunk (if asked for) and `[DONE]`.
    fn close(&mut self, out: &mut Vec<u8>) -> Result<(), Error> {
        if self.include_usage {
            let mut chunk = self.chunk(Delta::default(), None);
            chunk.choices.clear();
            chunk.usage = Some(chat_usage(&self.counts));
            sse::write_json_event(out, None, &chunk)?;
        }
        out.extend_from_slice(DONE);
        self.done = true;
        Ok(())
    }

    fn handle(&mut self, event: StreamEvent, out: &mut Vec<u8>) -> Result<(), Error> {
        match event {
            StreamEvent::MessageStart { message } => {
                self.id = message.id;
                self.model = message.model;
                self.usage.note_model(&self.model);
                self.counts = message.usage;
                self.counts.apply(&mut self.usage);
                let delta = Delta {
                    role: Some("assistant".into()),
                    content: Some(String::new()),
                    ..Default::default()
                };
                self.emit(out, delta, None)?;
            }
            StreamEvent::ContentBlockStart {
                index,
                content_block,
            } => match content_block {
                Block::Text { text, .. } => self.text(out, text)?,
                Block::Thinking { thinking, .. } => self.thinking(out, thinking)?,
                Block::ToolUse {
                    id, name, input, ..
                } => {
                    let tool_index = self.tool_blocks.len() as u32;
                    self.tool_blocks.push((index, tool_index));
                    self.tool_delta(
                        out,
                        ToolCallDelta {
                            index: Some(tool_index),
                            id: Some(id),
                            kind: Some("function".into()),
                            function: Some(FunctionDelta {
                                name: Some(name),
                                arguments: Some(String::new()),
                            }),
                        },
                    )?;
                    // Input is normally `{}` here and streamed as deltas; send any given now.
                    if input.as_object().is_some_and(|o| !o.is_empty()) {
                        let args = serde_json::to_string(&input).map_err(Error::response)?;
                        self.arguments(out, index, args)?;
                    }
                }
                _ => {}
            },
            StreamEvent::ContentBlockDelta { index, delta } => match delta {
                BlockDelta::TextDelta { text } => self.text(out, text)?,
                BlockDelta::ThinkingDelta { thinking } => self.thinking(out, thinking)?,
                BlockDelta::InputJsonDelta { partial_json } => {
                    self.arguments(out, index, partial_json)?
                }
                _ => {}
            },
            StreamEvent::MessageDelta { delta, usage } => {
                if let Some(u) = usage {
                    u.apply(&mut self.counts, &mut self.usage);
                }
                if let Some(reason) = delta.stop_reason {
                    self.complete = true;
                    self.emit(out, Delta::default(), Some(finish_reason(Some(&reason))))?;
                }
            }
            StreamEvent::MessageStop => self.close(out)?,
            StreamEvent::Error { error } => {
                let kind = (!error.kind.is_empty()).then_some(error.kind.as_str());
                openai_error_event(out, kind, &error.message)?;
                out.extend_from_slice(DONE);
                self.done = true;
            }
            StreamEvent::ContentBlockStop { .. } | StreamEvent::Ping | StreamEvent::Other(_) => {}
        }
        Ok(())
    }

    fn text(&mut self, out: &mut Vec<u8>, text: String) -> Result<(), Error> {
        if text.is_empty() {
            return Ok(());
        }
        self.output_started = true;
        let delta = Delta {
            content: Some(text),
            ..Default::default()
        };
        self.emit(out, delta, None)
    }

    fn thinking(&mut self, out: &mut Vec<u8>, thinking: String) -> Result<(), Error> {
        if thinking.is_empty() {
            return Ok(());
        }
        self.output_started = true;
        let delta = Delta {
            reasoning_content: Some(thinking),
            ..Default::default()
        };
        self.emit(out, delta, None)
    }

    fn arguments(&mut self, out: &mut Vec<u8>, block: u32, args: String) -> Result<(), Error> {
        if args.is_empty() {
            return Ok(());
        }
        let Some(&(_, tool_index)) = self.tool_blocks.iter().find(|(b, _)| *b == block) else {
            return Err(Error::InvalidResponse(format!(
                "input_json_delta for block {block}, which is not a tool_use block"
            )));
        };
        self.tool_delta(
            out,
            ToolCallDelta {
                index: Some(tool_index),
                function: Some(FunctionDelta {
                    name: None,
                    arguments: Some(args),
                }),
                ..Default::default()
            },
        )
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
        if self.done || !ev.has_data {
            return Ok(());
        }
        let event = parse_event(&ev.event.data)?;
        self.handle(event, out)
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
