//! Gemini `generateContent` wire types: only the fields the translations read or write.
//!
//! Requests are written by this crate; a Gemini client's own body is forwarded untouched to
//! Gemini providers, and read through [`Content`] and [`Part`] (which also take the
//! snake_case names Google's REST examples use) when it goes to another provider. Responses and stream chunks are read
//! leniently: unknown fields (`safetyRatings`, `citationMetadata`, `executableCode` parts, ...)
//! are ignored and every field may be missing.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::Usage;
use crate::anthropic::MessagesUsage;
use crate::openai::{ChatUsage, CompletionTokensDetails, PromptTokensDetails};

/// A `generateContent` / `streamGenerateContent` request body.
#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Request {
    /// The conversation (`user` and `model` turns).
    pub contents: Vec<Content>,
    /// The system prompt (parts only, no role).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub system_instruction: Option<Content>,
    /// Function declarations (one tool holding them all).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tools: Option<Vec<Tool>>,
    /// How the model may call functions.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tool_config: Option<ToolConfig>,
    /// Sampling and output options.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub generation_config: Option<GenerationConfig>,
}

/// One turn: a role and its parts.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Content {
    /// `user` or `model` (absent in `systemInstruction`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    /// The parts, in order.
    #[serde(default)]
    pub parts: Vec<Part>,
}

/// One part of a turn. Exactly one of the data fields is set.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Part {
    /// Text (or thought summary text when `thought` is true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// Whether the text is a thought summary.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thought: Option<bool>,
    /// Opaque signature of the model's reasoning (base64).
    #[serde(
        default,
        alias = "thought_signature",
        skip_serializing_if = "Option::is_none"
    )]
    pub thought_signature: Option<String>,
    /// Inline bytes.
    #[serde(
        default,
        alias = "inline_data",
        skip_serializing_if = "Option::is_none"
    )]
    pub inline_data: Option<Blob>,
    /// Bytes by URI.
    #[serde(default, alias = "file_data", skip_serializing_if = "Option::is_none")]
    pub file_data: Option<FileData>,
    /// A function call by the model.
    #[serde(
        default,
        alias = "function_call",
        skip_serializing_if = "Option::is_none"
    )]
    pub function_call: Option<FunctionCall>,
    /// A function's result (user turns).
    #[serde(
        default,
        alias = "function_response",
        skip_serializing_if = "Option::is_none"
    )]
    pub function_response: Option<FunctionResponse>,
}

impl Part {
    /// A text part.
    pub fn text(text: String) -> Self {
        Self {
            text: Some(text),
            ..Default::default()
        }
    }

    /// The text of a non-thought text part.
    pub fn answer_text(&self) -> Option<&str> {
        self.text.as_deref().filter(|_| self.thought != Some(true))
    }

    /// The text of a thought part.
    pub fn thought_text(&self) -> Option<&str> {
        self.text.as_deref().filter(|_| self.thought == Some(true))
    }
}

/// `inlineData`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Blob {
    /// MIME type.
    #[serde(default, alias = "mime_type")]
    pub mime_type: String,
    /// Base64 data.
    #[serde(default)]
    pub data: String,
}

/// `fileData`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FileData {
    /// MIME type.
    #[serde(default, alias = "mime_type")]
    pub mime_type: String,
    /// Where the bytes are.
    #[serde(default, alias = "file_uri")]
    pub file_uri: String,
}

/// `functionCall`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct FunctionCall {
    /// Call id (rarely set by `generateContent`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Function name.
    #[serde(default)]
    pub name: String,
    /// Arguments object (whole, never streamed in pieces).
    #[serde(default)]
    pub args: Option<Value>,
}

impl FunctionCall {
    /// The arguments object: `{}` when absent, `{"_raw": <args>}` when not an object (never
    /// seen from Gemini, but clients expect an object).
    pub fn input(&self) -> Value {
        match &self.args {
            None | Some(Value::Null) => Value::Object(Default::default()),
            Some(v @ Value::Object(_)) => v.clone(),
            Some(v) => serde_json::json!({ "_raw": v }),
        }
    }

    /// The arguments object as JSON text.
    pub fn arguments(&self) -> String {
        self.input().to_string()
    }
}

/// `functionResponse`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct FunctionResponse {
    /// The id of the call this answers (when the call had one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The function that was called.
    #[serde(default)]
    pub name: String,
    /// Its result: always an object.
    #[serde(default)]
    pub response: Value,
}

/// A tool: function declarations.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Tool {
    /// The functions.
    pub function_declarations: Vec<FunctionDeclaration>,
}

/// One function the model may call.
#[derive(Debug, Serialize)]
pub struct FunctionDeclaration {
    /// Name.
    pub name: String,
    /// What it does.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Argument schema (Gemini's OpenAPI subset; see `schema`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parameters: Option<Value>,
}

/// `toolConfig`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ToolConfig {
    /// The calling mode.
    pub function_calling_config: FunctionCallingConfig,
}

/// `toolConfig.functionCallingConfig`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FunctionCallingConfig {
    /// `AUTO`, `ANY` or `NONE`.
    pub mode: &'static str,
    /// With `ANY`: the functions allowed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allowed_function_names: Option<Vec<String>>,
}

impl ToolConfig {
    /// A config with `mode` and, if given, the one function allowed.
    pub fn new(mode: &'static str, only: Option<String>) -> Self {
        Self {
            function_calling_config: FunctionCallingConfig {
                mode,
                allowed_function_names: only.map(|n| vec![n]),
            },
        }
    }
}

/// `generationConfig`.
#[derive(Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GenerationConfig {
    /// Sampling temperature.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f64>,
    /// Nucleus sampling.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub top_p: Option<f64>,
    /// Top-k sampling.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub top_k: Option<u64>,
    /// Output limit.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_output_tokens: Option<u64>,
    /// Stop sequences.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stop_sequences: Option<Vec<String>>,
    /// Sampling seed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seed: Option<Value>,
    /// Presence penalty.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub presence_penalty: Option<f64>,
    /// Frequency penalty.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub frequency_penalty: Option<f64>,
    /// `application/json` for JSON output.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub response_mime_type: Option<String>,
    /// Output schema (with `application/json`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub response_schema: Option<Value>,
    /// Thinking budget and whether thought summaries are returned.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub thinking_config: Option<Value>,
}

impl GenerationConfig {
    /// `None` when nothing is set (the field is then left out).
    pub fn into_option(self) -> Option<Self> {
        (self != Self::default()).then_some(self)
    }
}

/// A whole response, or one chunk of a stream (which may also be an error object).
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Response {
    /// The candidates (one unless `candidateCount` asked for more).
    #[serde(default)]
    pub candidates: Vec<Candidate>,
    /// Why the prompt was blocked, if it was.
    #[serde(default)]
    pub prompt_feedback: Option<PromptFeedback>,
    /// Token counts (cumulative in streams; present at least on the last chunk).
    #[serde(default)]
    pub usage_metadata: Option<UsageMetadata>,
    /// The model that answered.
    #[serde(default)]
    pub model_version: Option<String>,
    /// Response id.
    #[serde(default)]
    pub response_id: Option<String>,
    /// A Google API error (`{"code","message","status"}`) sent in a stream.
    #[serde(default)]
    pub error: Option<Value>,
}

impl Response {
    /// Candidate 0.
    pub fn candidate(&self) -> Option<&Candidate> {
        self.candidates.iter().find(|c| c.index.unwrap_or(0) == 0)
    }

    /// The block reason of a blocked prompt.
    pub fn block_reason(&self) -> Option<&str> {
        self.prompt_feedback.as_ref()?.block_reason.as_deref()
    }

    /// The error's message, if this is an error object.
    pub fn error_message(&self) -> Option<String> {
        let err = self.error.as_ref()?;
        Some(
            err.get("message")
                .and_then(Value::as_str)
                .map_or_else(|| err.to_string(), str::to_string),
        )
    }

    /// The error's status (`RESOURCE_EXHAUSTED`, ...), if any.
    pub fn error_status(&self) -> Option<&str> {
        self.error.as_ref()?.get("status").and_then(Value::as_str)
    }
}

/// One candidate answer.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Candidate {
    /// The answer so far (missing when blocked).
    #[serde(default)]
    pub content: Option<Content>,
    /// Set when the candidate is complete.
    #[serde(default)]
    pub finish_reason: Option<String>,
    /// Candidate index.
    #[serde(default)]
    pub index: Option<u32>,
}

impl Candidate {
    /// The parts (none when there is no content).
    pub fn parts(&self) -> &[Part] {
        self.content.as_ref().map_or(&[], |c| c.parts.as_slice())
    }
}

/// `promptFeedback`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PromptFeedback {
    /// `SAFETY`, `BLOCKLIST`, `PROHIBITED_CONTENT`, `OTHER`, ...
    #[serde(default)]
    pub block_reason: Option<String>,
}

/// `usageMetadata`: read from a Gemini provider's answers, written in the answers to a Gemini
/// client (zero counts other than the first three left out).
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UsageMetadata {
    /// Input tokens, cached ones included.
    #[serde(default)]
    pub prompt_token_count: u64,
    /// Answer tokens (thoughts not included).
    #[serde(default)]
    pub candidates_token_count: u64,
    /// Input and output tokens (written for clients; the other counts are what is read).
    #[serde(default)]
    pub total_token_count: u64,
    /// Input tokens read from the context cache.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub cached_content_token_count: u64,
    /// Thinking tokens.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub thoughts_token_count: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl UsageMetadata {
    /// The counts of a normalized usage (output tokens include reasoning).
    pub fn from_usage(u: &Usage) -> Self {
        Self {
            prompt_token_count: u.input_tokens,
            candidates_token_count: u.output_tokens.saturating_sub(u.reasoning_tokens),
            total_token_count: u.input_tokens.saturating_add(u.output_tokens),
            cached_content_token_count: u.cache_read_tokens,
            thoughts_token_count: u.reasoning_tokens,
        }
    }

    /// Output tokens, thinking included.
    pub fn output_tokens(&self) -> u64 {
        self.candidates_token_count
            .saturating_add(self.thoughts_token_count)
    }

    /// Copies the counts into `usage` (the model is left alone).
    pub fn apply(&self, usage: &mut Usage) {
        usage.input_tokens = self.prompt_token_count;
        usage.output_tokens = self.output_tokens();
        usage.cache_read_tokens = self.cached_content_token_count;
        usage.cache_write_tokens = 0;
        usage.reasoning_tokens = self.thoughts_token_count;
    }

    /// The counts in OpenAI terms.
    pub fn chat_usage(&self) -> ChatUsage {
        let output = self.output_tokens();
        ChatUsage {
            prompt_tokens: self.prompt_token_count,
            completion_tokens: output,
            total_tokens: self.prompt_token_count.saturating_add(output),
            prompt_tokens_details: Some(PromptTokensDetails {
                cached_tokens: Some(self.cached_content_token_count),
            }),
            completion_tokens_details: Some(CompletionTokensDetails {
                reasoning_tokens: Some(self.thoughts_token_count),
            }),
            prompt_cache_hit_tokens: None,
        }
    }

    /// The counts in Anthropic terms (`input_tokens` excludes cache reads).
    pub fn messages_usage(&self) -> MessagesUsage {
        let cached = self.cached_content_token_count.min(self.prompt_token_count);
        MessagesUsage {
            input_tokens: self.prompt_token_count - cached,
            output_tokens: self.output_tokens(),
            cache_creation_input_tokens: Some(0),
            cache_read_input_tokens: Some(cached),
        }
    }
}
