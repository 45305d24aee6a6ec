//! Request, response, error and stream translation between client APIs and provider formats.
//!
//! Same-format traffic is left untouched (only the model and, for OpenAI streams, the usage
//! option may change). Cross-format traffic is translated between OpenAI chat completions and
//! Anthropic messages in both directions; see [`chat_via_anthropic`] and
//! [`messages_via_openai`] for the field mappings. Responses API and Gemini clients reach
//! other formats through chat completions; see [`responses`] and [`gemini_client`].

mod bedrock;
mod chat_via_anthropic;
mod error_body;
mod gemini;
mod gemini_client;
mod messages_via_openai;
mod raw;
mod reply;
mod request_parts;
mod responses;
mod stream;

use serde::Deserialize;

use crate::{ClientApi, Error, Usage, WireFormat, openai};
use raw::RawObject;
use request_parts::{
    function_tool, single_choice, stream_flags, tool_arguments, unsupported_block,
};

pub use error_body::{gateway_error, translate_error};
pub use stream::{StreamTranslator, stream_translator};

/// What routing needs from a request body.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestInfo {
    /// The model the client asked for.
    pub model: Option<String>,
    /// Whether the client asked for a stream.
    pub stream: bool,
}

/// Reads only what routing needs. Errors on non-JSON / non-object bodies and on a `model`
/// that is not a string or a `stream` that is not a boolean. A `Models` request (a `GET`)
/// may have an empty body.
pub fn inspect(api: ClientApi, body: &[u8]) -> Result<RequestInfo, Error> {
    if api == ClientApi::Models && body.iter().all(u8::is_ascii_whitespace) {
        return Ok(RequestInfo::default());
    }
    #[derive(Deserialize)]
    struct Probe {
        #[serde(default)]
        model: Option<String>,
        #[serde(default)]
        stream: Option<bool>,
    }
    let p: Probe = from_object(body).map_err(Error::request)?;
    Ok(RequestInfo {
        model: p.model,
        stream: p.stream.unwrap_or(false),
    })
}

/// A request body ready for the provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Translated {
    /// New body; `None` means forward the original bytes untouched (same format, nothing to
    /// change).
    pub body: Option<Vec<u8>>,
    /// Upstream path for the vendor's default base URL (see
    /// [`WireFormat::upstream_path`]); a configured path prefix replaces
    /// [`WireFormat::default_prefix`].
    pub path: String,
    /// Whether the response will be a stream.
    pub stream: bool,
    /// The client did not ask for the usage chunk (the gateway asked the provider for usage,
    /// or the client's format would not include it), so the stream translator must not send
    /// it. Pass it to [`stream_translator`].
    pub hide_usage_chunk: bool,
}

/// Produces the body for a provider of format `to`.
///
/// `model`: `Some(m)` replaces the body's model (alias resolution / provider default); `None`
/// keeps it. OpenAI streams always get `stream_options.include_usage: true` so usage can be
/// counted; when the client had not asked for it, `hide_usage_chunk` is set.
pub fn translate_request(
    api: ClientApi,
    to: WireFormat,
    body: &[u8],
    model: Option<&str>,
) -> Result<Translated, Error> {
    let mut t = Translated {
        body: None,
        path: String::new(),
        stream: false,
        hide_usage_chunk: false,
    };
    if api == ClientApi::Passthrough {
        // Untouched body; an empty path tells the caller to keep the client's path.
        return Ok(t);
    }
    if api == ClientApi::Responses {
        return responses::request(to, body, model);
    }
    if api == ClientApi::GenerateContent {
        return gemini_client::request(to, body, model, false);
    }
    if matches!(to, WireFormat::Gemini | WireFormat::Bedrock) {
        let r = match to {
            WireFormat::Gemini => gemini::request(api, body, model)?,
            _ => bedrock::request(api, body, model)?,
        };
        t.path = to
            .upstream_path(api, &r.model, r.out.stream)
            .ok_or_else(|| unsupported(api, to))?;
        t.body = Some(r.out.body);
        t.stream = r.out.stream;
        t.hide_usage_chunk = r.out.hide_usage_chunk;
        return Ok(t);
    }
    t.path = to
        .path_for(api)
        .ok_or_else(|| unsupported(api, to))?
        .to_string();
    match (api, to) {
        (ClientApi::Models, _) => {}
        (ClientApi::ChatCompletions, WireFormat::OpenAi) => {
            let mut obj = RawObject::parse(body)?;
            let mut changed = set_model(&mut obj, model)?;
            t.stream = obj.read::<bool>("stream")?.unwrap_or(false);
            if t.stream {
                let mut opts = obj
                    .read::<serde_json::Map<String, serde_json::Value>>("stream_options")?
                    .unwrap_or_default();
                if opts.get("include_usage") != Some(&serde_json::Value::Bool(true)) {
                    opts.insert("include_usage".into(), true.into());
                    obj.set("stream_options", &opts)?;
                    t.hide_usage_chunk = true;
                    changed = true;
                }
            }
            if changed {
                t.body = Some(obj.to_vec()?);
            }
        }
        (ClientApi::Messages | ClientApi::CountTokens, WireFormat::Anthropic)
        | (ClientApi::Embeddings, WireFormat::OpenAi) => {
            let mut obj = RawObject::parse(body)?;
            if set_model(&mut obj, model)? {
                t.body = Some(obj.to_vec()?);
            }
            if api == ClientApi::Messages {
                t.stream = obj.read::<bool>("stream")?.unwrap_or(false);
            }
        }
        (ClientApi::ChatCompletions, WireFormat::Anthropic) => {
            return translate_chat(to, parse_request(body)?, model);
        }
        (ClientApi::Messages, WireFormat::OpenAi) => {
            let r = messages_via_openai::request(body, model)?;
            t.body = Some(r.body);
            t.stream = r.stream;
            t.hide_usage_chunk = r.hide_usage_chunk;
        }
        _ => return Err(unsupported(api, to)),
    }
    Ok(t)
}

/// [`translate_request`] for a chat completions request already read, so that it is not
/// written and read again: Responses and Gemini clients' requests, translated to chat, go on
/// to the provider from here. Always gives a new body; an OpenAI provider's is the request
/// with `model` (when given) and, streaming, `stream_options.include_usage: true`
/// (`hide_usage_chunk` set when the request did not ask for it).
fn translate_chat(
    to: WireFormat,
    mut req: openai::ChatRequest,
    model: Option<&str>,
) -> Result<Translated, Error> {
    let api = ClientApi::ChatCompletions;
    let r = match to {
        WireFormat::OpenAi | WireFormat::Anthropic => {
            let out = if to == WireFormat::OpenAi {
                chat_for_openai(&mut req, model)?
            } else {
                chat_via_anthropic::request(req, model)?
            };
            return Ok(Translated {
                body: Some(out.body),
                path: to
                    .path_for(api)
                    .ok_or_else(|| unsupported(api, to))?
                    .to_string(),
                stream: out.stream,
                hide_usage_chunk: out.hide_usage_chunk,
            });
        }
        WireFormat::Gemini => gemini::chat_request(req, model)?,
        WireFormat::Bedrock => bedrock::chat_request(req, model)?,
    };
    Ok(Translated {
        path: to
            .upstream_path(api, &r.model, r.out.stream)
            .ok_or_else(|| unsupported(api, to))?,
        body: Some(r.out.body),
        stream: r.out.stream,
        hide_usage_chunk: r.out.hide_usage_chunk,
    })
}

/// The OpenAI body of a chat request: `model` (when given) set, and a stream asking for
/// usage.
fn chat_for_openai(
    req: &mut openai::ChatRequest,
    model: Option<&str>,
) -> Result<RequestOut, Error> {
    if let Some(m) = model {
        req.model = Some(m.to_string());
    }
    let stream = req.stream.unwrap_or(false);
    let mut hide_usage_chunk = false;
    if stream {
        let opts = req.stream_options.get_or_insert_with(Default::default);
        if opts.include_usage != Some(true) {
            opts.include_usage = Some(true);
            hide_usage_chunk = true;
        }
    }
    Ok(RequestOut {
        body: serde_json::to_vec(req).map_err(Error::request)?,
        stream,
        hide_usage_chunk,
    })
}

/// [`translate_request`] for a Gemini client (`generateContent`), which says in its path, not
/// its body, whether it streams (`stream`: the path ends in `:streamGenerateContent`) and
/// which model it wants (`model`, required). The result's `path` and `stream` are those of
/// the provider's call: for a Gemini provider the `generateContent` or
/// `streamGenerateContent?alt=sse` path of `model`, its body forwarded untouched; for any
/// other the body is translated (see the `gemini_client` module) and streams when `stream`.
pub fn translate_gemini_request(
    to: WireFormat,
    body: &[u8],
    model: Option<&str>,
    stream: bool,
) -> Result<Translated, Error> {
    gemini_client::request(to, body, model, stream)
}

/// Whole (non-streaming) 2xx response in `from` format → client format. Returns the new body
/// (`None`: forward the bytes unchanged) and the usage.
///
/// Same-format bodies are only read for usage, leniently: a body that cannot be read gives
/// empty usage, not an error (the client gets it as the provider sent it).
pub fn translate_response(
    api: ClientApi,
    from: WireFormat,
    body: &[u8],
) -> Result<(Option<Vec<u8>>, Usage), Error> {
    if api == ClientApi::Passthrough {
        return Ok((None, crate::usage::lenient(body)));
    }
    if api == ClientApi::Responses {
        return responses::response(from, body);
    }
    if api == ClientApi::GenerateContent {
        return gemini_client::response(from, body);
    }
    match from {
        WireFormat::Gemini => return gemini::response(api, body),
        WireFormat::Bedrock => return bedrock::response(api, body),
        _ => {}
    }
    if from.path_for(api).is_none() {
        return Err(unsupported(api, from));
    }
    match (api, from) {
        (ClientApi::ChatCompletions | ClientApi::Embeddings, WireFormat::OpenAi) => {
            Ok((None, crate::openai::usage_of(body).unwrap_or_default()))
        }
        (ClientApi::Messages, WireFormat::Anthropic) => {
            Ok((None, crate::anthropic::usage_of(body).unwrap_or_default()))
        }
        (ClientApi::ChatCompletions, WireFormat::Anthropic) => {
            let (c, u) = chat_via_anthropic::response(body)?;
            Ok((Some(reply::to_body(&c)?), u))
        }
        (ClientApi::Messages, WireFormat::OpenAi) => {
            let (b, u) = messages_via_openai::response(body)?;
            Ok((Some(b), u))
        }
        _ => Ok((None, Usage::default())),
    }
}

/// [`translate_response`] to a chat completion, read as it is: a provider's whole answer for
/// the Responses and Gemini clients' translators, with its usage. An OpenAI provider's body
/// is read once, strictly (it is translated further).
fn chat_response(from: WireFormat, body: &[u8]) -> Result<(openai::ChatCompletion, Usage), Error> {
    match from {
        WireFormat::OpenAi => {
            let c: openai::ChatCompletion = from_object(body).map_err(Error::InvalidResponse)?;
            let mut usage = c.usage.as_ref().map(|u| u.to_usage()).unwrap_or_default();
            usage.note_model(&c.model);
            Ok((c, usage))
        }
        WireFormat::Anthropic => chat_via_anthropic::response(body),
        WireFormat::Gemini => gemini::chat_response(body),
        WireFormat::Bedrock => bedrock::chat_response(body),
    }
}

fn unsupported(api: ClientApi, to: WireFormat) -> Error {
    Error::Unsupported(format!(
        "{api:?} requests cannot be served by a provider speaking the {} format",
        to.system()
    ))
}

/// Replaces the body's model; returns whether the body changed.
fn set_model(obj: &mut RawObject, model: Option<&str>) -> Result<bool, Error> {
    let Some(model) = model else {
        obj.read::<String>("model")?;
        return Ok(false);
    };
    if obj.read::<String>("model")?.as_deref() == Some(model) {
        return Ok(false);
    }
    obj.set("model", model)?;
    Ok(true)
}

/// A request body parsed into `T`; a body that does not fit is an invalid request.
fn parse_request<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, Error> {
    from_object(body).map_err(Error::request)
}

/// Parses a body that must be a JSON object (derived structs would also take an array).
pub(crate) fn from_object<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, String> {
    match body.iter().find(|b| !b.is_ascii_whitespace()) {
        Some(b'{') => serde_json::from_slice(body).map_err(|e| e.to_string()),
        Some(_) => Err("the body must be a JSON object".into()),
        None => Err("the body is empty".into()),
    }
}

/// The model to send: the override, else the body's; one is required.
fn require_model(body_model: Option<String>, model: Option<&str>) -> Result<String, Error> {
    model
        .map(str::to_string)
        .or(body_model)
        .ok_or_else(|| Error::InvalidRequest("model is required".into()))
}

/// A translated request for a provider whose path names the model.
struct ModelRequest {
    out: RequestOut,
    /// The model the path names.
    model: String,
}

/// A translated request body.
struct RequestOut {
    body: Vec<u8>,
    stream: bool,
    hide_usage_chunk: bool,
}

/// Splits `data:<media type>;base64,<data>` into media type and data.
fn parse_data_url(url: &str) -> Option<(&str, &str)> {
    let rest = url.strip_prefix("data:")?;
    let (meta, data) = rest.split_once(',')?;
    let media = meta.strip_suffix(";base64")?;
    let media = media.split(';').next().unwrap_or(media);
    Some((media, data))
}

fn is_http_url(url: &str) -> bool {
    url.starts_with("https://") || url.starts_with("http://")
}

/// OpenAI `finish_reason` for an Anthropic `stop_reason`.
fn finish_reason(stop_reason: Option<&str>) -> &'static str {
    match stop_reason {
        Some("max_tokens" | "model_context_window_exceeded") => "length",
        Some("tool_use") => "tool_calls",
        Some("refusal") => "content_filter",
        _ => "stop",
    }
}

/// Anthropic `stop_reason` for an OpenAI `finish_reason`.
fn stop_reason(finish_reason: Option<&str>, has_tool_calls: bool) -> &'static str {
    match finish_reason {
        Some("length") => "max_tokens",
        Some("tool_calls" | "function_call") => "tool_use",
        Some("content_filter") => "refusal",
        _ if has_tool_calls => "tool_use",
        _ => "end_turn",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_urls() {
        assert_eq!(
            parse_data_url("data:image/png;base64,AAAA"),
            Some(("image/png", "AAAA"))
        );
        assert_eq!(
            parse_data_url("data:image/jpeg;name=x.jpg;base64,QQ=="),
            Some(("image/jpeg", "QQ=="))
        );
        assert_eq!(parse_data_url("data:text/plain,hello"), None);
        assert_eq!(parse_data_url("https://x"), None);
    }

    /// The typed entry points (one parse) give what the byte ones give.
    #[test]
    fn read_chat_requests_and_answers_translate_like_their_bytes() {
        let req = serde_json::json!({
            "model": "m", "stream": true, "max_tokens": 9, "temperature": 0.5,
            "messages": [
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": [{"type": "text", "text": "Weather?"}]},
                {"role": "assistant", "content": null, "tool_calls": [{"id": "c1",
                    "type": "function", "function": {"name": "w", "arguments": "{\"c\":1}"}}]},
                {"role": "tool", "tool_call_id": "c1", "content": "sunny"}
            ],
            "tools": [{"type": "function", "function": {"name": "w",
                "parameters": {"type": "object"}}}],
            "response_format": {"type": "json_object"}, "seed": 3
        });
        let json = |b: &[u8]| serde_json::from_slice::<serde_json::Value>(b).unwrap();
        for to in [
            WireFormat::OpenAi,
            WireFormat::Anthropic,
            WireFormat::Gemini,
            WireFormat::Bedrock,
        ] {
            let bytes = req.to_string().into_bytes();
            let typed = serde_json::from_value(req.clone()).unwrap();
            let a = translate_chat(to, typed, Some("m2")).unwrap();
            let b = translate_request(ClientApi::ChatCompletions, to, &bytes, Some("m2")).unwrap();
            assert_eq!(
                (&a.path, a.stream, a.hide_usage_chunk),
                (&b.path, b.stream, b.hide_usage_chunk),
                "{to:?}"
            );
            let b_body = b.body.unwrap_or(bytes);
            assert_eq!(json(&a.body.unwrap()), json(&b_body), "{to:?}");
        }
        let answers = [
            (
                WireFormat::OpenAi,
                serde_json::json!({"id": "x", "model": "m", "choices": [{"index": 0,
                    "message": {"role": "assistant", "content": "hi"}, "finish_reason": "stop"}],
                    "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4}}),
            ),
            (
                WireFormat::Anthropic,
                serde_json::json!({"id": "msg_1", "type": "message", "role": "assistant",
                    "model": "c", "content": [{"type": "text", "text": "hi"}],
                    "stop_reason": "end_turn", "usage": {"input_tokens": 3, "output_tokens": 1}}),
            ),
            (
                WireFormat::Gemini,
                serde_json::json!({"candidates": [{"content": {"role": "model",
                    "parts": [{"text": "hi"}]}, "finishReason": "STOP"}],
                    "usageMetadata": {"promptTokenCount": 3, "candidatesTokenCount": 1},
                    "modelVersion": "g", "responseId": "r"}),
            ),
        ];
        for (from, body) in answers {
            let body = body.to_string().into_bytes();
            let (c, usage) = chat_response(from, &body).unwrap();
            let (b, b_usage) = translate_response(ClientApi::ChatCompletions, from, &body).unwrap();
            assert_eq!(usage, b_usage, "{from:?}");
            // What the byte path's readers got: its body, parsed.
            let b: openai::ChatCompletion = from_object(&b.unwrap_or(body)).unwrap();
            let value = |c| serde_json::to_value::<openai::ChatCompletion>(c).unwrap();
            assert_eq!(value(c), value(b), "{from:?}");
        }
    }

    #[test]
    fn inspect_reads_model_and_stream() {
        let i = inspect(
            ClientApi::ChatCompletions,
            br#"{"model":"m","stream":true,"messages":[]}"#,
        )
        .unwrap();
        assert_eq!(i.model.as_deref(), Some("m"));
        assert!(i.stream);
        assert_eq!(
            inspect(ClientApi::Models, b"").unwrap(),
            RequestInfo::default()
        );
        for bad in [
            &b"nope"[..],
            b"[]",
            b"{\"model\":1}",
            b"{\"stream\":\"yes\"}",
            b"",
        ] {
            assert!(matches!(
                inspect(ClientApi::Messages, bad),
                Err(Error::InvalidRequest(_))
            ));
        }
    }
}
