//! AWS Bedrock Converse / ConverseStream as a provider, for OpenAI chat completions and
//! Anthropic messages clients.
//!
//! Requests: see [`from_chat`] and [`from_messages`] for the field mappings. Roles must
//! alternate in Converse, so consecutive messages of the same role are merged into one (tool
//! results and the user text after them included). Bedrock takes images and documents inline
//! only (base64 `bytes`); URLs are unsupported. Prompt cache markers (`cache_control`) become
//! `cachePoint` blocks after the marked block.
//!
//! The model: [`ModelRequest::model`] holds the model id (or ARN) **already percent-encoded**
//! (every byte outside `A-Za-z0-9-._~`), since it goes into the upstream path
//! `/model/{model}/converse` as is: `anthropic.claude-3-5-sonnet-20240620-v1:0` becomes
//! `anthropic.claude-3-5-sonnet-20240620-v1%3A0`. (SigV4 then encodes it once more in the
//! canonical request; see [`crate::bedrock_sign`].)
//!
//! Responses: see [`response`]. Converse responses carry no id and no model name: the client
//! gets a new random id ([`unique_id`]: `chatcmpl-bdrk-…`, `msg_bdrk_…`) and an empty model.

mod from_chat;
mod from_messages;
mod response;
pub(super) mod wire;

use serde_json::Value;

use super::{ModelRequest, RequestOut};
use crate::bedrock_sign::uri_encode;
use crate::{ClientApi, Error, Usage};
use wire::{ContentBlock, ConverseRequest, Media, Message};

/// Client request (`api`) → Bedrock Converse request body.
pub(super) fn request(
    api: ClientApi,
    body: &[u8],
    model: Option<&str>,
) -> Result<ModelRequest, Error> {
    match api {
        ClientApi::ChatCompletions => chat_request(super::parse_request(body)?, model),
        ClientApi::Messages => model_request(from_messages::request(body, model)?),
        _ => Err(Error::Unsupported(format!(
            "{api:?} requests cannot be served by a Bedrock provider"
        ))),
    }
}

/// [`request`] for a chat request already read (a chat client's, or one translated from a
/// Responses or Gemini client's request).
pub(super) fn chat_request(
    req: crate::openai::ChatRequest,
    model: Option<&str>,
) -> Result<ModelRequest, Error> {
    model_request(from_chat::request(req, model)?)
}

/// The serialized request and its (encoded) model.
fn model_request((req, model, out): Converted) -> Result<ModelRequest, Error> {
    let body = serde_json::to_vec(&req).map_err(Error::request)?;
    Ok(ModelRequest {
        out: RequestOut {
            body,
            stream: out.0,
            hide_usage_chunk: out.1,
        },
        model: uri_encode(&model),
    })
}

/// Bedrock Converse response → the client's format, with usage.
pub(super) fn response(api: ClientApi, body: &[u8]) -> Result<(Option<Vec<u8>>, Usage), Error> {
    match api {
        ClientApi::ChatCompletions => {
            let (c, u) = response::chat(body)?;
            Ok((Some(super::reply::to_body(&c)?), u))
        }
        ClientApi::Messages => response::messages(body).map(|(b, u)| (Some(b), u)),
        _ => Err(Error::Unsupported(format!(
            "{api:?} requests cannot be served by a Bedrock provider"
        ))),
    }
}

/// A Converse response as a chat completion, with usage (for chat clients, and for Responses
/// and Gemini clients, whose translators read the chat completion as it is).
pub(super) fn chat_response(body: &[u8]) -> Result<(crate::openai::ChatCompletion, Usage), Error> {
    response::chat(body)
}

/// A translated request before serialization: the body, the model (not yet encoded), and
/// `(stream, hide_usage_chunk)`.
type Converted = (ConverseRequest, String, (bool, bool));

/// Builds the message list, merging consecutive messages of the same role.
#[derive(Default)]
struct Conversation {
    messages: Vec<Message>,
    /// Whether any message holds a tool use or tool result block (Bedrock then requires a
    /// `toolConfig`).
    has_tool_blocks: bool,
}

impl Conversation {
    fn push(&mut self, role: &str, blocks: Vec<ContentBlock>) {
        if blocks.is_empty() {
            return;
        }
        self.has_tool_blocks |= blocks
            .iter()
            .any(|b| b.tool_use.is_some() || b.tool_result.is_some());
        match self.messages.last_mut() {
            Some(last) if last.role == role => last.content.extend(blocks),
            _ => self.messages.push(Message {
                role: role.to_string(),
                content: blocks,
            }),
        }
    }
}

/// Bedrock's image format for a media type.
fn image_format(media_type: &str) -> Result<&'static str, Error> {
    match media_type.to_ascii_lowercase().as_str() {
        "image/png" => Ok("png"),
        "image/jpeg" | "image/jpg" => Ok("jpeg"),
        "image/gif" => Ok("gif"),
        "image/webp" => Ok("webp"),
        other => Err(Error::Unsupported(format!(
            "images of type {other} are not supported by Bedrock (png, jpeg, gif, webp)"
        ))),
    }
}

fn is_document_extension(ext: &str) -> bool {
    const EXTENSIONS: [&str; 10] = [
        "pdf", "csv", "doc", "docx", "xls", "xlsx", "html", "txt", "md", "markdown",
    ];
    EXTENSIONS.iter().any(|e| e.eq_ignore_ascii_case(ext))
}

/// Bedrock's document format for a media type.
fn document_format(media_type: &str) -> Result<&'static str, Error> {
    match media_type.to_ascii_lowercase().as_str() {
        "application/pdf" => Ok("pdf"),
        "text/csv" => Ok("csv"),
        "application/msword" => Ok("doc"),
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document" => Ok("docx"),
        "application/vnd.ms-excel" => Ok("xls"),
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet" => Ok("xlsx"),
        "text/html" => Ok("html"),
        "text/plain" => Ok("txt"),
        "text/markdown" => Ok("md"),
        other => Err(Error::Unsupported(format!(
            "documents of type {other} are not supported by Bedrock"
        ))),
    }
}

/// An inline image block.
fn image_block(media_type: &str, data: &str) -> Result<ContentBlock, Error> {
    Ok(ContentBlock {
        image: Some(Media {
            format: image_format(media_type)?.into(),
            name: None,
            source: wire::Bytes {
                bytes: data.to_string(),
            },
        }),
        ..Default::default()
    })
}

/// An inline document block. Bedrock requires a name of letters, digits, single spaces,
/// hyphens, parentheses and square brackets: `name` is cleaned up to fit (a document file
/// extension dropped, other characters replaced by `-`), `document` when none is left.
fn document_block(media_type: &str, data: &str, name: Option<&str>) -> Result<ContentBlock, Error> {
    let name = name.unwrap_or_default();
    let stem = match name.rsplit_once('.') {
        Some((stem, ext)) if !stem.is_empty() && is_document_extension(ext) => stem,
        _ => name,
    };
    let mut clean = String::new();
    for c in stem.chars() {
        let c = if c.is_ascii_alphanumeric() || "-()[]".contains(c) {
            c
        } else if c.is_whitespace() {
            ' '
        } else {
            '-'
        };
        if !(c == ' ' && clean.ends_with(' ')) {
            clean.push(c);
        }
    }
    let clean = clean.trim();
    let name = if clean.is_empty() { "document" } else { clean };
    Ok(ContentBlock {
        document: Some(Media {
            format: document_format(media_type)?.into(),
            name: Some(name.to_string()),
            source: wire::Bytes {
                bytes: data.to_string(),
            },
        }),
        ..Default::default()
    })
}

fn url_image_error() -> Error {
    Error::Unsupported("Bedrock needs inline images: send the image as a base64 data: URL".into())
}

/// A tool choice of `none`: no `toolChoice`, and no tools at all unless the conversation
/// holds tool blocks (which Bedrock only accepts with a `toolConfig`).
fn apply_tools(
    req: &mut ConverseRequest,
    tools: Vec<Value>,
    choice: Option<Value>,
    none: bool,
    has_tool_blocks: bool,
) {
    if tools.is_empty() || (none && !has_tool_blocks) {
        return;
    }
    req.tool_config = Some(wire::ToolConfig {
        tools,
        tool_choice: if none { None } else { choice },
    });
}

/// A new response id (16 hex digits): Converse responses carry none, and clients (Claude
/// Code among them) expect each response's id to differ. Random per process (std's hasher
/// keys) plus a counter; no clock.
pub(in crate::translate) fn unique_id() -> String {
    use std::hash::{BuildHasher, Hasher};
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(n);
    format!("{:016x}", h.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_differ() {
        let (a, b) = (unique_id(), unique_id());
        assert_ne!(a, b);
        assert_eq!(a.len(), 16);
    }

    #[test]
    fn document_names() {
        let name = |n: Option<&str>| {
            document_block("application/pdf", "", n)
                .unwrap()
                .document
                .unwrap()
                .name
                .unwrap()
        };
        assert_eq!(name(None), "document");
        assert_eq!(name(Some("Q3  report (final).pdf")), "Q3 report (final)");
        assert_eq!(name(Some("a_b.c.PDF")), "a-b-c");
        assert_eq!(name(Some("report.v2")), "report-v2");
        assert_eq!(name(Some(".pdf")), "-pdf");
        assert_eq!(name(Some("...")), "---");
    }
}
