//! The writing side shared by the translators to OpenAI `chat.completion.chunk`s: the chunk
//! envelope, the role chunk, output deltas, tool call indexes, the finish chunk, the usage
//! chunk, `[DONE]`, and the error events that close a stream.

use super::{DONE, Progress, TRUNCATED_MESSAGE, openai_error_event, truncated};
use crate::Error;
use crate::openai::{ChatChunk, ChatUsage, ChunkChoice, Delta, FunctionDelta, ToolCallDelta};
use crate::sse;

/// The client's stream of chat chunks and what has been sent on it.
pub(super) struct ChatOut {
    /// The usage chunk is sent before `[DONE]`.
    include_usage: bool,
    /// Every chunk is preceded by the role chunk if that was not sent yet.
    role_first: bool,
    /// The chunks' `id`.
    pub(super) id: String,
    /// The chunks' `model`.
    pub(super) model: String,
    /// Usage so far and whether an output delta (text, reasoning or tool call) was sent.
    pub(super) progress: Progress,
    /// The role chunk was sent.
    role_sent: bool,
    /// Upstream block index and OpenAI tool call index of each tool call.
    tools: Vec<(u32, u32)>,
    /// The finish chunk was sent: the stream is complete (only usage may follow).
    pub(super) complete: bool,
    /// `[DONE]` sent; everything after is ignored.
    pub(super) done: bool,
}

impl ChatOut {
    /// A stream with chunks of `id` and an empty model; `role_first`: every chunk is preceded
    /// by the role chunk if that was not sent yet.
    pub(super) fn new(include_usage: bool, role_first: bool, id: String) -> Self {
        Self {
            include_usage,
            role_first,
            id,
            model: String::new(),
            progress: Progress::default(),
            role_sent: false,
            tools: Vec::new(),
            complete: false,
            done: false,
        }
    }

    /// Whether the role chunk was sent.
    pub(super) fn role_sent(&self) -> bool {
        self.role_sent
    }

    /// Tool calls sent so far.
    pub(super) fn tool_count(&self) -> u32 {
        self.tools.len() as u32
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

    /// Writes a chunk (after the role chunk if `role_first` and it was not sent yet).
    fn emit(&mut self, out: &mut Vec<u8>, delta: Delta, finish: Option<&str>) -> Result<(), Error> {
        if self.role_first {
            self.ensure_role(out)?;
        }
        sse::write_json_event(out, None, &self.chunk(delta, finish))
    }

    /// The role chunk (`role: assistant`, `content: ""`).
    pub(super) fn role_chunk(&mut self, out: &mut Vec<u8>) -> Result<(), Error> {
        self.role_sent = true;
        let delta = Delta {
            role: Some("assistant".into()),
            content: Some(String::new()),
            ..Default::default()
        };
        sse::write_json_event(out, None, &self.chunk(delta, None))
    }

    /// The role chunk, unless it was sent already.
    pub(super) fn ensure_role(&mut self, out: &mut Vec<u8>) -> Result<(), Error> {
        if self.role_sent {
            return Ok(());
        }
        self.role_chunk(out)
    }

    /// An output delta.
    fn output(&mut self, out: &mut Vec<u8>, delta: Delta) -> Result<(), Error> {
        self.progress.output_started = true;
        self.emit(out, delta, None)
    }

    /// A `content` delta; nothing if `text` is empty.
    pub(super) fn content_delta(&mut self, out: &mut Vec<u8>, text: String) -> Result<(), Error> {
        if text.is_empty() {
            return Ok(());
        }
        let delta = Delta {
            content: Some(text),
            ..Default::default()
        };
        self.output(out, delta)
    }

    /// A `reasoning_content` delta; nothing if `text` is empty.
    pub(super) fn reasoning_delta(&mut self, out: &mut Vec<u8>, text: String) -> Result<(), Error> {
        if text.is_empty() {
            return Ok(());
        }
        let delta = Delta {
            reasoning_content: Some(text),
            ..Default::default()
        };
        self.output(out, delta)
    }

    fn tool_delta(&mut self, out: &mut Vec<u8>, call: ToolCallDelta) -> Result<(), Error> {
        let delta = Delta {
            tool_calls: Some(vec![call]),
            ..Default::default()
        };
        self.output(out, delta)
    }

    /// A new tool call for upstream block `block`: a `tool_calls` delta with its index, `id`,
    /// `name` and first `arguments`.
    pub(super) fn tool_call_start(
        &mut self,
        out: &mut Vec<u8>,
        block: u32,
        id: String,
        name: String,
        arguments: String,
    ) -> Result<(), Error> {
        let tool_index = self.tool_count();
        self.tools.push((block, tool_index));
        let call = ToolCallDelta {
            index: Some(tool_index),
            id: Some(id),
            kind: Some("function".into()),
            function: Some(FunctionDelta {
                name: Some(name),
                arguments: Some(arguments),
            }),
        };
        self.tool_delta(out, call)
    }

    /// An `arguments` piece for the tool call of upstream block `block`; nothing if `args` is
    /// empty. `false` (and nothing sent) if `block` is not a tool call.
    pub(super) fn tool_args_delta(
        &mut self,
        out: &mut Vec<u8>,
        block: u32,
        args: String,
    ) -> Result<bool, Error> {
        if args.is_empty() {
            return Ok(true);
        }
        let Some(&(_, tool_index)) = self.tools.iter().find(|(b, _)| *b == block) else {
            return Ok(false);
        };
        let call = ToolCallDelta {
            index: Some(tool_index),
            function: Some(FunctionDelta {
                name: None,
                arguments: Some(args),
            }),
            ..Default::default()
        };
        self.tool_delta(out, call)?;
        Ok(true)
    }

    /// The `finish_reason` chunk; the stream is complete.
    pub(super) fn finish(&mut self, out: &mut Vec<u8>, reason: &str) -> Result<(), Error> {
        self.complete = true;
        self.emit(out, Delta::default(), Some(reason))
    }

    /// The usage chunk (`choices: []`), if the client asked for it.
    fn usage_chunk(&self, out: &mut Vec<u8>, usage: ChatUsage) -> Result<(), Error> {
        if !self.include_usage {
            return Ok(());
        }
        let mut chunk = self.chunk(Delta::default(), None);
        chunk.choices.clear();
        chunk.usage = Some(usage);
        sse::write_json_event(out, None, &chunk)
    }

    /// The usage chunk (if asked for) and `[DONE]`.
    pub(super) fn close(&mut self, out: &mut Vec<u8>, usage: ChatUsage) -> Result<(), Error> {
        self.usage_chunk(out, usage)?;
        out.extend_from_slice(DONE);
        self.done = true;
        Ok(())
    }

    /// An error event (`kind`: its OpenAI error type), then `[DONE]`; nothing once done.
    pub(super) fn error(
        &mut self,
        out: &mut Vec<u8>,
        kind: Option<&str>,
        message: &str,
    ) -> Result<(), Error> {
        if self.done {
            return Ok(());
        }
        self.done = true;
        openai_error_event(out, kind, message)?;
        out.extend_from_slice(DONE);
        Ok(())
    }

    /// Closes a stream cut short: the truncation error event and `[DONE]`; always `Err`.
    pub(super) fn truncated_end(&mut self, out: &mut Vec<u8>) -> Result<(), Error> {
        self.error(out, None, TRUNCATED_MESSAGE)?;
        Err(truncated())
    }

    /// Closes the client's stream at the end of the upstream one: [`Self::close`] if it is
    /// complete, [`Self::truncated_end`] if not, nothing if it was closed already.
    pub(super) fn end(&mut self, out: &mut Vec<u8>, usage: ChatUsage) -> Result<(), Error> {
        if self.done {
            return Ok(());
        }
        if self.complete {
            return self.close(out, usage);
        }
        self.truncated_end(out)
    }
}
