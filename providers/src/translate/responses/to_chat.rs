//! A Responses API request as an OpenAI chat completions request, for providers that do not
//! speak the Responses API (the chat request then goes through the chat translators).
//!
//! `instructions` → a leading system message; `input` text → a user message; input items:
//! messages by role (`input_text`/`output_text` → text parts, `input_image` → `image_url`
//! parts, `input_file` → `file` parts, `refusal` → the assistant's refusal), `function_call`
//! items → `tool_calls` of an assistant message (consecutive calls, and calls right after an
//! assistant message, join the same one), `function_call_output` → `tool` messages;
//! `reasoning` items are dropped (their content is tied to the model that wrote it).
//! `max_output_tokens` → `max_completion_tokens`; `temperature`, `top_p`,
//! `parallel_tool_calls` as they are; function `tools` → chat function tools; `tool_choice`
//! (`allowed_tools` narrows the tool list to the allowed ones); `text.format` →
//! `response_format`; `reasoning.effort` → `reasoning_effort`; `safety_identifier` (else
//! `user`) → `user`; `stream` → `stream` with `stream_options.include_usage` (the usage goes
//! into `response.completed`).
//!
//! Refused: anything that needs OpenAI's stored state (`previous_response_id`,
//! `conversation`, `prompt`, `background`, `item_reference` items), hosted tools (web search,
//! file search, ...) and their items, uploaded file ids and file URLs.

use serde::de::DeserializeOwned;
use serde_json::{Map, Value, json};

use crate::Error;
use crate::openai::{self as o, ChatMessage, Content, ContentPart};
use crate::responses::{
    FunctionCallItem, FunctionCallOutputItem, Input, InputMessage, InputPart, PartsOrText,
    ResponsesRequest,
};
use crate::translate::parse_request;

/// The chat completions request for a Responses request body.
pub(super) fn request(body: &[u8]) -> Result<o::ChatRequest, Error> {
    let req: ResponsesRequest = parse_request(body)?;
    refuse_stored_state(&req)?;
    let mut messages = Vec::new();
    if let Some(i) = req.instructions.filter(|i| !i.is_empty()) {
        messages.push(ChatMessage::System {
            content: Content::Text(i),
            name: None,
        });
    }
    match req.input {
        None => {}
        Some(Input::Text(text)) => messages.push(ChatMessage::User {
            content: Content::Text(text),
            name: None,
        }),
        Some(Input::Items(items)) => {
            for item in items {
                push_item(&mut messages, item)?;
            }
        }
    }
    if messages.is_empty() {
        return Err(Error::InvalidRequest("input is required".into()));
    }
    let (tools, tool_choice) = tools(req.tools.unwrap_or_default(), req.tool_choice)?;
    let stream = req.stream.unwrap_or(false);
    let mut extra = Map::new();
    if let Some(format) = req.text.and_then(|t| t.format)
        && let Some(rf) = response_format(format)?
    {
        extra.insert("response_format".into(), rf);
    }
    if let Some(effort) = req.reasoning.and_then(|r| r.effort) {
        extra.insert("reasoning_effort".into(), Value::String(effort));
    }
    let chat = o::ChatRequest {
        model: req.model,
        messages,
        max_completion_tokens: req.max_output_tokens,
        temperature: req.temperature,
        top_p: req.top_p,
        stream: stream.then_some(true),
        stream_options: stream.then(|| o::StreamOptions {
            include_usage: Some(true),
            extra: Map::new(),
        }),
        tools: (!tools.is_empty()).then_some(tools),
        tool_choice,
        parallel_tool_calls: req.parallel_tool_calls,
        user: req.safety_identifier.or(req.user),
        extra,
        ..Default::default()
    };
    Ok(chat)
}

/// Rejects requests that continue state stored by OpenAI, which no other provider has.
fn refuse_stored_state(req: &ResponsesRequest) -> Result<(), Error> {
    let field = if req.previous_response_id.is_some() {
        "previous_response_id"
    } else if req.conversation.as_ref().is_some_and(|c| !c.is_null()) {
        "conversation"
    } else if req.prompt.as_ref().is_some_and(|p| !p.is_null()) {
        "prompt"
    } else if req.background == Some(true) {
        "background"
    } else {
        return Ok(());
    };
    Err(Error::Unsupported(format!(
        "{field} needs state stored by OpenAI: send the whole conversation in input instead"
    )))
}

/// Reads an item (or tool) as `T`; a shape that does not fit is an invalid request.
fn read<T: DeserializeOwned>(v: Value, what: &str) -> Result<T, Error> {
    serde_json::from_value(v).map_err(|e| Error::InvalidRequest(format!("{what}: {e}")))
}

/// The `type` of an input item: a message may leave it out.
fn item_type(item: &Value) -> Result<&str, Error> {
    match item.get("type").and_then(Value::as_str) {
        Some(t) => Ok(t),
        None if item.get("role").is_some() => Ok("message"),
        None => Err(Error::InvalidRequest(
            "input items need a type (or a role, for messages)".into(),
        )),
    }
}

/// Appends the chat message(s) for one input item.
fn push_item(messages: &mut Vec<ChatMessage>, item: Value) -> Result<(), Error> {
    match item_type(&item)? {
        "message" => messages.push(message(read(item, "input message")?)?),
        "function_call" => {
            let call: FunctionCallItem = read(item, "function_call item")?;
            let call = o::ToolCall {
                id: call.call_id,
                kind: "function".into(),
                function: o::FunctionCall {
                    name: call.name,
                    arguments: call.arguments,
                },
            };
            match messages.last_mut() {
                Some(ChatMessage::Assistant { tool_calls, .. }) => {
                    tool_calls.get_or_insert_with(Vec::new).push(call);
                }
                _ => messages.push(ChatMessage::Assistant {
                    content: None,
                    tool_calls: Some(vec![call]),
                    refusal: None,
                    name: None,
                }),
            }
        }
        "function_call_output" => {
            let out: FunctionCallOutputItem = read(item, "function_call_output item")?;
            messages.push(ChatMessage::Tool {
                content: content(out.output)?,
                tool_call_id: out.call_id,
            });
        }
        "reasoning" => {}
        "item_reference" => {
            return Err(Error::Unsupported(
                "item_reference needs state stored by OpenAI: send the item itself".into(),
            ));
        }
        other => {
            return Err(Error::Unsupported(format!(
                "input items of type {other} cannot be translated for this provider"
            )));
        }
    }
    Ok(())
}

/// The chat message for an input message.
fn message(m: InputMessage) -> Result<ChatMessage, Error> {
    Ok(match m.role.as_str() {
        "user" => ChatMessage::User {
            content: content(m.content)?,
            name: None,
        },
        "system" => ChatMessage::System {
            content: content(m.content)?,
            name: None,
        },
        "developer" => ChatMessage::Developer {
            content: content(m.content)?,
            name: None,
        },
        "assistant" => {
            let (mut text, mut refusal) = (String::new(), String::new());
            match m.content {
                PartsOrText::Text(t) => text = t,
                PartsOrText::Parts(parts) => {
                    for p in parts {
                        match p {
                            InputPart::InputText { text: t }
                            | InputPart::OutputText { text: t } => text.push_str(&t),
                            InputPart::Refusal { refusal: r } => refusal.push_str(&r),
                            _ => {
                                return Err(Error::Unsupported(
                                    "assistant messages can only hold text and refusals".into(),
                                ));
                            }
                        }
                    }
                }
            }
            ChatMessage::Assistant {
                content: (!text.is_empty()).then_some(Content::Text(text)),
                tool_calls: None,
                refusal: (!refusal.is_empty()).then_some(refusal),
                name: None,
            }
        }
        other => {
            return Err(Error::InvalidRequest(format!(
                "message role must be user, assistant, system or developer, not {other}"
            )));
        }
    })
}

/// Chat content for message or function output content.
fn content(c: PartsOrText) -> Result<Content, Error> {
    match c {
        PartsOrText::Text(t) => Ok(Content::Text(t)),
        PartsOrText::Parts(parts) => parts
            .into_iter()
            .map(part)
            .collect::<Result<Vec<_>, _>>()
            .map(Content::Parts),
    }
}

/// The chat content part for an input part.
fn part(p: InputPart) -> Result<ContentPart, Error> {
    Ok(match p {
        InputPart::InputText { text } | InputPart::OutputText { text } => ContentPart::Text {
            text,
            cache_control: None,
        },
        InputPart::Refusal { refusal } => ContentPart::Text {
            text: refusal,
            cache_control: None,
        },
        InputPart::InputImage {
            image_url, detail, ..
        } => {
            let url = image_url.ok_or_else(|| {
                Error::Unsupported(
                    "input_image needs an image_url (uploaded file ids are not supported)".into(),
                )
            })?;
            ContentPart::ImageUrl {
                image_url: o::ImageUrl { url, detail },
            }
        }
        InputPart::InputFile {
            file_data,
            file_id,
            file_url,
            filename,
        } => {
            if file_url.is_some() && file_data.is_none() {
                return Err(Error::Unsupported(
                    "input_file needs file_data (file URLs are not supported)".into(),
                ));
            }
            ContentPart::File {
                file: o::FileRef {
                    file_data,
                    file_id,
                    filename,
                },
            }
        }
        InputPart::InputAudio { input_audio } => ContentPart::InputAudio { input_audio },
    })
}

/// Chat tools and tool choice for the request's tools and tool choice.
fn tools(tools: Vec<Value>, choice: Option<Value>) -> Result<(Vec<o::Tool>, Option<Value>), Error> {
    let mut out = Vec::new();
    for t in tools {
        let kind = t.get("type").and_then(Value::as_str).unwrap_or_default();
        if kind != "function" {
            return Err(Error::Unsupported(format!(
                "tools of type {kind} cannot be translated for this provider (only function tools)"
            )));
        }
        #[derive(serde::Deserialize)]
        struct FunctionTool {
            name: String,
            #[serde(default)]
            description: Option<String>,
            #[serde(default)]
            parameters: Option<Value>,
            #[serde(default)]
            strict: Option<bool>,
        }
        let f: FunctionTool = read(t, "function tool")?;
        out.push(o::Tool {
            kind: "function".into(),
            function: Some(o::FunctionDef {
                name: f.name,
                description: f.description,
                parameters: f.parameters.filter(|p| !p.is_null()),
                strict: f.strict,
            }),
        });
    }
    let choice = match choice {
        None | Some(Value::Null) => None,
        Some(v @ Value::String(_)) => Some(v),
        Some(v) => match v.get("type").and_then(Value::as_str) {
            Some("function") => {
                let name = v.get("name").and_then(Value::as_str).ok_or_else(|| {
                    Error::InvalidRequest("tool_choice of type function needs a name".into())
                })?;
                Some(json!({"type": "function", "function": {"name": name}}))
            }
            Some("allowed_tools") => {
                let allowed: Vec<&str> = v
                    .get("tools")
                    .and_then(Value::as_array)
                    .map(|a| a.iter().filter_map(|t| t.get("name")?.as_str()).collect())
                    .unwrap_or_default();
                out.retain(|t| {
                    t.function
                        .as_ref()
                        .is_some_and(|f| allowed.contains(&f.name.as_str()))
                });
                let mode = v.get("mode").and_then(Value::as_str).unwrap_or("auto");
                Some(Value::String(mode.to_string()))
            }
            other => {
                return Err(Error::Unsupported(format!(
                    "tool_choice of type {} cannot be translated for this provider",
                    other.unwrap_or("unknown")
                )));
            }
        },
    };
    Ok((out, choice))
}

/// The chat `response_format` for a `text.format` (`None` for plain text).
fn response_format(format: Value) -> Result<Option<Value>, Error> {
    match format.get("type").and_then(Value::as_str) {
        None | Some("text") => Ok(None),
        Some("json_object") => Ok(Some(json!({"type": "json_object"}))),
        Some("json_schema") => {
            let mut schema = Map::new();
            for key in ["name", "schema", "description", "strict"] {
                if let Some(v) = format.get(key).filter(|v| !v.is_null()) {
                    schema.insert(key.into(), v.clone());
                }
            }
            if !schema.contains_key("schema") {
                return Err(Error::InvalidRequest(
                    "text.format.schema is required for json_schema".into(),
                ));
            }
            Ok(Some(json!({"type": "json_schema", "json_schema": schema})))
        }
        Some(other) => Err(Error::InvalidRequest(format!(
            "text.format.type must be text, json_object or json_schema, not {other}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chat(body: Value) -> Result<Value, Error> {
        request(body.to_string().as_bytes()).map(|c| serde_json::to_value(c).unwrap())
    }

    #[test]
    fn stored_state_and_hosted_tools_are_refused() {
        for body in [
            json!({"model": "m", "input": "hi", "previous_response_id": "resp_1"}),
            json!({"model": "m", "input": "hi", "conversation": "conv_1"}),
            json!({"model": "m", "input": "hi", "background": true}),
            json!({"model": "m", "input": [{"type": "item_reference", "id": "msg_1"}]}),
            json!({"model": "m", "input": "hi", "tools": [{"type": "web_search"}]}),
            json!({"model": "m", "input": [{"type": "web_search_call", "id": "ws"}]}),
            json!({"model": "m", "input": [{"role": "user", "content": [
                {"type": "input_image", "file_id": "file_1", "detail": "auto"}]}]}),
        ] {
            assert!(
                matches!(chat(body.clone()), Err(Error::Unsupported(_))),
                "{body}"
            );
        }
    }

    #[test]
    fn bad_shapes_are_invalid_requests() {
        for body in [
            json!({"model": "m"}),
            json!({"model": "m", "input": 3}),
            json!({"model": "m", "input": [{"content": "x"}]}),
            json!({"model": "m", "input": [{"role": "tool", "content": "x"}]}),
            json!({"model": "m", "input": [{"type": "function_call", "name": "f"}]}),
            json!({"model": "m", "input": "hi", "text": {"format": {"type": "xml"}}}),
            json!({"model": "m", "input": "hi", "tool_choice": {"type": "function"}}),
        ] {
            assert!(
                matches!(chat(body.clone()), Err(Error::InvalidRequest(_))),
                "{body}"
            );
        }
    }

    #[test]
    fn calls_join_the_assistant_turn_and_allowed_tools_narrow() {
        let c = chat(json!({
            "model": "m",
            "input": [
                {"role": "user", "content": "hi"},
                {"type": "message", "role": "assistant",
                 "content": [{"type": "output_text", "text": "Let me look."}]},
                {"type": "function_call", "call_id": "c1", "name": "f", "arguments": "{}"},
                {"type": "function_call", "call_id": "c2", "name": "g", "arguments": "{}"},
                {"type": "reasoning", "id": "rs_1", "summary": []},
                {"type": "function_call_output", "call_id": "c1", "output": "1"},
                {"type": "function_call_output", "call_id": "c2",
                 "output": [{"type": "input_text", "text": "2"}]}
            ],
            "tools": [
                {"type": "function", "name": "f", "parameters": null, "strict": null},
                {"type": "function", "name": "g", "parameters": {"type": "object"}}
            ],
            "tool_choice": {"type": "allowed_tools", "mode": "required",
                            "tools": [{"type": "function", "name": "g"}]}
        }))
        .unwrap();
        let m = c["messages"].as_array().unwrap();
        assert_eq!(m.len(), 4);
        assert_eq!(m[1]["content"], "Let me look.");
        assert_eq!(m[1]["tool_calls"].as_array().unwrap().len(), 2);
        assert_eq!(m[3]["content"][0]["text"], "2");
        assert_eq!(c["tools"].as_array().unwrap().len(), 1);
        assert_eq!(c["tools"][0]["function"]["name"], "g");
        assert_eq!(c["tool_choice"], "required");
    }
}
