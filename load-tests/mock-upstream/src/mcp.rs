//! A minimal MCP server over Streamable HTTP, for benchmarking the gateway's MCP path. It
//! speaks the wire format faithfully but holds no state:
//!
//! - `POST` a JSON-RPC request: `initialize` (the answer echoes the client's
//!   `protocolVersion` and carries a random `Mcp-Session-Id`), `ping`, `tools/list` (one
//!   tool, `echo`), `tools/call` of `echo` (answers `params.arguments.text`); other methods
//!   get error -32601. Answers are `200 application/json`.
//! - `POST` a notification or a response (no `method`, or no `id`): `202`, empty.
//! - `GET`: `405` (no server stream). `DELETE`: `200` (session ended).
//! - Anything but `initialize` without an `Mcp-Session-Id` header: `400` (the id itself is
//!   not checked).

use std::hash::{BuildHasher, Hasher};

use serde_json::{Value, json};

use super::Method;

/// The protocol version answered when the client names none.
const DEFAULT_VERSION: &str = "2025-06-18";

/// The HTTP answer to one MCP request.
#[derive(Debug, PartialEq)]
pub struct Answer {
    pub status: u16,
    /// `Mcp-Session-Id` response header (on `initialize`).
    pub session: Option<String>,
    /// JSON body; empty for `202`, `405` and `DELETE`.
    pub body: Vec<u8>,
}

impl Answer {
    fn empty(status: u16) -> Self {
        Self {
            status,
            session: None,
            body: Vec::new(),
        }
    }

    fn json(status: u16, v: &Value) -> Self {
        Self {
            status,
            session: None,
            body: serde_json::to_vec(v).unwrap_or_default(),
        }
    }
}

fn error(id: &Value, code: i64, message: &str) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "error": {"code": code, "message": message}})
}

fn result(id: &Value, result: Value) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "result": result})
}

/// 32 random hex digits (std's per-instance random hasher keys; no `rand` needed).
fn session_id() -> String {
    let r = || {
        std::collections::hash_map::RandomState::new()
            .build_hasher()
            .finish()
    };
    format!("{:016x}{:016x}", r(), r())
}

/// Answers one request to the MCP path. `has_session`: the request carried `Mcp-Session-Id`.
pub fn answer(method: Method, has_session: bool, body: &[u8]) -> Answer {
    match method {
        Method::Post => {}
        Method::Delete if has_session => return Answer::empty(200),
        Method::Delete => {
            return Answer::json(
                400,
                &error(&Value::Null, -32600, "Bad Request: no session id"),
            );
        }
        _ => return Answer::empty(405),
    }
    let Ok(msg) = serde_json::from_slice::<Value>(body) else {
        return Answer::json(400, &error(&Value::Null, -32700, "Parse error"));
    };
    if !msg.is_object() || msg.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
        return Answer::json(400, &error(&Value::Null, -32600, "Invalid Request"));
    }
    let id = msg.get("id");
    let name = msg.get("method").and_then(Value::as_str);
    let (Some(id), Some(name)) = (id, name) else {
        // A notification, or the client's answer to a server request.
        return if has_session {
            Answer::empty(202)
        } else {
            Answer::json(
                400,
                &error(&Value::Null, -32600, "Bad Request: no session id"),
            )
        };
    };
    if name == "initialize" {
        let version = msg
            .pointer("/params/protocolVersion")
            .and_then(Value::as_str)
            .unwrap_or(DEFAULT_VERSION);
        let mut a = Answer::json(
            200,
            &result(
                id,
                json!({
                    "protocolVersion": version,
                    "capabilities": {"tools": {}},
                    "serverInfo": {"name": "agora-mock-upstream", "version": env!("CARGO_PKG_VERSION")},
                }),
            ),
        );
        a.session = Some(session_id());
        return a;
    }
    if !has_session {
        return Answer::json(400, &error(id, -32600, "Bad Request: no session id"));
    }
    let answer = match name {
        "ping" => result(id, json!({})),
        "tools/list" => result(
            id,
            json!({"tools": [{
                "name": "echo",
                "description": "Echoes its text argument.",
                "inputSchema": {
                    "type": "object",
                    "properties": {"text": {"type": "string", "description": "What to echo"}},
                    "required": ["text"],
                },
            }]}),
        ),
        "tools/call" => match (
            msg.pointer("/params/name").and_then(Value::as_str),
            msg.pointer("/params/arguments/text")
                .and_then(Value::as_str),
        ) {
            (Some("echo"), Some(text)) => result(
                id,
                json!({"content": [{"type": "text", "text": text}], "isError": false}),
            ),
            (Some("echo"), None) => error(id, -32602, "Invalid params: echo takes a string `text`"),
            _ => error(id, -32602, "Unknown tool"),
        },
        _ => error(id, -32601, "Method not found"),
    };
    Answer::json(200, &answer)
}

/// Appends the whole HTTP response for `a`.
pub fn write(out: &mut Vec<u8>, a: &Answer, close: bool, with_body: bool) {
    let reason = match a.status {
        200 => "OK",
        202 => "Accepted",
        400 => "Bad Request",
        _ => "Method Not Allowed",
    };
    out.extend_from_slice(format!("HTTP/1.1 {} {reason}\r\n", a.status).as_bytes());
    if !a.body.is_empty() {
        out.extend_from_slice(b"content-type: application/json\r\n");
    }
    if let Some(s) = &a.session {
        out.extend_from_slice(format!("mcp-session-id: {s}\r\n").as_bytes());
    }
    if a.status == 405 {
        out.extend_from_slice(b"allow: POST, DELETE\r\n");
    }
    out.extend_from_slice(format!("content-length: {}\r\n", a.body.len()).as_bytes());
    if close {
        out.extend_from_slice(b"connection: close\r\n");
    }
    out.extend_from_slice(b"\r\n");
    if with_body {
        out.extend_from_slice(&a.body);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn post(has_session: bool, body: &str) -> (u16, Option<String>, Value) {
        let a = answer(Method::Post, has_session, body.as_bytes());
        let v = if a.body.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&a.body).unwrap()
        };
        (a.status, a.session, v)
    }

    #[test]
    fn initialize_echoes_the_version_and_opens_a_session() {
        let (status, sid, v) = post(
            false,
            r#"{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-03-26","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}"#,
        );
        assert_eq!(status, 200);
        let sid = sid.unwrap();
        assert_eq!(sid.len(), 32);
        assert!(sid.chars().all(|c| c.is_ascii_hexdigit()));
        assert_eq!(v["id"], 0);
        assert_eq!(v["result"]["protocolVersion"], "2025-03-26");
        assert_eq!(v["result"]["capabilities"], json!({"tools": {}}));
        assert_eq!(v["result"]["serverInfo"]["name"], "agora-mock-upstream");
        let (_, other, _) = post(false, r#"{"jsonrpc":"2.0","id":1,"method":"initialize"}"#);
        assert_ne!(other.unwrap(), sid);
    }

    #[test]
    fn lists_calls_pings_and_refuses_unknown_methods() {
        let (status, sid, v) = post(true, r#"{"jsonrpc":"2.0","id":"a","method":"tools/list"}"#);
        assert_eq!((status, sid), (200, None));
        assert_eq!(v["id"], "a");
        assert_eq!(v["result"]["tools"][0]["name"], "echo");
        assert_eq!(v["result"]["tools"][0]["inputSchema"]["type"], "object");

        let (status, _, v) = post(
            true,
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"text":"hi"}}}"#,
        );
        assert_eq!(status, 200);
        assert_eq!(
            v["result"],
            json!({"content": [{"type": "text", "text": "hi"}], "isError": false})
        );

        let (_, _, v) = post(true, r#"{"jsonrpc":"2.0","id":2,"method":"ping"}"#);
        assert_eq!(v, json!({"jsonrpc": "2.0", "id": 2, "result": {}}));
        let (status, _, v) = post(true, r#"{"jsonrpc":"2.0","id":3,"method":"prompts/list"}"#);
        assert_eq!((status, &v["error"]["code"]), (200, &json!(-32601)));
        let (_, _, v) = post(
            true,
            r#"{"jsonrpc":"2.0","id":4,"method":"tools/call","params":{"name":"nope"}}"#,
        );
        assert_eq!(v["error"]["code"], -32602);
    }

    #[test]
    fn notifications_streams_and_sessions() {
        let note = r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#;
        assert_eq!(post(true, note).0, 202);
        assert_eq!(post(true, r#"{"jsonrpc":"2.0","id":9,"result":{}}"#).0, 202);
        // No session id: 400 for anything but initialize.
        assert_eq!(post(false, note).0, 400);
        assert_eq!(
            post(false, r#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#).0,
            400
        );
        assert_eq!(post(true, "{not json").2["error"]["code"], -32700);
        assert_eq!(post(true, "[1]").0, 400);
        assert_eq!(answer(Method::Get, true, b""), Answer::empty(405));
        assert_eq!(answer(Method::Delete, true, b""), Answer::empty(200));
        assert_eq!(answer(Method::Delete, false, b"").status, 400);
    }

    #[test]
    fn http_answers() {
        let mut a = answer(
            Method::Post,
            false,
            br#"{"jsonrpc":"2.0","id":1,"method":"initialize"}"#,
        );
        a.session = Some("ab12".into());
        let mut out = Vec::new();
        write(&mut out, &a, false, true);
        let text = String::from_utf8(out).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
        assert!(head.contains("content-type: application/json\r\n"));
        assert!(head.contains("mcp-session-id: ab12\r\n"));
        assert!(head.contains(&format!("content-length: {}", body.len())));

        let mut out = Vec::new();
        write(&mut out, &Answer::empty(202), true, true);
        assert_eq!(
            out,
            b"HTTP/1.1 202 Accepted\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
        );
        let mut out = Vec::new();
        write(&mut out, &Answer::empty(405), false, true);
        assert!(
            String::from_utf8(out)
                .unwrap()
                .contains("allow: POST, DELETE\r\n")
        );
    }
}
