//! Bedrock ConverseStream (AWS event-stream binary framing, not SSE) → the client's SSE
//! format.
//!
//! [`EventStreamDriver`] decodes the binary messages ([`frame`]) and reads each one as a
//! ConverseStream [`Event`]: `messageStart`, `contentBlockStart` (tool use only; text and
//! reasoning blocks begin with their first delta), `contentBlockDelta` (text, tool input
//! JSON piece, reasoning text, signature or redacted reasoning), `contentBlockStop`,
//! `messageStop` (stop reason), then `metadata` (usage). Exception messages (`:message-type`
//! `exception`, the type in `:exception-type`, `{"message"}` payload) and `error` messages
//! (`:error-code` / `:error-message` headers) end the stream with an error event in the
//! client's format. [`to_chat`] and [`to_messages`] write the client's events.
//!
//! A message whose framing is broken (CRC mismatch, impossible length) loses the stream: the
//! client gets an error event at once and the rest of the upstream bytes are ignored. A known
//! event whose payload does not read is reported (by `push`) and skipped. The stream ends
//! cleanly once `messageStop` has been seen (usage is complete once `metadata` has been too);
//! an upstream stream that stops earlier is closed with an error event, per the conventions
//! of [`super`].
//!
//! Converse streams carry no id and no model name: the client gets a new random id
//! (`chatcmpl-bdrk-…`, `msg_bdrk_…`) and an empty model.

mod frame;
mod to_chat;
mod to_messages;

use serde::Deserialize;
use serde_json::Value;

use super::{NotImplemented, Progress, StreamTranslator};
use crate::translate::bedrock::wire::ConverseUsage;
use crate::{ClientApi, Error, Usage};
use frame::{Frame, FrameDecoder};

/// The translator for a Bedrock ConverseStream response.
pub(super) fn translator(api: ClientApi, hide_usage_chunk: bool) -> Box<dyn StreamTranslator> {
    match api {
        ClientApi::ChatCompletions => Box::new(EventStreamDriver::new(
            to_chat::BedrockToChat::new(!hide_usage_chunk),
        )),
        ClientApi::Messages => {
            Box::new(EventStreamDriver::new(to_messages::BedrockToMessages::new()))
        }
        _ => Box::new(NotImplemented(
            format!("{api:?} requests cannot be served by a Bedrock provider"),
            Usage::default(),
        )),
    }
}

/// One ConverseStream event.
#[derive(Debug, Clone)]
enum Event {
    MessageStart,
    /// A tool use block begins.
    ToolStart {
        index: u32,
        id: String,
        name: String,
    },
    Delta {
        index: u32,
        delta: Delta,
    },
    BlockStop {
        index: u32,
    },
    MessageStop {
        stop_reason: Option<String>,
        stop_sequence: Option<String>,
    },
    Metadata {
        usage: ConverseUsage,
    },
}

/// A piece of a content block.
#[derive(Debug, Clone)]
enum Delta {
    Text(String),
    /// A piece of a tool use's input JSON text.
    ToolInput(String),
    Reasoning(String),
    Signature(String),
    /// Encrypted reasoning (base64).
    Redacted(String),
}

/// The client side of a Bedrock stream translation.
trait Client: Send + Sync {
    /// Handles one event.
    fn event(&mut self, ev: Event, out: &mut Vec<u8>) -> Result<(), Error>;
    /// The upstream failed (`kind`: the Bedrock exception type, if known): an error event in
    /// the client's format, and the client's stream is closed.
    fn fail(&mut self, kind: Option<&str>, message: &str, out: &mut Vec<u8>) -> Result<(), Error>;
    /// Closes the client's stream; `Err` if the upstream stream was cut short.
    fn end(&mut self, out: &mut Vec<u8>) -> Result<(), Error>;
    /// Usage and first output seen so far.
    fn progress(&self) -> &Progress;
}

/// Decodes the binary stream and feeds a [`Client`].
struct EventStreamDriver<C> {
    decoder: FrameDecoder,
    client: C,
    /// The framing was lost; the rest of the input is ignored.
    broken: bool,
    finished: bool,
}

impl<C: Client> EventStreamDriver<C> {
    fn new(client: C) -> Self {
        Self {
            decoder: FrameDecoder::default(),
            client,
            broken: false,
            finished: false,
        }
    }

    fn frame(&mut self, f: Frame, out: &mut Vec<u8>) -> Result<(), Error> {
        match f.header(":message-type") {
            Some("event") => match parse_event(&f)? {
                Some(ev) => self.client.event(ev, out),
                None => Ok(()),
            },
            Some("exception") => {
                let kind = f.header(":exception-type").unwrap_or("exception");
                let message = payload_message(&f.payload);
                self.client.fail(Some(kind), &message, out)
            }
            Some("error") => {
                let kind = f.header(":error-code").unwrap_or("error");
                let message = f.header(":error-message").unwrap_or("upstream error");
                self.client.fail(Some(kind), message, out)
            }
            other => Err(Error::InvalidResponse(format!(
                "event stream message of unknown type {other:?}"
            ))),
        }
    }
}

impl<C: Client> StreamTranslator for EventStreamDriver<C> {
    fn push(&mut self, chunk: &[u8], out: &mut Vec<u8>) -> Result<(), Error> {
        if self.finished || self.broken {
            return Ok(());
        }
        let mut frames = Vec::new();
        let decoded = self.decoder.push(chunk, &mut frames);
        // A bad event is reported, and the events around it are still handled.
        let mut result = Ok(());
        for f in frames {
            if let Err(e) = self.frame(f, out) {
                result = result.and(Err(e));
            }
        }
        if let Err(e) = decoded {
            self.broken = true;
            self.client.fail(None, &e.to_string(), out)?;
            result = result.and(Err(e));
        }
        result
    }

    fn finish(&mut self, out: &mut Vec<u8>) -> Result<(), Error> {
        if std::mem::replace(&mut self.finished, true) {
            return Ok(());
        }
        // A half message is dropped; the end reports the cut unless the stream was complete.
        self.client.end(out)
    }

    fn usage(&self) -> &Usage {
        &self.client.progress().usage
    }

    fn output_started(&self) -> bool {
        self.client.progress().output_started
    }
}

/// The `message` of an exception payload (`{"message": ...}`), else the payload as text.
fn payload_message(payload: &[u8]) -> String {
    #[derive(Deserialize)]
    struct Body {
        #[serde(alias = "Message")]
        message: String,
    }
    match serde_json::from_slice::<Body>(payload) {
        Ok(b) => b.message,
        Err(_) => {
            let text = String::from_utf8_lossy(payload);
            let text = text.trim();
            if text.is_empty() {
                "upstream error".into()
            } else {
                text.chars().take(2000).collect()
            }
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct BlockStart {
    content_block_index: u32,
    #[serde(default)]
    start: Option<StartBody>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct StartBody {
    #[serde(default)]
    tool_use: Option<ToolStartBody>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ToolStartBody {
    tool_use_id: String,
    name: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct BlockDelta {
    content_block_index: u32,
    delta: DeltaBody,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DeltaBody {
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    tool_use: Option<ToolDeltaBody>,
    #[serde(default)]
    reasoning_content: Option<ReasoningDeltaBody>,
}

#[derive(Deserialize)]
struct ToolDeltaBody {
    #[serde(default)]
    input: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ReasoningDeltaBody {
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    signature: Option<String>,
    #[serde(default)]
    redacted_content: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct BlockStopBody {
    content_block_index: u32,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct MessageStopBody {
    #[serde(default)]
    stop_reason: Option<String>,
    #[serde(default)]
    additional_model_response_fields: Option<Value>,
}

#[derive(Deserialize)]
struct MetadataBody {
    #[serde(default)]
    usage: ConverseUsage,
}

/// Reads an event message; `None` for event types the translation does not use. A known
/// event whose payload does not read is an error.
fn parse_event(f: &Frame) -> Result<Option<Event>, Error> {
    let Some(kind) = f.header(":event-type") else {
        return Err(Error::InvalidResponse(
            "event stream event without :event-type".into(),
        ));
    };
    fn read<'a, T: Deserialize<'a>>(kind: &str, payload: &'a [u8]) -> Result<T, Error> {
        serde_json::from_slice(payload)
            .map_err(|e| Error::InvalidResponse(format!("malformed {kind} event: {e}")))
    }
    let p = &f.payload;
    Ok(Some(match kind {
        "messageStart" => Event::MessageStart,
        "contentBlockStart" => {
            let b: BlockStart = read(kind, p)?;
            match b.start.and_then(|s| s.tool_use) {
                Some(t) => Event::ToolStart {
                    index: b.content_block_index,
                    id: t.tool_use_id,
                    name: t.name,
                },
                None => return Ok(None),
            }
        }
        "contentBlockDelta" => {
            let b: BlockDelta = read(kind, p)?;
            let d = b.delta;
            let r = d.reasoning_content;
            let delta = if let Some(t) = d.text {
                Delta::Text(t)
            } else if let Some(t) = d.tool_use {
                Delta::ToolInput(t.input)
            } else if let Some(t) = r.as_ref().and_then(|r| r.text.clone()) {
                Delta::Reasoning(t)
            } else if let Some(s) = r.as_ref().and_then(|r| r.signature.clone()) {
                Delta::Signature(s)
            } else if let Some(c) = r.and_then(|r| r.redacted_content) {
                Delta::Redacted(c)
            } else {
                return Ok(None);
            };
            Event::Delta {
                index: b.content_block_index,
                delta,
            }
        }
        "contentBlockStop" => {
            let b: BlockStopBody = read(kind, p)?;
            Event::BlockStop {
                index: b.content_block_index,
            }
        }
        "messageStop" => {
            let b: MessageStopBody = read(kind, p)?;
            Event::MessageStop {
                stop_sequence: crate::translate::bedrock::wire::stop_sequence(
                    b.additional_model_response_fields.as_ref(),
                ),
                stop_reason: b.stop_reason,
            }
        }
        "metadata" => {
            let b: MetadataBody = read(kind, p)?;
            Event::Metadata { usage: b.usage }
        }
        _ => return Ok(None),
    }))
}

/// OpenAI and Anthropic error types for a Bedrock exception type.
fn error_types(kind: Option<&str>) -> (Option<&'static str>, Option<&'static str>) {
    match kind {
        None => (None, None),
        Some("throttlingException") => (Some("rate_limit_error"), Some("rate_limit_error")),
        Some("validationException") => {
            (Some("invalid_request_error"), Some("invalid_request_error"))
        }
        Some("serviceUnavailableException") => (Some("server_error"), Some("overloaded_error")),
        Some("accessDeniedException") => (Some("permission_error"), Some("permission_error")),
        Some(_) => (Some("server_error"), Some("api_error")),
    }
}
