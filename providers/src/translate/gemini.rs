//! Gemini `generateContent` (AI Studio and Vertex AI) as a provider, and as a client API.
//!
//! Requests: OpenAI chat completions ([`from_chat`]) and Anthropic messages ([`from_messages`])
//! are translated to a `generateContent` body; a Gemini client's body is forwarded as it is.
//! Either way the model goes in the path, not the body, so it is returned next to the body.
//!
//! Shared request rules: consecutive turns of the same role are merged into one content (tool
//! results, which are `user` turns of `functionResponse` parts, merge with each other and with
//! a user message that follows); empty text parts and empty turns are dropped (Gemini rejects
//! them); a function's result must be an object, so a result that is not a JSON object is sent
//! as `{"content": <text>}`; tool schemas are cut down to what Gemini accepts (see [`schema`]).
//! Gemini 3 rejects history whose function calls lack the `thoughtSignature` it returned with
//! them; clients of other formats cannot keep it, so the first function call of each model
//! turn carries the placeholder signature Google documents for histories built elsewhere
//! ([`SKIP_SIGNATURE`]).
//!
//! Responses ([`to_client`]): candidate 0 only; function calls get the ids `call_<n>` (OpenAI)
//! or `toolu_<n>` (Anthropic), `n` counting the calls of the response; thought summaries
//! (`thought: true` parts, present when thinking with `includeThoughts`) become reasoning.

mod from_chat;
mod from_messages;
pub(in crate::translate) mod schema;
pub(in crate::translate) mod to_client;
pub(in crate::translate) mod wire;

use super::{ModelRequest, RequestOut, is_http_url, parse_data_url, require_model};
use crate::{ClientApi, Error, Usage};
use serde_json::{Value, json};
use wire::{Blob, Content, FileData, FunctionCall, FunctionResponse, Part};

/// The `thoughtSignature` Google documents for function calls whose real signature is not
/// known (histories built by another client or model); it skips the signature check.
pub(in crate::translate) const SKIP_SIGNATURE: &str = "skip_thought_signature_validator";

/// Client request (`api`) → Gemini request body; `model` overrides the body's model.
///
/// For a Gemini client (`GenerateContent`) the body is forwarded unchanged (it must be a JSON
/// object) and `model` is required: the caller takes it from the client's path
/// (`/v1beta/models/{model}:generateContent`). Whether a Gemini client streams is also known
/// only from its path (`:streamGenerateContent`), so the result says `stream: false` and the
/// path it implies is the non-streaming one: for Gemini clients the proxy decides the upstream
/// path (and picks the stream translator) itself.
pub(super) fn request(
    api: ClientApi,
    body: &[u8],
    model: Option<&str>,
) -> Result<ModelRequest, Error> {
    match api {
        ClientApi::ChatCompletions => chat_request(super::parse_request(body)?, model),
        ClientApi::Messages => from_messages::request(body, model),
        ClientApi::GenerateContent => {
            super::raw::RawObject::parse(body)?;
            let model = model.ok_or_else(|| {
                Error::InvalidRequest("the model must be given in the request path".into())
            })?;
            Ok(ModelRequest {
                out: RequestOut {
                    body: body.to_vec(),
                    stream: false,
                    hide_usage_chunk: false,
                },
                model: model.to_string(),
            })
        }
        _ => Err(super::unsupported(api, crate::WireFormat::Gemini)),
    }
}

/// [`request`] for a chat request already read (a chat client's, or one translated from a
/// Responses or Gemini client's request).
pub(super) fn chat_request(
    req: crate::openai::ChatRequest,
    model: Option<&str>,
) -> Result<ModelRequest, Error> {
    from_chat::request(req, model)
}

/// Gemini response → the client's format, with usage. A Gemini client's body is only read for
/// usage, leniently (a body that cannot be read gives empty usage).
pub(super) fn response(api: ClientApi, body: &[u8]) -> Result<(Option<Vec<u8>>, Usage), Error> {
    match api {
        ClientApi::ChatCompletions => {
            let (c, u) = chat_response(body)?;
            Ok((Some(super::reply::to_body(&c)?), u))
        }
        ClientApi::Messages => {
            let (b, u) = to_client::messages(parse_response(body)?)?;
            Ok((Some(b), u))
        }
        ClientApi::GenerateContent => {
            let usage = parse_response(body)
                .map(|r| to_client::usage(&r))
                .unwrap_or_default();
            Ok((None, usage))
        }
        _ => Err(super::unsupported(api, crate::WireFormat::Gemini)),
    }
}

/// A Gemini response as a chat completion, with usage (for chat clients, and for Responses
/// clients, whose translator reads the chat completion as it is).
pub(super) fn chat_response(body: &[u8]) -> Result<(crate::openai::ChatCompletion, Usage), Error> {
    to_client::chat(parse_response(body)?)
}

fn parse_response(body: &[u8]) -> Result<wire::Response, Error> {
    super::from_object(body).map_err(Error::InvalidResponse)
}

/// A translated request: the body and the model for the path.
fn model_request(
    req: wire::Request,
    body_model: Option<String>,
    model: Option<&str>,
    stream: bool,
    hide_usage_chunk: bool,
) -> Result<ModelRequest, Error> {
    let model = require_model(body_model, model)?;
    Ok(ModelRequest {
        out: RequestOut {
            body: serde_json::to_vec(&req).map_err(Error::request)?,
            stream,
            hide_usage_chunk,
        },
        model,
    })
}

/// A request body: the turns, the system instruction, the function declarations (no
/// `tools` when there are none), the tool config and the generation config.
fn request_body(
    turns: Turns,
    system: Vec<Part>,
    declarations: Vec<wire::FunctionDeclaration>,
    tool_config: Option<wire::ToolConfig>,
    config: wire::GenerationConfig,
) -> wire::Request {
    wire::Request {
        contents: turns.finish(),
        system_instruction: system_instruction(system),
        tools: (!declarations.is_empty()).then(|| {
            vec![wire::Tool {
                function_declarations: declarations,
            }]
        }),
        tool_config,
        generation_config: config.into_option(),
    }
}

/// Builds `contents`, merging consecutive turns of the same role.
#[derive(Default)]
struct Turns {
    contents: Vec<Content>,
}

impl Turns {
    /// Appends parts to a turn of `role` (the last one if it has that role). No parts: no turn.
    fn push(&mut self, role: &str, parts: Vec<Part>) {
        if parts.is_empty() {
            return;
        }
        match self.contents.last_mut() {
            Some(c) if c.role.as_deref() == Some(role) => c.parts.extend(parts),
            _ => self.contents.push(Content {
                role: Some(role.to_string()),
                parts,
            }),
        }
    }

    /// The contents, the first function call of each model turn signed (see the module doc).
    fn finish(mut self) -> Vec<Content> {
        for c in &mut self.contents {
            if c.role.as_deref() != Some("model") {
                continue;
            }
            if let Some(p) = c.parts.iter_mut().find(|p| p.function_call.is_some())
                && p.thought_signature.is_none()
            {
                p.thought_signature = Some(SKIP_SIGNATURE.to_string());
            }
        }
        self.contents
    }
}

/// The system instruction for some text parts (`None` when there are none).
fn system_instruction(parts: Vec<Part>) -> Option<Content> {
    (!parts.is_empty()).then_some(Content { role: None, parts })
}

/// A text part, or nothing for empty text.
fn text_part(text: String) -> Option<Part> {
    (!text.is_empty()).then(|| Part::text(text))
}

/// A `functionCall` part.
fn call_part(name: String, args: Value) -> Part {
    Part {
        function_call: Some(FunctionCall {
            id: None,
            name,
            args: Some(args),
        }),
        ..Default::default()
    }
}

/// A `functionResponse` part.
fn response_part(name: String, response: Value) -> Part {
    Part {
        function_response: Some(FunctionResponse {
            id: None,
            name,
            response,
        }),
        ..Default::default()
    }
}

/// A tool's textual result as a response object: the text itself if it is a JSON object, else
/// `{key: text}`.
fn result_object(text: String, key: &str) -> Value {
    match serde_json::from_str::<Value>(&text) {
        Ok(v @ Value::Object(_)) => v,
        _ => json!({ key: text }),
    }
}

/// An inline data part.
fn inline_part(mime_type: String, data: String) -> Part {
    Part {
        inline_data: Some(Blob { mime_type, data }),
        ..Default::default()
    }
}

/// A part for data by URI.
fn file_part(mime_type: String, file_uri: String) -> Part {
    Part {
        file_data: Some(FileData {
            mime_type,
            file_uri,
        }),
        ..Default::default()
    }
}

/// A part for a `data:` URL (inline) or an `http(s)` URL (by URI, MIME type guessed from the
/// extension, else `fallback`).
fn url_part(url: &str, field: &str, fallback: &str) -> Result<Part, Error> {
    if let Some((media_type, data)) = parse_data_url(url) {
        Ok(inline_part(media_type.to_string(), data.to_string()))
    } else if is_http_url(url) {
        Ok(file_part(guess_mime(url, fallback), url.to_string()))
    } else {
        Err(Error::InvalidRequest(format!(
            "{field} must be an http(s) URL or a base64 data: URL"
        )))
    }
}

/// The MIME type for a URL's file extension, else `fallback`.
fn guess_mime(url: &str, fallback: &str) -> String {
    let path = url.split(['?', '#']).next().unwrap_or(url);
    let name = path.rsplit('/').next().unwrap_or(path);
    let ext = name
        .rsplit_once('.')
        .map(|(_, e)| e.to_ascii_lowercase())
        .unwrap_or_default();
    let mime = match ext.as_str() {
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "heic" => "image/heic",
        "heif" => "image/heif",
        "pdf" => "application/pdf",
        "txt" => "text/plain",
        "mp3" => "audio/mp3",
        "wav" => "audio/wav",
        "mp4" => "video/mp4",
        _ => fallback,
    };
    mime.to_string()
}

/// A function declaration for a tool.
fn declaration(
    name: String,
    description: Option<String>,
    schema: Option<&Value>,
) -> wire::FunctionDeclaration {
    wire::FunctionDeclaration {
        name,
        description,
        parameters: schema::parameters(schema),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mime_types_from_urls() {
        let g = |u| guess_mime(u, "image/jpeg");
        assert_eq!(g("https://x.org/a/b.PNG?size=2#top"), "image/png");
        assert_eq!(g("https://x.org/a.b/photo"), "image/jpeg");
        assert_eq!(g("https://x.org/doc.pdf"), "application/pdf");
        assert_eq!(g("https://x.org/"), "image/jpeg");
        assert_eq!(g("https://x.org/img.webp"), "image/webp");
    }

    #[test]
    fn turns_merge_and_sign_first_call() {
        let mut t = Turns::default();
        t.push("user", vec![Part::text("a".into())]);
        t.push("user", vec![Part::text("b".into())]);
        t.push("model", vec![]);
        t.push(
            "model",
            vec![
                call_part("f".into(), json!({})),
                call_part("g".into(), json!({})),
            ],
        );
        let c = t.finish();
        assert_eq!(c.len(), 2);
        assert_eq!(c[0].parts.len(), 2);
        assert_eq!(
            c[1].parts[0].thought_signature.as_deref(),
            Some(SKIP_SIGNATURE)
        );
        assert_eq!(c[1].parts[1].thought_signature, None);
    }

    #[test]
    fn gemini_clients_need_a_model_and_an_object() {
        let body = br#"{"contents":[{"role":"user","parts":[{"text":"hi"}]}]}"#;
        let r = request(ClientApi::GenerateContent, body, Some("gemini-2.5-flash")).unwrap();
        assert_eq!(r.out.body, body.to_vec());
        assert_eq!(r.model, "gemini-2.5-flash");
        assert!(!r.out.stream);
        assert!(matches!(
            request(ClientApi::GenerateContent, body, None),
            Err(Error::InvalidRequest(_))
        ));
        assert!(matches!(
            request(ClientApi::GenerateContent, b"[]", Some("m")),
            Err(Error::InvalidRequest(_))
        ));
        assert!(matches!(
            request(ClientApi::Embeddings, body, Some("m")),
            Err(Error::Unsupported(_))
        ));
    }
}
