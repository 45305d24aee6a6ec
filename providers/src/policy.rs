//! Request shaping by backend policy (`policies.ai`): default and overridden fields, and
//! messages prepended or appended to the prompt. Applied to the client's body, in the
//! client's format, before any translation, so one policy works for every provider.

use serde_json::{Map, Value};

use crate::{ClientApi, Error};

/// One message of a prompt policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PromptMessage {
    /// `system`, `user` or `assistant`.
    pub role: String,
    pub content: String,
}

/// What `policies.ai` does to a request.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RequestPolicy {
    /// Top-level fields set when the request does not have them.
    pub defaults: Map<String, Value>,
    /// Top-level fields always set (replacing the client's).
    pub overrides: Map<String, Value>,
    pub prepend: Vec<PromptMessage>,
    pub append: Vec<PromptMessage>,
}

impl RequestPolicy {
    pub fn is_empty(&self) -> bool {
        self.defaults.is_empty()
            && self.overrides.is_empty()
            && self.prepend.is_empty()
            && self.append.is_empty()
    }

    /// The shaped body, or `None` when the policy does not apply to this API (or is empty).
    /// Only chat APIs (OpenAI chat completions and Responses, Anthropic messages) are shaped.
    pub fn apply(&self, api: ClientApi, body: &[u8]) -> Result<Option<Vec<u8>>, Error> {
        let chat = matches!(
            api,
            ClientApi::ChatCompletions | ClientApi::Messages | ClientApi::Responses
        );
        if self.is_empty() || !chat {
            return Ok(None);
        }
        let mut obj: Map<String, Value> = match serde_json::from_slice(body) {
            Ok(Value::Object(o)) => o,
            Ok(_) => {
                return Err(Error::InvalidRequest(
                    "the body must be a JSON object".into(),
                ));
            }
            Err(e) => return Err(Error::InvalidRequest(e.to_string())),
        };
        for (k, v) in &self.defaults {
            if let Some(k) = field(api, k, &self.defaults) {
                obj.entry(k).or_insert_with(|| v.clone());
            }
        }
        for (k, v) in &self.overrides {
            if let Some(k) = field(api, k, &self.overrides) {
                obj.insert(k, v.clone());
            }
        }
        match api {
            ClientApi::ChatCompletions => self.shape_chat(&mut obj)?,
            ClientApi::Responses => self.shape_responses(&mut obj)?,
            _ => self.shape_messages(&mut obj)?,
        }
        serde_json::to_vec(&obj)
            .map(Some)
            .map_err(|e| Error::InvalidRequest(e.to_string()))
    }

    /// OpenAI chat: every prompt message goes into `messages` as it is.
    fn shape_chat(&self, obj: &mut Map<String, Value>) -> Result<(), Error> {
        if self.prepend.is_empty() && self.append.is_empty() {
            return Ok(());
        }
        let messages = messages_of(obj)?;
        let to_value =
            |m: &PromptMessage| serde_json::json!({ "role": m.role, "content": m.content });
        let mut out: Vec<Value> = self.prepend.iter().map(to_value).collect();
        out.append(messages);
        out.extend(self.append.iter().map(to_value));
        *messages = out;
        Ok(())
    }

    /// OpenAI Responses: every prompt message becomes an input message around the client's
    /// `input` (a text `input` becomes one user message first).
    fn shape_responses(&self, obj: &mut Map<String, Value>) -> Result<(), Error> {
        if self.prepend.is_empty() && self.append.is_empty() {
            return Ok(());
        }
        let input = match obj.remove("input") {
            None | Some(Value::Null) => vec![],
            Some(Value::String(s)) => vec![serde_json::json!({ "role": "user", "content": s })],
            Some(Value::Array(a)) => a,
            Some(_) => {
                return Err(Error::InvalidRequest(
                    "input must be a string or a list".into(),
                ));
            }
        };
        let to_value =
            |m: &PromptMessage| serde_json::json!({ "role": m.role, "content": m.content });
        let mut out: Vec<Value> = self.prepend.iter().map(to_value).collect();
        out.extend(input);
        out.extend(self.append.iter().map(to_value));
        obj.insert("input".into(), Value::Array(out));
        Ok(())
    }

    /// Anthropic messages: system prompt messages join the `system` field (prepended ones
    /// before the client's system prompt, appended ones after); the others go into
    /// `messages`.
    fn shape_messages(&self, obj: &mut Map<String, Value>) -> Result<(), Error> {
        if self.prepend.is_empty() && self.append.is_empty() {
            return Ok(());
        }
        let system_text = |ms: &[PromptMessage]| {
            ms.iter()
                .filter(|m| m.role == "system")
                .map(|m| serde_json::json!({ "type": "text", "text": m.content }))
                .collect::<Vec<_>>()
        };
        let (pre_sys, post_sys) = (system_text(&self.prepend), system_text(&self.append));
        if !pre_sys.is_empty() || !post_sys.is_empty() {
            let existing = match obj.remove("system") {
                None | Some(Value::Null) => vec![],
                Some(Value::String(s)) => vec![serde_json::json!({ "type": "text", "text": s })],
                Some(Value::Array(a)) => a,
                Some(_) => {
                    return Err(Error::InvalidRequest(
                        "system must be a string or a list".into(),
                    ));
                }
            };
            let mut system = pre_sys;
            system.extend(existing);
            system.extend(post_sys);
            obj.insert("system".into(), Value::Array(system));
        }
        let turn = |m: &PromptMessage| {
            (m.role != "system")
                .then(|| serde_json::json!({ "role": m.role, "content": m.content }))
        };
        let messages = messages_of(obj)?;
        let mut out: Vec<Value> = self.prepend.iter().filter_map(turn).collect();
        out.append(messages);
        out.extend(self.append.iter().filter_map(turn));
        *messages = out;
        Ok(())
    }
}

/// The name a policy field `key` (of the policy map `map`) has in a request of `api`: the
/// output token limit, `max_tokens` (or `max_completion_tokens`) in chat and messages, is
/// `max_output_tokens` in the Responses API, which rejects the other names; `None` when the
/// policy also names `max_output_tokens` itself, which then wins.
fn field(api: ClientApi, key: &str, map: &Map<String, Value>) -> Option<String> {
    if api == ClientApi::Responses && matches!(key, "max_tokens" | "max_completion_tokens") {
        return (!map.contains_key("max_output_tokens")).then(|| "max_output_tokens".into());
    }
    Some(key.to_string())
}

fn messages_of(obj: &mut Map<String, Value>) -> Result<&mut Vec<Value>, Error> {
    match obj
        .entry("messages")
        .or_insert_with(|| Value::Array(vec![]))
    {
        Value::Array(a) => Ok(a),
        _ => Err(Error::InvalidRequest("messages must be a list".into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn policy() -> RequestPolicy {
        let mut p = RequestPolicy::default();
        p.defaults.insert("temperature".into(), json!(0.2));
        p.overrides.insert("max_tokens".into(), json!(256));
        p.prepend.push(PromptMessage {
            role: "system".into(),
            content: "Be safe.".into(),
        });
        p.append.push(PromptMessage {
            role: "user".into(),
            content: "Answer briefly.".into(),
        });
        p
    }

    fn shaped(api: ClientApi, body: Value) -> Value {
        let out = policy()
            .apply(api, body.to_string().as_bytes())
            .unwrap()
            .unwrap();
        serde_json::from_slice(&out).unwrap()
    }

    #[test]
    fn chat_defaults_overrides_and_prompt() {
        let v = shaped(
            ClientApi::ChatCompletions,
            json!({"model":"m","temperature":0.9,"max_tokens":4000,"messages":[{"role":"user","content":"hi"}]}),
        );
        assert_eq!(
            v["temperature"], 0.9,
            "a default does not replace the client's value"
        );
        assert_eq!(v["max_tokens"], 256, "an override does");
        assert_eq!(
            v["messages"],
            json!([
                {"role":"system","content":"Be safe."},
                {"role":"user","content":"hi"},
                {"role":"user","content":"Answer briefly."}
            ])
        );
        let v = shaped(
            ClientApi::ChatCompletions,
            json!({"model":"m","messages":[]}),
        );
        assert_eq!(v["temperature"], 0.2, "a missing field gets the default");
    }

    #[test]
    fn anthropic_system_prompts_join_system() {
        let v = shaped(
            ClientApi::Messages,
            json!({"model":"m","max_tokens":10,"system":"Client rules.","messages":[{"role":"user","content":"hi"}]}),
        );
        assert_eq!(
            v["system"],
            json!([{"type":"text","text":"Be safe."},{"type":"text","text":"Client rules."}])
        );
        assert_eq!(
            v["messages"][1],
            json!({"role":"user","content":"Answer briefly."})
        );
        assert_eq!(v["max_tokens"], 256);
    }

    #[test]
    fn responses_prompts_wrap_input() {
        let v = shaped(ClientApi::Responses, json!({"model":"m","input":"hi"}));
        assert_eq!(
            v["input"],
            json!([
                {"role":"system","content":"Be safe."},
                {"role":"user","content":"hi"},
                {"role":"user","content":"Answer briefly."}
            ])
        );
        assert_eq!(
            (v["temperature"].clone(), v["max_output_tokens"].clone()),
            (json!(0.2), json!(256)),
            "the Responses API names the token limit max_output_tokens"
        );
        assert!(v.get("max_tokens").is_none(), "{v}");
        assert!(
            policy()
                .apply(ClientApi::Responses, br#"{"input":3}"#)
                .is_err()
        );
    }

    #[test]
    fn responses_token_limits_use_their_own_name() {
        let mut p = RequestPolicy::default();
        p.defaults
            .insert("max_completion_tokens".into(), json!(100));
        let apply = |p: &RequestPolicy, body: Value| -> Value {
            let out = p.apply(ClientApi::Responses, body.to_string().as_bytes());
            serde_json::from_slice(&out.unwrap().unwrap()).unwrap()
        };
        let v = apply(&p, json!({"input": "hi"}));
        assert_eq!(v, json!({"input": "hi", "max_output_tokens": 100}));
        let v = apply(&p, json!({"input": "hi", "max_output_tokens": 5}));
        assert_eq!(
            v["max_output_tokens"], 5,
            "a default keeps the client's limit"
        );
        // A policy that names max_output_tokens itself: that value wins.
        p.overrides.insert("max_tokens".into(), json!(7));
        p.overrides.insert("max_output_tokens".into(), json!(9));
        let v = apply(&p, json!({"input": "hi", "max_output_tokens": 5}));
        assert_eq!(v, json!({"input": "hi", "max_output_tokens": 9}));
        // Chat keeps the names as they are.
        let out = p
            .apply(ClientApi::ChatCompletions, br#"{"messages":[]}"#)
            .unwrap()
            .unwrap();
        let v: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(
            (v["max_tokens"].clone(), v["max_completion_tokens"].clone()),
            (json!(7), json!(100))
        );
    }

    #[test]
    fn other_apis_and_empty_policies_are_untouched() {
        assert_eq!(policy().apply(ClientApi::Embeddings, b"{}").unwrap(), None);
        assert_eq!(
            RequestPolicy::default()
                .apply(ClientApi::ChatCompletions, b"{}")
                .unwrap(),
            None
        );
        assert!(policy().apply(ClientApi::ChatCompletions, b"[]").is_err());
        assert!(
            policy()
                .apply(ClientApi::ChatCompletions, br#"{"messages":3}"#)
                .is_err()
        );
    }
}
