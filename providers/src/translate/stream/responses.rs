//! Streams to an OpenAI Responses API client.
//!
//! From an OpenAI-format provider the events are forwarded byte for byte ([`Passthrough`]),
//! read on the way for usage (`response.completed`), the model and the first output delta.
//! From any other provider, the provider's stream goes through the chat completions
//! translator first ([`ViaChat`]), whose chunks [`events::ResponsesOut`] turns into Responses
//! events.

mod events;

use serde::Deserialize;

use super::passthrough::forward_last;
use super::via_chat::ViaChat;
use super::{Driver, EventHandler, Progress, StreamTranslator, TRUNCATED_MESSAGE, truncated};
use crate::responses::ResponseUsage;
use crate::sse::RawEvent;
use crate::{Error, WireFormat};

/// The translator for a Responses stream from a provider of format `from`.
pub(super) fn translator(from: WireFormat) -> Box<dyn StreamTranslator> {
    match from {
        WireFormat::OpenAi => Box::new(Driver::new(Passthrough::default())),
        _ => Box::new(ViaChat::new(from, events::ResponsesOut::default())),
    }
}

/// Responses events from an OpenAI-format provider to a Responses client.
#[derive(Default)]
struct Passthrough {
    progress: Progress,
    /// A terminal event (`response.completed`, `.incomplete`, `.failed`, `error`) was seen.
    complete: bool,
    /// The last `sequence_number` seen.
    sequence: Option<u64>,
}

impl Passthrough {
    fn read(&mut self, ev: &RawEvent) {
        #[derive(Deserialize)]
        struct Probe {
            #[serde(rename = "type", default)]
            kind: String,
            #[serde(default)]
            sequence_number: Option<u64>,
            #[serde(default)]
            response: Option<ResponseProbe>,
            #[serde(default)]
            delta: Option<serde_json::Value>,
        }
        #[derive(Deserialize)]
        struct ResponseProbe {
            #[serde(default)]
            model: Option<String>,
            #[serde(default)]
            usage: Option<ResponseUsage>,
        }
        if !ev.has_data {
            return;
        }
        let Ok(p) = serde_json::from_str::<Probe>(&ev.event.data) else {
            return;
        };
        self.sequence = p.sequence_number.or(self.sequence);
        if let Some(r) = &p.response {
            if let Some(m) = &r.model {
                self.progress.usage.note_model(m);
            }
            if let Some(u) = &r.usage {
                u.apply(&mut self.progress.usage);
            }
        }
        self.progress.output_started |= p.kind.ends_with(".delta")
            && p.delta
                .as_ref()
                .and_then(|d| d.as_str())
                .is_some_and(|d| !d.is_empty());
        self.complete |= matches!(
            p.kind.as_str(),
            "response.completed" | "response.incomplete" | "response.failed" | "error"
        );
    }
}

impl EventHandler for Passthrough {
    fn event(&mut self, ev: RawEvent, out: &mut Vec<u8>) -> Result<(), Error> {
        self.read(&ev);
        out.extend_from_slice(&ev.raw);
        Ok(())
    }

    fn last_event(&mut self, ev: RawEvent, out: &mut Vec<u8>) -> Result<(), Error> {
        forward_last(ev, out, |ev| self.read(ev))
    }

    fn end(&mut self, out: &mut Vec<u8>) -> Result<(), Error> {
        if self.complete {
            return Ok(());
        }
        let sequence = self.sequence.map_or(0, |s| s + 1);
        events::error_event(out, sequence, TRUNCATED_MESSAGE)?;
        Err(truncated())
    }

    fn progress(&self) -> &Progress {
        &self.progress
    }
}
