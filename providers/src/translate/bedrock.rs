//! AWS Bedrock Converse / ConverseStream as a provider.

use super::ModelRequest;
use crate::{ClientApi, Error, Usage};

/// Client request (`api`) → Bedrock Converse request body.
pub(super) fn request(api: ClientApi, _body: &[u8], _model: Option<&str>) -> Result<ModelRequest, Error> {
    Err(Error::Unsupported(format!("{api:?} to Bedrock is not implemented yet")))
}

/// Bedrock Converse response → the client's format, with usage.
pub(super) fn response(api: ClientApi, _body: &[u8]) -> Result<(Option<Vec<u8>>, Usage), Error> {
    Err(Error::Unsupported(format!("Bedrock responses to {api:?} are not implemented yet")))
}
