//! Error bodies in the client's format: upstream errors translated, and the gateway's own.

use serde_json::Value;

use crate::{ClientApi, WireFormat, anthropic, openai};

/// Longest upstream text kept in a wrapped error message.
const MAX_MESSAGE: usize = 2000;

/// Upstream error body (any status >= 400) in `from` format → the client's error format.
/// `None`: the body is already a proper error in the client's format; forward it unchanged.
/// Bodies that are not JSON error objects (an HTML page from a load balancer, a vendor's
/// `{"detail": ...}`) are wrapped in a proper error object.
pub fn translate_error(
    api: ClientApi,
    from: WireFormat,
    status: u16,
    body: &[u8],
) -> Option<Vec<u8>> {
    let json = serde_json::from_slice::<Value>(body).ok();
    let to = api.format();
    if to == from && json.as_ref().is_some_and(|v| is_proper_error(to, v)) {
        return None;
    }
    let (kind, message) = match &json {
        Some(v) => read_error(v),
        None => (None, None),
    };
    let message = message.unwrap_or_else(|| wrap_text(status, body));
    Some(match to {
        WireFormat::OpenAi => openai_error(status, kind.as_deref(), &message),
        WireFormat::Anthropic => {
            // OpenAI error types differ from Anthropic's; only keep Anthropic's own.
            let kind = kind.filter(|_| from == WireFormat::Anthropic);
            anthropic_error(status, kind.as_deref(), &message)
        }
        WireFormat::Gemini => gemini_error(status, &message),
        // Bedrock is never a client format.
        WireFormat::Bedrock => openai_error(status, kind.as_deref(), &message),
    })
}

/// The gateway's own error in the client's format. OpenAI:
/// `{"error":{"message","type","param":null,"code":"<status>"}}`; Anthropic:
/// `{"type":"error","error":{"type","message"}}`, the type chosen from the status.
pub fn gateway_error(api: ClientApi, status: u16, message: &str) -> Vec<u8> {
    match api.format() {
        WireFormat::OpenAi | WireFormat::Bedrock => openai_error(status, None, message),
        WireFormat::Anthropic => anthropic_error(status, None, message),
        WireFormat::Gemini => gemini_error(status, message),
    }
}

/// A Google API error: `{"error":{"code","message","status"}}`.
pub(super) fn gemini_error(status: u16, message: &str) -> Vec<u8> {
    let canonical = match status {
        400 | 413 => "INVALID_ARGUMENT",
        401 => "UNAUTHENTICATED",
        403 => "PERMISSION_DENIED",
        404 => "NOT_FOUND",
        429 => "RESOURCE_EXHAUSTED",
        503 => "UNAVAILABLE",
        504 => "DEADLINE_EXCEEDED",
        _ => "INTERNAL",
    };
    serde_json::to_vec(&serde_json::json!({
        "error": { "code": status, "message": message, "status": canonical }
    }))
    .unwrap_or_default()
}

fn is_proper_error(format: WireFormat, v: &Value) -> bool {
    let has_message = v.pointer("/error/message").is_some_and(Value::is_string);
    match format {
        WireFormat::OpenAi => has_message,
        WireFormat::Anthropic => {
            has_message && v.get("type").and_then(Value::as_str) == Some("error")
        }
        WireFormat::Gemini => has_message && v.pointer("/error/code").is_some(),
        WireFormat::Bedrock => false,
    }
}

/// The error type and message of a JSON error body, in any of the shapes vendors use.
fn read_error(v: &Value) -> (Option<String>, Option<String>) {
    let text = |v: Option<&Value>| v.and_then(Value::as_str).map(str::to_string);
    if let Some(err) = v.get("error") {
        if let Some(s) = err.as_str() {
            return (None, Some(s.to_string()));
        }
        let message = text(err.get("message"));
        let kind = text(err.get("type")).or_else(|| text(err.get("code")));
        if message.is_some() {
            return (kind, message);
        }
    }
    let message = text(v.get("message")).or_else(|| match v.get("detail") {
        Some(Value::String(s)) => Some(s.clone()),
        Some(d) => Some(d.to_string()),
        None => None,
    });
    (None, message)
}

/// A message for a body that is not a JSON error: the text, whitespace collapsed, cut.
fn wrap_text(status: u16, body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if text.is_empty() {
        return format!("upstream returned HTTP {status} with an empty body");
    }
    let mut end = text.len().min(MAX_MESSAGE);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let cut = if end < text.len() { "..." } else { "" };
    format!("upstream returned HTTP {status}: {}{cut}", &text[..end])
}

fn openai_type(status: u16) -> &'static str {
    match status {
        401 => "authentication_error",
        403 => "permission_error",
        404 => "not_found_error",
        429 => "rate_limit_error",
        400..=499 => "invalid_request_error",
        _ => "server_error",
    }
}

pub(super) fn openai_error_detail(
    status: u16,
    kind: Option<&str>,
    message: &str,
) -> openai::ErrorBody {
    openai::ErrorBody {
        error: openai::ErrorDetail {
            message: message.to_string(),
            kind: kind.unwrap_or(openai_type(status)).to_string(),
            param: None,
            code: Some(status.to_string()),
        },
    }
}

fn openai_error(status: u16, kind: Option<&str>, message: &str) -> Vec<u8> {
    serde_json::to_vec(&openai_error_detail(status, kind, message)).unwrap_or_default()
}

pub(super) fn anthropic_error_body(
    status: u16,
    kind: Option<&str>,
    message: &str,
) -> anthropic::ErrorBody {
    anthropic::ErrorBody {
        kind: "error".into(),
        error: anthropic::ErrorDetail {
            kind: kind
                .filter(|k| !k.is_empty())
                .unwrap_or(anthropic::error_type(status))
                .to_string(),
            message: message.to_string(),
        },
    }
}

fn anthropic_error(status: u16, kind: Option<&str>, message: &str) -> Vec<u8> {
    serde_json::to_vec(&anthropic_error_body(status, kind, message)).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(b: Option<Vec<u8>>) -> String {
        String::from_utf8(b.unwrap()).unwrap()
    }

    #[test]
    fn same_format_proper_errors_pass() {
        let oa = br#"{"error":{"message":"bad","type":"invalid_request_error","param":null,"code":null}}"#;
        assert!(translate_error(ClientApi::ChatCompletions, WireFormat::OpenAi, 400, oa).is_none());
        let an = br#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#;
        assert!(translate_error(ClientApi::Messages, WireFormat::Anthropic, 529, an).is_none());
    }

    #[test]
    fn html_and_vendor_shapes_are_wrapped() {
        let html = b"<html><body>502 Bad Gateway</body></html>\n";
        assert_eq!(
            s(translate_error(
                ClientApi::ChatCompletions,
                WireFormat::OpenAi,
                502,
                html
            )),
            r#"{"error":{"message":"upstream returned HTTP 502: <html><body>502 Bad Gateway</body></html>","type":"server_error","param":null,"code":"502"}}"#
        );
        assert_eq!(
            s(translate_error(
                ClientApi::ChatCompletions,
                WireFormat::OpenAi,
                404,
                br#"{"error":"model 'x' not found"}"#
            )),
            r#"{"error":{"message":"model 'x' not found","type":"not_found_error","param":null,"code":"404"}}"#
        );
        assert_eq!(
            s(translate_error(
                ClientApi::Messages,
                WireFormat::OpenAi,
                422,
                br#"{"detail":[{"msg":"field required"}]}"#
            )),
            r#"{"type":"error","error":{"type":"invalid_request_error","message":"[{\"msg\":\"field required\"}]"}}"#
        );
        assert_eq!(
            s(translate_error(
                ClientApi::Messages,
                WireFormat::Anthropic,
                503,
                b""
            )),
            r#"{"type":"error","error":{"type":"api_error","message":"upstream returned HTTP 503 with an empty body"}}"#
        );
        let long = "é".repeat(3000);
        let out = s(translate_error(
            ClientApi::Messages,
            WireFormat::Anthropic,
            500,
            long.as_bytes(),
        ));
        assert!(out.len() < 2200 && out.contains("...\""));
        let bin = [0xff_u8, 0xfe, 0x00];
        assert!(
            translate_error(ClientApi::ChatCompletions, WireFormat::Anthropic, 500, &bin).is_some()
        );
    }

    #[test]
    fn cross_format() {
        let an = br#"{"type":"error","error":{"type":"rate_limit_error","message":"slow down"},"request_id":"req_1"}"#;
        assert_eq!(
            s(translate_error(
                ClientApi::ChatCompletions,
                WireFormat::Anthropic,
                429,
                an
            )),
            r#"{"error":{"message":"slow down","type":"rate_limit_error","param":null,"code":"429"}}"#
        );
        let oa = br#"{"error":{"message":"Incorrect API key provided","type":"invalid_request_error","param":null,"code":"invalid_api_key"}}"#;
        assert_eq!(
            s(translate_error(
                ClientApi::Messages,
                WireFormat::OpenAi,
                401,
                oa
            )),
            r#"{"type":"error","error":{"type":"authentication_error","message":"Incorrect API key provided"}}"#
        );
    }

    #[test]
    fn gateway_errors() {
        let cases = [
            (400, "invalid_request_error"),
            (401, "authentication_error"),
            (403, "permission_error"),
            (404, "not_found_error"),
            (413, "request_too_large"),
            (429, "rate_limit_error"),
            (500, "api_error"),
            (502, "api_error"),
            (503, "api_error"),
            (504, "api_error"),
            (529, "overloaded_error"),
        ];
        for (status, kind) in cases {
            let v: Value =
                serde_json::from_slice(&gateway_error(ClientApi::Messages, status, "m")).unwrap();
            assert_eq!(v["type"], "error");
            assert_eq!(v["error"]["type"], kind, "{status}");
            assert_eq!(v["error"]["message"], "m");
        }
        assert_eq!(
            String::from_utf8(gateway_error(ClientApi::Embeddings, 503, "no provider")).unwrap(),
            r#"{"error":{"message":"no provider","type":"server_error","param":null,"code":"503"}}"#
        );
        let v: Value =
            serde_json::from_slice(&gateway_error(ClientApi::CountTokens, 400, "x")).unwrap();
        assert_eq!(v["error"]["type"], "invalid_request_error");
    }
}
