//! OpenAI Responses API (`POST /v1/responses`) wire types: the request fields the gateway
//! translates, the `response` object, its output items and usage.
//!
//! Request types are lenient (unknown fields are ignored: the translation to another format
//! names what it cannot carry); response types are what the gateway writes, in the shapes the
//! official SDKs parse.

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};

use crate::Usage;

/// A `POST /v1/responses` body, as far as translation reads it.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ResponsesRequest {
    /// The model name.
    #[serde(default)]
    pub model: Option<String>,
    /// The conversation: a user text, or a list of input items.
    #[serde(default)]
    pub input: Option<Input>,
    /// The system (developer) prompt.
    #[serde(default)]
    pub instructions: Option<String>,
    /// Output limit (reasoning included).
    #[serde(default)]
    pub max_output_tokens: Option<u64>,
    /// Sampling temperature.
    #[serde(default)]
    pub temperature: Option<f64>,
    /// Nucleus sampling.
    #[serde(default)]
    pub top_p: Option<f64>,
    /// Tool definitions (function tools, or hosted tools by type).
    #[serde(default)]
    pub tools: Option<Vec<Value>>,
    /// `"none"`, `"auto"`, `"required"`, `{"type":"function","name"}` or
    /// `{"type":"allowed_tools","mode","tools"}`.
    #[serde(default)]
    pub tool_choice: Option<Value>,
    /// Whether the model may call several tools at once.
    #[serde(default)]
    pub parallel_tool_calls: Option<bool>,
    /// Whether to stream.
    #[serde(default)]
    pub stream: Option<bool>,
    /// Output text options (`format`).
    #[serde(default)]
    pub text: Option<TextConfig>,
    /// Reasoning options (`effort`).
    #[serde(default)]
    pub reasoning: Option<ReasoningConfig>,
    /// End-user id (deprecated name).
    #[serde(default)]
    pub user: Option<String>,
    /// End-user id.
    #[serde(default)]
    pub safety_identifier: Option<String>,
    /// A stored response to continue (needs OpenAI's server-side state).
    #[serde(default)]
    pub previous_response_id: Option<String>,
    /// A stored conversation to continue (needs OpenAI's server-side state).
    #[serde(default)]
    pub conversation: Option<Value>,
    /// A stored prompt template (needs OpenAI's server-side state).
    #[serde(default)]
    pub prompt: Option<Value>,
    /// Run in the background (needs OpenAI's server-side state).
    #[serde(default)]
    pub background: Option<bool>,
}

/// `input`: a text (one user message) or a list of items, each kept as JSON and read by its
/// `type` (a message may leave `type` out).
#[derive(Debug, Clone)]
pub enum Input {
    /// A user message's text.
    Text(String),
    /// Input items.
    Items(Vec<Value>),
}

impl<'de> Deserialize<'de> for Input {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let what = "input must be a string or a list of items";
        Ok(match crate::text_or_list(d, what)? {
            Ok(s) => Input::Text(s),
            Err(items) => Input::Items(items),
        })
    }
}

/// An input message (`type: message`, or no type).
#[derive(Debug, Clone, Deserialize)]
pub struct InputMessage {
    /// `user`, `assistant`, `system` or `developer`.
    pub role: String,
    /// Text, or content parts.
    pub content: PartsOrText,
}

/// Content that is a text or a list of parts.
#[derive(Debug, Clone)]
pub enum PartsOrText {
    /// Plain text.
    Text(String),
    /// Content parts.
    Parts(Vec<InputPart>),
}

impl<'de> Deserialize<'de> for PartsOrText {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let what = "content must be a string or a list of parts";
        Ok(match crate::text_or_list(d, what)? {
            Ok(s) => PartsOrText::Text(s),
            Err(parts) => PartsOrText::Parts(parts),
        })
    }
}

/// One content part of an input message or a function call output.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum InputPart {
    /// Text from the user (or system).
    InputText {
        /// The text.
        text: String,
    },
    /// Text the assistant wrote (history).
    OutputText {
        /// The text.
        text: String,
    },
    /// A refusal the assistant wrote (history).
    Refusal {
        /// The refusal text.
        refusal: String,
    },
    /// An image by URL (`https:` or `data:`) or uploaded file id.
    InputImage {
        /// `https://...` or `data:<media type>;base64,<data>`.
        #[serde(default)]
        image_url: Option<String>,
        /// An uploaded file's id.
        #[serde(default)]
        file_id: Option<String>,
        /// `low`, `high` or `auto`.
        #[serde(default)]
        detail: Option<String>,
    },
    /// A file (PDF) inline, by URL or by uploaded file id.
    InputFile {
        /// `data:<media type>;base64,<data>`.
        #[serde(default)]
        file_data: Option<String>,
        /// An uploaded file's id.
        #[serde(default)]
        file_id: Option<String>,
        /// A URL to fetch the file from.
        #[serde(default)]
        file_url: Option<String>,
        /// The file's name.
        #[serde(default)]
        filename: Option<String>,
    },
    /// Audio input, as sent.
    InputAudio {
        /// `{data, format}`.
        input_audio: Value,
    },
}

/// A function call the model made (history): `type: function_call`.
#[derive(Debug, Clone, Deserialize)]
pub struct FunctionCallItem {
    /// The id the output answers.
    pub call_id: String,
    /// The function's name.
    pub name: String,
    /// The arguments, a JSON text.
    #[serde(default)]
    pub arguments: String,
}

/// A function's result: `type: function_call_output`.
#[derive(Debug, Clone, Deserialize)]
pub struct FunctionCallOutputItem {
    /// The call this answers.
    pub call_id: String,
    /// The result: text, or content parts.
    pub output: PartsOrText,
}

/// `text` of a request.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct TextConfig {
    /// `{"type":"text"}`, `{"type":"json_object"}` or
    /// `{"type":"json_schema","name","schema","description","strict"}`.
    #[serde(default)]
    pub format: Option<Value>,
}

/// `reasoning` of a request.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ReasoningConfig {
    /// `minimal`, `low`, `medium`, `high`, ...
    #[serde(default)]
    pub effort: Option<String>,
}

/// A `response` object (the whole answer, or the snapshot a stream's lifecycle events carry).
/// Fields the gateway cannot know from a translated answer (the request's tools, sampling
/// parameters) have their defaults.
#[derive(Debug, Clone, Serialize)]
pub struct Response {
    /// `resp_...`.
    pub id: String,
    /// Always `response`.
    pub object: &'static str,
    /// Unix time (0: this crate reads no clock).
    pub created_at: u64,
    /// `in_progress`, `completed`, `incomplete` or `failed`.
    pub status: &'static str,
    /// Why the response failed.
    pub error: Option<ResponseError>,
    /// Why the response is incomplete.
    pub incomplete_details: Option<IncompleteDetails>,
    /// The request's instructions (not echoed).
    pub instructions: Option<String>,
    /// The request's output limit (not echoed).
    pub max_output_tokens: Option<u64>,
    /// The model that answered.
    pub model: String,
    /// The output items.
    pub output: Vec<OutputItem>,
    /// Whether parallel tool calls were allowed.
    pub parallel_tool_calls: bool,
    /// Always `null`: translated responses are not stored.
    pub previous_response_id: Option<String>,
    /// Whether the response is stored (never, when translated).
    pub store: bool,
    /// The request's temperature (not echoed).
    pub temperature: Option<f64>,
    /// The request's tool choice (not echoed: `auto`).
    pub tool_choice: Value,
    /// The request's tools (not echoed).
    pub tools: Vec<Value>,
    /// The request's nucleus sampling (not echoed).
    pub top_p: Option<f64>,
    /// Always `disabled`.
    pub truncation: &'static str,
    /// Token usage (`null` until the answer is complete).
    pub usage: Option<ResponseUsage>,
    /// Always empty.
    pub metadata: Map<String, Value>,
}

impl Response {
    /// An answer of `id` by `model`, with `status` and `output`, other fields at their
    /// defaults.
    pub fn new(id: String, model: String, status: &'static str, output: Vec<OutputItem>) -> Self {
        Self {
            id,
            object: "response",
            created_at: 0,
            status,
            error: None,
            incomplete_details: None,
            instructions: None,
            max_output_tokens: None,
            model,
            output,
            parallel_tool_calls: true,
            previous_response_id: None,
            store: false,
            temperature: None,
            tool_choice: Value::String("auto".into()),
            tools: Vec::new(),
            top_p: None,
            truncation: "disabled",
            usage: None,
            metadata: Map::new(),
        }
    }
}

/// `error` of a failed response.
#[derive(Debug, Clone, Serialize)]
pub struct ResponseError {
    /// `server_error`, `rate_limit_exceeded`, ...
    pub code: String,
    /// Human-readable message.
    pub message: String,
}

/// `incomplete_details` of an incomplete response.
#[derive(Debug, Clone, Serialize)]
pub struct IncompleteDetails {
    /// `max_output_tokens` or `content_filter`.
    pub reason: &'static str,
}

/// One output item.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum OutputItem {
    /// Reasoning, as a summary text.
    Reasoning {
        /// `rs_...`.
        id: String,
        /// The summary parts.
        summary: Vec<SummaryText>,
    },
    /// An assistant message.
    Message {
        /// `msg_...`.
        id: String,
        /// `in_progress`, `completed` or `incomplete`.
        status: &'static str,
        /// Always `assistant`.
        role: &'static str,
        /// Text and refusal parts.
        content: Vec<OutputContent>,
    },
    /// A function call.
    FunctionCall {
        /// `fc_...`.
        id: String,
        /// The id the client's `function_call_output` answers.
        call_id: String,
        /// The function's name.
        name: String,
        /// The arguments, a JSON text.
        arguments: String,
        /// `in_progress`, `completed` or `incomplete`.
        status: &'static str,
    },
}

/// A reasoning summary part.
#[derive(Debug, Clone, Serialize)]
pub struct SummaryText {
    /// Always `summary_text`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// The text.
    pub text: String,
}

/// One content part of an output message.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum OutputContent {
    /// Text.
    OutputText {
        /// The text.
        text: String,
        /// Always empty.
        annotations: Vec<Value>,
        /// Always empty.
        logprobs: Vec<Value>,
    },
    /// A refusal.
    Refusal {
        /// The refusal text.
        refusal: String,
    },
}

impl OutputContent {
    /// A text part.
    pub fn text(text: String) -> Self {
        OutputContent::OutputText {
            text,
            annotations: Vec::new(),
            logprobs: Vec::new(),
        }
    }
}

/// `usage` of a response.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ResponseUsage {
    /// Input tokens, cached ones included.
    #[serde(default)]
    pub input_tokens: u64,
    /// Input breakdown.
    #[serde(default)]
    pub input_tokens_details: InputTokensDetails,
    /// Output tokens, reasoning included.
    #[serde(default)]
    pub output_tokens: u64,
    /// Output breakdown.
    #[serde(default)]
    pub output_tokens_details: OutputTokensDetails,
    /// Sum of both.
    #[serde(default)]
    pub total_tokens: u64,
}

/// `input_tokens_details`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct InputTokensDetails {
    /// Input tokens read from the cache.
    #[serde(default)]
    pub cached_tokens: u64,
}

/// `output_tokens_details`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct OutputTokensDetails {
    /// Output tokens spent reasoning.
    #[serde(default)]
    pub reasoning_tokens: u64,
}

impl ResponseUsage {
    /// The Responses usage for normalized counts.
    pub fn from_usage(u: &Usage) -> Self {
        Self {
            input_tokens: u.input_tokens,
            input_tokens_details: InputTokensDetails {
                cached_tokens: u.cache_read_tokens,
            },
            output_tokens: u.output_tokens,
            output_tokens_details: OutputTokensDetails {
                reasoning_tokens: u.reasoning_tokens,
            },
            total_tokens: u.input_tokens + u.output_tokens,
        }
    }

    /// Copies the counts into `usage` (the model is left alone).
    pub fn apply(&self, usage: &mut Usage) {
        usage.input_tokens = self.input_tokens;
        usage.output_tokens = self.output_tokens;
        usage.cache_read_tokens = self.input_tokens_details.cached_tokens;
        usage.reasoning_tokens = self.output_tokens_details.reasoning_tokens;
    }
}

/// The usage and model of a `response` object, read without parsing the rest. A missing or
/// `null` usage gives zero counts.
pub fn usage_of(body: &[u8]) -> Result<Usage, crate::Error> {
    #[derive(Deserialize)]
    struct Probe {
        #[serde(default)]
        model: Option<String>,
        #[serde(default)]
        usage: Option<ResponseUsage>,
    }
    let p: Probe = crate::translate::from_object(body).map_err(crate::Error::InvalidResponse)?;
    let mut u = Usage::default();
    if let Some(r) = &p.usage {
        r.apply(&mut u);
    }
    if let Some(m) = p.model {
        u.note_model(&m);
    }
    Ok(u)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usage_of_reads_details() {
        let body = br#"{"id":"resp_1","model":"gpt-5","usage":{"input_tokens":10,
            "input_tokens_details":{"cached_tokens":4},"output_tokens":7,
            "output_tokens_details":{"reasoning_tokens":3},"total_tokens":17}}"#;
        let u = usage_of(body).unwrap();
        assert_eq!(
            (
                u.input_tokens,
                u.cache_read_tokens,
                u.output_tokens,
                u.reasoning_tokens
            ),
            (10, 4, 7, 3)
        );
        assert_eq!(u.response_model.as_deref(), Some("gpt-5"));
        assert_eq!(
            usage_of(br#"{"usage":null}"#).unwrap(),
            crate::Usage::default()
        );
        assert!(usage_of(b"[]").is_err());
    }
}
