//! A Gemini `generateContent` request as an OpenAI chat completions request, for providers
//! that do not speak Gemini (the chat request then goes through the chat translators).
//!
//! `systemInstruction` → a leading system message; `contents` by role: `user` (or no role, or
//! the older `function`) turns → `tool` messages for their `functionResponse` parts (the
//! response object as JSON text), then a user message of the other parts (text; `inlineData`
//! images → `image_url` data URLs, PDFs → `file` parts, WAV/MP3 audio → `input_audio`;
//! `fileData` with an `http(s)` image URI → `image_url`); `model` turns → an assistant message
//! (text joined; `functionCall` parts → `tool_calls`, the arguments object as JSON text).
//! Thought parts and thought signatures are dropped (they belong to the model that wrote them).
//!
//! Call ids: a `functionCall` without an `id` gets `call_<n>`, `n` counting the calls of the
//! request; a `functionResponse` without an `id` answers the first unanswered call of the same
//! name in the last model turn (else it gets a new id).
//!
//! `tools[].functionDeclarations` → function tools (`parameters`, Gemini's OpenAPI subset with
//! upper-case types, becomes JSON Schema: see [`json_schema`]; `parametersJsonSchema` is taken
//! as it is); `toolConfig.functionCallingConfig`: `AUTO`/`VALIDATED` → `auto`, `ANY` →
//! `required` (one allowed function → that function), `NONE` → `none`,
//! `allowedFunctionNames` narrows the tools. `generationConfig`: `temperature`, `topP`,
//! `maxOutputTokens` → `max_completion_tokens`, `stopSequences` → `stop`, `seed`,
//! `presencePenalty`, `frequencyPenalty`, `responseMimeType: application/json` →
//! `response_format` (`json_schema` with `responseSchema` / `responseJsonSchema`, else
//! `json_object`), `thinkingConfig` (`thinkingLevel`, or a positive `thinkingBudget`:
//! up to 1024 low, up to 8192 medium, more high) → `reasoning_effort`, `topK` → `top_k`
//! (read by the Anthropic translator only; see [`ChatOptions`]). Safety settings and labels
//! are dropped.
//!
//! Refused: `candidateCount` above 1, output modalities other than text, `text/x.enum`
//! output, tools other than function declarations (Google Search, code execution, ...),
//! `cachedContent`, and parts that cannot be carried (executable code, `fileData` that is
//! not an http(s) image, inline data of other types, data in model turns).

use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::config::{ChatOptions, GenerationConfig, generation, json_schema};
use crate::Error;
use crate::openai::{self as o, ChatMessage, Content as ChatContent, ContentPart};
use crate::translate::gemini::wire::{Content, FunctionCall, FunctionResponse, Part};
use crate::translate::{is_http_url, parse_request};

/// A `generateContent` body, as far as the translation reads it.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct GeminiRequest {
    #[serde(default)]
    contents: Vec<Content>,
    #[serde(default, alias = "system_instruction")]
    system_instruction: Option<Content>,
    #[serde(default)]
    tools: Vec<Map<String, Value>>,
    #[serde(default, alias = "tool_config")]
    tool_config: Option<ToolConfig>,
    #[serde(default, alias = "generation_config")]
    generation_config: Option<GenerationConfig>,
    #[serde(default, alias = "cached_content")]
    cached_content: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct ToolConfig {
    #[serde(default, alias = "function_calling_config")]
    function_calling_config: Option<CallingConfig>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct CallingConfig {
    #[serde(default)]
    mode: Option<String>,
    #[serde(default, alias = "allowed_function_names")]
    allowed_function_names: Option<Vec<String>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Declaration {
    name: String,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    parameters: Option<Value>,
    #[serde(default, alias = "parameters_json_schema")]
    parameters_json_schema: Option<Value>,
}

/// The chat completions request for a `generateContent` body, `model` (from the client's
/// path) as its model, streaming (with usage) if `stream`.
pub(super) fn request(
    body: &[u8],
    model: &str,
    stream: bool,
    options: ChatOptions,
) -> Result<o::ChatRequest, Error> {
    let req: GeminiRequest = parse_request(body)?;
    if req.cached_content.is_some() {
        return Err(Error::Unsupported(
            "cachedContent needs a context cache stored by Google: send the content itself".into(),
        ));
    }
    let mut messages = Vec::new();
    if let Some(system) = req.system_instruction {
        let text: Vec<&str> = system
            .parts
            .iter()
            .filter_map(Part::answer_text)
            .filter(|t| !t.is_empty())
            .collect();
        if !text.is_empty() {
            messages.push(ChatMessage::System {
                content: ChatContent::Text(text.join("\n")),
                name: None,
            });
        }
    }
    let mut history = History::default();
    for content in req.contents {
        history.push(content, &mut messages)?;
    }
    if !messages
        .iter()
        .any(|m| !matches!(m, ChatMessage::System { .. }))
    {
        return Err(Error::InvalidRequest("contents is required".into()));
    }
    let (tools, tool_choice) = tools(req.tools, req.tool_config)?;
    let mut chat = o::ChatRequest {
        model: Some(model.to_string()),
        messages,
        stream: stream.then_some(true),
        stream_options: stream.then(|| o::StreamOptions {
            include_usage: Some(true),
            extra: Map::new(),
        }),
        tools: (!tools.is_empty()).then_some(tools),
        tool_choice,
        ..Default::default()
    };
    if let Some(config) = req.generation_config {
        generation(config, &mut chat, options)?;
    }
    Ok(chat)
}

/// The conversation so far: the calls of the last model turn (to match responses without
/// ids) and how many calls were seen.
#[derive(Default)]
struct History {
    /// Id and name of each call of the last model turn, and whether it was answered.
    calls: Vec<(String, String, bool)>,
    /// Calls seen in the request.
    count: usize,
}

impl History {
    /// Appends the chat message(s) for one content.
    fn push(&mut self, content: Content, messages: &mut Vec<ChatMessage>) -> Result<(), Error> {
        match content.role.as_deref() {
            None | Some("user" | "function" | "tool") => self.user(content.parts, messages),
            Some("model") => self.model(content.parts, messages),
            Some(other) => Err(Error::InvalidRequest(format!(
                "contents role must be user or model, not {other}"
            ))),
        }
    }

    /// Appends the assistant message for a model turn (none for a turn of thoughts only) and
    /// remembers its calls.
    fn model(&mut self, parts: Vec<Part>, messages: &mut Vec<ChatMessage>) -> Result<(), Error> {
        let mut text = String::new();
        let mut calls = Vec::new();
        for p in parts {
            if p.thought == Some(true) {
                continue;
            }
            if let Some(call) = p.function_call {
                calls.push(self.call(call));
            } else if let Some(t) = p.text {
                text.push_str(&t);
            } else {
                return Err(unsupported_part(&p, "model"));
            }
        }
        self.calls = calls
            .iter()
            .map(|c: &o::ToolCall| (c.id.clone(), c.function.name.clone(), false))
            .collect();
        if text.is_empty() && calls.is_empty() {
            return Ok(());
        }
        messages.push(ChatMessage::Assistant {
            content: (!text.is_empty()).then_some(ChatContent::Text(text)),
            tool_calls: (!calls.is_empty()).then_some(calls),
            refusal: None,
            name: None,
        });
        Ok(())
    }

    /// The chat tool call for a function call (an id given if it has none).
    fn call(&mut self, call: FunctionCall) -> o::ToolCall {
        self.count += 1;
        let id = call
            .id
            .clone()
            .filter(|id| !id.is_empty())
            .unwrap_or_else(|| format!("call_{}", self.count - 1));
        o::ToolCall {
            id,
            kind: "function".into(),
            function: o::FunctionCall {
                arguments: call.arguments(),
                name: call.name,
            },
        }
    }

    /// Appends the messages for a user turn: a tool message per function response, then a
    /// user message of the other parts (none if there are none).
    fn user(&mut self, parts: Vec<Part>, messages: &mut Vec<ChatMessage>) -> Result<(), Error> {
        let mut content = Vec::new();
        for p in parts {
            if p.thought == Some(true) {
                continue;
            }
            if let Some(r) = p.function_response {
                let id = self.answer(&r);
                messages.push(ChatMessage::Tool {
                    content: ChatContent::Text(r.response.to_string()),
                    tool_call_id: id,
                });
            } else if let Some(t) = p.text {
                if !t.is_empty() {
                    content.push(ContentPart::Text {
                        text: t,
                        cache_control: None,
                    });
                }
            } else if let Some(blob) = p.inline_data {
                content.push(inline_part(blob.mime_type, blob.data)?);
            } else if let Some(file) = p.file_data {
                if !(file.mime_type.starts_with("image/") && is_http_url(&file.file_uri)) {
                    return Err(Error::Unsupported(format!(
                        "fileData must be an http(s) image URL for this provider, not {} {}",
                        file.mime_type, file.file_uri
                    )));
                }
                content.push(ContentPart::ImageUrl {
                    image_url: o::ImageUrl {
                        url: file.file_uri,
                        detail: None,
                    },
                });
            } else {
                return Err(unsupported_part(&p, "user"));
            }
        }
        if content.is_empty() {
            return Ok(());
        }
        let content = match content.as_slice() {
            [ContentPart::Text { text, .. }] => ChatContent::Text(text.clone()),
            _ => ChatContent::Parts(content),
        };
        messages.push(ChatMessage::User {
            content,
            name: None,
        });
        Ok(())
    }

    /// The id of the call a function response answers.
    fn answer(&mut self, r: &FunctionResponse) -> String {
        if let Some(id) = r.id.clone().filter(|id| !id.is_empty()) {
            if let Some(c) = self.calls.iter_mut().find(|c| c.0 == id) {
                c.2 = true;
            }
            return id;
        }
        if let Some(c) = self.calls.iter_mut().find(|c| !c.2 && c.1 == r.name) {
            c.2 = true;
            return c.0.clone();
        }
        self.count += 1;
        format!("call_{}", self.count - 1)
    }
}

/// The error for a part the translation cannot carry.
fn unsupported_part(p: &Part, role: &str) -> Error {
    let what = if p.inline_data.is_some() || p.file_data.is_some() {
        "data parts"
    } else {
        "parts other than text, inlineData, fileData, functionCall and functionResponse"
    };
    Error::Unsupported(format!(
        "{what} in {role} turns cannot be translated for this provider"
    ))
}

/// The chat part for inline data: images, PDFs, WAV or MP3 audio.
fn inline_part(mime: String, data: String) -> Result<ContentPart, Error> {
    let mime = mime.to_ascii_lowercase();
    if mime.starts_with("image/") {
        return Ok(ContentPart::ImageUrl {
            image_url: o::ImageUrl {
                url: format!("data:{mime};base64,{data}"),
                detail: None,
            },
        });
    }
    let audio = match mime.as_str() {
        "application/pdf" => {
            return Ok(ContentPart::File {
                file: o::FileRef {
                    file_data: Some(format!("data:{mime};base64,{data}")),
                    file_id: None,
                    filename: Some("document.pdf".into()),
                },
            });
        }
        "audio/wav" | "audio/x-wav" | "audio/wave" => "wav",
        "audio/mp3" | "audio/mpeg" => "mp3",
        _ => {
            return Err(Error::Unsupported(format!(
                "inlineData of type {mime} cannot be translated for this provider"
            )));
        }
    };
    Ok(ContentPart::InputAudio {
        input_audio: json!({"data": data, "format": audio}),
    })
}

/// Chat tools and tool choice for the request's tools and tool config.
fn tools(
    tools: Vec<Map<String, Value>>,
    config: Option<ToolConfig>,
) -> Result<(Vec<o::Tool>, Option<Value>), Error> {
    let mut out = Vec::new();
    for tool in tools {
        for (kind, v) in tool {
            if !matches!(
                kind.as_str(),
                "functionDeclarations" | "function_declarations"
            ) {
                return Err(Error::Unsupported(format!(
                    "tools of kind {kind} cannot be translated for this provider (only functionDeclarations)"
                )));
            }
            let decls: Vec<Declaration> = serde_json::from_value(v)
                .map_err(|e| Error::InvalidRequest(format!("functionDeclarations: {e}")))?;
            for d in decls {
                let parameters = match (d.parameters_json_schema, d.parameters) {
                    (Some(s), _) if !s.is_null() => Some(s),
                    (_, Some(s)) if !s.is_null() => Some(json_schema(s)),
                    _ => None,
                };
                out.push(o::Tool {
                    kind: "function".into(),
                    function: Some(o::FunctionDef {
                        name: d.name,
                        description: d.description,
                        parameters,
                        strict: None,
                    }),
                });
            }
        }
    }
    let Some(cfg) = config.and_then(|c| c.function_calling_config) else {
        return Ok((out, None));
    };
    if let Some(allowed) = &cfg.allowed_function_names {
        out.retain(|t| {
            t.function
                .as_ref()
                .is_some_and(|f| allowed.contains(&f.name))
        });
    }
    let choice = match cfg.mode.as_deref().unwrap_or("AUTO") {
        "AUTO" | "VALIDATED" | "MODE_UNSPECIFIED" => None,
        "NONE" => Some(json!("none")),
        "ANY" => match cfg.allowed_function_names.as_deref() {
            Some([only]) => Some(json!({"type": "function", "function": {"name": only}})),
            _ => Some(json!("required")),
        },
        other => {
            return Err(Error::InvalidRequest(format!(
                "functionCallingConfig.mode must be AUTO, ANY, NONE or VALIDATED, not {other}"
            )));
        }
    };
    // A choice without tools is rejected by OpenAI.
    let choice = choice.filter(|_| !out.is_empty());
    Ok((out, choice))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chat(body: Value) -> Result<Value, Error> {
        request(
            body.to_string().as_bytes(),
            "m",
            false,
            ChatOptions::default(),
        )
        .map(|c| serde_json::to_value(c).unwrap())
    }

    #[test]
    fn refused_and_invalid() {
        for body in [
            json!({"contents": [{"parts": [{"text": "hi"}]}], "cachedContent": "c/1"}),
            json!({"contents": [{"parts": [{"text": "hi"}]}], "tools": [{"googleSearch": {}}]}),
            json!({"contents": [{"parts": [{"text": "hi"}]}],
                   "generationConfig": {"candidateCount": 2}}),
            json!({"contents": [{"parts": [{"text": "hi"}]}],
                   "generationConfig": {"responseModalities": ["IMAGE"]}}),
            json!({"contents": [{"parts": [{"executableCode": {"code": "1"}}]}]}),
            json!({"contents": [{"parts": [{"fileData": {"mimeType": "application/pdf",
                   "fileUri": "gs://b/x.pdf"}}]}]}),
            json!({"contents": [{"parts": [{"inlineData": {"mimeType": "video/mp4",
                   "data": "AA=="}}]}]}),
        ] {
            assert!(
                matches!(chat(body.clone()), Err(Error::Unsupported(_))),
                "{body}"
            );
        }
        for body in [
            json!({"contents": []}),
            json!({"contents": [{"role": "system", "parts": [{"text": "x"}]}]}),
            json!({"contents": "hi"}),
            json!({"contents": [{"parts": [{"text": "hi"}]}],
                   "toolConfig": {"functionCallingConfig": {"mode": "SOMETIMES"}}}),
        ] {
            assert!(
                matches!(chat(body.clone()), Err(Error::InvalidRequest(_))),
                "{body}"
            );
        }
    }

    #[test]
    fn responses_find_their_calls() {
        let c = chat(json!({"contents": [
            {"role": "user", "parts": [{"text": "weather?"}]},
            {"role": "model", "parts": [
                {"functionCall": {"name": "w", "args": {"c": "A"}}, "thoughtSignature": "s"},
                {"functionCall": {"name": "w", "args": {"c": "B"}}},
                {"functionCall": {"id": "x9", "name": "t", "args": {}}}]},
            {"role": "user", "parts": [
                {"functionResponse": {"name": "t", "response": {"r": 0}}},
                {"functionResponse": {"name": "w", "response": {"r": 1}}},
                {"functionResponse": {"name": "w", "response": {"r": 2}}},
                {"functionResponse": {"name": "z", "response": {}}},
                {"text": "and?"}]}
        ]}))
        .unwrap();
        let m = c["messages"].as_array().unwrap();
        let ids: Vec<&str> = m[1]["tool_calls"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["id"].as_str().unwrap())
            .collect();
        assert_eq!(ids, ["call_0", "call_1", "x9"]);
        let answered: Vec<&str> = m[2..6]
            .iter()
            .map(|t| t["tool_call_id"].as_str().unwrap())
            .collect();
        assert_eq!(answered, ["x9", "call_0", "call_1", "call_3"]);
        assert_eq!(m[3]["content"], "{\"r\":1}");
        assert_eq!(m[6], json!({"role": "user", "content": "and?"}));
    }
}
