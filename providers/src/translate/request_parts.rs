//! Pieces shared by the request translators: checks and conversions that read the same
//! whatever the provider.

use serde_json::{Value, json};

use crate::Error;
use crate::anthropic::Block;
use crate::openai as o;

/// Rejects a chat request for more than one choice (`n > 1`), which `vendor` providers
/// cannot give.
pub(super) fn single_choice(n: Option<u64>, vendor: &str) -> Result<(), Error> {
    if n.is_some_and(|n| n > 1) {
        return Err(Error::Unsupported(format!(
            "n > 1 is not supported by {vendor} providers"
        )));
    }
    Ok(())
}

/// Tool call arguments (a JSON text) as an input object.
pub(super) fn tool_arguments(args: &str, name: &str) -> Result<Value, Error> {
    if args.trim().is_empty() {
        return Ok(json!({}));
    }
    match serde_json::from_str::<Value>(args) {
        Ok(v @ Value::Object(_)) => Ok(v),
        Ok(_) => Err(Error::InvalidRequest(format!(
            "arguments of tool call {name} must be a JSON object"
        ))),
        Err(e) => Err(Error::InvalidRequest(format!(
            "arguments of tool call {name} are not valid JSON: {e}"
        ))),
    }
}

/// The error for an Anthropic content block (in `place`) that cannot be sent to `provider`
/// (e.g. `a Gemini provider`).
pub(super) fn unsupported_block(block: &Block, place: &str, provider: &str) -> Error {
    let kind = match block {
        Block::Other(v) => v.get("type").and_then(Value::as_str).unwrap_or("unknown"),
        Block::Text { .. } => "text",
        Block::Image { .. } => "image",
        Block::Document { .. } => "document",
        Block::ToolUse { .. } => "tool_use",
        Block::ToolResult { .. } => "tool_result",
        Block::Thinking { .. } => "thinking",
        Block::RedactedThinking { .. } => "redacted_thinking",
    };
    Error::Unsupported(format!(
        "content blocks of type {kind} in {place} cannot be sent to {provider}"
    ))
}

/// The function of an OpenAI tool; other tool types are not supported by `vendor` providers.
pub(super) fn function_tool(t: o::Tool, vendor: &str) -> Result<o::FunctionDef, Error> {
    match (t.kind.as_str(), t.function) {
        ("function", Some(f)) => Ok(f),
        ("function", None) => Err(Error::InvalidRequest(
            "function tools need a function".into(),
        )),
        (kind, _) => Err(Error::Unsupported(format!(
            "tools of type {kind} are not supported by {vendor} providers"
        ))),
    }
}

/// Whether a chat request (its `stream` and `stream_options`) asks for a stream, and whether
/// the stream's usage chunk is to be hidden from the client (it did not ask for it).
pub(super) fn stream_flags(
    stream: Option<bool>,
    options: Option<&o::StreamOptions>,
) -> (bool, bool) {
    let stream = stream.unwrap_or(false);
    let include_usage = options.and_then(|o| o.include_usage).unwrap_or(false);
    (stream, stream && !include_usage)
}
