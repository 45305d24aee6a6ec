//! OpenAI chat completions request → Bedrock Converse request.
//!
//! System and developer messages become `system` text blocks; user content parts become
//! text, image (`data:` URLs; `http(s)` URLs are unsupported) and document (inline `file`
//! parts) blocks; assistant text, refusals and `tool_calls` become text and `toolUse` blocks
//! (arguments parsed to an object); `tool` messages become `toolResult` blocks in a user
//! message (consecutive ones merged); `cache_control` on a text part adds a `cachePoint`
//! after it. `tools` → `toolConfig.tools`, `tool_choice` `auto` → `{auto:{}}`, `required` →
//! `{any:{}}`, a function → `{tool:{name}}`, `none` → no tools (unless the conversation holds
//! tool blocks, which need them: then no `toolChoice`). `max_completion_tokens` /
//! `max_tokens`, `temperature`, `top_p`, `stop` → `inferenceConfig`. Other fields (penalties,
//! seed, `response_format`, `user`, ...) have no Converse equivalent and are dropped. `n > 1`,
//! audio input and uploaded file ids are unsupported.

use serde_json::{Value, json};

use super::wire::{self, ContentBlock, ConverseRequest, ToolResult, ToolUse};
use super::{Conversation, Converted, apply_tools, document_block, image_block, url_image_error};
use crate::Error;
use crate::openai::{self as o, ChatMessage, ChatRequest, ContentPart};
use crate::translate::{
    function_tool, is_http_url, parse_data_url, require_model, single_choice, stream_flags,
    tool_arguments,
};

/// The Converse request for a chat request already read; `model` overrides the request's.
pub(super) fn request(req: ChatRequest, model: Option<&str>) -> Result<Converted, Error> {
    let model = require_model(req.model, model)?;
    single_choice(req.n, "Bedrock")?;
    let mut out = ConverseRequest::default();
    let mut conv = Conversation::default();
    for msg in req.messages {
        match msg {
            ChatMessage::System { content, .. } | ChatMessage::Developer { content, .. } => {
                out.system.extend(
                    text_blocks(content, "system")?
                        .into_iter()
                        .filter(|b| b.text.as_deref() != Some("")),
                );
            }
            ChatMessage::User { content, .. } => conv.push("user", user_blocks(content)?),
            ChatMessage::Assistant {
                content,
                tool_calls,
                refusal,
                ..
            } => {
                let mut blocks = Vec::new();
                if let Some(c) = content {
                    blocks.extend(
                        text_blocks(c, "assistant")?
                            .into_iter()
                            .filter(|b| b.text.as_deref() != Some("")),
                    );
                }
                if let Some(r) = refusal.filter(|r| !r.is_empty()) {
                    blocks.push(ContentBlock::text(r));
                }
                for call in tool_calls.unwrap_or_default() {
                    blocks.push(ContentBlock {
                        tool_use: Some(ToolUse {
                            input: tool_arguments(&call.function.arguments, &call.function.name)?,
                            tool_use_id: call.id,
                            name: call.function.name,
                        }),
                        ..Default::default()
                    });
                }
                conv.push("assistant", blocks);
            }
            ChatMessage::Tool {
                content,
                tool_call_id,
            } => {
                let block = ContentBlock {
                    tool_result: Some(ToolResult {
                        tool_use_id: tool_call_id,
                        content: tool_content(content)?,
                        status: None,
                    }),
                    ..Default::default()
                };
                conv.push("user", vec![block]);
            }
        }
    }

    let tools = req
        .tools
        .unwrap_or_default()
        .into_iter()
        .map(tool)
        .collect::<Result<Vec<_>, Error>>()?;
    let (choice, none) = tool_choice(req.tool_choice.as_ref())?;
    apply_tools(&mut out, tools, choice, none, conv.has_tool_blocks);
    out.messages = conv.messages;
    out.inference_config = wire::InferenceConfig {
        max_tokens: req.max_completion_tokens.or(req.max_tokens),
        temperature: req.temperature,
        top_p: req.top_p,
        stop_sequences: stop_sequences(req.stop)?,
    };
    Ok((
        out,
        model,
        stream_flags(req.stream, req.stream_options.as_ref()),
    ))
}

/// Appends a text block, and a cache point after it if the part asked for caching.
fn push_text(out: &mut Vec<ContentBlock>, text: String, cached: bool) {
    out.push(ContentBlock::text(text));
    if cached {
        out.push(ContentBlock::cache_point());
    }
}

/// Text-only content (system prompts, assistant text) as text blocks.
fn text_blocks(content: o::Content, role: &str) -> Result<Vec<ContentBlock>, Error> {
    match content {
        o::Content::Text(s) => Ok(vec![ContentBlock::text(s)]),
        o::Content::Parts(parts) => {
            let mut out = Vec::new();
            for p in parts {
                match p {
                    ContentPart::Text {
                        text,
                        cache_control,
                    } => push_text(&mut out, text, cache_control.is_some()),
                    ContentPart::Refusal { refusal } => out.push(ContentBlock::text(refusal)),
                    _ => {
                        return Err(Error::InvalidRequest(format!(
                            "{role} messages may only contain text parts"
                        )));
                    }
                }
            }
            Ok(out)
        }
    }
}

fn user_blocks(content: o::Content) -> Result<Vec<ContentBlock>, Error> {
    let parts = match content {
        o::Content::Text(s) => return Ok(vec![ContentBlock::text(s)]),
        o::Content::Parts(parts) => parts,
    };
    let mut out = Vec::new();
    for part in parts {
        match part {
            ContentPart::Text {
                text,
                cache_control,
            } => push_text(&mut out, text, cache_control.is_some()),
            ContentPart::Refusal { refusal } => out.push(ContentBlock::text(refusal)),
            ContentPart::ImageUrl { image_url } => out.push(image(&image_url.url)?),
            ContentPart::File { file } => match &file.file_data {
                Some(data) => match parse_data_url(data) {
                    Some((media_type, data)) => {
                        out.push(document_block(media_type, data, file.filename.as_deref())?)
                    }
                    None => {
                        return Err(Error::InvalidRequest(
                            "file_data must be a base64 data: URL".into(),
                        ));
                    }
                },
                None => {
                    return Err(Error::Unsupported(
                        "file parts must carry file_data: uploaded file ids cannot be sent to \
                         Bedrock"
                            .into(),
                    ));
                }
            },
            ContentPart::InputAudio { .. } => {
                return Err(Error::Unsupported(
                    "audio input is not supported by Bedrock providers".into(),
                ));
            }
        }
    }
    Ok(out)
}

fn image(url: &str) -> Result<ContentBlock, Error> {
    if let Some((media_type, data)) = parse_data_url(url) {
        image_block(media_type, data)
    } else if is_http_url(url) {
        Err(url_image_error())
    } else {
        Err(Error::InvalidRequest(
            "image_url must be an http(s) URL or a base64 data: URL".into(),
        ))
    }
}

/// A tool message's content as `toolResult` content (text and images).
fn tool_content(content: o::Content) -> Result<Vec<ContentBlock>, Error> {
    match content {
        o::Content::Text(s) => Ok(vec![ContentBlock::text(s)]),
        o::Content::Parts(parts) => parts
            .into_iter()
            .map(|p| match p {
                ContentPart::Text { text, .. } => Ok(ContentBlock::text(text)),
                ContentPart::ImageUrl { image_url } => image(&image_url.url),
                _ => Err(Error::InvalidRequest(
                    "tool messages may only contain text and image parts".into(),
                )),
            })
            .collect(),
    }
}

fn tool(t: o::Tool) -> Result<Value, Error> {
    let f = function_tool(t, "Bedrock")?;
    Ok(wire::tool_spec(f.name, f.description, f.parameters))
}

/// The `toolChoice`, and whether the choice was `none`.
fn tool_choice(choice: Option<&Value>) -> Result<(Option<Value>, bool), Error> {
    let bad =
        || Error::InvalidRequest("tool_choice must be none, auto, required or a function".into());
    match choice {
        None | Some(Value::Null) => Ok((None, false)),
        Some(Value::String(s)) => match s.as_str() {
            "auto" => Ok((Some(json!({"auto": {}})), false)),
            "required" => Ok((Some(json!({"any": {}})), false)),
            "none" => Ok((None, true)),
            _ => Err(bad()),
        },
        Some(v) => match v.pointer("/function/name").and_then(Value::as_str) {
            Some(name) if v.get("type").and_then(Value::as_str) == Some("function") => {
                Ok((Some(json!({"tool": {"name": name}})), false))
            }
            _ => Err(bad()),
        },
    }
}

fn stop_sequences(stop: Option<Value>) -> Result<Vec<String>, Error> {
    let bad = || Error::InvalidRequest("stop must be a string or an array of strings".into());
    match stop {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::String(s)) => Ok(vec![s]),
        Some(Value::Array(items)) => items
            .into_iter()
            .map(|v| match v {
                Value::String(s) => Ok(s),
                _ => Err(bad()),
            })
            .collect(),
        Some(_) => Err(bad()),
    }
}
