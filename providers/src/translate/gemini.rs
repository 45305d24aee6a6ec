//! Gemini `generateContent` (AI Studio and Vertex AI) as a provider, and as a client API.

use super::ModelRequest;
use crate::{ClientApi, Error, Usage};

/// Client request (`api`) → Gemini request body; `model` overrides the body's model (for a
/// Gemini client, the model comes from the path and is passed here by the caller).
pub(super) fn request(api: ClientApi, _body: &[u8], _model: Option<&str>) -> Result<ModelRequest, Error> {
    Err(Error::Unsupported(format!("{api:?} to Gemini is not implemented yet")))
}

/// Gemini response → the client's format, with usage.
pub(super) fn response(api: ClientApi, _body: &[u8]) -> Result<(Option<Vec<u8>>, Usage), Error> {
    Err(Error::Unsupported(format!("Gemini responses to {api:?} are not implemented yet")))
}
