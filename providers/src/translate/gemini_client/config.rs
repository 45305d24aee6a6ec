//! A Gemini client's `generationConfig` and schemas in chat completions terms (see the
//! `to_chat` module for the mapping).

use serde::Deserialize;
use serde_json::{Value, json};

use crate::Error;
use crate::openai as o;

/// What the chat request may carry beyond the fields every chat provider takes.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct ChatOptions {
    /// Send `topK` as `top_k` (the Anthropic translator reads it; OpenAI rejects it).
    pub(super) top_k: bool,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub(super) struct GenerationConfig {
    #[serde(default)]
    temperature: Option<f64>,
    #[serde(default, alias = "top_p")]
    top_p: Option<f64>,
    #[serde(default, alias = "top_k")]
    top_k: Option<f64>,
    #[serde(default, alias = "candidate_count")]
    candidate_count: Option<u64>,
    #[serde(default, alias = "max_output_tokens")]
    max_output_tokens: Option<u64>,
    #[serde(default, alias = "stop_sequences")]
    stop_sequences: Option<Vec<String>>,
    #[serde(default)]
    seed: Option<i64>,
    #[serde(default, alias = "presence_penalty")]
    presence_penalty: Option<f64>,
    #[serde(default, alias = "frequency_penalty")]
    frequency_penalty: Option<f64>,
    #[serde(default, alias = "response_mime_type")]
    response_mime_type: Option<String>,
    #[serde(default, alias = "response_schema")]
    response_schema: Option<Value>,
    #[serde(default, alias = "response_json_schema")]
    response_json_schema: Option<Value>,
    #[serde(default, alias = "response_modalities")]
    response_modalities: Option<Vec<String>>,
    #[serde(default, alias = "thinking_config")]
    thinking_config: Option<ThinkingConfig>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct ThinkingConfig {
    #[serde(default, alias = "thinking_budget")]
    thinking_budget: Option<i64>,
    #[serde(default, alias = "thinking_level")]
    thinking_level: Option<String>,
}

/// Applies a `generationConfig` to the chat request.
pub(super) fn generation(
    c: GenerationConfig,
    chat: &mut o::ChatRequest,
    options: ChatOptions,
) -> Result<(), Error> {
    if c.candidate_count.is_some_and(|n| n > 1) {
        return Err(Error::Unsupported(
            "candidateCount above 1 cannot be translated for this provider".into(),
        ));
    }
    if let Some(m) = c
        .response_modalities
        .iter()
        .flatten()
        .find(|m| !m.eq_ignore_ascii_case("text"))
    {
        return Err(Error::Unsupported(format!(
            "responseModalities {m} cannot be translated for this provider (text only)"
        )));
    }
    chat.temperature = c.temperature;
    chat.top_p = c.top_p;
    chat.max_completion_tokens = c.max_output_tokens;
    chat.stop = c.stop_sequences.filter(|s| !s.is_empty()).map(|s| json!(s));
    let extra = &mut chat.extra;
    if let Some(k) = c.top_k.filter(|_| options.top_k) {
        extra.insert("top_k".into(), json!(k.max(0.0).round() as u64));
    }
    if let Some(seed) = c.seed {
        extra.insert("seed".into(), json!(seed));
    }
    if let Some(p) = c.presence_penalty {
        extra.insert("presence_penalty".into(), json!(p));
    }
    if let Some(p) = c.frequency_penalty {
        extra.insert("frequency_penalty".into(), json!(p));
    }
    match c.response_mime_type.as_deref() {
        None | Some("text/plain" | "") => {}
        Some("application/json") => {
            let schema = match (c.response_json_schema, c.response_schema) {
                (Some(s), _) if !s.is_null() => Some(s),
                (_, Some(s)) if !s.is_null() => Some(json_schema(s)),
                _ => None,
            };
            let format = match schema {
                Some(schema) => json!({"type": "json_schema",
                    "json_schema": {"name": "response", "schema": schema}}),
                None => json!({"type": "json_object"}),
            };
            extra.insert("response_format".into(), format);
        }
        Some(other) => {
            return Err(Error::Unsupported(format!(
                "responseMimeType {other} cannot be translated for this provider"
            )));
        }
    }
    if let Some(t) = c.thinking_config {
        let effort = match (t.thinking_level, t.thinking_budget) {
            (Some(level), _) => Some(level.to_ascii_lowercase()),
            (None, Some(b)) if b > 8192 => Some("high".to_string()),
            (None, Some(b)) if b > 1024 => Some("medium".to_string()),
            (None, Some(b)) if b > 0 => Some("low".to_string()),
            _ => None,
        };
        if let Some(effort) = effort.filter(|e| e != "thinking_level_unspecified") {
            extra.insert("reasoning_effort".into(), Value::String(effort));
        }
    }
    Ok(())
}

/// Gemini's schema (an OpenAPI 3.0 subset: upper-case `type`, `nullable`, `propertyOrdering`)
/// as JSON Schema: types lower-cased (`nullable` adds `"null"`), `propertyOrdering` and
/// `example` dropped, the same done inside `properties`, `items` and `anyOf`.
pub(super) fn json_schema(schema: Value) -> Value {
    let Value::Object(mut m) = schema else {
        return schema;
    };
    m.remove("propertyOrdering");
    m.remove("property_ordering");
    m.remove("example");
    let nullable = m.remove("nullable") == Some(Value::Bool(true));
    match m.remove("type") {
        Some(Value::String(t)) if t != "TYPE_UNSPECIFIED" => {
            let t = Value::String(t.to_ascii_lowercase());
            let t = if nullable { json!([t, "null"]) } else { t };
            m.insert("type".into(), t);
        }
        Some(Value::Array(ts)) => {
            let ts = ts
                .into_iter()
                .map(|t| match t {
                    Value::String(s) => Value::String(s.to_ascii_lowercase()),
                    t => t,
                })
                .collect();
            m.insert("type".into(), Value::Array(ts));
        }
        _ => {}
    }
    if let Some(Value::Object(props)) = m.remove("properties") {
        let props = props
            .into_iter()
            .map(|(k, v)| (k, json_schema(v)))
            .collect();
        m.insert("properties".into(), Value::Object(props));
    }
    if let Some(items) = m.remove("items") {
        m.insert("items".into(), json_schema(items));
    }
    for key in ["anyOf", "any_of"] {
        if let Some(Value::Array(any)) = m.remove(key) {
            let any = any.into_iter().map(json_schema).collect();
            m.insert("anyOf".into(), Value::Array(any));
        }
    }
    Value::Object(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schemas_become_json_schema() {
        let s = json_schema(json!({"type": "OBJECT", "propertyOrdering": ["a"],
            "properties": {"a": {"type": "STRING", "nullable": true, "enum": ["x"]},
                           "b": {"type": "ARRAY", "items": {"type": "INTEGER"}},
                           "c": {"anyOf": [{"type": "NUMBER"}, {"type": "BOOLEAN"}]}},
            "required": ["a"]}));
        assert_eq!(
            s,
            json!({"type": "object", "required": ["a"], "properties": {
                "a": {"type": ["string", "null"], "enum": ["x"]},
                "b": {"type": "array", "items": {"type": "integer"}},
                "c": {"anyOf": [{"type": "number"}, {"type": "boolean"}]}}})
        );
    }
}
