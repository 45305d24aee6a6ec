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
use crate::Error;
use crate::anthropic::{Block, BlockDelta, DeltaUsage, MessagesUsage};
use crate::translate::bedrock::unique_id;
use crate::translate::bedrock::wire::{ConverseUsage, stop_reason};
use crate::translate::stream::Progress;
use crate::translate::stream::messages_out::MessagesOut;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Text,
    Thinking,
    Tool,
}

pub(super) struct BedrockToMessages {
    /// Open blocks are told apart by their Bedrock index and kind.
    out: MessagesOut<(u32, Kind)>,
    counts: ConverseUsage,
    id: String,
    /// Tool use blocks: Bedrock index, Anthropic index.
    tools: Vec<(u32, u32)>,
    /// `messageStop` was seen: the stop reason and sequence.
    stop: Option<(Option<String>, Option<String>)>,
    /// `metadata` was seen.
    metadata: bool,
}

impl BedrockToMessages {
    pub(super) fn new() -> Self {
        Self {
            out: MessagesOut::default(),
            counts: ConverseUsage::default(),
            id: format!("msg_bdrk_{}", unique_id()),
            tools: Vec::new(),
            stop: None,
            metadata: false,
        }
    }

    /// `message_start`, once.
    fn start(&mut self, out: &mut Vec<u8>) -> Result<(), Error> {
        if self.out.started {
            return Ok(());
        }
        let usage = MessagesUsage::default();
        self.out
            .message_start(out, self.id.clone(), String::new(), usage)
    }

    /// Opens a new block (after `message_start`, closing the open block); returns its
    /// Anthropic index.
    fn open_block(
        &mut self,
        bedrock_index: u32,
        kind: Kind,
        block: Block,
        out: &mut Vec<u8>,
    ) -> Result<u32, Error> {
        self.start(out)?;
        self.out.open_block(out, (bedrock_index, kind), block)
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
        self.start(out)?;
        self.out.block_for(out, (bedrock_index, kind), block)
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
                    self.out.delta(out, i, BlockDelta::TextDelta { text })?;
                }
            }
            Delta::Reasoning(thinking_text) => {
                let i = self.block_for(index, Kind::Thinking, thinking, out)?;
                if !thinking_text.is_empty() {
                    let d = BlockDelta::ThinkingDelta {
                        thinking: thinking_text,
                    };
                    self.out.delta(out, i, d)?;
                }
            }
            Delta::Signature(signature) => {
                let i = self.block_for(index, Kind::Thinking, thinking, out)?;
                self.out
                    .delta(out, i, BlockDelta::SignatureDelta { signature })?;
            }
            Delta::Redacted(data) => {
                self.open_block(index, Kind::Thinking, Block::RedactedThinking { data }, out)?;
                self.out.progress.output_started = true;
                self.out.close_block(out)?;
            }
            Delta::ToolInput(partial_json) => {
                let i = match self.out.open() {
                    Some((i, (b, Kind::Tool))) if b == index => i,
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
                    let d = BlockDelta::InputJsonDelta { partial_json };
                    self.out.delta(out, i, d)?;
                }
            }
        }
        Ok(())
    }

    /// `message_delta` and `message_stop`.
    fn finish_message(&mut self, out: &mut Vec<u8>) -> Result<(), Error> {
        self.start(out)?;
        let (reason, sequence) = self.stop.clone().unwrap_or_default();
        let c = &self.counts;
        let usage = DeltaUsage {
            output_tokens: Some(c.output_tokens),
            input_tokens: Some(c.input_tokens),
            cache_creation_input_tokens: c.cache_write_input_tokens,
            cache_read_input_tokens: c.cache_read_input_tokens,
        };
        self.out
            .stop(out, stop_reason(reason.as_deref()), sequence, usage)
    }
}

impl Client for BedrockToMessages {
    fn event(&mut self, ev: Event, out: &mut Vec<u8>) -> Result<(), Error> {
        if self.out.stopped {
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
                self.out.progress.output_started = true;
                Ok(())
            }
            Event::Delta { index, delta } => self.content(index, delta, out),
            Event::BlockStop { index } => {
                if self.out.open().is_some_and(|(_, (b, _))| b == index) {
                    self.out.close_block(out)?;
                }
                Ok(())
            }
            Event::MessageStop {
                stop_reason,
                stop_sequence,
            } => {
                self.start(out)?;
                self.out.close_block(out)?;
                self.stop = Some((stop_reason, stop_sequence));
                if self.metadata {
                    self.finish_message(out)?;
                }
                Ok(())
            }
            Event::Metadata { usage } => {
                usage.apply(&mut self.out.progress.usage);
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
        self.out.error(out, error_types(kind).1, message)
    }

    fn end(&mut self, out: &mut Vec<u8>) -> Result<(), Error> {
        if self.out.stopped {
            return Ok(());
        }
        if self.stop.is_some() {
            return self.finish_message(out);
        }
        self.out.truncated_end(out)
    }

    fn progress(&self) -> &Progress {
        &self.out.progress
    }
}
