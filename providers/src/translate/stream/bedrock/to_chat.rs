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
use crate::openai::{ChatChunk, ChunkChoice, Delta as ChatDelta, FunctionDelta, ToolCallDelta};
use crate::sse;
use crate::translate::bedrock::unique_id;
use crate::translate::bedrock::wire::{ConverseUsage, finish_reason};
use crate::translate::stream::{DONE, TRUNCATED_MESSAGE, openai_error_event, truncated};
use crate::{Error, Usage};

pub(super) struct BedrockToChat {
    include_usage: bool,
    usage: Usage,
    counts: ConverseUsage,
    id: String,
    /// The role chunk was sent.
    started: bool,
    /// Bedrock block index and OpenAI tool call index of each tool use.
    tools: Vec<(u32, u32)>,
    /// `messageStop` was seen (the stream is complete).
    stopped: bool,
    /// `metadata` was seen.
    metadata: bool,
    output_started: bool,
    /// `[DONE]` sent; everything after is ignored.
    done: bool,
}

impl BedrockToChat {
    pub(super) fn new(include_usage: bool) -> Self {
        Self {
            include_usage,
            usage: Usage::default(),
            counts: ConverseUsage::default(),
            id: format!("chatcmpl-bdrk-{}", unique_id()),
            started: false,
            tools: Vec::new(),
            stopped: false,
            metadata: false,
            output_started: false,
            done: false,
        }
    }

    fn chunk(&self, delta: ChatDelta, finish_reason: Option<&str>) -> ChatChunk {
        ChatChunk {
            id: self.id.clone(),
            object: "chat.completion.chunk".into(),
            created: 0,
            model: String::new(),
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

    fn emit(
        &mut self,
        out: &mut Vec<u8>,
        delta: ChatDelta,
        finish: Option<&str>,
    ) -> Result<(), Error> {
        self.start(out)?;
        sse::write_json_event(out, None, &self.chunk(delta, finish))
    }

    /// The role chunk, once.
    fn start(&mut self, out: &mut Vec<u8>) -> Result<(), Error> {
        if std::mem::replace(&mut self.started, true) {
            return Ok(());
        }
        let delta = ChatDelta {
            role: Some("assistant".into()),
            content: Some(String::new()),
            ..Default::default()
        };
        sse::write_json_event(out, None, &self.chunk(delta, None))
    }

    fn output(&mut self, out: &mut Vec<u8>, delta: ChatDelta) -> Result<(), Error> {
        self.output_started = true;
        self.emit(out, delta, None)
    }

    /// The usage chunk (if asked for) and `[DONE]`.
    fn close(&mut self, out: &mut Vec<u8>) -> Result<(), Error> {
        if self.include_usage {
            let mut chunk = self.chunk(ChatDelta::default(), None);
            chunk.choices.clear();
            chunk.usage = Some(self.counts.chat());
            sse::write_json_event(out, None, &chunk)?;
        }
        out.extend_from_slice(DONE);
        self.done = true;
        Ok(())
    }

    fn delta(&mut self, index: u32, delta: Delta, out: &mut Vec<u8>) -> Result<(), Error> {
        match delta {
            Delta::Text(text) if !text.is_empty() => {
                let d = ChatDelta {
                    content: Some(text),
                    ..Default::default()
                };
                self.output(out, d)
            }
            Delta::Reasoning(text) if !text.is_empty() => {
                let d = ChatDelta {
                    reasoning_content: Some(text),
                    ..Default::default()
                };
                self.output(out, d)
            }
            Delta::ToolInput(args) if !args.is_empty() => {
                let Some(&(_, tool_index)) = self.tools.iter().find(|(b, _)| *b == index) else {
                    return Err(Error::InvalidResponse(format!(
                        "tool input delta for block {index}, which is not a tool use block"
                    )));
                };
                let call = ToolCallDelta {
                    index: Some(tool_index),
                    function: Some(FunctionDelta {
                        name: None,
                        arguments: Some(args),
                    }),
                    ..Default::default()
                };
                let d = ChatDelta {
                    tool_calls: Some(vec![call]),
                    ..Default::default()
                };
                self.output(out, d)
            }
            _ => Ok(()),
        }
    }
}

impl Client for BedrockToChat {
    fn event(&mut self, ev: Event, out: &mut Vec<u8>) -> Result<(), Error> {
        if self.done {
            return Ok(());
        }
        match ev {
            Event::MessageStart => self.start(out),
            Event::ToolStart { index, id, name } => {
                let tool_index = self.tools.len() as u32;
                self.tools.push((index, tool_index));
                let call = ToolCallDelta {
                    index: Some(tool_index),
                    id: Some(id),
                    kind: Some("function".into()),
                    function: Some(FunctionDelta {
                        name: Some(name),
                        arguments: Some(String::new()),
                    }),
                };
                let d = ChatDelta {
                    tool_calls: Some(vec![call]),
                    ..Default::default()
                };
                self.output(out, d)
            }
            Event::Delta { index, delta } => self.delta(index, delta, out),
            Event::BlockStop { .. } => Ok(()),
            Event::MessageStop { stop_reason, .. } => {
                if self.stopped {
                    return Ok(());
                }
                self.stopped = true;
                let reason = finish_reason(stop_reason.as_deref());
                self.emit(out, ChatDelta::default(), Some(reason))?;
                if self.metadata {
                    self.close(out)?;
                }
                Ok(())
            }
            Event::Metadata { usage } => {
                usage.apply(&mut self.usage);
                self.counts = usage;
                self.metadata = true;
                if self.stopped {
                    self.close(out)?;
                }
                Ok(())
            }
        }
    }

    fn fail(&mut self, kind: Option<&str>, message: &str, out: &mut Vec<u8>) -> Result<(), Error> {
        if self.done {
            return Ok(());
        }
        self.done = true;
        openai_error_event(out, error_types(kind).0, message)?;
        out.extend_from_slice(DONE);
        Ok(())
    }

    fn end(&mut self, out: &mut Vec<u8>) -> Result<(), Error> {
        if self.done {
            return Ok(());
        }
        if self.stopped {
            return self.close(out);
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
