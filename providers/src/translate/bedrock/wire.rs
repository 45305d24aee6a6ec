//! Bedrock Converse wire types (the subset the gateway translates).
//!
//! Content blocks are unions in Bedrock's model (`{"text": ...}`, `{"toolUse": {...}}`, ...);
//! they are read as structs of optional members so unknown members are ignored, not errors.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::Usage;
use crate::anthropic::MessagesUsage;
use crate::openai::{ChatUsage, PromptTokensDetails};

/// A `Converse` / `ConverseStream` request body.
#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub(in crate::translate) struct ConverseRequest {
    /// The conversation, roles alternating.
    pub messages: Vec<Message>,
    /// System prompt blocks (text and cache points).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub system: Vec<ContentBlock>,
    /// Sampling and length settings.
    #[serde(skip_serializing_if = "InferenceConfig::is_empty")]
    pub inference_config: InferenceConfig,
    /// Tools and tool choice.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tool_config: Option<ToolConfig>,
    /// Model-specific fields (`top_k`, `thinking`).
    #[serde(skip_serializing_if = "Map::is_empty")]
    pub additional_model_request_fields: Map<String, Value>,
}

/// One message.
#[derive(Debug, Serialize, Deserialize)]
pub(in crate::translate) struct Message {
    /// `user` or `assistant`.
    #[serde(default)]
    pub role: String,
    /// Its blocks.
    #[serde(default)]
    pub content: Vec<ContentBlock>,
}

/// A content block: exactly one member is set.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(in crate::translate) struct ContentBlock {
    /// Text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// An inline image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<Media>,
    /// An inline document.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub document: Option<Media>,
    /// A tool call by the model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_use: Option<ToolUse>,
    /// A tool's result.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_result: Option<ToolResult>,
    /// JSON (tool result content only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub json: Option<Value>,
    /// Model reasoning.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reasoning_content: Option<ReasoningContent>,
    /// A prompt cache checkpoint after the preceding blocks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_point: Option<Value>,
}

impl ContentBlock {
    /// A text block.
    pub fn text(text: String) -> Self {
        Self {
            text: Some(text),
            ..Default::default()
        }
    }

    /// A `{"cachePoint": {"type": "default"}}` block.
    pub fn cache_point() -> Self {
        Self {
            cache_point: Some(json!({"type": "default"})),
            ..Default::default()
        }
    }
}

/// An image or a document.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(in crate::translate) struct Media {
    /// `png`, `jpeg`, `gif`, `webp`; `pdf`, `csv`, `txt`, ...
    pub format: String,
    /// The document's name (documents only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The bytes.
    pub source: Bytes,
}

/// Inline bytes.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(in crate::translate) struct Bytes {
    /// Base64.
    pub bytes: String,
}

/// `toolUse`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(in crate::translate) struct ToolUse {
    /// Call id.
    pub tool_use_id: String,
    /// Tool name.
    pub name: String,
    /// Arguments.
    #[serde(default = "empty_object")]
    pub input: Value,
}

fn empty_object() -> Value {
    json!({})
}

/// `toolResult`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(in crate::translate) struct ToolResult {
    /// The call it answers.
    pub tool_use_id: String,
    /// Text, JSON, image or document blocks.
    pub content: Vec<ContentBlock>,
    /// `success` or `error`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
}

/// `reasoningContent`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(in crate::translate) struct ReasoningContent {
    /// Reasoning text and its signature.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reasoning_text: Option<ReasoningText>,
    /// Encrypted reasoning (base64).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redacted_content: Option<String>,
}

/// `reasoningText`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(in crate::translate) struct ReasoningText {
    /// The reasoning.
    #[serde(default)]
    pub text: String,
    /// Integrity signature.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<String>,
}

/// `inferenceConfig`.
#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub(in crate::translate) struct InferenceConfig {
    /// Output limit.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u64>,
    /// Sampling temperature.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f64>,
    /// Nucleus sampling.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub top_p: Option<f64>,
    /// Stop sequences.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub stop_sequences: Vec<String>,
}

impl InferenceConfig {
    fn is_empty(&self) -> bool {
        self.max_tokens.is_none()
            && self.temperature.is_none()
            && self.top_p.is_none()
            && self.stop_sequences.is_empty()
    }
}

/// `toolConfig`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(in crate::translate) struct ToolConfig {
    /// Tool specs and cache points.
    pub tools: Vec<Value>,
    /// `{"auto":{}}`, `{"any":{}}` or `{"tool":{"name":...}}`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tool_choice: Option<Value>,
}

/// A `{"toolSpec": ...}` entry.
pub(in crate::translate) fn tool_spec(
    name: String,
    description: Option<String>,
    schema: Option<Value>,
) -> Value {
    let mut spec = json!({
        "name": name,
        "inputSchema": {"json": schema.unwrap_or_else(|| json!({"type": "object", "properties": {}}))},
    });
    if let Some(d) = description {
        spec["description"] = d.into();
    }
    json!({ "toolSpec": spec })
}

/// A `Converse` response body.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(in crate::translate) struct ConverseResponse {
    /// The output (a union with only `message`).
    pub output: Output,
    /// Why the model stopped.
    #[serde(default)]
    pub stop_reason: Option<String>,
    /// Token counts.
    #[serde(default)]
    pub usage: ConverseUsage,
    /// Model-specific fields (`stop_sequence` for Claude).
    #[serde(default)]
    pub additional_model_response_fields: Option<Value>,
}

/// `output`.
#[derive(Debug, Deserialize)]
pub(in crate::translate) struct Output {
    /// The assistant message.
    pub message: Message,
}

/// Bedrock token counts (`inputTokens` excludes cache reads and writes).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(in crate::translate) struct ConverseUsage {
    /// Uncached input tokens.
    #[serde(default)]
    pub input_tokens: u64,
    /// Output tokens.
    #[serde(default)]
    pub output_tokens: u64,
    /// Input tokens read from the cache.
    #[serde(default)]
    pub cache_read_input_tokens: Option<u64>,
    /// Input tokens written to the cache.
    #[serde(default)]
    pub cache_write_input_tokens: Option<u64>,
}

impl ConverseUsage {
    /// Copies the counts into `usage` (the model is left alone).
    pub fn apply(&self, usage: &mut Usage) {
        let read = self.cache_read_input_tokens.unwrap_or(0);
        let write = self.cache_write_input_tokens.unwrap_or(0);
        usage.input_tokens = self.input_tokens.saturating_add(read).saturating_add(write);
        usage.output_tokens = self.output_tokens;
        usage.cache_read_tokens = read;
        usage.cache_write_tokens = write;
    }

    /// The normalized usage.
    pub fn to_usage(&self) -> Usage {
        let mut u = Usage::default();
        self.apply(&mut u);
        u
    }

    /// As OpenAI usage.
    pub fn chat(&self) -> ChatUsage {
        let n = self.to_usage();
        ChatUsage {
            prompt_tokens: n.input_tokens,
            completion_tokens: n.output_tokens,
            total_tokens: n.input_tokens.saturating_add(n.output_tokens),
            prompt_tokens_details: Some(PromptTokensDetails {
                cached_tokens: Some(n.cache_read_tokens),
            }),
            completion_tokens_details: None,
            prompt_cache_hit_tokens: None,
        }
    }

    /// As Anthropic usage.
    pub fn messages(&self) -> MessagesUsage {
        MessagesUsage {
            input_tokens: self.input_tokens,
            output_tokens: self.output_tokens,
            cache_creation_input_tokens: self.cache_write_input_tokens,
            cache_read_input_tokens: self.cache_read_input_tokens,
        }
    }
}

/// OpenAI `finish_reason` for a Bedrock `stopReason`.
pub(in crate::translate) fn finish_reason(stop_reason: Option<&str>) -> &'static str {
    match stop_reason {
        Some("tool_use") => "tool_calls",
        Some("max_tokens" | "model_context_window_exceeded") => "length",
        Some("guardrail_intervened" | "content_filtered") => "content_filter",
        _ => "stop",
    }
}

/// Anthropic `stop_reason` for a Bedrock `stopReason`.
pub(in crate::translate) fn stop_reason(stop_reason: Option<&str>) -> &'static str {
    match stop_reason {
        Some("tool_use") => "tool_use",
        Some("max_tokens") => "max_tokens",
        Some("stop_sequence") => "stop_sequence",
        Some("model_context_window_exceeded") => "model_context_window_exceeded",
        Some("guardrail_intervened" | "content_filtered") => "refusal",
        _ => "end_turn",
    }
}

/// The stop sequence Claude models report in `additionalModelResponseFields`.
pub(in crate::translate) fn stop_sequence(fields: Option<&Value>) -> Option<String> {
    fields?
        .get("stop_sequence")
        .and_then(Value::as_str)
        .map(str::to_string)
}
