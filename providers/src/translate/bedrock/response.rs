//! Bedrock Converse response → OpenAI `chat.completion` or Anthropic message.
//!
//! Chat: text blocks are joined into `content` (`null` when there are only tool calls),
//! reasoning text into `reasoning_content`, `toolUse` blocks become `tool_calls` (input
//! serialized to a JSON string); `stopReason` → `finish_reason` (`end_turn`/`stop_sequence`
//! → `stop`, `tool_use` → `tool_calls`, `max_tokens` → `length`, `guardrail_intervened`/
//! `content_filtered` → `content_filter`). Messages: text, `tool_use`, thinking (with its
//! signature) and redacted thinking blocks; `stop_reason` likewise (filters → `refusal`),
//! `stop_sequence` from Claude's `additionalModelResponseFields`. Usage: input = uncached +
//! cache reads + cache writes.

use serde_json::json;

use super::unique_id;
use super::wire::{ConverseResponse, finish_reason, stop_reason, stop_sequence};
use crate::anthropic::Block;
use crate::openai as o;
use crate::translate::reply::{self, ChatAnswer};
use crate::{Error, Usage};

fn parse(body: &[u8]) -> Result<ConverseResponse, Error> {
    crate::translate::from_object(body).map_err(Error::InvalidResponse)
}

pub(super) fn chat(body: &[u8]) -> Result<(o::ChatCompletion, Usage), Error> {
    let resp = parse(body)?;
    let mut answer = ChatAnswer::default();
    for block in resp.output.message.content {
        if let Some(t) = block.text {
            answer.text.push_str(&t);
        }
        if let Some(r) = block.reasoning_content.and_then(|r| r.reasoning_text) {
            answer.reasoning.push_str(&r.text);
        }
        if let Some(call) = block.tool_use {
            answer.tool_calls.push(o::ToolCall {
                id: call.tool_use_id,
                kind: "function".into(),
                function: o::FunctionCall {
                    name: call.name,
                    arguments: serde_json::to_string(&call.input).map_err(Error::response)?,
                },
            });
        }
    }
    let id = format!("chatcmpl-bdrk-{}", unique_id());
    let reason = finish_reason(resp.stop_reason.as_deref());
    let out = reply::chat_completion(id, String::new(), answer, reason, resp.usage.chat());
    Ok((out, resp.usage.to_usage()))
}

pub(super) fn messages(body: &[u8]) -> Result<(Vec<u8>, Usage), Error> {
    let resp = parse(body)?;
    let mut content = Vec::new();
    for block in resp.output.message.content {
        if let Some(t) = block.text {
            content.push(Block::Text {
                text: t,
                citations: None,
                cache_control: None,
            });
        }
        if let Some(r) = block.reasoning_content {
            if let Some(rt) = r.reasoning_text {
                content.push(Block::Thinking {
                    thinking: rt.text,
                    signature: rt.signature.unwrap_or_default(),
                });
            }
            if let Some(data) = r.redacted_content {
                content.push(Block::RedactedThinking { data });
            }
        }
        if let Some(call) = block.tool_use {
            let input = if call.input.is_object() {
                call.input
            } else {
                json!({ "_raw": call.input })
            };
            content.push(Block::ToolUse {
                id: call.tool_use_id,
                name: call.name,
                input,
                cache_control: None,
            });
        }
    }
    let bytes = reply::message(
        format!("msg_bdrk_{}", unique_id()),
        String::new(),
        content,
        stop_reason(resp.stop_reason.as_deref()),
        stop_sequence(resp.additional_model_response_fields.as_ref()),
        resp.usage.messages(),
    )?;
    Ok((bytes, resp.usage.to_usage()))
}
