//! Gemini `streamGenerateContent?alt=sse` streams: passthrough for Gemini clients, translation
//! for OpenAI and Anthropic clients.

use super::{NotImplemented, StreamTranslator};
use crate::{ClientApi, Usage, WireFormat};

/// The translator for a Gemini stream (`from` Gemini) or a Gemini client (`api`).
pub(super) fn translator(api: ClientApi, from: WireFormat, _hide_usage_chunk: bool) -> Box<dyn StreamTranslator> {
    Box::new(NotImplemented(format!("{api:?} streams from {from:?} are not implemented yet"), Usage::default()))
}
