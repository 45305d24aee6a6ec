//! Lists fan out to the session's targets and merge under exposed names (filtered by the
//! authorization rules); calls find their target by the name's prefix.

use serde_json::{Value, json};

use super::{Request, Sess};
use crate::mcp::jsonrpc;
use crate::mcp::names::{self, Cursor, Listed};
use crate::mcp::target::Side;

/// Whether the backend forwards lists and names untouched (one target, no prefix).
fn single(req: &Request<'_>, members: &[usize]) -> Option<usize> {
    (!req.ir.naming.prefix && members.len() == 1).then(|| members[0])
}

/// The `mcp` attributes of one operation, as authorization rules see them.
pub fn attrs(method: &str, target: &str, rtype: &str, name: &str) -> Value {
    let mut a = json!({"method": method, "target": target});
    if !rtype.is_empty() {
        a[rtype] = json!({"name": name, "target": target});
    }
    a
}

/// A list request: every target's page, merged. The cursor carries each target's own.
pub async fn list(req: &Request<'_>, sess: &Sess, msg: &Value, what: Listed) -> Value {
    let ir = req.ir;
    let id = jsonrpc::id_of(msg).clone();
    let method = jsonrpc::method(msg);
    let members = sess.members(ir);
    let cursor = msg
        .pointer("/params/cursor")
        .and_then(Value::as_str)
        .map(str::to_string);
    let only = single(req, &members);
    let plan: Vec<(usize, Option<String>)> = match (only, cursor) {
        (Some(i), c) => vec![(i, c)],
        (None, Some(c)) => match names::decode_cursor(&c) {
            Some(map) => map
                .into_iter()
                .filter_map(|(name, c)| {
                    let i = ir.targets.iter().position(|t| t.name == name)?;
                    members.contains(&i).then_some((i, c))
                })
                .collect(),
            None => {
                return jsonrpc::error(id, jsonrpc::INVALID_PARAMS, "invalid cursor");
            }
        },
        (None, None) => members.iter().map(|&i| (i, None)).collect(),
    };
    let calls = plan.iter().map(|(i, c)| {
        let mut m = msg.clone();
        match c {
            Some(c) => m["params"]["cursor"] = c.clone().into(),
            None => {
                if let Some(p) = m.get_mut("params").and_then(Value::as_object_mut) {
                    p.remove("cursor");
                }
            }
        }
        async move { sess.call(ir, *i, &m, &Side::none(), req.timeout).await }
    });
    let answers = futures_util::future::join_all(calls).await;
    let field = what.field();
    let (key, _) = what.key();
    let mut items = Vec::new();
    let mut next = Cursor::new();
    let mut base = None;
    for ((i, _), r) in plan.iter().zip(answers) {
        let t = &ir.targets[*i].name;
        let failure = match r {
            Ok(mut a) => match a.get_mut("result").map(Value::take) {
                Some(result) => Ok(result),
                None if only.is_some() => return a,
                None => Err(a.get("error").cloned().unwrap_or(Value::Null).to_string()),
            },
            Err(e) => Err(e.to_string()),
        };
        let result = match failure {
            Ok(result) => result,
            Err(e) if ir.fail_open => {
                tracing::warn!(target = %t, error = %e, "MCP list failed; left out");
                continue;
            }
            Err(e) => {
                return jsonrpc::error(
                    id,
                    jsonrpc::TARGET_ERROR,
                    &format!("target {t}: {method} failed: {e}"),
                );
            }
        };
        let mut page: Vec<Value> = result
            .get(field)
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        page.retain(|item| {
            let name = item.get(key).and_then(Value::as_str).unwrap_or("");
            req.allows(method, t, what.resource_type(), name)
        });
        ir.naming.expose_items(what, t, &mut page);
        items.extend(page);
        if let Some(c) = result.get("nextCursor").and_then(Value::as_str) {
            next.insert(t.clone(), Some(c.to_string()));
        }
        base = Some(result);
    }
    let mut out = match (only, base) {
        // One target: its result as it came (other fields kept), items filtered.
        (Some(_), Some(mut r)) => {
            if let Some(o) = r.as_object_mut() {
                o.remove("nextCursor");
            }
            r
        }
        _ => json!({}),
    };
    out[field] = Value::Array(items);
    if let Some(c) = next
        .values()
        .next()
        .cloned()
        .flatten()
        .filter(|_| only.is_some())
    {
        out["nextCursor"] = c.into();
    } else if !next.is_empty() && only.is_none() {
        out["nextCursor"] = names::encode_cursor(&next).into();
    }
    jsonrpc::result(id, out)
}

/// Where a call goes: `(target index, message with the target's own name, (resource
/// type, name))`. `Ok(None)`: a method the virtual server does not know.
pub async fn route(
    req: &Request<'_>,
    sess: &Sess,
    msg: Value,
) -> Result<Option<(usize, Value, (&'static str, String))>, Value> {
    let ir = req.ir;
    let id = jsonrpc::id_of(&msg).clone();
    let method = jsonrpc::method(&msg);
    let (pointer, rtype, is_uri, listed) = match method {
        "tools/call" => ("/params/name", "tool", false, Listed::Tools),
        "prompts/get" => ("/params/name", "prompt", false, Listed::Prompts),
        "resources/read" | "resources/subscribe" | "resources/unsubscribe" => {
            ("/params/uri", "resource", true, Listed::Resources)
        }
        "completion/complete" => match msg.pointer("/params/ref/type").and_then(Value::as_str) {
            Some("ref/prompt") => ("/params/ref/name", "prompt", false, Listed::Prompts),
            Some("ref/resource") => ("/params/ref/uri", "resource", true, Listed::Templates),
            _ => {
                return Err(jsonrpc::error(
                    id,
                    jsonrpc::INVALID_PARAMS,
                    "completion/complete needs ref.type ref/prompt or ref/resource",
                ));
            }
        },
        _ => {
            let members = sess.members(ir);
            // One target and no renaming: whatever it speaks passes.
            return Ok(single(req, &members).map(|i| (i, msg, ("", String::new()))));
        }
    };
    let Some(name) = msg.pointer(pointer).and_then(Value::as_str) else {
        return Err(jsonrpc::error(
            id,
            jsonrpc::INVALID_PARAMS,
            &format!(
                "{method}: missing {}",
                pointer.trim_start_matches("/params/")
            ),
        ));
    };
    let members = sess.members(ir);
    let found = if ir.naming.prefix {
        let r = if is_uri {
            ir.naming.resolve_uri(name)
        } else {
            ir.naming.resolve_name(name)
        };
        r.filter(|(i, _)| members.contains(i))
            .map(|(i, n)| (i, n.to_string()))
    } else if let Some(i) = single(req, &members) {
        Some((i, name.to_string()))
    } else {
        owner(req, sess, &members, listed, name)
            .await
            .map(|i| (i, name.to_string()))
    };
    let Some((idx, original)) = found else {
        let what = if is_uri { "resource" } else { rtype };
        return Err(jsonrpc::error(
            id,
            jsonrpc::INVALID_PARAMS,
            &format!("Unknown {what}: {name}"),
        ));
    };
    // The client's message goes on with the target's own name (no copy of its arguments).
    let mut out = msg;
    if let Some(slot) = out.pointer_mut(pointer) {
        *slot = original.clone().into();
    }
    Ok(Some((idx, out, (rtype, original))))
}

/// Without prefixes and with several targets: the first target that lists `name`.
async fn owner(
    req: &Request<'_>,
    sess: &Sess,
    members: &[usize],
    what: Listed,
    name: &str,
) -> Option<usize> {
    let method = match what {
        Listed::Tools => "tools/list",
        Listed::Prompts => "prompts/list",
        Listed::Resources => "resources/list",
        Listed::Templates => "resources/templates/list",
    };
    let (key, _) = what.key();
    for &i in members {
        let mut cursor: Option<String> = None;
        for _ in 0..20 {
            let params = match &cursor {
                Some(c) => json!({"cursor": c}),
                None => json!({}),
            };
            let m = jsonrpc::request("agora-lookup".into(), method, params);
            let Ok(a) = sess.call(req.ir, i, &m, &Side::none(), req.timeout).await else {
                break;
            };
            let r = &a["result"];
            let hit = r[what.field()].as_array().is_some_and(|items| {
                items
                    .iter()
                    .any(|it| it.get(key).and_then(Value::as_str) == Some(name))
            });
            if hit {
                return Some(i);
            }
            match r.get("nextCursor").and_then(Value::as_str) {
                Some(c) => cursor = Some(c.to_string()),
                None => break,
            }
        }
    }
    None
}
