//! A Gemini client (`POST …/models/{model}:generateContent` and `:streamGenerateContent`).
//!
//! Gemini providers get the body as it is (see [`super::gemini`]). Other providers are served
//! through chat completions, like Responses API clients: the request becomes a chat request
//! ([`to_chat`]) which the chat translators take on to the provider; the provider's answer
//! comes back from them as a `chat.completion`, which becomes a `GenerateContentResponse`
//! here ([`from_chat`]) and, streamed, a sequence of them (see the stream module).
//!
//! Response: one candidate (index 0), role `model`; reasoning text becomes a `thought: true`
//! part, then the text (a refusal is text too), then one `functionCall` part per tool call
//! (the provider's call id as `id`, the arguments as an object: text that is not a JSON
//! object is kept as `{"_raw": "<text>"}`). `finishReason`: `STOP` (tool calls too, as Gemini
//! does), `MAX_TOKENS` for `length`, `SAFETY` for `content_filter`, `OTHER` for anything
//! else. `usageMetadata`: `promptTokenCount` (cached tokens included,
//! `cachedContentTokenCount` being those read from a cache), `candidatesTokenCount` (output
//! without reasoning), `thoughtsTokenCount` (reasoning), `totalTokenCount`; zero counts other
//! than the first three are left out. `modelVersion` is the provider's model, `responseId`
//! its response id.

mod config;
mod to_chat;

use serde::Serialize;

use super::gemini::wire::{Content, FunctionCall, Part, UsageMetadata};
use super::messages_via_openai::tool_input;
use super::{Translated, unsupported};
use crate::openai::ChatCompletion;
use crate::{ClientApi, Error, Usage, WireFormat};

/// The request for a provider of format `to` (see [`crate::translate_gemini_request`]).
pub(super) fn request(
    to: WireFormat,
    body: &[u8],
    model: Option<&str>,
    stream: bool,
) -> Result<Translated, Error> {
    if to == WireFormat::Gemini {
        let r = super::gemini::request(ClientApi::GenerateContent, body, model)?;
        let path = to
            .upstream_path(ClientApi::GenerateContent, &r.model, stream)
            .ok_or_else(|| unsupported(ClientApi::GenerateContent, to))?;
        return Ok(Translated {
            body: Some(r.out.body).filter(|b| b.as_slice() != body),
            path,
            stream,
            hide_usage_chunk: false,
        });
    }
    let model = model.ok_or_else(|| {
        Error::InvalidRequest("the model must be given in the request path".into())
    })?;
    let options = config::ChatOptions {
        top_k: to == WireFormat::Anthropic,
    };
    let chat = to_chat::request(body, model, stream, options)?;
    let mut t = super::translate_chat(to, chat, Some(model))?;
    // The chat request asks for usage; the Gemini stream carries it in its last chunk.
    t.hide_usage_chunk = false;
    Ok(t)
}

/// A provider's whole answer (format `from`) as a `GenerateContentResponse`, with usage.
/// Gemini's own answers are only read for usage, leniently, and forwarded as they are.
pub(super) fn response(from: WireFormat, body: &[u8]) -> Result<(Option<Vec<u8>>, Usage), Error> {
    if from == WireFormat::Gemini {
        return super::gemini::response(ClientApi::GenerateContent, body);
    }
    let (c, usage) = super::chat_response(from, body)?;
    let out = from_chat(c, &usage);
    Ok((Some(super::reply::to_body(&out)?), usage))
}

/// The response for a chat completion (its first choice) and its usage.
fn from_chat(c: ChatCompletion, usage: &Usage) -> GenerateContentResponse {
    let mut parts = Vec::new();
    let mut finish = None;
    if let Some(choice) = c.choices.into_iter().next() {
        finish = choice.finish_reason;
        let m = choice.message;
        if let Some(r) = m.reasoning_text().filter(|r| !r.is_empty()) {
            parts.push(thought_part(r.to_string()));
        }
        let text = m.content.map(|t| t.0).unwrap_or_default() + &m.refusal.unwrap_or_default();
        if !text.is_empty() {
            parts.push(Part::text(text));
        }
        for call in m.tool_calls.unwrap_or_default() {
            parts.push(call_part(
                call.id,
                call.function.name,
                &call.function.arguments,
            ));
        }
    }
    GenerateContentResponse {
        candidates: vec![Candidate::new(
            parts,
            Some(finish_reason(finish.as_deref())),
        )],
        usage_metadata: Some(UsageMetadata::from_usage(usage)),
        model_version: c.model,
        response_id: c.id,
    }
}

/// A thought summary part.
pub(super) fn thought_part(text: String) -> Part {
    Part {
        text: Some(text),
        thought: Some(true),
        ..Default::default()
    }
}

/// A `functionCall` part for a chat tool call (`arguments`: JSON text).
pub(super) fn call_part(id: String, name: String, arguments: &str) -> Part {
    Part {
        function_call: Some(FunctionCall {
            id: Some(id).filter(|id| !id.is_empty()),
            name,
            args: Some(tool_input(arguments)),
        }),
        ..Default::default()
    }
}

/// Gemini's `finishReason` for a chat `finish_reason`.
pub(super) fn finish_reason(reason: Option<&str>) -> &'static str {
    match reason {
        None | Some("stop" | "tool_calls" | "function_call") => "STOP",
        Some("length") => "MAX_TOKENS",
        Some("content_filter") => "SAFETY",
        Some(_) => "OTHER",
    }
}

/// A `GenerateContentResponse` (a whole answer, or one chunk of a stream).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct GenerateContentResponse {
    /// Candidate 0.
    pub(super) candidates: Vec<Candidate>,
    /// The token counts (the last chunk of a stream).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) usage_metadata: Option<UsageMetadata>,
    /// The model that answered.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub(super) model_version: String,
    /// The provider's response id.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub(super) response_id: String,
}

/// One candidate.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct Candidate {
    /// The answer (or this chunk's piece of it).
    content: Content,
    /// Set when the answer is complete.
    #[serde(skip_serializing_if = "Option::is_none")]
    finish_reason: Option<&'static str>,
    /// Always 0.
    index: u32,
}

impl Candidate {
    /// Candidate 0: a `model` turn of `parts`.
    pub(super) fn new(parts: Vec<Part>, finish_reason: Option<&'static str>) -> Self {
        Self {
            content: Content {
                role: Some("model".into()),
                parts,
            },
            finish_reason,
            index: 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finish_reasons() {
        assert_eq!(finish_reason(Some("tool_calls")), "STOP");
        assert_eq!(finish_reason(Some("length")), "MAX_TOKENS");
        assert_eq!(finish_reason(Some("content_filter")), "SAFETY");
        assert_eq!(finish_reason(Some("pause_turn")), "OTHER");
        assert_eq!(finish_reason(None), "STOP");
    }

    #[test]
    fn gemini_bodies_keep_their_bytes() {
        let body = br#"{"contents":[{"parts":[{"text":"hi"}]}]}"#;
        let t = request(WireFormat::Gemini, body, Some("gemini-2.5-flash"), true).unwrap();
        assert_eq!(t.body, None);
        assert_eq!(
            t.path,
            "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse"
        );
        assert!(t.stream);
        assert!(matches!(
            request(WireFormat::OpenAi, body, None, false),
            Err(Error::InvalidRequest(_))
        ));
    }

    #[test]
    fn usage_counts() {
        let u = Usage {
            input_tokens: 100,
            output_tokens: 30,
            cache_read_tokens: 60,
            reasoning_tokens: 10,
            ..Default::default()
        };
        let v = serde_json::to_value(UsageMetadata::from_usage(&u)).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"promptTokenCount": 100, "candidatesTokenCount": 20,
                "totalTokenCount": 130, "cachedContentTokenCount": 60, "thoughtsTokenCount": 10})
        );
    }
}
