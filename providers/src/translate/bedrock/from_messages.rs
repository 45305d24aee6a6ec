//! Anthropic messages request → Bedrock Converse request.
//!
//! `system` → `system` text blocks; text, image (base64), document (base64, or plain text
//! sent as a text block), `tool_use` → `toolUse`, `tool_result` → `toolResult` (`is_error` →
//! `status: error`), thinking → `reasoningContent.reasoningText` (with its signature),
//! redacted thinking → `reasoningContent.redactedContent`; `cache_control` on a block or a
//! tool adds a `cachePoint` after it. Client `tools` → `toolConfig.tools`, `tool_choice`
//! `auto`/`any`/`tool` → `{auto:{}}`/`{any:{}}`/`{tool:{name}}`, `none` → no tools (unless
//! the conversation holds tool blocks: then no `toolChoice`); `disable_parallel_tool_use`
//! has no equivalent and is dropped. `max_tokens`, `temperature`, `top_p`, `stop_sequences`
//! → `inferenceConfig`; `top_k` and `thinking` → `additionalModelRequestFields`. `metadata`
//! and other fields are dropped. URL and file-id sources, server tools and other block
//! types are unsupported.

use serde_json::{Value, json};

use super::wire::{
    self, ContentBlock, ConverseRequest, ReasoningContent, ReasoningText, ToolResult, ToolUse,
};
use super::{Conversation, Converted, apply_tools, document_block, image_block, url_image_error};
use crate::Error;
use crate::anthropic::{self as a, Block, MessagesRequest, Role, Source};
use crate::translate::{parse_request, require_model};

pub(super) fn request(body: &[u8], model: Option<&str>) -> Result<Converted, Error> {
    let req: MessagesRequest = parse_request(body)?;
    let model = require_model(req.model, model)?;
    let mut out = ConverseRequest::default();
    match req.system {
        Some(a::System::Text(s)) if !s.is_empty() => out.system.push(ContentBlock::text(s)),
        Some(a::System::Blocks(blocks)) => {
            for b in blocks {
                if !b.text.is_empty() {
                    out.system.push(ContentBlock::text(b.text));
                }
                if b.cache_control.is_some() {
                    out.system.push(ContentBlock::cache_point());
                }
            }
        }
        _ => {}
    }
    let mut conv = Conversation::default();
    for msg in req.messages {
        let role = match msg.role {
            Role::User => "user",
            Role::Assistant => "assistant",
        };
        let blocks = match msg.content {
            a::Content::Text(s) => vec![ContentBlock::text(s)],
            a::Content::Blocks(blocks) => {
                let mut out = Vec::new();
                for b in blocks {
                    block(b, &mut out)?;
                }
                out
            }
        };
        conv.push(role, blocks);
    }

    let mut tools = Vec::new();
    for t in req.tools.unwrap_or_default() {
        if t.kind.as_deref().is_some_and(|k| k != "custom") {
            return Err(Error::Unsupported(format!(
                "server tool {} is not supported by Bedrock providers",
                t.name
            )));
        }
        tools.push(wire::tool_spec(t.name, t.description, t.input_schema));
        if t.cache_control.is_some() {
            tools.push(json!({"cachePoint": {"type": "default"}}));
        }
    }
    let (choice, none) = tool_choice(req.tool_choice.as_ref())?;
    apply_tools(&mut out, tools, choice, none, conv.has_tool_blocks);
    out.messages = conv.messages;
    out.inference_config = wire::InferenceConfig {
        max_tokens: req.max_tokens,
        temperature: req.temperature,
        top_p: req.top_p,
        stop_sequences: req.stop_sequences.unwrap_or_default(),
    };
    if let Some(k) = req.top_k {
        out.additional_model_request_fields
            .insert("top_k".into(), k.into());
    }
    if let Some(thinking) = req.extra.get("thinking").filter(|v| !v.is_null()) {
        out.additional_model_request_fields
            .insert("thinking".into(), thinking.clone());
    }
    let stream = req.stream.unwrap_or(false);
    Ok((out, model, (stream, false)))
}

/// Appends the Converse blocks for one Anthropic block.
fn block(b: Block, out: &mut Vec<ContentBlock>) -> Result<(), Error> {
    let cache = match b {
        Block::Text {
            text,
            cache_control,
            ..
        } => {
            out.push(ContentBlock::text(text));
            cache_control
        }
        Block::Image {
            source,
            cache_control,
        } => {
            out.push(image(source)?);
            cache_control
        }
        Block::Document {
            source,
            title,
            cache_control,
        } => {
            out.push(match source {
                Source::Base64 { media_type, data } => {
                    document_block(&media_type, &data, title.as_deref())?
                }
                Source::Text { data, .. } => ContentBlock::text(data),
                _ => {
                    return Err(Error::Unsupported(
                        "Bedrock needs inline documents (base64 or text sources)".into(),
                    ));
                }
            });
            cache_control
        }
        Block::ToolUse {
            id,
            name,
            input,
            cache_control,
        } => {
            out.push(ContentBlock {
                tool_use: Some(ToolUse {
                    tool_use_id: id,
                    name,
                    input,
                }),
                ..Default::default()
            });
            cache_control
        }
        Block::ToolResult {
            tool_use_id,
            content,
            is_error,
            cache_control,
        } => {
            out.push(ContentBlock {
                tool_result: Some(ToolResult {
                    tool_use_id,
                    content: tool_result_content(content)?,
                    status: is_error.map(|e| if e { "error" } else { "success" }.to_string()),
                }),
                ..Default::default()
            });
            cache_control
        }
        Block::Thinking {
            thinking,
            signature,
        } => {
            out.push(ContentBlock {
                reasoning_content: Some(ReasoningContent {
                    reasoning_text: Some(ReasoningText {
                        text: thinking,
                        signature: (!signature.is_empty()).then_some(signature),
                    }),
                    redacted_content: None,
                }),
                ..Default::default()
            });
            None
        }
        Block::RedactedThinking { data } => {
            out.push(ContentBlock {
                reasoning_content: Some(ReasoningContent {
                    reasoning_text: None,
                    redacted_content: Some(data),
                }),
                ..Default::default()
            });
            None
        }
        Block::Other(v) => {
            let kind = v.get("type").and_then(Value::as_str).unwrap_or("unknown");
            return Err(Error::Unsupported(format!(
                "{kind} blocks are not supported by Bedrock providers"
            )));
        }
    };
    if cache.is_some() {
        out.push(ContentBlock::cache_point());
    }
    Ok(())
}

fn image(source: Source) -> Result<ContentBlock, Error> {
    match source {
        Source::Base64 { media_type, data } => image_block(&media_type, &data),
        Source::Url { .. } => Err(url_image_error()),
        _ => Err(Error::Unsupported(
            "Bedrock needs inline images (base64 sources)".into(),
        )),
    }
}

fn tool_result_content(content: Option<a::Content>) -> Result<Vec<ContentBlock>, Error> {
    match content {
        None => Ok(Vec::new()),
        Some(a::Content::Text(s)) => Ok(vec![ContentBlock::text(s)]),
        Some(a::Content::Blocks(blocks)) => blocks
            .into_iter()
            .map(|b| match b {
                Block::Text { text, .. } => Ok(ContentBlock::text(text)),
                Block::Image { source, .. } => image(source),
                Block::Document {
                    source: Source::Base64 { media_type, data },
                    title,
                    ..
                } => document_block(&media_type, &data, title.as_deref()),
                _ => Err(Error::Unsupported(
                    "tool results may only contain text, image and document blocks for Bedrock"
                        .into(),
                )),
            })
            .collect(),
    }
}

/// The `toolChoice`, and whether the choice was `none`.
fn tool_choice(choice: Option<&Value>) -> Result<(Option<Value>, bool), Error> {
    let Some(choice) = choice.filter(|c| !c.is_null()) else {
        return Ok((None, false));
    };
    match choice.get("type").and_then(Value::as_str) {
        Some("auto") => Ok((Some(json!({"auto": {}})), false)),
        Some("any") => Ok((Some(json!({"any": {}})), false)),
        Some("none") => Ok((None, true)),
        Some("tool") => match choice.get("name").and_then(Value::as_str) {
            Some(name) => Ok((Some(json!({"tool": {"name": name}})), false)),
            None => Err(Error::InvalidRequest(
                "tool_choice of type tool needs a name".into(),
            )),
        },
        _ => Err(Error::InvalidRequest(
            "tool_choice type must be auto, any, tool or none".into(),
        )),
    }
}
