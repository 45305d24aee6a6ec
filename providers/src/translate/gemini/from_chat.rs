//! An OpenAI chat completions client served by a Gemini provider: the request.
//!
//! System and developer messages become `systemInstruction`; user content parts become text,
//! `inlineData` (`data:` URLs: images, inline `file` PDFs, `input_audio`) and `fileData`
//! (`http(s)` image URLs, MIME type guessed from the extension, else `image/jpeg`) parts;
//! assistant text and `tool_calls` become a `model` turn of text and `functionCall` parts
//! (arguments parsed to an object); `tool` messages become `functionResponse` parts of a user
//! turn, named after the earlier tool call they answer (images in a tool message follow as
//! parts of the same turn). `tools` → `functionDeclarations`; `tool_choice` →
//! `toolConfig.functionCallingConfig` (`auto` → `AUTO`, `none` → `NONE`, `required` → `ANY`,
//! a named function → `ANY` limited to it); `max_completion_tokens`/`max_tokens` →
//! `maxOutputTokens`; `temperature`, `top_p`, `stop`, `seed`, `presence_penalty`,
//! `frequency_penalty`; `response_format` `json_object`/`json_schema` → `responseMimeType`
//! (+ `responseSchema`). Other fields (`user`, `logprobs`, `parallel_tool_calls`,
//! `reasoning_effort`, ...) have no Gemini equivalent and are dropped. `n > 1` and uploaded
//! file ids are unsupported.

use std::collections::HashMap;

use serde_json::Value;

use super::wire::{GenerationConfig, Part, ToolConfig};
use super::{
    Turns, call_part, declaration, inline_part, model_request, request_body, response_part,
    result_object, schema, text_part, url_part,
};
use crate::Error;
use crate::openai::{self as o, ChatMessage, ChatRequest, ContentPart};
use crate::translate::{ModelRequest, function_tool, single_choice, stream_flags, tool_arguments};

/// The Gemini request for a chat request already read; `model` overrides the request's.
pub(super) fn request(req: ChatRequest, model: Option<&str>) -> Result<ModelRequest, Error> {
    single_choice(req.n, "Gemini")?;
    let mut system = Vec::new();
    let mut turns = Turns::default();
    // Function name of each tool call id seen so far (a tool message names only the id).
    let mut names: HashMap<String, String> = HashMap::new();
    for msg in req.messages {
        match msg {
            ChatMessage::System { content, .. } | ChatMessage::Developer { content, .. } => {
                system.extend(text_parts(content, "system")?);
            }
            ChatMessage::User { content, .. } => turns.push("user", user_parts(content)?),
            ChatMessage::Assistant {
                content,
                tool_calls,
                refusal,
                ..
            } => {
                let mut parts = match content {
                    Some(c) => text_parts(c, "assistant")?,
                    None => Vec::new(),
                };
                parts.extend(refusal.and_then(text_part));
                for call in tool_calls.unwrap_or_default() {
                    let args = tool_arguments(&call.function.arguments, &call.function.name)?;
                    names.insert(call.id, call.function.name.clone());
                    parts.push(call_part(call.function.name, args));
                }
                turns.push("model", parts);
            }
            ChatMessage::Tool {
                content,
                tool_call_id,
            } => {
                let name = names.get(&tool_call_id).cloned().ok_or_else(|| {
                    Error::InvalidRequest(format!(
                        "tool message {tool_call_id:?} answers no earlier tool call"
                    ))
                })?;
                turns.push("user", tool_parts(name, content)?);
            }
        }
    }

    let mut declarations = Vec::new();
    for t in req.tools.unwrap_or_default() {
        let f = function_tool(t, "Gemini")?;
        declarations.push(declaration(f.name, f.description, f.parameters.as_ref()));
    }
    let has_tools = !declarations.is_empty();
    let tool_config = match req.tool_choice {
        Some(choice) if has_tools => tool_config(&choice)?,
        _ => None,
    };

    let mut config = GenerationConfig {
        temperature: req.temperature,
        top_p: req.top_p,
        max_output_tokens: req.max_completion_tokens.or(req.max_tokens),
        stop_sequences: stop_sequences(req.stop)?,
        ..Default::default()
    };
    extra_options(&req.extra, &mut config)?;

    let (stream, hide_usage_chunk) = stream_flags(req.stream, req.stream_options.as_ref());
    let out = request_body(turns, system, declarations, tool_config, config);
    model_request(out, req.model, model, stream, hide_usage_chunk)
}

/// Text-only content (system prompts, assistant text) as text parts.
fn text_parts(content: o::Content, role: &str) -> Result<Vec<Part>, Error> {
    match content {
        o::Content::Text(s) => Ok(text_part(s).into_iter().collect()),
        o::Content::Parts(parts) => {
            let mut out = Vec::new();
            for p in parts {
                match p {
                    ContentPart::Text { text, .. } | ContentPart::Refusal { refusal: text } => {
                        out.extend(text_part(text));
                    }
                    _ => {
                        return Err(Error::InvalidRequest(format!(
                            "{role} messages may only contain text parts"
                        )));
                    }
                }
            }
            Ok(out)
        }
    }
}

fn user_parts(content: o::Content) -> Result<Vec<Part>, Error> {
    match content {
        o::Content::Text(s) => Ok(text_part(s).into_iter().collect()),
        o::Content::Parts(parts) => {
            let mut out = Vec::new();
            for p in parts {
                out.extend(user_part(p)?);
            }
            Ok(out)
        }
    }
}

fn user_part(part: ContentPart) -> Result<Option<Part>, Error> {
    match part {
        ContentPart::Text { text, .. } | ContentPart::Refusal { refusal: text } => {
            Ok(text_part(text))
        }
        ContentPart::ImageUrl { image_url } => {
            url_part(&image_url.url, "image_url", "image/jpeg").map(Some)
        }
        ContentPart::File { file } => match file.file_data {
            Some(data) => url_part(&data, "file_data", "application/pdf").map(Some),
            None => Err(Error::Unsupported(
                "file parts must carry file_data: uploaded file ids cannot be sent to Gemini"
                    .into(),
            )),
        },
        ContentPart::InputAudio { input_audio } => {
            let field = |k: &str| input_audio.get(k).and_then(Value::as_str);
            match (field("data"), field("format")) {
                (Some(data), Some(format)) => Ok(Some(inline_part(
                    format!("audio/{format}"),
                    data.to_string(),
                ))),
                _ => Err(Error::InvalidRequest(
                    "input_audio needs data and format".into(),
                )),
            }
        }
    }
}

/// A tool message as a `functionResponse` part (then any images it holds).
fn tool_parts(name: String, content: o::Content) -> Result<Vec<Part>, Error> {
    let (text, mut extra) = match content {
        o::Content::Text(s) => (s, Vec::new()),
        o::Content::Parts(parts) => {
            let mut texts = Vec::new();
            let mut extra = Vec::new();
            for p in parts {
                match p {
                    ContentPart::Text { text, .. } => texts.push(text),
                    ContentPart::ImageUrl { image_url } => {
                        extra.push(url_part(&image_url.url, "image_url", "image/jpeg")?);
                    }
                    _ => {
                        return Err(Error::InvalidRequest(
                            "tool messages may only contain text and image parts".into(),
                        ));
                    }
                }
            }
            (texts.join("\n\n"), extra)
        }
    };
    let mut out = vec![response_part(name, result_object(text, "content"))];
    out.append(&mut extra);
    Ok(out)
}

fn tool_config(choice: &Value) -> Result<Option<ToolConfig>, Error> {
    let config = match choice {
        Value::Null => return Ok(None),
        Value::String(s) => match s.as_str() {
            "auto" => ToolConfig::new("AUTO", None),
            "none" => ToolConfig::new("NONE", None),
            "required" => ToolConfig::new("ANY", None),
            other => {
                return Err(Error::InvalidRequest(format!(
                    "tool_choice: unknown value {other:?}"
                )));
            }
        },
        v => match v.pointer("/function/name").and_then(Value::as_str) {
            Some(name) if v.get("type").and_then(Value::as_str) == Some("function") => {
                ToolConfig::new("ANY", Some(name.to_string()))
            }
            _ => {
                return Err(Error::InvalidRequest(
                    "tool_choice must be none, auto, required or a function".into(),
                ));
            }
        },
    };
    Ok(Some(config))
}

fn stop_sequences(stop: Option<Value>) -> Result<Option<Vec<String>>, Error> {
    let bad = || Error::InvalidRequest("stop must be a string or an array of strings".into());
    match stop {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(vec![s])),
        Some(Value::Array(items)) => {
            let stops = items
                .into_iter()
                .map(|v| match v {
                    Value::String(s) => Ok(s),
                    _ => Err(bad()),
                })
                .collect::<Result<Vec<_>, _>>()?;
            Ok((!stops.is_empty()).then_some(stops))
        }
        Some(_) => Err(bad()),
    }
}

/// `seed`, penalties and `response_format`, from the fields the OpenAI type keeps as extra.
fn extra_options(
    extra: &serde_json::Map<String, Value>,
    config: &mut GenerationConfig,
) -> Result<(), Error> {
    let number = |key: &str| -> Result<Option<f64>, Error> {
        match extra.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => v
                .as_f64()
                .map(Some)
                .ok_or_else(|| Error::InvalidRequest(format!("{key} must be a number"))),
        }
    };
    config.presence_penalty = number("presence_penalty")?;
    config.frequency_penalty = number("frequency_penalty")?;
    config.seed = match extra.get("seed") {
        None | Some(Value::Null) => None,
        Some(v @ Value::Number(_)) if v.is_i64() || v.is_u64() => Some(v.clone()),
        Some(_) => return Err(Error::InvalidRequest("seed must be an integer".into())),
    };
    let Some(format) = extra.get("response_format").filter(|v| !v.is_null()) else {
        return Ok(());
    };
    match format.get("type").and_then(Value::as_str) {
        Some("text") => {}
        Some("json_object") => config.response_mime_type = Some("application/json".into()),
        Some("json_schema") => {
            let schema = format.pointer("/json_schema/schema").ok_or_else(|| {
                Error::InvalidRequest("response_format.json_schema.schema is required".into())
            })?;
            config.response_mime_type = Some("application/json".into());
            config.response_schema = Some(schema::clean(schema));
        }
        _ => {
            return Err(Error::InvalidRequest(
                "response_format.type must be text, json_object or json_schema".into(),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn translate(body: Value) -> Result<Value, Error> {
        let req = crate::translate::parse_request(body.to_string().as_bytes())?;
        let out = request(req, None)?;
        Ok(serde_json::from_slice(&out.out.body).unwrap())
    }

    #[test]
    fn tool_results_need_a_known_call_and_become_objects() {
        let call = |id: &str, args: &str| {
            json!({"role": "assistant", "content": "", "tool_calls": [
                {"id": id, "type": "function", "function": {"name": "f", "arguments": args}}
            ]})
        };
        let out = translate(json!({"model": "m", "messages": [
            {"role": "user", "content": "go"},
            call("a", ""),
            {"role": "tool", "tool_call_id": "a", "content": "plain"},
            {"role": "tool", "tool_call_id": "a", "content": "[1, 2]"},
            {"role": "user", "content": "more"}
        ]}))
        .unwrap();
        let c = out["contents"].as_array().unwrap();
        assert_eq!(c.len(), 3);
        assert_eq!(c[1]["parts"][0]["functionCall"]["args"], json!({}));
        assert_eq!(
            c[2]["parts"][0]["functionResponse"],
            json!({"name": "f", "response": {"content": "plain"}})
        );
        assert_eq!(
            c[2]["parts"][1]["functionResponse"]["response"],
            json!({"content": "[1, 2]"})
        );
        assert_eq!(c[2]["parts"][2], json!({"text": "more"}));

        let unknown = json!({"model": "m", "messages": [
            {"role": "tool", "tool_call_id": "zz", "content": "x"}
        ]});
        assert!(matches!(translate(unknown), Err(Error::InvalidRequest(_))));
        for bad in ["[1]", "{\"a\":", "nope"] {
            let body = json!({"model": "m", "messages": [call("a", bad)]});
            assert!(
                matches!(translate(body), Err(Error::InvalidRequest(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn tool_choice_and_options() {
        let tools = json!([{"type": "function", "function": {"name": "f"}}]);
        let choice = |tc: Value| {
            let body = json!({"model": "m", "messages": [], "tools": tools, "tool_choice": tc});
            translate(body).unwrap()["toolConfig"].clone()
        };
        assert_eq!(
            choice(json!("auto")),
            json!({"functionCallingConfig": {"mode": "AUTO"}})
        );
        assert_eq!(
            choice(json!("none")),
            json!({"functionCallingConfig": {"mode": "NONE"}})
        );
        assert_eq!(
            choice(json!({"type": "function", "function": {"name": "f"}})),
            json!({"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["f"]}})
        );
        assert_eq!(choice(Value::Null), Value::Null);
        let out = translate(json!({"model": "m", "messages": [], "tools": tools})).unwrap();
        // A function without parameters declares none.
        assert_eq!(
            out["tools"],
            json!([{"functionDeclarations": [{"name": "f"}]}])
        );
        let out = translate(json!({"model": "m", "messages": [], "tool_choice": "required"}));
        assert!(out.unwrap().get("toolConfig").is_none());

        let out = translate(json!({"model": "m", "messages": [], "n": 1, "seed": 7,
            "presence_penalty": 0.5, "stop": "x",
            "response_format": {"type": "json_schema", "json_schema": {"name": "r",
                "schema": {"type": "object", "properties": {"a": {"type": "string"}},
                    "additionalProperties": false}}}}))
        .unwrap();
        assert_eq!(
            out["generationConfig"],
            json!({"seed": 7, "presencePenalty": 0.5, "stopSequences": ["x"],
                "responseMimeType": "application/json",
                "responseSchema": {"type": "object", "properties": {"a": {"type": "string"}}}})
        );
        assert!(
            translate(json!({"model": "m", "messages": []}))
                .unwrap()
                .get("generationConfig")
                .is_none()
        );
        for bad in [
            json!({"model": "m", "messages": [], "n": 2}),
            json!({"model": "m", "messages": [], "tools": [{"type": "web_search"}]}),
            json!({"model": "m", "messages": [{"role": "user", "content": [
                {"type": "file", "file": {"file_id": "file-1"}}]}]}),
        ] {
            assert!(matches!(translate(bad), Err(Error::Unsupported(_))));
        }
        for bad in [
            json!({"model": "m", "messages": [], "seed": "x"}),
            json!({"model": "m", "messages": [], "stop": 3}),
            json!({"model": "m", "messages": [], "response_format": {"type": "xml"}}),
            json!({"messages": []}),
            json!({"model": "m", "messages": [{"role": "user", "content": [
                {"type": "image_url", "image_url": {"url": "ftp://x/y.png"}}]}]}),
        ] {
            assert!(matches!(translate(bad), Err(Error::InvalidRequest(_))));
        }
    }

    #[test]
    fn stream_and_usage_flags() {
        let r = |body: Value| request(serde_json::from_value(body).unwrap(), Some("g")).unwrap();
        let out = r(json!({"model": "m", "messages": [], "stream": true}));
        assert_eq!((out.out.stream, out.out.hide_usage_chunk), (true, true));
        assert_eq!(out.model, "g");
        let out = r(json!({"messages": [], "stream": true,
            "stream_options": {"include_usage": true}}));
        assert_eq!((out.out.stream, out.out.hide_usage_chunk), (true, false));
        let out = r(json!({"messages": []}));
        assert_eq!((out.out.stream, out.out.hide_usage_chunk), (false, false));
    }
}
