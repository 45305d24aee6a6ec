//! Anthropic Messages wire types: request, response, stream events, usage, error.

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};

use crate::Usage;

/// A `POST /v1/messages` body.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct MessagesRequest {
    /// The model name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// System prompt: a string or text blocks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system: Option<System>,
    /// The conversation.
    pub messages: Vec<Message>,
    /// Output limit (required by Anthropic).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u64>,
    /// Stop sequences.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_sequences: Option<Vec<String>>,
    /// Whether to stream.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<bool>,
    /// Sampling temperature (0 to 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f64>,
    /// Nucleus sampling.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_p: Option<f64>,
    /// Top-k sampling.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_k: Option<u64>,
    /// Tool definitions (client tools have `input_schema`; server tools a versioned `type`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tools: Option<Vec<Tool>>,
    /// `{"type":"auto"|"any"|"tool"|"none", "name"?, "disable_parallel_tool_use"?}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_choice: Option<Value>,
    /// Request metadata (`user_id`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Metadata>,
    /// Every other field (`thinking`, `service_tier`, ...), kept as is.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `metadata`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Metadata {
    /// An opaque end-user id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
}

/// The system prompt.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum System {
    /// Plain text.
    Text(String),
    /// Text blocks (each may carry `cache_control`).
    Blocks(Vec<TextBlock>),
}

impl<'de> Deserialize<'de> for System {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error as _;
        match Value::deserialize(d)? {
            Value::String(s) => Ok(System::Text(s)),
            v @ Value::Array(_) => serde_json::from_value(v)
                .map(System::Blocks)
                .map_err(D::Error::custom),
            _ => Err(D::Error::custom(
                "system must be a string or an array of text blocks",
            )),
        }
    }
}

/// A text block (system prompt, tool result).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TextBlock {
    /// Always `text`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The text.
    pub text: String,
    /// Prompt cache marker.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_control: Option<Value>,
}

/// One message of a request.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Message {
    /// `user` or `assistant`.
    pub role: Role,
    /// A string or content blocks.
    pub content: Content,
}

/// A message author.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// The user (tool results included).
    User,
    /// The model.
    Assistant,
}

/// Message content: a string or an array of blocks.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum Content {
    /// Plain text.
    Text(String),
    /// Blocks.
    Blocks(Vec<Block>),
}

impl<'de> Deserialize<'de> for Content {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let what = "message content must be a string or an array of blocks";
        Ok(match crate::text_or_list(d, what)? {
            Ok(s) => Content::Text(s),
            Err(blocks) => Content::Blocks(blocks),
        })
    }
}

/// A content block, in requests and responses.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Block {
    /// Text.
    Text {
        /// The text.
        text: String,
        /// Citations (responses).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        citations: Option<Value>,
        /// Prompt cache marker.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cache_control: Option<Value>,
    },
    /// An image.
    Image {
        /// Where the image comes from.
        source: Source,
        /// Prompt cache marker.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cache_control: Option<Value>,
    },
    /// A document (PDF or text).
    Document {
        /// Where the document comes from.
        source: Source,
        /// Document title.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        title: Option<String>,
        /// Prompt cache marker.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cache_control: Option<Value>,
    },
    /// A tool call by the model.
    ToolUse {
        /// Call id.
        id: String,
        /// Tool name.
        name: String,
        /// Arguments object.
        input: Value,
        /// Prompt cache marker.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cache_control: Option<Value>,
    },
    /// A tool's result (user messages).
    ToolResult {
        /// The call it answers.
        tool_use_id: String,
        /// Result: a string or text/image blocks.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        content: Option<Content>,
        /// Whether the tool failed.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        is_error: Option<bool>,
        /// Prompt cache marker.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cache_control: Option<Value>,
    },
    /// Extended thinking.
    Thinking {
        /// The reasoning text.
        thinking: String,
        /// Integrity signature.
        #[serde(default)]
        signature: String,
    },
    /// Encrypted thinking.
    RedactedThinking {
        /// Opaque data.
        data: String,
    },
    /// Any other block type (server tools, search results, ...), kept as is.
    #[serde(untagged)]
    Other(Value),
}

/// An image or document source.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Source {
    /// Inline base64 data.
    Base64 {
        /// MIME type.
        media_type: String,
        /// Base64 data.
        data: String,
    },
    /// A URL.
    Url {
        /// The URL.
        url: String,
    },
    /// Plain text (documents).
    Text {
        /// MIME type (`text/plain`).
        #[serde(default)]
        media_type: String,
        /// The text.
        data: String,
    },
    /// Any other source (files API, content blocks).
    #[serde(untagged)]
    Other(Value),
}

/// A tool definition.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Tool {
    /// Absent or `custom` for client tools; a versioned type for server tools.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// Tool name.
    pub name: String,
    /// What it does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// JSON schema of the input (client tools).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_schema: Option<Value>,
    /// Prompt cache marker.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_control: Option<Value>,
    /// Other fields (server tool options), kept as is.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// A whole (non-streamed) response, also the `message` of `message_start`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MessagesResponse {
    /// Message id.
    #[serde(default)]
    pub id: String,
    /// `message`.
    #[serde(rename = "type", default = "message_kind")]
    pub kind: String,
    /// `assistant`.
    #[serde(default = "assistant_role")]
    pub role: String,
    /// The model that answered.
    #[serde(default)]
    pub model: String,
    /// Output blocks.
    pub content: Vec<Block>,
    /// `end_turn`, `max_tokens`, `stop_sequence`, `tool_use`, `pause_turn`, `refusal`.
    #[serde(default)]
    pub stop_reason: Option<String>,
    /// The stop sequence hit, if any.
    #[serde(default)]
    pub stop_sequence: Option<String>,
    /// Token usage.
    #[serde(default)]
    pub usage: MessagesUsage,
}

fn message_kind() -> String {
    "message".to_string()
}

fn assistant_role() -> String {
    "assistant".to_string()
}

/// Usage of a response or `message_start`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct MessagesUsage {
    /// Input tokens not read from or written to the cache.
    #[serde(default)]
    pub input_tokens: u64,
    /// Output tokens.
    #[serde(default)]
    pub output_tokens: u64,
    /// Input tokens written to the cache.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_creation_input_tokens: Option<u64>,
    /// Input tokens read from the cache.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_read_input_tokens: Option<u64>,
}

impl MessagesUsage {
    /// Copies the counts into `usage` (the model is left alone).
    pub fn apply(&self, usage: &mut Usage) {
        let read = self.cache_read_input_tokens.unwrap_or(0);
        let write = self.cache_creation_input_tokens.unwrap_or(0);
        usage.input_tokens = self.input_tokens + read + write;
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
}

/// Usage of `message_delta`: cumulative counts, each present or not.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct DeltaUsage {
    /// Cumulative output tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_tokens: Option<u64>,
    /// Cumulative uncached input tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_tokens: Option<u64>,
    /// Cumulative cache writes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_creation_input_tokens: Option<u64>,
    /// Cumulative cache reads.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_read_input_tokens: Option<u64>,
}

impl DeltaUsage {
    /// Updates `usage` with the counts present (the input total is recomputed from the
    /// parts, keeping `base`'s values for parts the delta leaves out).
    pub fn apply(&self, base: &mut MessagesUsage, usage: &mut Usage) {
        if let Some(v) = self.output_tokens {
            base.output_tokens = v;
        }
        if let Some(v) = self.input_tokens {
            base.input_tokens = v;
        }
        if self.cache_creation_input_tokens.is_some() {
            base.cache_creation_input_tokens = self.cache_creation_input_tokens;
        }
        if self.cache_read_input_tokens.is_some() {
            base.cache_read_input_tokens = self.cache_read_input_tokens;
        }
        base.apply(usage);
    }
}

/// One stream event (the `data` of an SSE event; its `type` matches the SSE `event` name).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum StreamEvent {
    /// The message begins (content empty, usage has the input counts).
    MessageStart {
        /// The message so far.
        message: MessagesResponse,
    },
    /// A content block begins.
    ContentBlockStart {
        /// Block index.
        index: u32,
        /// The block, empty (`text: ""`, `input: {}`).
        content_block: Block,
    },
    /// A piece of a content block.
    ContentBlockDelta {
        /// Block index.
        index: u32,
        /// The piece.
        delta: BlockDelta,
    },
    /// A content block ends.
    ContentBlockStop {
        /// Block index.
        index: u32,
    },
    /// Top-level changes: stop reason and cumulative usage.
    MessageDelta {
        /// Stop reason and sequence.
        delta: MessageDeltaBody,
        /// Cumulative usage.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        usage: Option<DeltaUsage>,
    },
    /// The message is complete.
    MessageStop,
    /// Keep-alive.
    Ping,
    /// An error mid-stream.
    Error {
        /// The error.
        error: ErrorDetail,
    },
    /// Any other event, kept as is.
    #[serde(untagged)]
    Other(Value),
}

/// A piece of a content block.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum BlockDelta {
    /// Text.
    TextDelta {
        /// The text.
        text: String,
    },
    /// A piece of a tool call's input JSON text.
    InputJsonDelta {
        /// The JSON text piece.
        partial_json: String,
    },
    /// Reasoning text.
    ThinkingDelta {
        /// The reasoning text.
        thinking: String,
    },
    /// The thinking block's signature.
    SignatureDelta {
        /// The signature.
        signature: String,
    },
    /// Any other delta (citations, ...).
    #[serde(untagged)]
    Other(Value),
}

/// `delta` of `message_delta`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct MessageDeltaBody {
    /// Why the message stopped.
    #[serde(default)]
    pub stop_reason: Option<String>,
    /// The stop sequence hit.
    #[serde(default)]
    pub stop_sequence: Option<String>,
}

/// An Anthropic error body: `{"type":"error","error":{"type","message"}}`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ErrorBody {
    /// Always `error`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The error.
    pub error: ErrorDetail,
}

/// The error object.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ErrorDetail {
    /// Error type, e.g. `overloaded_error`.
    #[serde(rename = "type", default)]
    pub kind: String,
    /// Human-readable message.
    #[serde(default)]
    pub message: String,
}

/// The Anthropic error type for an HTTP status.
pub fn error_type(status: u16) -> &'static str {
    match status {
        401 => "authentication_error",
        402 => "billing_error",
        403 => "permission_error",
        404 => "not_found_error",
        413 => "request_too_large",
        429 => "rate_limit_error",
        529 => "overloaded_error",
        400..=499 => "invalid_request_error",
        _ => "api_error",
    }
}

/// Reads the usage and model of a Messages response body without parsing the rest.
pub fn usage_of(body: &[u8]) -> Result<Usage, crate::Error> {
    #[derive(Deserialize)]
    struct Probe {
        #[serde(default)]
        model: Option<String>,
        #[serde(default)]
        usage: Option<MessagesUsage>,
    }
    let p: Probe = crate::translate::from_object(body).map_err(crate::Error::InvalidResponse)?;
    let mut u = p.usage.map(|u| u.to_usage()).unwrap_or_default();
    if let Some(m) = p.model {
        u.note_model(&m);
    }
    Ok(u)
}
