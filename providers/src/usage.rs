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

/// Usage from any JSON body that carries it in a common shape: an OpenAI / Anthropic /
/// Responses-API `usage` object, or Gemini's `usageMetadata`. Anything else gives nothing.
pub fn lenient(body: &[u8]) -> Usage {
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(body) else {
        return Usage::default();
    };
    let n = |u: &serde_json::Value, keys: &[&str]| {
        keys.iter()
            .find_map(|k| u.get(*k).and_then(serde_json::Value::as_u64))
            .unwrap_or(0)
    };
    let response_model = v.get("model").and_then(|m| m.as_str()).map(str::to_string);
    if let Some(u) = v.get("usage").filter(|u| u.is_object()) {
        return Usage {
            input_tokens: n(u, &["input_tokens", "prompt_tokens"]),
            output_tokens: n(u, &["output_tokens", "completion_tokens"]),
            response_model,
            ..Usage::default()
        };
    }
    if let Some(u) = v.get("usageMetadata") {
        return Usage {
            input_tokens: n(u, &["promptTokenCount"]),
            output_tokens: n(u, &["candidatesTokenCount"]),
            response_model,
            ..Usage::default()
        };
    }
    Usage::default()
}

#[cfg(test)]
mod tests {
    use super::lenient;

    #[test]
    fn lenient_usage_shapes() {
        let responses = br#"{"model":"gpt-4.1","usage":{"input_tokens":5,"output_tokens":3}}"#;
        let u = lenient(responses);
        assert_eq!((u.input_tokens, u.output_tokens), (5, 3));
        assert_eq!(u.response_model.as_deref(), Some("gpt-4.1"));
        let chat = br#"{"usage":{"prompt_tokens":7,"completion_tokens":2}}"#;
        assert_eq!(lenient(chat).input_tokens, 7);
        let gemini = br#"{"usageMetadata":{"promptTokenCount":4,"candidatesTokenCount":1}}"#;
        assert_eq!(lenient(gemini).output_tokens, 1);
        assert_eq!(lenient(b"not json"), super::Usage::default());
        assert_eq!(lenient(br#"{"usage":null}"#), super::Usage::default());
    }
}
