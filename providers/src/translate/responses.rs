//! An OpenAI Responses API client (`POST /v1/responses`).
//!
//! OpenAI-format providers get the body as it is (only the model may change) and their answer
//! is read for usage. Other providers are served through chat completions: the request is
//! turned into a chat request ([`to_chat`]) which the chat translators take on to the
//! provider; the provider's answer comes back from them as a `chat.completion`, which becomes
//! a `response` object here ([`from_chat`]) and, streamed, a sequence of Responses events
//! (see the stream module).
//!
//! Ids: the response is `resp_<base>`, its items `rs_<base>_<n>` (reasoning), `msg_<base>_<n>`
//! (message) and `fc_<base>_<n>` (function call), `n` the item's output index and `base` the
//! chat completion's id without its usual prefix; a function call's `call_id` is the
//! provider's tool call id. Reasoning text becomes a reasoning item's summary.

mod to_chat;

use super::raw::RawObject;
use super::{Translated, set_model};
use crate::openai::ChatCompletion;
use crate::responses::{
    IncompleteDetails, OutputContent, OutputItem, Response, ResponseUsage, SummaryText,
};
use crate::{Error, Usage, WireFormat};

/// The Responses request body for a provider of format `to` (see [`super::translate_request`]).
pub(super) fn request(
    to: WireFormat,
    body: &[u8],
    model: Option<&str>,
) -> Result<Translated, Error> {
    if to == WireFormat::OpenAi {
        let mut obj = RawObject::parse(body)?;
        let changed = set_model(&mut obj, model)?;
        return Ok(Translated {
            body: if changed { Some(obj.to_vec()?) } else { None },
            path: "/v1/responses".into(),
            stream: obj.read::<bool>("stream")?.unwrap_or(false),
            hide_usage_chunk: false,
        });
    }
    let mut t = super::translate_chat(to, to_chat::request(body)?, model)?;
    // The chat request asks for usage; the Responses stream carries it in its last event.
    t.hide_usage_chunk = false;
    Ok(t)
}

/// A provider's whole answer (format `from`) as a `response` object, with usage. OpenAI's own
/// answers are only read for usage, leniently, and forwarded as they are (`None`).
pub(super) fn response(from: WireFormat, body: &[u8]) -> Result<(Option<Vec<u8>>, Usage), Error> {
    if from == WireFormat::OpenAi {
        return Ok((None, crate::responses::usage_of(body).unwrap_or_default()));
    }
    let (c, usage) = super::chat_response(from, body)?;
    let out = from_chat(c, &usage);
    Ok((Some(super::reply::to_body(&out)?), usage))
}

/// The `response` object for a chat completion (its first choice) and its usage.
fn from_chat(c: ChatCompletion, usage: &Usage) -> Response {
    let ids = Ids::new(&c.id);
    let mut output = Vec::new();
    let mut finish = None;
    if let Some(choice) = c.choices.into_iter().next() {
        finish = choice.finish_reason;
        let m = choice.message;
        if let Some(r) = m.reasoning_text().filter(|r| !r.is_empty()) {
            output.push(reasoning_item(ids.item("rs", 0), r.to_string()));
        }
        let mut content = Vec::new();
        if let Some(t) = m.content.map(|t| t.0).filter(|t| !t.is_empty()) {
            content.push(OutputContent::text(t));
        }
        if let Some(r) = m.refusal.filter(|r| !r.is_empty()) {
            content.push(OutputContent::Refusal { refusal: r });
        }
        if !content.is_empty() {
            output.push(OutputItem::Message {
                id: ids.item("msg", output.len()),
                status: "completed",
                role: "assistant",
                content,
            });
        }
        for call in m.tool_calls.unwrap_or_default() {
            output.push(OutputItem::FunctionCall {
                id: ids.item("fc", output.len()),
                call_id: call.id,
                name: call.function.name,
                arguments: call.function.arguments,
                status: "completed",
            });
        }
    }
    finished(ids.response(), c.model, output, finish.as_deref(), usage)
}

/// A finished response: `completed`, or `incomplete` for a chat finish reason that says the
/// answer was cut (`length`, `content_filter`).
pub(super) fn finished(
    id: String,
    model: String,
    output: Vec<OutputItem>,
    finish_reason: Option<&str>,
    usage: &Usage,
) -> Response {
    let reason = match finish_reason {
        Some("length") => Some("max_output_tokens"),
        Some("content_filter") => Some("content_filter"),
        _ => None,
    };
    let mut r = Response::new(
        id,
        model,
        if reason.is_some() {
            "incomplete"
        } else {
            "completed"
        },
        output,
    );
    r.incomplete_details = reason.map(|reason| IncompleteDetails { reason });
    r.usage = Some(ResponseUsage::from_usage(usage));
    r
}

/// A reasoning item with `text` as its one summary part.
pub(super) fn reasoning_item(id: String, text: String) -> OutputItem {
    OutputItem::Reasoning {
        id,
        summary: vec![summary(text)],
    }
}

/// A summary part.
pub(super) fn summary(text: String) -> SummaryText {
    SummaryText {
        kind: "summary_text",
        text,
    }
}

/// The ids of one response, from the chat completion's id.
pub(super) struct Ids {
    base: String,
}

impl Ids {
    /// Ids based on a chat completion id (a new random base if it is empty).
    pub(super) fn new(chat_id: &str) -> Self {
        let mut base = chat_id;
        for prefix in ["chatcmpl-", "msg_", "resp_"] {
            base = base.strip_prefix(prefix).unwrap_or(base);
        }
        let base = if base.is_empty() {
            super::bedrock::unique_id()
        } else {
            base.to_string()
        };
        Self { base }
    }

    /// The response's id.
    pub(super) fn response(&self) -> String {
        format!("resp_{}", self.base)
    }

    /// The id of the item at output index `index`, of kind `prefix` (`rs`, `msg`, `fc`).
    pub(super) fn item(&self, prefix: &str, index: usize) -> String {
        format!("{prefix}_{}_{index}", self.base)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_drop_common_prefixes() {
        let ids = Ids::new("chatcmpl-bdrk-12ab");
        assert_eq!(ids.response(), "resp_bdrk-12ab");
        assert_eq!(ids.item("fc", 2), "fc_bdrk-12ab_2");
        assert_eq!(Ids::new("msg_01XY").response(), "resp_01XY");
        assert_eq!(Ids::new("").response().len(), "resp_".len() + 16);
    }

    #[test]
    fn openai_bodies_keep_their_bytes() {
        let body = br#"{"model":"gpt-5","input":"hi","stream":true}"#;
        let t = request(WireFormat::OpenAi, body, None).unwrap();
        assert_eq!(
            (t.body, t.path.as_str(), t.stream),
            (None, "/v1/responses", true)
        );
        let t = request(WireFormat::OpenAi, body, Some("gpt-5-mini")).unwrap();
        assert_eq!(
            t.body.unwrap(),
            br#"{"model":"gpt-5-mini","input":"hi","stream":true}"#.to_vec()
        );
    }

    #[test]
    fn finish_reasons_set_the_status() {
        let u = Usage::default();
        let r = finished("r".into(), "m".into(), vec![], Some("length"), &u);
        assert_eq!(r.status, "incomplete");
        assert_eq!(r.incomplete_details.unwrap().reason, "max_output_tokens");
        let r = finished("r".into(), "m".into(), vec![], Some("tool_calls"), &u);
        assert_eq!(r.status, "completed");
    }
}
