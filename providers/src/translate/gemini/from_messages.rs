//! An Anthropic messages client served by a Gemini provider: the request.
//!
//! `system` becomes `systemInstruction`; text blocks become text parts; image and document
//! blocks become `inlineData` (base64) or `fileData` (URL; MIME type guessed from the
//! extension) parts, text documents text parts; `tool_use` blocks become `functionCall` parts;
//! `tool_result` blocks become `functionResponse` parts named after the `tool_use` they answer
//! (text content as `{"content": <text>}` unless it is a JSON object, `{"error": <text>}` when
//! `is_error`; images follow as parts of the same turn). Thinking blocks are dropped: their
//! signatures are Anthropic's. Client `tools` → `functionDeclarations`; `tool_choice` → `auto`
//! `AUTO`, `any` `ANY`, `tool` `ANY` limited to that function, `none` `NONE`
//! (`disable_parallel_tool_use` has no equivalent); `max_tokens` → `maxOutputTokens`,
//! `stop_sequences`, `temperature`, `top_p`, `top_k`; `thinking` enabled with a
//! `budget_tokens` → `thinkingConfig` (`thinkingBudget`, `includeThoughts: true`).
//! `metadata` and other Anthropic-only fields are dropped; server tools, file-id sources and
//! other block types are unsupported.

use std::collections::HashMap;

use serde_json::Value;

use super::wire::{GenerationConfig, Part, ToolConfig};
use super::{
    Turns, call_part, declaration, file_part, inline_part, model_request, request_body,
    response_part, result_object, text_part,
};
use crate::Error;
use crate::anthropic::{self as a, Block, MessagesRequest, Role, Source};
use crate::translate::{ModelRequest, parse_request, unsupported_block};

/// Who the unsupported block errors name.
const PROVIDER: &str = "a Gemini provider";

pub(super) fn request(body: &[u8], model: Option<&str>) -> Result<ModelRequest, Error> {
    let req: MessagesRequest = parse_request(body)?;
    let system = match req.system {
        None => Vec::new(),
        Some(a::System::Text(s)) => text_part(s).into_iter().collect(),
        Some(a::System::Blocks(blocks)) => blocks
            .into_iter()
            .filter_map(|b| text_part(b.text))
            .collect(),
    };
    let mut turns = Turns::default();
    // Function name of each tool_use id seen so far (a tool_result names only the id).
    let mut names: HashMap<String, String> = HashMap::new();
    for msg in req.messages {
        let blocks = match msg.content {
            a::Content::Text(s) => vec![Block::Text {
                text: s,
                citations: None,
                cache_control: None,
            }],
            a::Content::Blocks(b) => b,
        };
        let (role, place) = match msg.role {
            Role::User => ("user", "a user message"),
            Role::Assistant => ("model", "an assistant message"),
        };
        let mut parts = Vec::new();
        for block in blocks {
            block_parts(block, msg.role, place, &mut names, &mut parts)?;
        }
        turns.push(role, parts);
    }

    let mut declarations = Vec::new();
    for t in req.tools.unwrap_or_default() {
        if let Some(kind) = t.kind.as_deref().filter(|k| *k != "custom") {
            return Err(Error::Unsupported(format!(
                "server tool {kind} is not supported by Gemini providers"
            )));
        }
        let schema = t
            .input_schema
            .ok_or_else(|| Error::InvalidRequest(format!("tool {} has no input_schema", t.name)))?;
        declarations.push(declaration(t.name, t.description, Some(&schema)));
    }
    let has_tools = !declarations.is_empty();
    let tool_config = match &req.tool_choice {
        Some(choice) if has_tools => Some(tool_config(choice)?),
        _ => None,
    };

    let config = GenerationConfig {
        temperature: req.temperature,
        top_p: req.top_p,
        top_k: req.top_k,
        max_output_tokens: req.max_tokens,
        stop_sequences: req.stop_sequences.filter(|s| !s.is_empty()),
        thinking_config: thinking_config(req.extra.get("thinking"))?,
        ..Default::default()
    };
    let stream = req.stream.unwrap_or(false);
    let out = request_body(turns, system, declarations, tool_config, config);
    // Anthropic streams always end with usage; there is no usage chunk to hide.
    model_request(out, req.model, model, stream, false)
}

/// Appends the parts for one block of a message by `role`.
fn block_parts(
    block: Block,
    role: Role,
    place: &str,
    names: &mut HashMap<String, String>,
    parts: &mut Vec<Part>,
) -> Result<(), Error> {
    match (block, role) {
        (Block::Text { text, .. }, _) => parts.extend(text_part(text)),
        (Block::Image { source, .. }, Role::User) => parts.push(source_part(source, "image")?),
        (Block::Document { source, .. }, Role::User) => {
            parts.push(source_part(source, "document")?);
        }
        (
            Block::ToolUse {
                id, name, input, ..
            },
            Role::Assistant,
        ) => {
            if !input.is_object() {
                return Err(Error::InvalidRequest(format!(
                    "input of tool_use {id} must be an object"
                )));
            }
            names.insert(id, name.clone());
            parts.push(call_part(name, input));
        }
        (Block::Thinking { .. } | Block::RedactedThinking { .. }, Role::Assistant) => {}
        (
            Block::ToolResult {
                tool_use_id,
                content,
                is_error,
                ..
            },
            Role::User,
        ) => {
            let name = names.get(&tool_use_id).cloned().ok_or_else(|| {
                Error::InvalidRequest(format!(
                    "tool_result {tool_use_id:?} answers no earlier tool_use"
                ))
            })?;
            let mut texts = Vec::new();
            let mut extra = Vec::new();
            match content {
                None => {}
                Some(a::Content::Text(s)) => texts.push(s),
                Some(a::Content::Blocks(inner)) => {
                    for b in inner {
                        match b {
                            Block::Text { text, .. } => texts.push(text),
                            Block::Image { source, .. } => {
                                extra.push(source_part(source, "image")?);
                            }
                            other => {
                                return Err(unsupported_block(&other, "a tool result", PROVIDER));
                            }
                        }
                    }
                }
            }
            let text = texts.join("\n\n");
            let key = if is_error == Some(true) {
                "error"
            } else {
                "content"
            };
            parts.push(response_part(name, result_object(text, key)));
            parts.append(&mut extra);
        }
        (other, _) => return Err(unsupported_block(&other, place, PROVIDER)),
    }
    Ok(())
}

/// An image or document source as a part.
fn source_part(source: Source, what: &str) -> Result<Part, Error> {
    let fallback = if what == "image" {
        "image/jpeg"
    } else {
        "application/pdf"
    };
    match source {
        Source::Base64 { media_type, data } => Ok(inline_part(media_type, data)),
        Source::Url { url } => Ok(file_part(super::guess_mime(&url, fallback), url)),
        Source::Text { data, .. } if what == "document" => Ok(Part::text(data)),
        _ => Err(Error::Unsupported(format!(
            "{what} sources other than base64 and url are not supported by Gemini providers"
        ))),
    }
}

fn tool_config(choice: &Value) -> Result<ToolConfig, Error> {
    match choice.get("type").and_then(Value::as_str) {
        Some("auto") => Ok(ToolConfig::new("AUTO", None)),
        Some("any") => Ok(ToolConfig::new("ANY", None)),
        Some("none") => Ok(ToolConfig::new("NONE", None)),
        Some("tool") => match choice.get("name").and_then(Value::as_str) {
            Some(name) => Ok(ToolConfig::new("ANY", Some(name.to_string()))),
            None => Err(Error::InvalidRequest("tool_choice.name is required".into())),
        },
        _ => Err(Error::InvalidRequest(
            "tool_choice.type must be auto, any, tool or none".into(),
        )),
    }
}

/// `thinking: {"type": "enabled", "budget_tokens": n}` → a thinking budget with thought
/// summaries; other settings leave the model's default.
fn thinking_config(thinking: Option<&Value>) -> Result<Option<Value>, Error> {
    let Some(t) = thinking.filter(|t| !t.is_null()) else {
        return Ok(None);
    };
    if t.get("type").and_then(Value::as_str) != Some("enabled") {
        return Ok(None);
    }
    let budget = t
        .get("budget_tokens")
        .and_then(Value::as_u64)
        .ok_or_else(|| {
            Error::InvalidRequest("thinking.budget_tokens must be a positive integer".into())
        })?;
    Ok(Some(serde_json::json!({
        "thinkingBudget": budget,
        "includeThoughts": true
    })))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn translate(body: Value) -> Result<Value, Error> {
        let out = request(body.to_string().as_bytes(), None)?;
        Ok(serde_json::from_slice(&out.out.body).unwrap())
    }

    #[test]
    fn tool_results_and_errors() {
        let out = translate(json!({"model": "m", "max_tokens": 10, "messages": [
            {"role": "user", "content": "go"},
            {"role": "assistant", "content": [
                {"type": "thinking", "thinking": "hm", "signature": "sig"},
                {"type": "tool_use", "id": "t1", "name": "f", "input": {"a": 1}}
            ]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "t1", "is_error": true, "content": "boom"}
            ]}
        ], "thinking": {"type": "enabled", "budget_tokens": 2048}}))
        .unwrap();
        let c = out["contents"].as_array().unwrap();
        assert_eq!(c.len(), 3);
        assert_eq!(c[1]["parts"].as_array().unwrap().len(), 1);
        assert_eq!(
            c[2]["parts"][0]["functionResponse"],
            json!({"name": "f", "response": {"error": "boom"}})
        );
        assert_eq!(
            out["generationConfig"],
            json!({"maxOutputTokens": 10,
                "thinkingConfig": {"thinkingBudget": 2048, "includeThoughts": true}})
        );
    }

    #[test]
    fn malformed_and_unsupported() {
        let invalid = [
            json!({"model": "m", "messages": [{"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "nope", "content": "x"}]}]}),
            json!({"model": "m", "messages": [{"role": "assistant", "content": [
                {"type": "tool_use", "id": "t", "name": "f", "input": [1]}]}]}),
            json!({"model": "m", "messages": [], "tools": [{"name": "f"}]}),
            json!({"model": "m", "messages": [], "tools": [{"name": "f", "input_schema": {}}],
                "tool_choice": {"type": "tool"}}),
            json!({"model": "m", "messages": [], "thinking": {"type": "enabled"}}),
            json!({"messages": []}),
        ];
        for body in invalid {
            assert!(
                matches!(translate(body.clone()), Err(Error::InvalidRequest(_))),
                "{body}"
            );
        }
        let unsupported = [
            json!({"model": "m", "messages": [], "tools": [
                {"type": "web_search_20250305", "name": "web_search"}]}),
            json!({"model": "m", "messages": [{"role": "user", "content": [
                {"type": "image", "source": {"type": "file", "file_id": "f"}}]}]}),
            json!({"model": "m", "messages": [{"role": "assistant", "content": [
                {"type": "server_tool_use", "id": "s", "name": "web_search", "input": {}}]}]}),
            json!({"model": "m", "messages": [{"role": "user", "content": [
                {"type": "tool_use", "id": "t", "name": "f", "input": {}}]}]}),
        ];
        for body in unsupported {
            assert!(
                matches!(translate(body.clone()), Err(Error::Unsupported(_))),
                "{body}"
            );
        }
    }
}
