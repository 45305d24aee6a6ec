//! Response prompt guards. A JSON answer is checked whole; a stream is checked as it goes:
//! the text of each SSE event (OpenAI `choices[].delta.content`, Anthropic `delta.text`,
//! Gemini `parts[].text`, Responses `delta`) runs through a [`StreamMasker`], so a match split
//! across events is still masked. Text the masker holds back is released into later events,
//! or into a copy of the last text event before the first event without text (the end of
//! the message).

use std::sync::Arc;

use agora_policies::guard::{Guard, StreamMasker};

/// What a guard did to a response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Clean,
    Masked,
    Rejected,
}

/// Checks a whole JSON answer. The status line is already out, so a rejection keeps the
/// answer's shape: every text is replaced by the guard's message and the finish reason says
/// the content was filtered (`content_filter`, Anthropic `refusal`, Gemini `SAFETY`).
pub fn check_json(guard: &Guard, body: Vec<u8>) -> (Vec<u8>, Outcome) {
    let Ok(mut v) = serde_json::from_slice::<serde_json::Value>(&body) else {
        return (body, Outcome::Clean);
    };
    match guard.apply_json(&mut v) {
        Ok(false) => (body, Outcome::Clean),
        Ok(true) => (serde_json::to_vec(&v).unwrap_or(body), Outcome::Masked),
        Err(message) => {
            redact(&mut v, &message);
            (
                serde_json::to_vec(&v).unwrap_or_default(),
                Outcome::Rejected,
            )
        }
    }
}

fn redact(v: &mut serde_json::Value, message: &str) {
    use serde_json::Value as V;
    match v {
        V::Object(o) => {
            for (k, child) in o.iter_mut() {
                match (k.as_str(), &child) {
                    ("content" | "text", V::String(_)) => *child = V::String(message.into()),
                    ("finish_reason", V::String(_)) => *child = V::String("content_filter".into()),
                    ("stop_reason", V::String(_)) => *child = V::String("refusal".into()),
                    ("finishReason", V::String(_)) => *child = V::String("SAFETY".into()),
                    _ => redact(child, message),
                }
            }
        }
        V::Array(a) => a.iter_mut().for_each(|c| redact(c, message)),
        _ => {}
    }
}

/// The text field of one stream event, as a path of keys and indexes.
fn text_path(v: &serde_json::Value) -> Option<Vec<PathPart>> {
    use serde_json::Value as V;
    let candidates: [&[PathPart]; 4] = [
        &[
            PathPart::Key("choices"),
            PathPart::Index(0),
            PathPart::Key("delta"),
            PathPart::Key("content"),
        ],
        &[PathPart::Key("delta"), PathPart::Key("text")],
        &[
            PathPart::Key("candidates"),
            PathPart::Index(0),
            PathPart::Key("content"),
            PathPart::Key("parts"),
            PathPart::Index(0),
            PathPart::Key("text"),
        ],
        &[PathPart::Key("delta")],
    ];
    candidates
        .iter()
        .find(|p| matches!(get(v, p), Some(V::String(_))))
        .map(|p| p.to_vec())
}

#[derive(Debug, Clone, Copy)]
enum PathPart {
    Key(&'static str),
    Index(usize),
}

fn get<'a>(v: &'a serde_json::Value, path: &[PathPart]) -> Option<&'a serde_json::Value> {
    path.iter().try_fold(v, |v, p| match p {
        PathPart::Key(k) => v.get(*k),
        PathPart::Index(i) => v.get(*i),
    })
}

fn set(v: &mut serde_json::Value, path: &[PathPart], text: String) {
    let mut cur = v;
    for p in path {
        let next = match p {
            PathPart::Key(k) => cur.get_mut(*k),
            PathPart::Index(i) => cur.get_mut(*i),
        };
        let Some(n) = next else { return };
        cur = n;
    }
    *cur = serde_json::Value::String(text);
}

/// The guard of one streamed response.
pub struct SseGuard {
    guard: Arc<Guard>,
    api: agora_providers::ClientApi,
    masker: StreamMasker,
    partial: Vec<u8>,
    /// The last text event (its `event:` line, JSON and text path), to carry held-back text.
    template: Option<(Option<String>, serde_json::Value, Vec<PathPart>)>,
    held: bool,
    pub outcome: Outcome,
}

impl SseGuard {
    pub fn new(guard: Arc<Guard>, api: agora_providers::ClientApi) -> SseGuard {
        SseGuard {
            guard,
            api,
            masker: StreamMasker::default(),
            partial: Vec::new(),
            template: None,
            held: false,
            outcome: Outcome::Clean,
        }
    }

    /// Filters translated SSE output; `end` flushes what is held.
    pub fn filter(&mut self, out: Vec<u8>, end: bool) -> Vec<u8> {
        if self.outcome == Outcome::Rejected {
            return Vec::new();
        }
        self.partial.extend_from_slice(&out);
        let mut result = Vec::new();
        while let Some(at) = find(&self.partial, b"\n\n") {
            let event: Vec<u8> = self.partial.drain(..at + 2).collect();
            if !self.event(&event, &mut result) {
                return result;
            }
        }
        if end {
            let rest = std::mem::take(&mut self.partial);
            if !self.flush(&mut result) {
                return result;
            }
            result.extend_from_slice(&rest);
        }
        result
    }

    /// Handles one complete event; false when the stream was cut by a rejection.
    fn event(&mut self, raw: &[u8], out: &mut Vec<u8>) -> bool {
        let text = String::from_utf8_lossy(raw);
        let mut name = None;
        let mut data = String::new();
        for line in text.lines() {
            if let Some(n) = line.strip_prefix("event:") {
                name = Some(n.trim().to_string());
            } else if let Some(d) = line.strip_prefix("data:") {
                data.push_str(d.trim_start());
            }
        }
        let parsed = serde_json::from_str::<serde_json::Value>(&data).ok();
        let Some((mut v, path)) = parsed.and_then(|v| text_path(&v).map(|p| (v, p))) else {
            // Not a text event: release held text first (the message is ending).
            if !self.flush(out) {
                return false;
            }
            out.extend_from_slice(raw);
            return true;
        };
        let chunk = get(&v, &path)
            .and_then(|t| t.as_str())
            .unwrap_or("")
            .to_string();
        match self.masker.push(&self.guard, &chunk) {
            Ok(released) => {
                if released != chunk {
                    self.outcome = Outcome::Masked;
                }
                self.held = released.len() < chunk.len() || self.held;
                set(&mut v, &path, released);
                write_event(out, name.as_deref(), &v);
                self.template = Some((name, v, path));
                true
            }
            Err(message) => self.reject(out, &message),
        }
    }

    /// Emits held-back text in a copy of the last text event.
    fn flush(&mut self, out: &mut Vec<u8>) -> bool {
        match self.masker.finish(&self.guard) {
            Ok(rest) if rest.is_empty() => true,
            Ok(rest) => {
                if let Some((name, v, path)) = &self.template {
                    let mut v = v.clone();
                    set(&mut v, path, rest);
                    write_event(out, name.as_deref(), &v);
                }
                true
            }
            Err(message) => self.reject(out, &message),
        }
    }

    fn reject(&mut self, out: &mut Vec<u8>, message: &str) -> bool {
        self.outcome = Outcome::Rejected;
        let err = agora_providers::gateway_error(self.api, 403, message);
        out.extend_from_slice(b"event: error\ndata: ");
        out.extend_from_slice(&err);
        out.extend_from_slice(b"\n\n");
        false
    }
}

fn write_event(out: &mut Vec<u8>, name: Option<&str>, v: &serde_json::Value) {
    if let Some(n) = name {
        out.extend_from_slice(b"event: ");
        out.extend_from_slice(n.as_bytes());
        out.push(b'\n');
    }
    out.extend_from_slice(b"data: ");
    out.extend_from_slice(v.to_string().as_bytes());
    out.extend_from_slice(b"\n\n");
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests;
