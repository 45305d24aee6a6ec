//! An Anthropic messages client served by an OpenAI-compatible provider.
//!
//! Request: `system` becomes a leading system message (text blocks joined with blank lines);
//! text-only content becomes a string (blocks joined with blank lines), other content an
//! array of text, `image_url` (base64 → `data:` URL) and `file` (base64 PDF) parts; `tool_use`
//! blocks become `tool_calls` (input serialized to a JSON string); `tool_result` blocks become
//! `tool` messages placed before the rest of their user message (images in a tool result
//! follow in a user message, since tool messages carry only text); thinking blocks are
//! dropped; client `tools`, `tool_choice` (`any` → `required`, `disable_parallel_tool_use` →
//! `parallel_tool_calls: false`), `max_tokens`, `stop_sequences` → `stop`, `temperature`,
//! `top_p`, `metadata.user_id` → `user` (when at most 64 characters), `stream` (with `stream_options.include_usage`).
//! `top_k`, `thinking` and other Anthropic-only fields are dropped; server tools, URL or
//! file-id documents and other block types are unsupported.
//!
//! Response: reasoning (`reasoning_content`/`reasoning`) becomes a thinking block with an
//! empty signature, text a text block, tool calls `tool_use` blocks. Tool call arguments that
//! are not a JSON object (models do produce broken JSON, e.g. when cut by `max_tokens`) are
//! kept as `{"_raw": "<the text>"}` rather than failing the whole response; empty arguments
//! are `{}`. Usage: `input_tokens` = prompt tokens minus cached ones, which are reported as
//! `cache_read_input_tokens`.

use serde_json::{Value, json};

use super::reply;
use super::{RequestOut, parse_request, require_model, stop_reason, unsupported_block};
use crate::anthropic::{self as a, Block, MessagesRequest, Role, Source};
use crate::openai::{self as o, ChatMessage, ChatRequest, ContentPart};
use crate::{Error, Usage};

/// OpenAI rejects a longer `user`; longer `metadata.user_id`s (Claude Code sends ~150
/// characters) are dropped.
const MAX_USER_LEN: usize = 64;

/// Who the unsupported block errors name.
const PROVIDER: &str = "an OpenAI-compatible provider";

pub(super) fn request(body: &[u8], model: Option<&str>) -> Result<RequestOut, Error> {
    let req: MessagesRequest = parse_request(body)?;
    let model = require_model(req.model, model)?;
    let mut messages = Vec::new();
    match req.system {
        Some(a::System::Text(s)) => messages.push(ChatMessage::System {
            content: o::Content::Text(s),
            name: None,
        }),
        Some(a::System::Blocks(blocks)) if !blocks.is_empty() => {
            let texts: Vec<String> = blocks.into_iter().map(|b| b.text).collect();
            messages.push(ChatMessage::System {
                content: o::Content::Text(texts.join("\n\n")),
                name: None,
            });
        }
        _ => {}
    }
    for msg in req.messages {
        match msg.role {
            Role::User => user_messages(msg.content, &mut messages)?,
            Role::Assistant => messages.push(assistant_message(msg.content)?),
        }
    }
    let tools = match req.tools {
        Some(tools) if !tools.is_empty() => Some(
            tools
                .into_iter()
                .map(tool)
                .collect::<Result<Vec<_>, Error>>()?,
        ),
        _ => None,
    };
    let (tool_choice, parallel_tool_calls) = match (&tools, &req.tool_choice) {
        (Some(_), Some(choice)) => tool_choice(choice)?,
        _ => (None, None),
    };
    let stream = req.stream.unwrap_or(false);
    let out = ChatRequest {
        model: Some(model),
        messages,
        max_tokens: req.max_tokens,
        temperature: req.temperature,
        top_p: req.top_p,
        stop: req
            .stop_sequences
            .filter(|s| !s.is_empty())
            .map(|s| s.into_iter().map(Value::String).collect()),
        stream: stream.then_some(true),
        stream_options: stream.then(|| o::StreamOptions {
            include_usage: Some(true),
            extra: Default::default(),
        }),
        tools,
        tool_choice,
        parallel_tool_calls,
        user: req
            .metadata
            .and_then(|m| m.user_id)
            .filter(|u| u.len() <= MAX_USER_LEN),
        ..Default::default()
    };
    Ok(RequestOut {
        body: serde_json::to_vec(&out).map_err(Error::request)?,
        stream,
        // The gateway asked for the usage chunk; the translator consumes it.
        hide_usage_chunk: stream,
    })
}

/// Content parts for a list of blocks: a string when all are text.
fn parts_content(parts: Vec<ContentPart>) -> o::Content {
    if parts.iter().all(|p| matches!(p, ContentPart::Text { .. })) {
        let texts: Vec<String> = parts
            .into_iter()
            .filter_map(|p| match p {
                ContentPart::Text { text, .. } => Some(text),
                _ => None,
            })
            .collect();
        o::Content::Text(texts.join("\n\n"))
    } else {
        o::Content::Parts(parts)
    }
}

fn text_part(text: String) -> ContentPart {
    ContentPart::Text {
        text,
        cache_control: None,
    }
}

/// A user message: tool results first (as `tool` messages), then the rest.
fn user_messages(content: a::Content, out: &mut Vec<ChatMessage>) -> Result<(), Error> {
    let blocks = match content {
        a::Content::Text(s) => {
            out.push(ChatMessage::User {
                content: o::Content::Text(s),
                name: None,
            });
            return Ok(());
        }
        a::Content::Blocks(b) => b,
    };
    let mut parts = Vec::new();
    let mut tool_images = Vec::new();
    for block in blocks {
        match block {
            Block::ToolResult {
                tool_use_id,
                content,
                ..
            } => {
                let mut texts = Vec::new();
                match content {
                    None => {}
                    Some(a::Content::Text(s)) => texts.push(s),
                    Some(a::Content::Blocks(inner)) => {
                        for b in inner {
                            match b {
                                Block::Text { text, .. } => texts.push(text),
                                Block::Image { source, .. } => {
                                    tool_images.push(image_part(source)?)
                                }
                                other => {
                                    return Err(unsupported_block(
                                        &other,
                                        "a tool result",
                                        PROVIDER,
                                    ));
                                }
                            }
                        }
                    }
                }
                out.push(ChatMessage::Tool {
                    content: o::Content::Text(texts.join("\n\n")),
                    tool_call_id: tool_use_id,
                });
            }
            Block::Text { text, .. } => parts.push(text_part(text)),
            Block::Image { source, .. } => parts.push(image_part(source)?),
            Block::Document { source, title, .. } => parts.push(document_part(source, title)?),
            other => return Err(unsupported_block(&other, "a user message", PROVIDER)),
        }
    }
    if !tool_images.is_empty() {
        tool_images.extend(parts);
        parts = tool_images;
    }
    if !parts.is_empty() {
        out.push(ChatMessage::User {
            content: parts_content(parts),
            name: None,
        });
    }
    Ok(())
}

fn assistant_message(content: a::Content) -> Result<ChatMessage, Error> {
    let blocks = match content {
        a::Content::Text(s) => {
            return Ok(ChatMessage::Assistant {
                content: Some(o::Content::Text(s)),
                tool_calls: None,
                refusal: None,
                name: None,
            });
        }
        a::Content::Blocks(b) => b,
    };
    let mut texts = Vec::new();
    let mut calls = Vec::new();
    for block in blocks {
        match block {
            Block::Text { text, .. } => texts.push(text),
            Block::ToolUse {
                id, name, input, ..
            } => calls.push(o::ToolCall {
                id,
                kind: "function".into(),
                function: o::FunctionCall {
                    name,
                    arguments: serde_json::to_string(&input).map_err(Error::request)?,
                },
            }),
            Block::Thinking { .. } | Block::RedactedThinking { .. } => {}
            other => return Err(unsupported_block(&other, "an assistant message", PROVIDER)),
        }
    }
    let content = if texts.is_empty() && !calls.is_empty() {
        None
    } else {
        Some(o::Content::Text(texts.join("\n\n")))
    };
    Ok(ChatMessage::Assistant {
        content,
        tool_calls: (!calls.is_empty()).then_some(calls),
        refusal: None,
        name: None,
    })
}

fn image_part(source: Source) -> Result<ContentPart, Error> {
    let url = match source {
        Source::Base64 { media_type, data } => format!("data:{media_type};base64,{data}"),
        Source::Url { url } => url,
        _ => {
            return Err(Error::Unsupported(
                "image sources other than base64 and url are not supported".into(),
            ));
        }
    };
    Ok(ContentPart::ImageUrl {
        image_url: o::ImageUrl { url, detail: None },
    })
}

fn document_part(source: Source, title: Option<String>) -> Result<ContentPart, Error> {
    match source {
        Source::Base64 { media_type, data } => Ok(ContentPart::File {
            file: o::FileRef {
                file_data: Some(format!("data:{media_type};base64,{data}")),
                file_id: None,
                filename: title,
            },
        }),
        Source::Text { data, .. } => Ok(text_part(data)),
        _ => Err(Error::Unsupported(
            "document sources other than base64 and text are not supported".into(),
        )),
    }
}

fn tool(t: a::Tool) -> Result<o::Tool, Error> {
    if let Some(kind) = t.kind.as_deref().filter(|k| *k != "custom") {
        return Err(Error::Unsupported(format!(
            "server tool {kind} is not supported by OpenAI-compatible providers"
        )));
    }
    let schema = t
        .input_schema
        .ok_or_else(|| Error::InvalidRequest(format!("tool {} has no input_schema", t.name)))?;
    Ok(o::Tool {
        kind: "function".into(),
        function: Some(o::FunctionDef {
            name: t.name,
            description: t.description,
            parameters: Some(schema),
            strict: None,
        }),
    })
}

fn tool_choice(choice: &Value) -> Result<(Option<Value>, Option<bool>), Error> {
    let kind = choice.get("type").and_then(Value::as_str);
    let out = match kind {
        Some("auto") => json!("auto"),
        Some("any") => json!("required"),
        Some("none") => json!("none"),
        Some("tool") => match choice.get("name").and_then(Value::as_str) {
            Some(name) => json!({"type": "function", "function": {"name": name}}),
            None => return Err(Error::InvalidRequest("tool_choice.name is required".into())),
        },
        _ => {
            return Err(Error::InvalidRequest(
                "tool_choice.type must be auto, any, tool or none".into(),
            ));
        }
    };
    let parallel =
        (choice.get("disable_parallel_tool_use") == Some(&Value::Bool(true))).then_some(false);
    Ok((Some(out), parallel))
}

/// Tool call arguments as an input object (see the module doc for broken JSON).
pub(super) fn tool_input(arguments: &str) -> Value {
    if arguments.trim().is_empty() {
        return json!({});
    }
    match serde_json::from_str::<Value>(arguments) {
        Ok(v @ Value::Object(_)) => v,
        _ => json!({ "_raw": arguments }),
    }
}

/// OpenAI usage in Anthropic terms.
pub(super) fn messages_usage(u: &o::ChatUsage) -> a::MessagesUsage {
    let cached = u.cached_tokens().min(u.prompt_tokens);
    a::MessagesUsage {
        input_tokens: u.prompt_tokens - cached,
        output_tokens: u.completion_tokens,
        cache_creation_input_tokens: Some(0),
        cache_read_input_tokens: Some(cached),
    }
}

pub(super) fn response(body: &[u8]) -> Result<(Vec<u8>, Usage), Error> {
    let resp: o::ChatCompletion = super::from_object(body).map_err(Error::InvalidResponse)?;
    let mut usage = resp
        .usage
        .as_ref()
        .map(o::ChatUsage::to_usage)
        .unwrap_or_default();
    usage.note_model(&resp.model);
    let choice = resp
        .choices
        .into_iter()
        .next()
        .ok_or_else(|| Error::InvalidResponse("response has no choices".into()))?;
    let msg = choice.message;
    let mut content = Vec::new();
    if let Some(r) = msg.reasoning_text() {
        content.push(Block::Thinking {
            thinking: r.to_string(),
            signature: String::new(),
        });
    }
    let text_block = |text| Block::Text {
        text,
        citations: None,
        cache_control: None,
    };
    if let Some(o::Text(t)) = msg.content.filter(|t| !t.0.is_empty()) {
        content.push(text_block(t));
    }
    if let Some(r) = msg.refusal.filter(|r| !r.is_empty()) {
        content.push(text_block(r));
    }
    let calls = msg.tool_calls.unwrap_or_default();
    let has_calls = !calls.is_empty();
    for call in calls {
        content.push(Block::ToolUse {
            input: tool_input(&call.function.arguments),
            id: call.id,
            name: call.function.name,
            cache_control: None,
        });
    }
    let body = reply::message(
        resp.id,
        resp.model,
        content,
        stop_reason(choice.finish_reason.as_deref(), has_calls),
        None,
        resp.usage.as_ref().map(messages_usage).unwrap_or_default(),
    )?;
    Ok((body, usage))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn translate(body: Value) -> Value {
        let out = request(body.to_string().as_bytes(), None).unwrap();
        serde_json::from_slice(&out.body).unwrap()
    }

    #[test]
    fn user_ids_longer_than_openai_accepts_are_dropped() {
        let body = |id: &str| json!({"model": "m", "messages": [], "metadata": {"user_id": id}});
        assert_eq!(translate(body("u-1"))["user"], "u-1");
        assert!(translate(body(&"x".repeat(65))).get("user").is_none());
    }

    #[test]
    fn tool_only_turns_and_tool_images() {
        let out = translate(json!({
            "model": "m",
            "messages": [
                {"role": "assistant", "content": [
                    {"type": "thinking", "thinking": "t", "signature": "s"},
                    {"type": "tool_use", "id": "a", "name": "f", "input": {"x": 1}}
                ]},
                {"role": "user", "content": [
                    {"type": "tool_result", "tool_use_id": "a", "is_error": true, "content": [
                        {"type": "text", "text": "failed"},
                        {"type": "image", "source": {"type": "base64", "media_type": "image/gif", "data": "R0lG"}}
                    ]}
                ]},
                {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "b"}]}
            ]
        }));
        let m = out["messages"].as_array().unwrap();
        assert_eq!(m.len(), 4);
        assert_eq!(m[0]["content"], Value::Null);
        assert_eq!(m[0]["tool_calls"][0]["function"]["arguments"], "{\"x\":1}");
        assert_eq!(
            m[1],
            json!({"role": "tool", "tool_call_id": "a", "content": "failed"})
        );
        assert_eq!(
            m[2]["content"][0]["image_url"]["url"],
            "data:image/gif;base64,R0lG"
        );
        assert_eq!(
            m[3],
            json!({"role": "tool", "tool_call_id": "b", "content": ""})
        );
        assert!(out.get("stream_options").is_none());
    }

    #[test]
    fn tool_inputs() {
        assert_eq!(tool_input(""), json!({}));
        assert_eq!(tool_input(" {\"a\":1} "), json!({"a": 1}));
        assert_eq!(tool_input("[1]"), json!({"_raw": "[1]"}));
        assert_eq!(tool_input("{\"a\":"), json!({"_raw": "{\"a\":"}));
    }

    #[test]
    fn stop_reasons() {
        let resp = |finish: &str, calls: bool| {
            let mut msg = json!({"role": "assistant", "content": "x"});
            if calls {
                msg["tool_calls"] = json!([{"id": "c", "type": "function",
                    "function": {"name": "f", "arguments": "{}"}}]);
            }
            let body = json!({"choices": [{"message": msg, "finish_reason": finish}]});
            let (out, _) = response(body.to_string().as_bytes()).unwrap();
            let v: Value = serde_json::from_slice(&out).unwrap();
            v["stop_reason"].as_str().unwrap().to_string()
        };
        assert_eq!(resp("stop", false), "end_turn");
        assert_eq!(resp("stop", true), "tool_use");
        assert_eq!(resp("tool_calls", true), "tool_use");
        assert_eq!(resp("length", false), "max_tokens");
        assert_eq!(resp("content_filter", false), "refusal");
    }
}
