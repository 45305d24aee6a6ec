//! Token usage, normalized across wire formats.

/// Token usage of one LLM call, whatever the provider's format.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Usage {
    /// All input tokens, cached ones included (OpenAI `prompt_tokens`; Anthropic
    /// `input_tokens + cache_read_input_tokens + cache_creation_input_tokens`).
    pub input_tokens: u64,
    /// Output tokens (reasoning included).
    pub output_tokens: u64,
    /// Input tokens read from the provider's prompt cache.
    pub cache_read_tokens: u64,
    /// Input tokens written to the provider's prompt cache (Anthropic only).
    pub cache_write_tokens: u64,
    /// Output tokens spent on reasoning, when the provider reports them.
    pub reasoning_tokens: u64,
    /// The model the provider says answered.
    pub response_model: Option<String>,
}

impl Usage {
    /// Sets the response model unless one is already known or `model` is empty.
    pub(crate) fn note_model(&mut self, model: &str) {
        if self.response_model.is_none() && !model.is_empty() {
            self.response_model = Some(model.to_string());
        }
    }
}
