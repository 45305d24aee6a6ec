//! An OpenAI chat completions client served by an Anthropic provider.
//!
//! Request: system and developer messages become `system`; user content parts become text,
//! image (`data:` URLs → base64 source, `http(s)` URLs → url source) and document (inline
//! PDF `file` parts) blocks; assistant `tool_calls` become `tool_use` blocks (arguments
//! parsed to an object); consecutive `tool` messages become one user message of
//! `tool_result` blocks; `tools`, `tool_choice` (+ `parallel_tool_calls: false` →
//! `disable_parallel_tool_use`), `max_completion_tokens`/`max_tokens` (default
//! [`DEFAULT_MAX_TOKENS`]), `temperature`, `top_p`, `stop` → `stop_sequences`, `user` →
//! `metadata.user_id`, `stream`, and `top_k` (not an OpenAI field, but some OpenAI-compatible
//! clients send it). Other OpenAI fields (penalties, seed, logprobs,
//! `response_format`, `reasoning_effort`, ...) have no Anthropic equivalent and are dropped,
//! since Anthropic rejects unknown fields. `n > 1`, audio input and uploaded file ids are
//! unsupported.
//!
//! Response: text blocks are joined into `content`, thinking into `reasoning_content`,
//! `tool_use` blocks become `tool_calls`; `created` is 0 (this crate reads no clock).

use serde_json::{Value, json};

use super::reply::{self, ChatAnswer};
use super::{
    RequestOut, finish_reason, function_tool, is_http_url, parse_data_url, require_model,
    single_choice, stream_flags, tool_arguments,
};
use crate::anthropic::{self as a, Block, MessagesRequest, MessagesResponse, Role, Source};
use crate::openai::{self as o, ChatMessage, ChatRequest, ContentPart};
use crate::{Error, Usage};

/// `max_tokens` sent when the client gave no limit (Anthropic requires one).
pub const DEFAULT_MAX_TOKENS: u64 = 4096;

/// The Anthropic body for a chat request already read; `model` overrides the request's.
pub(super) fn request(req: ChatRequest, model: Option<&str>) -> Result<RequestOut, Error> {
    let model = require_model(req.model, model)?;
    single_choice(req.n, "Anthropic")?;
    let mut system = Vec::new();
    let mut messages: Vec<a::Message> = Vec::new();
    // Whether the last message holds only tool results (the next ones merge into it).
    let mut in_tool_results = false;
    for msg in req.messages {
        let mut tool_result = false;
        match msg {
            ChatMessage::System { content, .. } | ChatMessage::Developer { content, .. } => {
                system.extend(text_blocks(content, "system")?);
            }
            ChatMessage::User { content, .. } => {
                messages.push(a::Message {
                    role: Role::User,
                    content: user_content(content)?,
                });
            }
            ChatMessage::Assistant {
                content,
                tool_calls,
                refusal,
                ..
            } => {
                let mut blocks = Vec::new();
                if let Some(c) = content {
                    blocks.extend(text_blocks(c, "assistant")?.into_iter().filter_map(|b| {
                        (!b.text.is_empty()).then(|| text(b.text, b.cache_control))
                    }));
                }
                if let Some(r) = refusal.filter(|r| !r.is_empty()) {
                    blocks.push(text(r, None));
                }
                for call in tool_calls.unwrap_or_default() {
                    blocks.push(Block::ToolUse {
                        input: tool_arguments(&call.function.arguments, &call.function.name)?,
                        id: call.id,
                        name: call.function.name,
                        cache_control: None,
                    });
                }
                if !blocks.is_empty() {
                    messages.push(a::Message {
                        role: Role::Assistant,
                        content: a::Content::Blocks(blocks),
                    });
                }
            }
            ChatMessage::Tool {
                content,
                tool_call_id,
            } => {
                tool_result = true;
                let block = Block::ToolResult {
                    tool_use_id: tool_call_id,
                    content: Some(tool_content(content)?),
                    is_error: None,
                    cache_control: None,
                };
                match messages.last_mut() {
                    Some(a::Message {
                        content: a::Content::Blocks(blocks),
                        ..
                    }) if in_tool_results => blocks.push(block),
                    _ => messages.push(a::Message {
                        role: Role::User,
                        content: a::Content::Blocks(vec![block]),
                    }),
                }
            }
        }
        in_tool_results = tool_result;
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
    let tool_choice = match (&tools, req.tool_choice) {
        (Some(_), choice) => tool_choice(choice.as_ref(), req.parallel_tool_calls)?,
        (None, _) => None,
    };
    let (stream, hide_usage_chunk) = stream_flags(req.stream, req.stream_options.as_ref());
    let out = MessagesRequest {
        model: Some(model),
        system: system_prompt(system),
        messages,
        max_tokens: Some(
            req.max_completion_tokens
                .or(req.max_tokens)
                .unwrap_or(DEFAULT_MAX_TOKENS),
        ),
        stop_sequences: stop_sequences(req.stop)?,
        stream: stream.then_some(true),
        temperature: req.temperature,
        top_p: req.top_p,
        // Not an OpenAI field, but vLLM-style clients (and Gemini clients, translated) send it.
        top_k: req.extra.get("top_k").and_then(Value::as_u64),
        tools,
        tool_choice,
        metadata: req.user.map(|u| a::Metadata { user_id: Some(u) }),
        extra: Default::default(),
    };
    Ok(RequestOut {
        body: serde_json::to_vec(&out).map_err(Error::request)?,
        stream,
        hide_usage_chunk,
    })
}

fn text(text: String, cache_control: Option<Value>) -> Block {
    Block::Text {
        text,
        citations: None,
        cache_control,
    }
}

/// Text-only content (system prompts, assistant text) as text blocks.
fn text_blocks(content: o::Content, role: &str) -> Result<Vec<a::TextBlock>, Error> {
    let block = |text, cache_control| a::TextBlock {
        kind: "text".into(),
        text,
        cache_control,
    };
    match content {
        o::Content::Text(s) => Ok(vec![block(s, None)]),
        o::Content::Parts(parts) => parts
            .into_iter()
            .map(|p| match p {
                ContentPart::Text {
                    text,
                    cache_control,
                } => Ok(block(text, cache_control)),
                ContentPart::Refusal { refusal } => Ok(block(refusal, None)),
                _ => Err(Error::InvalidRequest(format!(
                    "{role} messages may only contain text parts"
                ))),
            })
            .collect(),
    }
}

fn system_prompt(mut blocks: Vec<a::TextBlock>) -> Option<a::System> {
    match blocks.len() {
        0 => None,
        1 if blocks[0].cache_control.is_none() => blocks.pop().map(|b| a::System::Text(b.text)),
        _ => Some(a::System::Blocks(blocks)),
    }
}

fn user_content(content: o::Content) -> Result<a::Content, Error> {
    match content {
        o::Content::Text(s) => Ok(a::Content::Text(s)),
        o::Content::Parts(parts) => Ok(a::Content::Blocks(
            parts
                .into_iter()
                .map(user_block)
                .collect::<Result<_, _>>()?,
        )),
    }
}

fn user_block(part: ContentPart) -> Result<Block, Error> {
    match part {
        ContentPart::Text {
            text: t,
            cache_control,
        } => Ok(text(t, cache_control)),
        ContentPart::Refusal { refusal } => Ok(text(refusal, None)),
        ContentPart::ImageUrl { image_url } => Ok(Block::Image {
            source: url_source(&image_url.url, "image_url")?,
            cache_control: None,
        }),
        ContentPart::File { file } => match file.file_data {
            Some(data) => Ok(Block::Document {
                source: url_source(&data, "file_data")?,
                title: None,
                cache_control: None,
            }),
            None => Err(Error::Unsupported(
                "file parts must carry file_data: uploaded file ids cannot be sent to Anthropic"
                    .into(),
            )),
        },
        ContentPart::InputAudio { .. } => Err(Error::Unsupported(
            "audio input is not supported by Anthropic providers".into(),
        )),
    }
}

fn url_source(url: &str, field: &str) -> Result<Source, Error> {
    if let Some((media_type, data)) = parse_data_url(url) {
        Ok(Source::Base64 {
            media_type: media_type.to_string(),
            data: data.to_string(),
        })
    } else if is_http_url(url) {
        Ok(Source::Url {
            url: url.to_string(),
        })
    } else {
        Err(Error::InvalidRequest(format!(
            "{field} must be an http(s) URL or a base64 data: URL"
        )))
    }
}

/// A tool message's content as `tool_result` content.
fn tool_content(content: o::Content) -> Result<a::Content, Error> {
    match content {
        o::Content::Text(s) => Ok(a::Content::Text(s)),
        o::Content::Parts(parts) => Ok(a::Content::Blocks(
            parts
                .into_iter()
                .map(|p| match p {
                    ContentPart::Text { .. } | ContentPart::ImageUrl { .. } => user_block(p),
                    _ => Err(Error::InvalidRequest(
                        "tool messages may only contain text and image parts".into(),
                    )),
                })
                .collect::<Result<_, _>>()?,
        )),
    }
}

fn tool(t: o::Tool) -> Result<a::Tool, Error> {
    let f = function_tool(t, "Anthropic")?;
    Ok(a::Tool {
        kind: None,
        name: f.name,
        description: f.description,
        input_schema: Some(
            f.parameters
                .unwrap_or_else(|| json!({"type": "object", "properties": {}})),
        ),
        cache_control: None,
        extra: Default::default(),
    })
}

fn tool_choice(choice: Option<&Value>, parallel: Option<bool>) -> Result<Option<Value>, Error> {
    let mut out = match choice {
        None | Some(Value::Null) => json!({"type": "auto"}),
        Some(Value::String(s)) => match s.as_str() {
            "auto" => json!({"type": "auto"}),
            "none" => return Ok(Some(json!({"type": "none"}))),
            "required" => json!({"type": "any"}),
            other => {
                return Err(Error::InvalidRequest(format!(
                    "tool_choice: unknown value {other:?}"
                )));
            }
        },
        Some(v) => match v.pointer("/function/name").and_then(Value::as_str) {
            Some(name) if v.get("type").and_then(Value::as_str) == Some("function") => {
                json!({"type": "tool", "name": name})
            }
            _ => {
                return Err(Error::InvalidRequest(
                    "tool_choice must be none, auto, required or a function".into(),
                ));
            }
        },
    };
    if parallel == Some(false) {
        out["disable_parallel_tool_use"] = true.into();
    } else if choice.is_none() {
        return Ok(None);
    }
    Ok(Some(out))
}

fn stop_sequences(stop: Option<Value>) -> Result<Option<Vec<String>>, Error> {
    let bad = || Error::InvalidRequest("stop must be a string or an array of strings".into());
    match stop {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(vec![s])),
        Some(Value::Array(items)) if items.is_empty() => Ok(None),
        Some(Value::Array(items)) => items
            .into_iter()
            .map(|v| match v {
                Value::String(s) => Ok(s),
                _ => Err(bad()),
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some),
        Some(_) => Err(bad()),
    }
}

/// The Anthropic usage as OpenAI usage.
pub(super) fn chat_usage(u: &a::MessagesUsage) -> o::ChatUsage {
    let n = u.to_usage();
    o::ChatUsage {
        prompt_tokens: n.input_tokens,
        completion_tokens: n.output_tokens,
        total_tokens: n.input_tokens + n.output_tokens,
        prompt_tokens_details: Some(o::PromptTokensDetails {
            cached_tokens: Some(n.cache_read_tokens),
        }),
        completion_tokens_details: None,
        prompt_cache_hit_tokens: None,
    }
}

/// The chat completion for an Anthropic message body, with the usage.
pub(super) fn response(body: &[u8]) -> Result<(o::ChatCompletion, Usage), Error> {
    let msg: MessagesResponse = super::from_object(body).map_err(Error::InvalidResponse)?;
    let mut usage = msg.usage.to_usage();
    usage.note_model(&msg.model);
    let mut answer = ChatAnswer::default();
    for block in msg.content {
        match block {
            Block::Text { text: t, .. } => answer.text.push_str(&t),
            Block::Thinking { thinking, .. } => answer.reasoning.push_str(&thinking),
            Block::ToolUse {
                id, name, input, ..
            } => answer.tool_calls.push(o::ToolCall {
                id,
                kind: "function".into(),
                function: o::FunctionCall {
                    name,
                    arguments: serde_json::to_string(&input).map_err(Error::response)?,
                },
            }),
            _ => {}
        }
    }
    let reason = finish_reason(msg.stop_reason.as_deref());
    let usage_out = chat_usage(&msg.usage);
    let out = reply::chat_completion(msg.id, msg.model, answer, reason, usage_out);
    Ok((out, usage))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn translate(body: Value) -> Value {
        let out = request(serde_json::from_value(body).unwrap(), None).unwrap();
        serde_json::from_slice(&out.body).unwrap()
    }

    #[test]
    fn tool_results_merge_but_not_into_user_text() {
        let out = translate(json!({
            "model": "m",
            "messages": [
                {"role": "user", "content": "go"},
                {"role": "assistant", "content": "", "tool_calls": [
                    {"id": "a", "type": "function", "function": {"name": "f", "arguments": ""}},
                    {"id": "b", "type": "function", "function": {"name": "f", "arguments": "{}"}}
                ]},
                {"role": "tool", "tool_call_id": "a", "content": "1"},
                {"role": "tool", "tool_call_id": "b", "content": "2"},
                {"role": "user", "content": "and?"},
                {"role": "tool", "tool_call_id": "c", "content": "3"}
            ]
        }));
        let m = &out["messages"];
        assert_eq!(m.as_array().unwrap().len(), 5);
        // The empty assistant text is dropped; empty arguments are an empty object.
        assert_eq!(m[1]["content"].as_array().unwrap().len(), 2);
        assert_eq!(m[1]["content"][0]["input"], json!({}));
        assert_eq!(m[2]["content"].as_array().unwrap().len(), 2);
        assert_eq!(m[3], json!({"role": "user", "content": "and?"}));
        assert_eq!(m[4]["content"][0]["tool_use_id"], "c");
        assert_eq!(out["max_tokens"], DEFAULT_MAX_TOKENS);
    }

    #[test]
    fn tool_choice_mapping() {
        let tools = json!([{"type": "function", "function": {"name": "f"}}]);
        let choice = |tc: Value, parallel: Value| {
            let mut body = json!({"model": "m", "messages": [], "tools": tools});
            if !tc.is_null() {
                body["tool_choice"] = tc;
            }
            if !parallel.is_null() {
                body["parallel_tool_calls"] = parallel;
            }
            translate(body)["tool_choice"].clone()
        };
        assert_eq!(choice(Value::Null, Value::Null), Value::Null);
        assert_eq!(choice(Value::Null, json!(true)), Value::Null);
        assert_eq!(
            choice(Value::Null, json!(false)),
            json!({"type": "auto", "disable_parallel_tool_use": true})
        );
        assert_eq!(choice(json!("auto"), Value::Null), json!({"type": "auto"}));
        assert_eq!(choice(json!("none"), json!(false)), json!({"type": "none"}));
        assert_eq!(
            choice(json!("required"), Value::Null),
            json!({"type": "any"})
        );
        assert_eq!(
            choice(
                json!({"type": "function", "function": {"name": "f"}}),
                Value::Null
            ),
            json!({"type": "tool", "name": "f"})
        );
        // Without tools there is no tool_choice, and a default input schema is filled in.
        let out = translate(json!({"model": "m", "messages": [], "tool_choice": "required"}));
        assert!(out.get("tool_choice").is_none());
        let out = translate(json!({"model": "m", "messages": [], "tools": tools}));
        assert_eq!(out["tools"][0]["input_schema"]["type"], "object");
    }

    #[test]
    fn response_without_text_has_null_content() {
        let body = json!({
            "id": "msg_1", "type": "message", "role": "assistant", "model": "c",
            "content": [{"type": "tool_use", "id": "t", "name": "f", "input": {}}],
            "stop_reason": "tool_use", "usage": {"input_tokens": 1, "output_tokens": 2}
        });
        let (out, usage) = response(body.to_string().as_bytes()).unwrap();
        let v = serde_json::to_value(out).unwrap();
        assert_eq!(v["choices"][0]["message"]["content"], Value::Null);
        assert_eq!(
            v["choices"][0]["message"]["tool_calls"][0]["function"]["arguments"],
            "{}"
        );
        assert_eq!((usage.input_tokens, usage.output_tokens), (1, 2));
    }
}
