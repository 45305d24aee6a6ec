//! Streams to an OpenAI Responses API client.
//!
//! From an OpenAI-format provider the events are forwarded byte for byte ([`Passthrough`]),
//! read on the way for usage (`response.completed`), the model and the first output delta.
//! From any other provider, the provider's stream goes through the chat completions
//! translator first ([`ViaChat`]), whose chunks [`events::ResponsesOut`] turns into Responses
//! events.

mod events;

use std::borrow::Cow;

use serde::Deserialize;
use serde::de::IgnoredAny;

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

/// What a Responses event from an OpenAI-format provider is read for, borrowing from its
/// text: the deltas (most events) are not copied, only checked for text.
#[derive(Deserialize)]
struct EventProbe<'a> {
    #[serde(rename = "type", default, borrow)]
    kind: Cow<'a, str>,
    #[serde(default)]
    sequence_number: Option<u64>,
    /// Only in the `response.*` lifecycle events.
    #[serde(default)]
    response: Option<ResponseProbe>,
    #[serde(default)]
    delta: HasText,
}

#[derive(Deserialize)]
struct ResponseProbe {
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    usage: Option<ResponseUsage>,
}

/// Whether a field is a non-empty string; any other value (absent, null, an object) is
/// `false` and skipped without being kept.
#[derive(Default)]
struct HasText(bool);

impl<'de> Deserialize<'de> for HasText {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = HasText;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("any value")
            }
            fn visit_str<E>(self, s: &str) -> Result<HasText, E> {
                Ok(HasText(!s.is_empty()))
            }
            fn visit_bool<E>(self, _: bool) -> Result<HasText, E> {
                Ok(HasText(false))
            }
            fn visit_i64<E>(self, _: i64) -> Result<HasText, E> {
                Ok(HasText(false))
            }
            fn visit_u64<E>(self, _: u64) -> Result<HasText, E> {
                Ok(HasText(false))
            }
            fn visit_f64<E>(self, _: f64) -> Result<HasText, E> {
                Ok(HasText(false))
            }
            fn visit_unit<E>(self) -> Result<HasText, E> {
                Ok(HasText(false))
            }
            fn visit_none<E>(self) -> Result<HasText, E> {
                Ok(HasText(false))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut a: A,
            ) -> Result<HasText, A::Error> {
                while a.next_element::<IgnoredAny>()?.is_some() {}
                Ok(HasText(false))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut a: A,
            ) -> Result<HasText, A::Error> {
                while a.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(HasText(false))
            }
        }
        d.deserialize_any(Visitor)
    }
}

impl Passthrough {
    fn read(&mut self, ev: &RawEvent) {
        if !ev.has_data {
            return;
        }
        let Ok(p) = serde_json::from_str::<EventProbe>(&ev.event.data) else {
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
        self.progress.output_started |= p.kind.ends_with(".delta") && p.delta.0;
        self.complete |= matches!(
            &*p.kind,
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sse::Event;

    fn read(p: &mut Passthrough, data: &str) {
        p.read(&RawEvent {
            event: Event {
                event: None,
                data: data.into(),
            },
            has_data: true,
            raw: Vec::new(),
        });
    }

    #[test]
    fn the_probe_reads_text_deltas_and_skips_other_deltas() {
        let mut p = Passthrough::default();
        for data in [
            r#"{"type":"response.output_text.delta","delta":"","sequence_number":1}"#,
            r#"{"type":"response.x.delta","delta":{"a":[1,"b",null]},"sequence_number":2}"#,
            r#"{"type":"response.x.delta","delta":7,"sequence_number":3}"#,
            r#"{"type":"response.output_text.done","text":"Hi","sequence_number":4}"#,
        ] {
            read(&mut p, data);
        }
        assert!(!p.progress.output_started);
        assert_eq!(p.sequence, Some(4), "events with other deltas still read");
        read(
            &mut p,
            r#"{"type":"response.output_text.delta","delta":"H\u00e9","sequence_number":5}"#,
        );
        assert!(p.progress.output_started);
        assert!(!p.complete);
        read(
            &mut p,
            r#"{"type":"response.incomplete","sequence_number":6,"response":{"model":"gpt-5","usage":{"input_tokens":3,"output_tokens":4,"total_tokens":7}}}"#,
        );
        assert!(p.complete);
        assert_eq!(p.sequence, Some(6));
        let u = &p.progress.usage;
        assert_eq!((u.input_tokens, u.output_tokens), (3, 4));
        assert_eq!(u.response_model.as_deref(), Some("gpt-5"));
    }
}
