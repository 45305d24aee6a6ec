//! Builders of the non-streaming responses sent to clients after translation: an OpenAI
//! `chat.completion` with one choice, and an Anthropic assistant `message`.

use crate::Error;
use crate::anthropic::{self as a, Block};
use crate::openai as o;

/// An assistant answer gathered from an upstream response, in OpenAI terms.
#[derive(Default)]
pub(super) struct ChatAnswer {
    /// The answer text, joined.
    pub(super) text: String,
    /// The reasoning text, joined.
    pub(super) reasoning: String,
    /// The tool calls, in order.
    pub(super) tool_calls: Vec<o::ToolCall>,
}

impl ChatAnswer {
    /// Whether the answer holds tool calls.
    pub(super) fn has_tool_calls(&self) -> bool {
        !self.tool_calls.is_empty()
    }
}

/// A `chat.completion` with one choice holding `answer`: `content` is `null` when there are
/// only tool calls; empty reasoning and tool call lists are left out. Chat clients get it
/// serialized ([`to_body`]); Responses and Gemini clients' translators read it as it is.
pub(super) fn chat_completion(
    id: String,
    model: String,
    answer: ChatAnswer,
    finish_reason: &str,
    usage: o::ChatUsage,
) -> o::ChatCompletion {
    let ChatAnswer {
        text,
        reasoning,
        tool_calls,
    } = answer;
    let content = if text.is_empty() && !tool_calls.is_empty() {
        None
    } else {
        Some(o::Text(text))
    };
    o::ChatCompletion {
        id,
        object: "chat.completion".into(),
        created: 0,
        model,
        choices: vec![o::Choice {
            index: 0,
            message: o::ResponseMessage {
                role: "assistant".into(),
                content,
                refusal: None,
                tool_calls: (!tool_calls.is_empty()).then_some(tool_calls),
                reasoning_content: (!reasoning.is_empty()).then_some(reasoning),
                reasoning: None,
            },
            logprobs: None,
            finish_reason: Some(finish_reason.into()),
        }],
        usage: Some(usage),
        system_fingerprint: None,
    }
}

/// The body of a translated response.
pub(super) fn to_body<T: serde::Serialize>(out: &T) -> Result<Vec<u8>, Error> {
    serde_json::to_vec(out).map_err(Error::response)
}

/// The body of an Anthropic assistant `message` holding `content`.
pub(super) fn message(
    id: String,
    model: String,
    content: Vec<Block>,
    stop_reason: &str,
    stop_sequence: Option<String>,
    usage: a::MessagesUsage,
) -> Result<Vec<u8>, Error> {
    let out = a::MessagesResponse {
        id,
        kind: "message".into(),
        role: "assistant".into(),
        model,
        content,
        stop_reason: Some(stop_reason.into()),
        stop_sequence,
        usage,
    };
    serde_json::to_vec(&out).map_err(Error::response)
}
