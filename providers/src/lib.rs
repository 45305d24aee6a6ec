//! LLM wire formats and provider adapters. Pure: bytes and structs in, bytes and structs out;
//! no sockets, no Pingora, no async.
//!
//! The proxy calls, per LLM request:
//! 1. [`ClientApi::from_path`] to know which API the client speaks;
//! 2. [`inspect`] to read just the fields routing needs (`model`, `stream`);
//! 3. [`translate_request`] to produce the body for the chosen provider's [`WireFormat`]
//!    (untouched bytes when nothing needs to change); [`translate_gemini_request`] for Gemini
//!    clients, whose path says whether they stream;
//! 4. for the response, [`translate_response`] (whole JSON body) or a [`StreamTranslator`]
//!    from [`stream_translator`] (SSE, chunk by chunk as it arrives), both reporting [`Usage`];
//! 5. [`translate_error`] for upstream error bodies and [`gateway_error`] for the gateway's
//!    own errors, so the client always gets errors in its own API's shape.

pub mod anthropic;
pub mod bedrock_sign;
pub mod error;
pub mod openai;
pub mod policy;
pub mod presets;
pub mod responses;
pub mod spec;
pub mod sse;
mod translate;
pub mod usage;

pub use error::Error;
pub use translate::{
    RequestInfo, StreamTranslator, Translated, gateway_error, inspect, stream_translator,
    translate_error, translate_gemini_request, translate_request, translate_response,
};
pub use usage::Usage;

/// The API a client speaks, known from the request path.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ClientApi {
    /// OpenAI `POST /v1/chat/completions`.
    ChatCompletions,
    /// Anthropic `POST /v1/messages`.
    Messages,
    /// Anthropic `POST /v1/messages/count_tokens`.
    CountTokens,
    /// OpenAI `POST /v1/embeddings`.
    Embeddings,
    /// OpenAI `GET /v1/models`.
    Models,
    /// Gemini `POST /v1beta/models/{model}:generateContent` (and `:streamGenerateContent`).
    GenerateContent,
    /// OpenAI Responses API `POST /v1/responses` (creating a response; the other Responses
    /// paths, `/v1/responses/{id}` and below, are [`ClientApi::Passthrough`]).
    Responses,
    /// Any other path on an AI backend (files, batches, stored responses, ...): forwarded
    /// untouched to the provider, with the gateway's credentials; usage is read when the
    /// answer carries it in a common shape. Never returned by [`ClientApi::from_path`].
    Passthrough,
}

impl ClientApi {
    /// Recognizes the API from a request path (after any route rewrite). Matches on the path's
    /// end, so `/v1/chat/completions`, `/openai/v1/chat/completions` and `/chat/completions`
    /// are all chat completions.
    pub fn from_path(path: &str) -> Option<Self> {
        let p = path.split('?').next().unwrap_or(path).trim_end_matches('/');
        if p.ends_with(":generateContent") || p.ends_with(":streamGenerateContent") {
            Some(Self::GenerateContent)
        } else if p.ends_with("/chat/completions") {
            Some(Self::ChatCompletions)
        } else if p.ends_with("/messages/count_tokens") {
            Some(Self::CountTokens)
        } else if p.ends_with("/messages") {
            Some(Self::Messages)
        } else if p.ends_with("/embeddings") {
            Some(Self::Embeddings)
        } else if p.ends_with("/models") {
            Some(Self::Models)
        } else if p.ends_with("/responses") {
            Some(Self::Responses)
        } else {
            None
        }
    }

    /// The wire format this API belongs to.
    pub fn format(self) -> WireFormat {
        match self {
            Self::ChatCompletions
            | Self::Embeddings
            | Self::Models
            | Self::Responses
            | Self::Passthrough => WireFormat::OpenAi,
            Self::Messages | Self::CountTokens => WireFormat::Anthropic,
            Self::GenerateContent => WireFormat::Gemini,
        }
    }

    /// The OpenTelemetry GenAI operation name (`gen_ai.operation.name`); a Responses API call
    /// is a `chat`, as the GenAI conventions name it.
    pub fn operation(self) -> &'static str {
        match self {
            Self::ChatCompletions | Self::Messages | Self::GenerateContent | Self::Responses => {
                "chat"
            }
            Self::Embeddings => "embeddings",
            Self::CountTokens => "count_tokens",
            Self::Models => "models",
            Self::Passthrough => "passthrough",
        }
    }
}

/// The wire format a provider endpoint speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum WireFormat {
    /// OpenAI chat completions (and every OpenAI-compatible vendor).
    OpenAi,
    /// Anthropic messages.
    Anthropic,
    /// Google Gemini `generateContent` (AI Studio and Vertex AI).
    Gemini,
    /// AWS Bedrock Converse / ConverseStream.
    Bedrock,
}

impl WireFormat {
    /// The vendor's default path prefix (what a configured path prefix replaces).
    pub fn default_prefix(self) -> &'static str {
        match self {
            WireFormat::OpenAi | WireFormat::Anthropic => "/v1",
            WireFormat::Gemini => "/v1beta",
            WireFormat::Bedrock => "",
        }
    }

    /// The upstream path for a client API in this format, for formats whose path does not
    /// depend on the model (`None`: not supported, or model-dependent: see
    /// [`translate_request`]'s `path`).
    pub fn path_for(self, api: ClientApi) -> Option<&'static str> {
        match (self, api) {
            (WireFormat::OpenAi, ClientApi::ChatCompletions | ClientApi::Messages) => {
                Some("/v1/chat/completions")
            }
            (WireFormat::OpenAi, ClientApi::Embeddings) => Some("/v1/embeddings"),
            (WireFormat::OpenAi, ClientApi::Models) => Some("/v1/models"),
            (WireFormat::OpenAi, ClientApi::Responses) => Some("/v1/responses"),
            (
                WireFormat::Anthropic,
                ClientApi::ChatCompletions | ClientApi::Messages | ClientApi::Responses,
            ) => Some("/v1/messages"),
            (WireFormat::Anthropic, ClientApi::CountTokens) => Some("/v1/messages/count_tokens"),
            (WireFormat::Anthropic, ClientApi::Models) => Some("/v1/models"),
            _ => None,
        }
    }

    /// The upstream path for `api` with `model`, streaming or not (`None`: not supported).
    pub fn upstream_path(self, api: ClientApi, model: &str, stream: bool) -> Option<String> {
        let chat = matches!(
            api,
            ClientApi::ChatCompletions
                | ClientApi::Messages
                | ClientApi::GenerateContent
                | ClientApi::Responses
        );
        match self {
            WireFormat::Gemini if chat => Some(if stream {
                format!("/v1beta/models/{model}:streamGenerateContent?alt=sse")
            } else {
                format!("/v1beta/models/{model}:generateContent")
            }),
            WireFormat::Bedrock if chat => Some(if stream {
                format!("/model/{model}/converse-stream")
            } else {
                format!("/model/{model}/converse")
            }),
            WireFormat::Gemini | WireFormat::Bedrock => None,
            _ => self.path_for(api).map(str::to_string),
        }
    }

    /// The `gen_ai.system` value for metrics.
    pub fn system(self) -> &'static str {
        match self {
            WireFormat::OpenAi => "openai",
            WireFormat::Anthropic => "anthropic",
            WireFormat::Gemini => "gemini",
            WireFormat::Bedrock => "aws.bedrock",
        }
    }
}

/// Deserializes content that is either a string (`Ok`) or a list of `T` (`Err`, by position
/// only); anything else is an error saying `what` was expected.
pub(crate) fn text_or_list<'de, D, T>(d: D, what: &str) -> Result<Result<String, Vec<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::de::DeserializeOwned,
{
    use serde::Deserialize;
    use serde::de::Error as _;
    match serde_json::Value::deserialize(d)? {
        serde_json::Value::String(s) => Ok(Ok(s)),
        v @ serde_json::Value::Array(_) => {
            serde_json::from_value(v).map(Err).map_err(D::Error::custom)
        }
        _ => Err(D::Error::custom(what)),
    }
}

#[cfg(test)]
mod tests {
    use super::ClientApi;

    #[test]
    fn apis_from_paths() {
        let api = ClientApi::from_path;
        assert_eq!(api("/v1/responses"), Some(ClientApi::Responses));
        assert_eq!(api("/openai/v1/responses/?x=1"), Some(ClientApi::Responses));
        // Stored responses and their sub-resources pass through.
        assert_eq!(api("/v1/responses/resp_123"), None);
        assert_eq!(api("/v1/responses/resp_123/cancel"), None);
        assert_eq!(api("/v1/responses/resp_123/input_items"), None);
        assert_eq!(
            api("/v1/chat/completions"),
            Some(ClientApi::ChatCompletions)
        );
        assert_eq!(
            api("/v1/messages/count_tokens"),
            Some(ClientApi::CountTokens)
        );
        assert_eq!(ClientApi::Responses.operation(), "chat");
        assert_eq!(ClientApi::Responses.format(), super::WireFormat::OpenAi);
    }
}
