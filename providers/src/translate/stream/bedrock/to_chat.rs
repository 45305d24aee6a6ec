//! ConverseStream events → OpenAI `chat.completion.chunk`s.
//!
//! `messageStart` → the first chunk (`role: assistant`, `content: ""`); text deltas →
//! `content`; reasoning deltas → `reasoning_content` (signatures and redacted reasoning are
//! dropped); a tool use start → a `tool_calls` delta with index, id, name and
//! `arguments: ""`; tool input deltas → `arguments` pieces; `messageStop` → the
//! `finish_reason` chunk; `metadata` (after `messageStop`) → the usage chunk (`choices: []`)
//! if the client asked for it, then `data: [DONE]`. An exception becomes an OpenAI error
//! object, then `[DONE]`.

use super::{Client, Delta, Event, error_types};
use crate::Error;
use crate::translate::bedrock::unique_id;
use crate::translate::bedrock::wire::{ConverseUsage, finish_reason};
use crate::translate::stream::Progress;
use crate::translate::stream::chat_out::ChatOut;

pub(super) struct BedrockToChat {
    /// Every chunk is preceded by the role chunk, sent at `messageStart` or before the first
    /// chunk.
    out: ChatOut,
    counts: ConverseUsage,
    /// `metadata` was seen.
    metadata: bool,
}

impl BedrockToChat {
    pub(super) fn new(include_usage: bool) -> Self {
        Self {
            out: ChatOut::new(
                include_usage,
                true,
                format!("chatcmpl-bdrk-{}", unique_id()),
            ),
            counts: ConverseUsage::default(),
            metadata: false,
        }
    }

    fn delta(&mut self, index: u32, delta: Delta, out: &mut Vec<u8>) -> Result<(), Error> {
        match delta {
            Delta::Text(text) => self.out.content_delta(out, text),
            Delta::Reasoning(text) => self.out.reasoning_delta(out, text),
            Delta::ToolInput(args) => {
                if self.out.tool_args_delta(out, index, args)? {
                    return Ok(());
                }
                Err(Error::InvalidResponse(format!(
                    "tool input delta for block {index}, which is not a tool use block"
                )))
            }
            _ => Ok(()),
        }
    }
}

impl Client for BedrockToChat {
    fn event(&mut self, ev: Event, out: &mut Vec<u8>) -> Result<(), Error> {
        if self.out.done {
            return Ok(());
        }
        match ev {
            Event::MessageStart => self.out.ensure_role(out),
            Event::ToolStart { index, id, name } => {
                self.out
                    .tool_call_start(out, index, id, name, String::new())
            }
            Event::Delta { index, delta } => self.delta(index, delta, out),
            Event::BlockStop { .. } => Ok(()),
            Event::MessageStop { stop_reason, .. } => {
                if self.out.complete {
                    return Ok(());
                }
                self.out
                    .finish(out, finish_reason(stop_reason.as_deref()))?;
                if self.metadata {
                    self.out.close(out, self.counts.chat())?;
                }
                Ok(())
            }
            Event::Metadata { usage } => {
                usage.apply(&mut self.out.progress.usage);
                self.counts = usage;
                self.metadata = true;
                if self.out.complete {
                    self.out.close(out, self.counts.chat())?;
                }
                Ok(())
            }
        }
    }

    fn fail(&mut self, kind: Option<&str>, message: &str, out: &mut Vec<u8>) -> Result<(), Error> {
        self.out.error(out, error_types(kind).0, message)
    }

    fn end(&mut self, out: &mut Vec<u8>) -> Result<(), Error> {
        self.out.end(out, self.counts.chat())
    }

    fn progress(&self) -> &Progress {
        &self.out.progress
    }
}
