//! JSON-RPC 2.0 messages as MCP uses them: kept as JSON values (a gateway passes through
//! fields it does not know), with helpers to tell the kinds apart and to build errors.

use serde_json::{Value, json};

pub const PARSE_ERROR: i64 = -32700;
pub const INVALID_REQUEST: i64 = -32600;
pub const METHOD_NOT_FOUND: i64 = -32601;
pub const INVALID_PARAMS: i64 = -32602;
pub const INTERNAL_ERROR: i64 = -32603;
/// A policy refused the operation (implementation-defined server error range).
pub const ACCESS_DENIED: i64 = -32001;
/// A target could not be reached or answered garbage.
pub const TARGET_ERROR: i64 = -32002;

/// What a message is, by the JSON-RPC rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Request,
    Notification,
    Response,
}

/// A message's kind, or why it is not a JSON-RPC 2.0 message.
pub fn kind(m: &Value) -> Result<Kind, &'static str> {
    let Some(o) = m.as_object() else {
        return Err("a JSON-RPC message must be an object");
    };
    if o.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
        return Err("jsonrpc must be \"2.0\"");
    }
    match (o.get("method"), o.get("id")) {
        (Some(Value::String(_)), Some(id)) if valid_id(id) => Ok(Kind::Request),
        (Some(Value::String(_)), None) => Ok(Kind::Notification),
        (Some(_), _) => Err("method must be a string and id a string or number"),
        (None, Some(_)) if o.contains_key("result") || o.contains_key("error") => {
            Ok(Kind::Response)
        }
        (None, _) => Err("a message needs a method (request) or a result or error (response)"),
    }
}

fn valid_id(id: &Value) -> bool {
    matches!(id, Value::String(_) | Value::Number(_))
}

/// Parses one message from a request body; batches are refused (MCP 2025-06-18 has none).
pub fn parse(body: &[u8]) -> Result<(Value, Kind), Value> {
    let m: Value = serde_json::from_slice(body)
        .map_err(|e| error(Value::Null, PARSE_ERROR, &format!("parse error: {e}")))?;
    if m.is_array() {
        return Err(error(
            Value::Null,
            INVALID_REQUEST,
            "JSON-RPC batches are not supported; send one message per request",
        ));
    }
    let k = kind(&m).map_err(|why| error(id_of(&m).clone(), INVALID_REQUEST, why))?;
    Ok((m, k))
}

pub fn method(m: &Value) -> &str {
    m.get("method").and_then(Value::as_str).unwrap_or("")
}

pub fn id_of(m: &Value) -> &Value {
    m.get("id").unwrap_or(&Value::Null)
}

pub fn params(m: &Value) -> Option<&Value> {
    m.get("params")
}

/// An error response.
pub fn error(id: Value, code: i64, message: &str) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "error": {"code": code, "message": message}})
}

/// A success response.
pub fn result(id: Value, result: Value) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "result": result})
}

/// A request.
pub fn request(id: Value, method: &str, params: Value) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params})
}

/// A notification.
pub fn notification(method: &str, params: Option<Value>) -> Value {
    match params {
        Some(p) => json!({"jsonrpc": "2.0", "method": method, "params": p}),
        None => json!({"jsonrpc": "2.0", "method": method}),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_and_refusals() {
        let (m, k) = parse(br#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#).expect("ok");
        assert_eq!((k, method(&m)), (Kind::Request, "tools/list"));
        let (_, k) =
            parse(br#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#).expect("ok");
        assert_eq!(k, Kind::Notification);
        let (_, k) = parse(br#"{"jsonrpc":"2.0","id":"a","result":{}}"#).expect("ok");
        assert_eq!(k, Kind::Response);
        let e = parse(b"{nope").unwrap_err();
        assert_eq!(e["error"]["code"], PARSE_ERROR);
        let e = parse(br#"[{"jsonrpc":"2.0","id":1,"method":"ping"}]"#).unwrap_err();
        assert_eq!(e["error"]["code"], INVALID_REQUEST);
        let e = parse(br#"{"jsonrpc":"1.0","id":7,"method":"ping"}"#).unwrap_err();
        assert_eq!(
            (e["id"].clone(), e["error"]["code"].clone()),
            (json!(7), json!(INVALID_REQUEST))
        );
        let e = parse(br#"{"jsonrpc":"2.0","id":{},"method":"ping"}"#).unwrap_err();
        assert_eq!(e["error"]["code"], INVALID_REQUEST);
    }
}
