//! Gemini responses → OpenAI `chat.completion` or Anthropic `message`, and the mappings the
//! stream translators share.
//!
//! Chat: `id` is the `responseId` (else `gemini`), `created` 0 (this crate reads no clock),
//! `model` the `modelVersion`; answer text parts are joined into `content`, thought parts into
//! `reasoning_content`; function calls become `tool_calls` (`call_<n>`, arguments as JSON
//! text). Messages: thought parts become thinking blocks (empty signature), text parts text
//! blocks, function calls `tool_use` blocks (`toolu_<n>`), in the order received (adjacent
//! parts of one kind form one block). A response whose prompt was blocked (no candidates,
//! `promptFeedback.blockReason`) is an empty answer that stopped for the content filter.

use super::wire::{Part, Response, UsageMetadata};
use crate::anthropic::Block;
use crate::openai as o;
use crate::translate::reply::{self, ChatAnswer};
use crate::translate::stop_reason;
use crate::{Error, Usage};

/// The id for a response without `responseId`.
const DEFAULT_ID: &str = "gemini";

/// The normalized usage of a response (or of a stream chunk's cumulative counts).
pub(in crate::translate) fn usage(r: &Response) -> Usage {
    let mut u = Usage::default();
    if let Some(m) = &r.usage_metadata {
        m.apply(&mut u);
    }
    if let Some(model) = &r.model_version {
        u.note_model(model);
    }
    u
}

/// The response id to show the client.
pub(in crate::translate) fn response_id(r: &Response) -> String {
    r.response_id
        .clone()
        .filter(|id| !id.is_empty())
        .unwrap_or_else(|| DEFAULT_ID.to_string())
}

/// OpenAI `finish_reason` for a Gemini `finishReason` (`None` with a blocked prompt).
pub(in crate::translate) fn finish_reason(reason: Option<&str>, has_calls: bool) -> &'static str {
    match reason {
        Some("MAX_TOKENS") => "length",
        Some(
            "SAFETY"
            | "RECITATION"
            | "BLOCKLIST"
            | "PROHIBITED_CONTENT"
            | "SPII"
            | "IMAGE_SAFETY"
            | "IMAGE_PROHIBITED_CONTENT"
            | "IMAGE_RECITATION",
        )
        | None => "content_filter",
        _ if has_calls => "tool_calls",
        _ => "stop",
    }
}

/// Anthropic `stop_reason` for a Gemini `finishReason` (`None` with a blocked prompt).
pub(in crate::translate) fn anthropic_stop_reason(
    reason: Option<&str>,
    has_calls: bool,
) -> &'static str {
    stop_reason(Some(finish_reason(reason, has_calls)), has_calls)
}

/// The finish reason of candidate 0, `None` for a blocked prompt; `Err` when the response
/// has neither (an answer that never finished, or not a response at all).
fn finish(r: &Response) -> Result<Option<String>, Error> {
    match r.candidate() {
        Some(c) => Ok(Some(c.finish_reason.clone().unwrap_or_default())),
        None if r.block_reason().is_some() => Ok(None),
        None => Err(Error::InvalidResponse("response has no candidates".into())),
    }
}

fn parts(r: &Response) -> &[Part] {
    r.candidate().map_or(&[], |c| c.parts())
}

pub(super) fn chat(r: Response) -> Result<(o::ChatCompletion, Usage), Error> {
    let reason = finish(&r)?;
    let mut answer = ChatAnswer::default();
    for p in parts(&r) {
        if let Some(t) = p.thought_text() {
            answer.reasoning.push_str(t);
        } else if let Some(t) = p.answer_text() {
            answer.text.push_str(t);
        } else if let Some(call) = &p.function_call {
            answer.tool_calls.push(o::ToolCall {
                id: format!("call_{}", answer.tool_calls.len()),
                kind: "function".into(),
                function: o::FunctionCall {
                    name: call.name.clone(),
                    arguments: call.arguments(),
                },
            });
        }
    }
    let finish_reason = finish_reason(reason.as_deref(), answer.has_tool_calls());
    let chat_usage = r
        .usage_metadata
        .as_ref()
        .map(UsageMetadata::chat_usage)
        .unwrap_or_default();
    let model = r.model_version.clone().unwrap_or_default();
    let out = reply::chat_completion(response_id(&r), model, answer, finish_reason, chat_usage);
    Ok((out, usage(&r)))
}

pub(super) fn messages(r: Response) -> Result<(Vec<u8>, Usage), Error> {
    let reason = finish(&r)?;
    let mut content: Vec<Block> = Vec::new();
    let mut calls = 0;
    for p in parts(&r) {
        if let Some(t) = p.thought_text() {
            match content.last_mut() {
                Some(Block::Thinking { thinking, .. }) => thinking.push_str(t),
                _ => content.push(Block::Thinking {
                    thinking: t.to_string(),
                    signature: String::new(),
                }),
            }
        } else if let Some(t) = p.answer_text() {
            match content.last_mut() {
                Some(Block::Text { text, .. }) => text.push_str(t),
                _ => content.push(Block::Text {
                    text: t.to_string(),
                    citations: None,
                    cache_control: None,
                }),
            }
        } else if let Some(call) = &p.function_call {
            content.push(Block::ToolUse {
                id: format!("toolu_{calls}"),
                name: call.name.clone(),
                input: call.input(),
                cache_control: None,
            });
            calls += 1;
        }
    }
    // Gemini sends no empty text parts worth keeping; an empty text block would be rejected
    // if the client sent the message back.
    content.retain(|b| !matches!(b, Block::Text { text, .. } if text.is_empty()));
    let body = reply::message(
        response_id(&r),
        r.model_version.clone().unwrap_or_default(),
        content,
        anthropic_stop_reason(reason.as_deref(), calls > 0),
        None,
        r.usage_metadata
            .as_ref()
            .map(UsageMetadata::messages_usage)
            .unwrap_or_default(),
    )?;
    Ok((body, usage(&r)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn parse(v: Value) -> Response {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn finish_reasons() {
        assert_eq!(finish_reason(Some("STOP"), false), "stop");
        assert_eq!(finish_reason(Some("STOP"), true), "tool_calls");
        assert_eq!(finish_reason(Some("MAX_TOKENS"), true), "length");
        assert_eq!(finish_reason(Some("SPII"), false), "content_filter");
        assert_eq!(finish_reason(Some("OTHER"), false), "stop");
        assert_eq!(finish_reason(Some(""), false), "stop");
        assert_eq!(finish_reason(None, false), "content_filter");
        assert_eq!(anthropic_stop_reason(Some("STOP"), false), "end_turn");
        assert_eq!(anthropic_stop_reason(Some("STOP"), true), "tool_use");
        assert_eq!(
            anthropic_stop_reason(Some("MAX_TOKENS"), false),
            "max_tokens"
        );
        assert_eq!(anthropic_stop_reason(Some("RECITATION"), false), "refusal");
        assert_eq!(
            anthropic_stop_reason(Some("MALFORMED_FUNCTION_CALL"), false),
            "end_turn"
        );
    }

    #[test]
    fn blocked_prompts_and_empty_responses() {
        let blocked = parse(json!({"promptFeedback": {"blockReason": "SAFETY"},
            "usageMetadata": {"promptTokenCount": 7, "totalTokenCount": 7}}));
        let (out, usage) = chat(blocked).unwrap();
        let v = serde_json::to_value(out).unwrap();
        assert_eq!(v["choices"][0]["finish_reason"], "content_filter");
        assert_eq!(v["choices"][0]["message"]["content"], "");
        assert_eq!(v["id"], "gemini");
        assert_eq!(usage.input_tokens, 7);

        let blocked = parse(json!({"promptFeedback": {"blockReason": "OTHER"}}));
        let (out, _) = messages(blocked).unwrap();
        let v: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["stop_reason"], "refusal");
        assert_eq!(v["content"], json!([]));

        assert!(matches!(
            chat(parse(json!({}))),
            Err(Error::InvalidResponse(_))
        ));
        assert!(matches!(
            messages(parse(json!({}))),
            Err(Error::InvalidResponse(_))
        ));
    }

    #[test]
    fn cached_tokens_are_split_out_for_anthropic() {
        let r = parse(
            json!({"candidates": [{"content": {"parts": [{"text": "hi"}]},
            "finishReason": "STOP"}],
            "usageMetadata": {"promptTokenCount": 100, "candidatesTokenCount": 5,
                "cachedContentTokenCount": 60, "thoughtsTokenCount": 10}}),
        );
        let (out, usage) = messages(r).unwrap();
        let v: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(
            v["usage"],
            json!({"input_tokens": 40, "output_tokens": 15,
                "cache_creation_input_tokens": 0, "cache_read_input_tokens": 60})
        );
        assert_eq!(
            (
                usage.input_tokens,
                usage.output_tokens,
                usage.cache_read_tokens
            ),
            (100, 15, 60)
        );
        assert_eq!(usage.reasoning_tokens, 10);
    }
}
