//! A2A (agent-to-agent) handling, Pingora-free: agent cards get their URLs rewritten to the
//! gateway's address, JSON-RPC requests are classified (v0.3 and v1.0 method names) for
//! metrics and policies, a message without a `contextId` gets one (so the conversation can be
//! routed by it from the first message on), and requests are kept on one endpoint per
//! context (or task) by consistent hashing. Gateway errors are JSON-RPC errors.

use serde_json::{Map, Value};

/// Well-known paths of the agent card (v0.3+ and the older name).
const CARD_PATHS: [&str; 2] = ["/.well-known/agent-card.json", "/.well-known/agent.json"];

/// The client-facing prefix of an agent-card request (`/planner` for
/// `/planner/.well-known/agent-card.json`), or `None` when `path` is not a card request.
pub fn card_prefix(path: &str) -> Option<&str> {
    CARD_PATHS.iter().find_map(|c| path.strip_suffix(c))
}

/// Rewrites the URLs of an agent card to the gateway's: `public_base` (scheme, host and the
/// client-facing prefix) replaces the agent's origin and `upstream_base` (the prefix the
/// agent saw) at the start of each URL's path. v0.3 `url` and `additionalInterfaces[].url`,
/// v1.0 `supportedInterfaces[].url`. `None`: not a JSON object, leave the answer alone.
pub fn rewrite_card(body: &[u8], public_base: &str, upstream_base: &str) -> Option<Vec<u8>> {
    let mut card: Value = serde_json::from_slice(body).ok()?;
    let obj = card.as_object_mut()?;
    let fix = |v: &mut Value| {
        if let Some(u) = v.as_str() {
            *v = Value::String(rewrite_url(u, public_base, upstream_base));
        }
    };
    if let Some(u) = obj.get_mut("url") {
        fix(u);
    }
    for list in ["additionalInterfaces", "supportedInterfaces"] {
        if let Some(Value::Array(items)) = obj.get_mut(list) {
            for i in items {
                if let Some(u) = i.get_mut("url") {
                    fix(u);
                }
            }
        }
    }
    serde_json::to_vec(&card).ok()
}

fn rewrite_url(url: &str, public_base: &str, upstream_base: &str) -> String {
    let Some((_, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let path = rest.find('/').map_or("/", |i| &rest[i..]);
    let path = path.strip_prefix(upstream_base).unwrap_or(path);
    let path = if path.is_empty() || path.starts_with('/') {
        path.to_string()
    } else {
        format!("/{path}")
    };
    format!("{}{path}", public_base.trim_end_matches('/'))
}

/// What a JSON-RPC request to an agent is.
#[derive(Debug, Clone, PartialEq)]
pub struct Call {
    pub id: Value,
    /// The method as sent.
    pub method: String,
    /// One name for both protocol versions (`message/send`, `tasks/get`, ...; `other`).
    pub kind: &'static str,
    pub context_id: Option<String>,
    pub task_id: Option<String>,
}

/// v0.3 names and their v1.0 equivalents.
const METHODS: [(&str, &str, &str); 10] = [
    ("message/send", "SendMessage", "message/send"),
    ("message/stream", "SendStreamingMessage", "message/stream"),
    ("tasks/get", "GetTask", "tasks/get"),
    ("tasks/list", "ListTasks", "tasks/list"),
    ("tasks/cancel", "CancelTask", "tasks/cancel"),
    ("tasks/resubscribe", "SubscribeToTask", "tasks/resubscribe"),
    (
        "tasks/pushNotificationConfig/set",
        "CreateTaskPushNotificationConfig",
        "tasks/pushNotificationConfig/set",
    ),
    (
        "tasks/pushNotificationConfig/get",
        "GetTaskPushNotificationConfig",
        "tasks/pushNotificationConfig/get",
    ),
    (
        "tasks/pushNotificationConfig/list",
        "ListTaskPushNotificationConfig",
        "tasks/pushNotificationConfig/list",
    ),
    (
        "agent/getAuthenticatedExtendedCard",
        "GetExtendedAgentCard",
        "agent/getAuthenticatedExtendedCard",
    ),
];

fn kind(method: &str) -> &'static str {
    METHODS
        .iter()
        .find(|(v03, v10, _)| *v03 == method || *v10 == method)
        .map_or("other", |(_, _, k)| k)
}

/// A JSON-RPC error of the gateway, with the request's id when known.
#[derive(Debug, Clone, PartialEq)]
pub struct RpcError {
    pub id: Value,
    pub code: i64,
    pub message: String,
}

pub const PARSE_ERROR: i64 = -32700;
pub const INVALID_REQUEST: i64 = -32600;
pub const INTERNAL_ERROR: i64 = -32603;

/// The JSON-RPC error body.
pub fn error_body(id: &Value, code: i64, message: &str) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "jsonrpc": "2.0",
        "id": id,
        "error": {"code": code, "message": message},
    }))
    .unwrap_or_default()
}

fn str_at<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    path.iter().try_fold(v, |v, k| v.get(*k))?.as_str()
}

/// Reads a JSON-RPC request. A `message/send` or `message/stream` (any version) without a
/// `contextId` gets a fresh one; `Some(body)` is then the body to send instead.
pub fn classify(
    body: &[u8],
    new_id: impl FnOnce() -> String,
) -> Result<(Call, Option<Vec<u8>>), RpcError> {
    let mut v: Value = serde_json::from_slice(body).map_err(|e| RpcError {
        id: Value::Null,
        code: PARSE_ERROR,
        message: format!("parse error: {e}"),
    })?;
    let id = v.get("id").cloned().unwrap_or(Value::Null);
    let Some(method) = v.get("method").and_then(Value::as_str).map(str::to_string) else {
        return Err(RpcError {
            id,
            code: INVALID_REQUEST,
            message: "not a JSON-RPC request: no method".into(),
        });
    };
    let kind = kind(&method);
    let params = v.get("params").cloned().unwrap_or(Value::Null);
    // v0.3 nests the message as `params.message` with camelCase ids; v1.0 too (protobuf
    // JSON names), and task calls name the task `params.id` or `params.name` (`tasks/ID`).
    let mut context_id = str_at(&params, &["message", "contextId"])
        .or_else(|| str_at(&params, &["contextId"]))
        .map(str::to_string);
    let task_id = str_at(&params, &["message", "taskId"])
        .or_else(|| str_at(&params, &["taskId"]))
        .or_else(|| str_at(&params, &["id"]))
        .or_else(|| str_at(&params, &["name"]).map(|n| n.strip_prefix("tasks/").unwrap_or(n)))
        .map(|t| t.split('/').next().unwrap_or(t).to_string());
    let mut rewritten = None;
    if matches!(kind, "message/send" | "message/stream")
        && context_id.is_none()
        && task_id.is_none()
        && let Some(Value::Object(message)) = v.get_mut("params").and_then(|p| p.get_mut("message"))
    {
        let cid = new_id();
        insert(message, "contextId", &cid);
        context_id = Some(cid);
        rewritten = serde_json::to_vec(&v).ok();
    }
    Ok((
        Call {
            id,
            method,
            kind,
            context_id,
            task_id,
        },
        rewritten,
    ))
}

fn insert(m: &mut Map<String, Value>, k: &str, v: &str) {
    m.insert(k.to_string(), Value::String(v.to_string()));
}

/// The task ids in an agent's answer to a message: a JSON-RPC response, or an SSE stream of
/// them (v1.0 `result.task.id`, `result.statusUpdate.taskId`, `result.artifactUpdate.taskId`;
/// v0.3 `result.id` of a `kind: task`, `result.taskId`).
pub fn task_ids(answer: &[u8]) -> Vec<String> {
    fn from(v: &Value, out: &mut Vec<String>) {
        let Some(r) = v.get("result") else { return };
        let found = str_at(r, &["task", "id"])
            .or_else(|| str_at(r, &["statusUpdate", "taskId"]))
            .or_else(|| str_at(r, &["artifactUpdate", "taskId"]))
            .or_else(|| str_at(r, &["taskId"]))
            .or_else(|| {
                (r.get("kind").and_then(Value::as_str) == Some("task"))
                    .then(|| str_at(r, &["id"]))
                    .flatten()
            });
        if let Some(t) = found
            && !out.iter().any(|o| o == t)
        {
            out.push(t.to_string());
        }
    }
    let mut out = Vec::new();
    if let Ok(v) = serde_json::from_slice::<Value>(answer) {
        from(&v, &mut out);
        return out;
    }
    for line in answer.split(|b| *b == b'\n') {
        if let Some(data) = line.strip_prefix(b"data:")
            && let Ok(v) = serde_json::from_slice::<Value>(data.trim_ascii())
        {
            from(&v, &mut out);
        }
    }
    out
}

/// Which conversation each task the gateway has seen belongs to, so a call naming only a task
/// (`tasks/get`, `GetTask`, cancel, resubscribe) is hashed like its conversation. In process:
/// another gateway replica learns it when it sees the task.
pub mod tasks {
    use std::collections::HashMap;
    use std::sync::{Mutex, OnceLock};
    use std::time::{Duration, Instant};

    /// Tasks remembered at once; the oldest hour is dropped when full.
    const LIMIT: usize = 100_000;
    const KEEP: Duration = Duration::from_secs(3600);

    fn map() -> &'static Mutex<HashMap<String, (String, Instant)>> {
        static M: OnceLock<Mutex<HashMap<String, (String, Instant)>>> = OnceLock::new();
        M.get_or_init(Default::default)
    }

    pub fn learn(task: &str, context: &str) {
        if let Ok(mut m) = map().lock() {
            let now = Instant::now();
            if m.len() >= LIMIT {
                m.retain(|_, (_, at)| now.duration_since(*at) < KEEP);
                if m.len() >= LIMIT {
                    m.clear();
                }
            }
            m.insert(task.to_string(), (context.to_string(), now));
        }
    }

    pub fn context_of(task: &str) -> Option<String> {
        map().lock().ok()?.get(task).map(|(c, _)| c.clone())
    }
}

impl Call {
    /// What requests of one conversation share, for consistent hashing.
    pub fn sticky_key(&self) -> Option<&str> {
        self.context_id.as_deref().or(self.task_id.as_deref())
    }

    /// Fills in the conversation of a call that names only a task the gateway has seen.
    pub fn resolve_context(&mut self) {
        if self.context_id.is_none()
            && let Some(t) = &self.task_id
        {
            self.context_id = tasks::context_of(t);
        }
    }
}

#[cfg(test)]
mod tests;
