//! ConverseStream events → Anthropic stream events.
//!
//! `messageStart` → `message_start` (usage 0: Bedrock reports usage only at the end). Each
//! Bedrock content block becomes an Anthropic block with increasing indexes, opened by its
//! tool use start or its first delta (`content_block_start`), with `text_delta`,
//! `thinking_delta`, `signature_delta` and `input_json_delta` pieces, and closed
//! (`content_block_stop`) by its `contentBlockStop`, the next block or the end; redacted
//! reasoning becomes a `redacted_thinking` block. `messageStop` closes the open block; the
//! stop reason is held until `metadata` (which follows it) brings the usage, then
//! `message_delta` (stop reason, stop sequence, usage) and `message_stop` are sent (at the
//! end of the stream if `metadata` never comes). An exception becomes an `error` event.

use serde_json::json;

use super::{Client, Delta, Event, error_types};
use crate::anthropic::{
    Block, BlockDelta, DeltaUsage, MessageDeltaBody, MessagesResponse, MessagesUsage, StreamEvent,
};
use crate::sse;
use crate::translate::bedrock::unique_id;
use crate::translate::bedrock::wire::{ConverseUsage, stop_reason};
use crate::translate::stream::{TRUNCATED_MESSAGE, anthropic_error_event, truncated};
use crate::{Error, Usage};

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Text,
    Thinking,
    Tool,
}

pub(super) struct BedrockToMessages {
    usage: Usage,
    counts: ConverseUsage,
    id: String,
    /// `message_start` was sent.
    started: bool,
    /// The open block: Bedrock index, kind, Anthropic index.
    open: Option<(u32, Kind, u32)>,
    next_index: u32,
    /// Tool use blocks: Bedrock index, Anthropic index.
    tools: Vec<(u32, u32)>,
    /// `messageStop` was seen: the stop reason and sequence.
    stop: Option<(Option<String>, Option<String>)>,
    /// `metadata` was seen.
    metadata: bool,
    output_started: bool,
    /// `message_stop` (or an error) sent; everything after is ignored.
    done: bool,
}

fn send(out: &mut Vec<u8>, event: &StreamEvent, name: &str) -> Result<(), Error> {
    sse::write_json_event(out, Some(name), event)
}

impl BedrockToMessages {
    pub(super) fn new() -> Self {
        Self {
            usage: Usage::default(),
            counts: ConverseUsage::default(),
            id: format!("msg_bdrk_{}", unique_id()),
            started: false,
            open: None,
            next_index: 0,
            tools: Vec::new(),
            stop: None,
            metadata: false,
            output_started: false,
            done: false,
        }
    }

    fn start(&mut self, out: &mut Vec<u8>) -> Result<(), Error> {
        if std::mem::replace(&mut self.started, true) {
            return Ok(());
        }
        let message = MessagesResponse {
            id: self.id.clone(),
            kind: "message".into(),
            role: "assistant".into(),
            model: String::new(),
            content: Vec::new(),
            stop_reason: None,
            stop_sequence: None,
            usage: MessagesUsage::default(),
        };
        send(out, &StreamEvent::MessageStart { message }, "message_start")
    }

    fn close_block(&mut self, out: &mut Vec<u8>) -> Result<(), Error> {
        if let Some((_, _, index)) = self.open.take() {
            let stop = StreamEvent::ContentBlockStop { index };
            send(out, &stop, "content_block_stop")?;
        }
        Ok(())
    }

    /// Opens a new block (closing the open one); returns its Anthropic index.
    fn open_block(
        &mut self,
        bedrock_index: u32,
        kind: Kind,
        block: Block,
        out: &mut Vec<u8>,
    ) -> Result<u32, Error> {
        self.start(out)?;
        self.close_block(out)?;
        let index = self.next_index;
        self.next_index += 1;
        self.open = Some((bedrock_index, kind, index));
        let start = StreamEvent::ContentBlockStart {
            index,
            content_block: block,
        };
        send(out, &start, "content_block_start")?;
        Ok(index)
    }

    /// The Anthropic index of the open block for `bedrock_index` of `kind`, opening one
    /// (`block`) if needed.
    fn block_for(
        &mut self,
        bedrock_index: u32,
        kind: Kind,
        block: impl FnOnce() -> Block,
        out: &mut Vec<u8>,
    ) -> Result<u32, Error> {
        match self.open {
            Some((b, k, index)) if b == bedrock_index && k == kind => Ok(index),
            _ => self.open_block(bedrock_index, kind, block(), out),
        }
    }

    fn delta(&mut self, index: u32, delta: BlockDelta, out: &mut Vec<u8>) -> Result<(), Error> {
        self.output_started = true;
        send(
            out,
            &StreamEvent::ContentBlockDelta { index, delta },
            "content_block_delta",
        )
    }

    fn content(&mut self, index: u32, delta: Delta, out: &mut Vec<u8>) -> Result<(), Error> {
        let thinking = || Block::Thinking {
            thinking: String::new(),
            signature: String::new(),
        };
        match delta {
            Delta::Text(text) => {
                let text_block = || Block::Text {
                    text: String::new(),
                    citations: None,
                    cache_control: None,
                };
                let i = self.block_for(index, Kind::Text, text_block, out)?;
                if !text.is_empty() {
                    self.delta(i, BlockDelta::TextDelta { text }, out)?;
                }
            }
            Delta::Reasoning(thinking_text) => {
                let i = self.block_for(index, Kind::Thinking, thinking, out)?;
                if !thinking_text.is_empty() {
                    let d = BlockDelta::ThinkingDelta {
                        thinking: thinking_text,
                    };
                    self.delta(i, d, out)?;
                }
            }
            Delta::Signature(signature) => {
                let i = self.block_for(index, Kind::Thinking, thinking, out)?;
                self.delta(i, BlockDelta::SignatureDelta { signature }, out)?;
            }
            Delta::Redacted(data) => {
                self.open_block(index, Kind::Thinking, Block::RedactedThinking { data }, out)?;
                self.output_started = true;
                self.close_block(out)?;
            }
            Delta::ToolInput(partial_json) => {
                let i = match self.open {
                    Some((b, Kind::Tool, i)) if b == index => i,
                    // A piece for a tool block already closed goes to that block's index.
                    _ => match self.tools.iter().find(|(b, _)| *b == index) {
                        Some(&(_, i)) => i,
                        None => {
                            return Err(Error::InvalidResponse(format!(
                                "tool input delta for block {index}, which is not a tool use \
                                 block"
                            )));
                        }
                    },
                };
                if !partial_json.is_empty() {
                    self.delta(i, BlockDelta::InputJsonDelta { partial_json }, out)?;
                }
            }
        }
        Ok(())
    }

    /// `message_delta` and `message_stop`.
    fn finish_message(&mut self, out: &mut Vec<u8>) -> Result<(), Error> {
        self.start(out)?;
        self.close_block(out)?;
        let (reason, sequence) = self.stop.clone().unwrap_or_default();
        let c = &self.counts;
        let delta = StreamEvent::MessageDelta {
            delta: MessageDeltaBody {
                stop_reason: Some(stop_reason(reason.as_deref()).into()),
                stop_sequence: sequence,
            },
            usage: Some(DeltaUsage {
                output_tokens: Some(c.output_tokens),
                input_tokens: Some(c.input_tokens),
                cache_creation_input_tokens: c.cache_write_input_tokens,
                cache_read_input_tokens: c.cache_read_input_tokens,
            }),
        };
        send(out, &delta, "message_delta")?;
        send(out, &StreamEvent::MessageStop, "message_stop")?;
        self.done = true;
        Ok(())
    }
}

impl Client for BedrockToMessages {
    fn event(&mut self, ev: Event, out: &mut Vec<u8>) -> Result<(), Error> {
        if self.done {
            return Ok(());
        }
        match ev {
            Event::MessageStart => self.start(out),
            Event::ToolStart { index, id, name } => {
                let block = Block::ToolUse {
                    id,
                    name,
                    input: json!({}),
                    cache_control: None,
                };
                let i = self.open_block(index, Kind::Tool, block, out)?;
                self.tools.push((index, i));
                self.output_started = true;
                Ok(())
            }
            Event::Delta { index, delta } => self.content(index, delta, out),
            Event::BlockStop { index } => {
                if self.open.is_some_and(|(b, _, _)| b == index) {
                    self.close_block(out)?;
                }
                Ok(())
            }
            Event::MessageStop {
                stop_reason,
                stop_sequence,
            } => {
                self.start(out)?;
                self.close_block(out)?;
                self.stop = Some((stop_reason, stop_sequence));
                if self.metadata {
                    self.finish_message(out)?;
                }
                Ok(())
            }
            Event::Metadata { usage } => {
                usage.apply(&mut self.usage);
                self.counts = usage;
                self.metadata = true;
                if self.stop.is_some() {
                    self.finish_message(out)?;
                }
                Ok(())
            }
        }
    }

    fn fail(&mut self, kind: Option<&str>, message: &str, out: &mut Vec<u8>) -> Result<(), Error> {
        if self.done {
            return Ok(());
        }
        self.close_block(out)?;
        self.done = true;
        anthropic_error_event(out, error_types(kind).1, message)
    }

    fn end(&mut self, out: &mut Vec<u8>) -> Result<(), Error> {
        if self.done {
            return Ok(());
        }
        if self.stop.is_some() {
            return self.finish_message(out);
        }
        self.fail(None, TRUNCATED_MESSAGE, out)?;
        Err(truncated())
    }

    fn usage(&self) -> &Usage {
        &self.usage
    }

    fn output_started(&self) -> bool {
        self.output_started
    }
}
