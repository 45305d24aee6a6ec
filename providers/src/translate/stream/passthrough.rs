//! Same-format streams: events are forwarded byte for byte as they complete, read on the way
//! for usage, the response model and the first output token. Events that cannot be read are
//! forwarded all the same (the client speaks the provider's format). For OpenAI, the usage
//! chunk is dropped when the client did not ask for it.

use super::{
    DONE, EventHandler, TRUNCATED_MESSAGE, anthropic_error_event, openai_error_event, truncated,
};
use crate::Error;
use crate::anthropic::{BlockDelta, MessagesUsage, StreamEvent};
use crate::openai::ChatUsage;
use crate::sse::RawEvent;
use crate::translate::stream::Progress;

/// Raw bytes of a last event, completed with the blank line it lacked. (A last block that
/// has no data or whose data is not JSON was cut and is dropped.)
fn terminated(mut raw: Vec<u8>) -> Vec<u8> {
    while !(raw.ends_with(b"\n\n") || raw.ends_with(b"\r\n\r\n") || raw.ends_with(b"\r\r")) {
        if raw.ends_with(b"\r") && !raw.ends_with(b"\r\n") {
            raw.push(b'\r');
        } else {
            raw.push(b'\n');
        }
    }
    raw
}

/// Forwards the last event of a stream (read on the way by `read`) if its data is JSON,
/// completed with the blank line it lacked; `Err` (the stream was cut) if not.
pub(super) fn forward_last(
    ev: RawEvent,
    out: &mut Vec<u8>,
    read: impl FnOnce(&RawEvent),
) -> Result<(), Error> {
    if !ev.has_data || serde_json::from_str::<serde_json::Value>(&ev.event.data).is_err() {
        return Err(truncated());
    }
    read(&ev);
    out.extend_from_slice(&terminated(ev.raw));
    Ok(())
}

/// What a same-format OpenAI chunk is read for, borrowing from its text: the deltas are not
/// copied (most chunks are a few words of content read only for "is there output").
#[derive(serde::Deserialize)]
struct ChunkProbe<'a> {
    #[serde(default, borrow)]
    model: std::borrow::Cow<'a, str>,
    #[serde(default, borrow)]
    choices: Vec<ChoiceProbe<'a>>,
    #[serde(default)]
    usage: Option<ChatUsage>,
    #[serde(default)]
    error: Option<serde::de::IgnoredAny>,
}

#[derive(serde::Deserialize)]
struct ChoiceProbe<'a> {
    #[serde(default, borrow)]
    delta: DeltaProbe<'a>,
    #[serde(default)]
    finish_reason: Option<serde::de::IgnoredAny>,
}

#[derive(Default, serde::Deserialize)]
struct DeltaProbe<'a> {
    #[serde(default, borrow)]
    content: Option<std::borrow::Cow<'a, str>>,
    #[serde(default, borrow)]
    reasoning_content: Option<std::borrow::Cow<'a, str>>,
    #[serde(default)]
    reasoning: Option<serde_json::Value>,
    #[serde(default, borrow)]
    refusal: Option<std::borrow::Cow<'a, str>>,
    #[serde(default)]
    tool_calls: Option<Vec<serde::de::IgnoredAny>>,
}

impl DeltaProbe<'_> {
    /// As [`crate::openai::Delta::has_output`].
    fn has_output(&self) -> bool {
        let text =
            |s: &Option<std::borrow::Cow<'_, str>>| s.as_deref().is_some_and(|s| !s.is_empty());
        text(&self.content)
            || text(&self.reasoning_content)
            || self
                .reasoning
                .as_ref()
                .and_then(serde_json::Value::as_str)
                .is_some_and(|s| !s.is_empty())
            || text(&self.refusal)
            || self.tool_calls.as_ref().is_some_and(|t| !t.is_empty())
    }
}

/// OpenAI chunks to an OpenAI client.
pub(super) struct OpenAiPassthrough {
    hide_usage_chunk: bool,
    progress: Progress,
    /// `[DONE]` seen.
    done: bool,
    /// A `finish_reason` or an error seen: the stream is complete even without `[DONE]`.
    complete: bool,
}

impl OpenAiPassthrough {
    pub(super) fn new(hide_usage_chunk: bool) -> Self {
        Self {
            hide_usage_chunk,
            progress: Progress::default(),
            done: false,
            complete: false,
        }
    }

    /// Reads an event; returns whether to forward it.
    fn read(&mut self, ev: &RawEvent) -> bool {
        if !ev.has_data {
            return true;
        }
        let data = ev.event.data.trim();
        if data == "[DONE]" {
            self.done = true;
            return true;
        }
        let Ok(chunk) = serde_json::from_str::<ChunkProbe>(data) else {
            return true;
        };
        self.progress.usage.note_model(&chunk.model);
        if chunk.error.is_some() {
            self.complete = true;
        }
        for c in &chunk.choices {
            self.progress.output_started |= c.delta.has_output();
            self.complete |= c.finish_reason.is_some();
        }
        match &chunk.usage {
            Some(u) => {
                u.apply(&mut self.progress.usage);
                !(self.hide_usage_chunk && chunk.choices.is_empty())
            }
            None => true,
        }
    }
}

impl EventHandler for OpenAiPassthrough {
    fn event(&mut self, ev: RawEvent, out: &mut Vec<u8>) -> Result<(), Error> {
        if self.read(&ev) {
            out.extend_from_slice(&ev.raw);
        }
        Ok(())
    }

    fn last_event(&mut self, ev: RawEvent, out: &mut Vec<u8>) -> Result<(), Error> {
        if !ev.has_data
            || (ev.event.data.trim() != "[DONE]"
                && serde_json::from_str::<serde_json::Value>(&ev.event.data).is_err())
        {
            return Err(truncated());
        }
        if self.read(&ev) {
            out.extend_from_slice(&terminated(ev.raw));
        }
        Ok(())
    }

    fn end(&mut self, out: &mut Vec<u8>) -> Result<(), Error> {
        let cut = !(self.done || self.complete);
        if cut {
            openai_error_event(out, None, TRUNCATED_MESSAGE)?;
        }
        if !self.done {
            out.extend_from_slice(DONE);
        }
        if cut { Err(truncated()) } else { Ok(()) }
    }

    fn progress(&self) -> &Progress {
        &self.progress
    }
}

/// Anthropic events to an Anthropic client.
#[derive(Default)]
pub(super) struct AnthropicPassthrough {
    progress: Progress,
    /// The usage as Anthropic counts it (message_delta updates parts of it).
    counts: MessagesUsage,
    /// `message_stop` or an error seen.
    stopped: bool,
    /// A `stop_reason` seen (only `message_stop` is missing).
    complete: bool,
}

impl AnthropicPassthrough {
    fn read(&mut self, ev: &RawEvent) {
        if !ev.has_data {
            return;
        }
        let Ok(event) = serde_json::from_str::<StreamEvent>(&ev.event.data) else {
            return;
        };
        match event {
            StreamEvent::MessageStart { message } => {
                self.progress.usage.note_model(&message.model);
                self.counts = message.usage;
                self.counts.apply(&mut self.progress.usage);
            }
            StreamEvent::ContentBlockDelta { delta, .. } => {
                self.progress.output_started |= match delta {
                    BlockDelta::TextDelta { text } => !text.is_empty(),
                    BlockDelta::InputJsonDelta { partial_json } => !partial_json.is_empty(),
                    BlockDelta::ThinkingDelta { thinking } => !thinking.is_empty(),
                    _ => false,
                };
            }
            StreamEvent::ContentBlockStart { .. } => {}
            StreamEvent::MessageDelta { delta, usage } => {
                if let Some(u) = usage {
                    u.apply(&mut self.counts, &mut self.progress.usage);
                }
                self.complete |= delta.stop_reason.is_some();
            }
            StreamEvent::MessageStop | StreamEvent::Error { .. } => self.stopped = true,
            _ => {}
        }
    }
}

impl EventHandler for AnthropicPassthrough {
    fn event(&mut self, ev: RawEvent, out: &mut Vec<u8>) -> Result<(), Error> {
        self.read(&ev);
        out.extend_from_slice(&ev.raw);
        Ok(())
    }

    fn last_event(&mut self, ev: RawEvent, out: &mut Vec<u8>) -> Result<(), Error> {
        forward_last(ev, out, |ev| self.read(ev))
    }

    fn end(&mut self, out: &mut Vec<u8>) -> Result<(), Error> {
        if self.stopped {
            return Ok(());
        }
        if self.complete {
            crate::sse::write_event(out, Some("message_stop"), r#"{"type":"message_stop"}"#);
            return Ok(());
        }
        anthropic_error_event(out, None, TRUNCATED_MESSAGE)?;
        Err(truncated())
    }

    fn progress(&self) -> &Progress {
        &self.progress
    }
}
