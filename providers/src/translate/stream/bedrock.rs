//! Bedrock ConverseStream (AWS event-stream binary framing) → the client's SSE format.

use super::{NotImplemented, StreamTranslator};
use crate::{ClientApi, Usage};

/// The translator for a Bedrock ConverseStream response.
pub(super) fn translator(api: ClientApi, _hide_usage_chunk: bool) -> Box<dyn StreamTranslator> {
    Box::new(NotImplemented(format!("{api:?} streams from Bedrock are not implemented yet"), Usage::default()))
}
