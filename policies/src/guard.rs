//! Prompt guards: built-in detectors (email, phone number, credit card with a Luhn check,
//! SSN, IPv4 address) and custom regexes, each rejecting the text or masking what it found.
//! [`Guard::apply_json`] checks the text fields of an LLM request or response body;
//! [`StreamMasker`] masks a streamed response whose matches may span chunk boundaries.

use std::borrow::Cow;

use agora_proto::resource as pb;
use regex::Regex;

use crate::spec::Builtin;

/// The proto name of a built-in detector.
pub fn builtin_name(b: Builtin) -> &'static str {
    match b {
        Builtin::Email => "EMAIL",
        Builtin::PhoneNumber => "PHONE_NUMBER",
        Builtin::CreditCard => "CREDIT_CARD",
        Builtin::Ssn => "SSN",
        Builtin::IpAddress => "IP_ADDRESS",
    }
}

fn builtin(name: &str) -> Option<Detector> {
    let (re, validate): (&str, fn(&str) -> bool) = match name {
        "EMAIL" => (
            r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}",
            |_| true,
        ),
        "PHONE_NUMBER" => (
            r"(?:\+\d{1,3}[ .-]?)?(?:\(\d{3}\)|\b\d{3})[ .-]?\d{3}[ .-]?\d{4}\b",
            |_| true,
        ),
        "CREDIT_CARD" => (r"\b\d(?:[ -]?\d){12,18}\b", luhn),
        "SSN" => (r"\b\d{3}-\d{2}-\d{4}\b", valid_ssn),
        "IP_ADDRESS" => (
            r"\b(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\b",
            |_| true,
        ),
        _ => return None,
    };
    Some(Detector {
        placeholder: format!("<{name}>"),
        regex: Regex::new(re).ok()?,
        validate,
    })
}

/// The Luhn checksum of the digits in `s`.
pub fn luhn(s: &str) -> bool {
    let digits: Vec<u32> = s.chars().filter_map(|c| c.to_digit(10)).collect();
    if digits.len() < 13 {
        return false;
    }
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, d)| {
            if i % 2 == 1 {
                let x = d * 2;
                if x > 9 { x - 9 } else { x }
            } else {
                *d
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

fn valid_ssn(s: &str) -> bool {
    let area = &s[..3];
    area != "000"
        && area != "666"
        && !area.starts_with('9')
        && &s[4..6] != "00"
        && &s[7..] != "0000"
}

#[derive(Debug)]
struct Detector {
    placeholder: String,
    regex: Regex,
    validate: fn(&str) -> bool,
}

#[derive(Debug)]
struct Rule {
    mask: bool,
    detectors: Vec<Detector>,
    message: String,
}

/// The guards of one direction (request or response).
#[derive(Debug, Default)]
pub struct Guard {
    rules: Vec<Rule>,
    /// Webhook guards, called by the proxy.
    pub webhooks: Vec<pb::GuardWebhook>,
}

/// One finding: a byte range of the text and what to do with it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Hit {
    start: usize,
    end: usize,
    rule: usize,
    detector: usize,
}

/// Longest text a detector is expected to match; a streamed response holds back this much.
const HOLD: usize = 64;

impl Guard {
    pub fn compile(rules: &[pb::GuardRule]) -> Result<Guard, String> {
        let mut g = Guard::default();
        for r in rules {
            if let Some(w) = &r.webhook {
                g.webhooks.push(w.clone());
                continue;
            }
            let mut detectors = Vec::new();
            for b in &r.builtins {
                detectors.push(builtin(b).ok_or_else(|| format!("unknown built-in detector {b}"))?);
            }
            for re in &r.regexes {
                detectors.push(Detector {
                    placeholder: "<MASKED>".into(),
                    regex: Regex::new(re).map_err(|e| format!("regex {re:?}: {e}"))?,
                    validate: |_| true,
                });
            }
            g.rules.push(Rule {
                mask: r.action == pb::guard_rule::Action::Mask as i32,
                detectors,
                message: if r.reject_message.is_empty() {
                    "the request was rejected by a content policy".into()
                } else {
                    r.reject_message.clone()
                },
            });
        }
        Ok(g)
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty() && self.webhooks.is_empty()
    }

    /// Non-overlapping findings, in text order.
    fn find(&self, text: &str) -> Vec<Hit> {
        let mut hits = Vec::new();
        for (ri, r) in self.rules.iter().enumerate() {
            for (di, d) in r.detectors.iter().enumerate() {
                for m in d.regex.find_iter(text) {
                    if (d.validate)(m.as_str()) {
                        hits.push(Hit {
                            start: m.start(),
                            end: m.end(),
                            rule: ri,
                            detector: di,
                        });
                    }
                }
            }
        }
        hits.sort_by_key(|h| (h.start, std::cmp::Reverse(h.end)));
        let mut out: Vec<Hit> = Vec::with_capacity(hits.len());
        for h in hits {
            if out.last().is_none_or(|l| h.start >= l.end) {
                out.push(h);
            }
        }
        out
    }

    /// Writes `text[from..to]` with the findings in that range masked; `Err` is the message
    /// of a rejecting rule that matched.
    fn render(&self, text: &str, hits: &[Hit], from: usize, to: usize) -> Result<String, String> {
        let mut out = String::with_capacity(to - from);
        let mut at = from;
        for h in hits.iter().filter(|h| h.start >= from && h.end <= to) {
            let rule = &self.rules[h.rule];
            if !rule.mask {
                return Err(rule.message.clone());
            }
            out.push_str(&text[at..h.start]);
            out.push_str(&rule.detectors[h.detector].placeholder);
            at = h.end;
        }
        out.push_str(&text[at..to]);
        Ok(out)
    }

    /// Checks one text: unchanged, masked, or rejected with the rule's message.
    pub fn scan<'t>(&self, text: &'t str) -> Result<Cow<'t, str>, String> {
        let hits = self.find(text);
        if hits.is_empty() {
            return Ok(Cow::Borrowed(text));
        }
        self.render(text, &hits, 0, text.len()).map(Cow::Owned)
    }

    /// Checks every text field (`content`, `text`, `system`, `input`, `prompt`,
    /// `instructions`) of an LLM body in any of the supported formats, masking in place.
    /// `Ok(true)` when something was masked.
    pub fn apply_json(&self, v: &mut serde_json::Value) -> Result<bool, String> {
        const TEXT_KEYS: [&str; 6] = [
            "content",
            "text",
            "system",
            "input",
            "prompt",
            "instructions",
        ];
        let mut changed = false;
        match v {
            serde_json::Value::Object(o) => {
                for (k, child) in o.iter_mut() {
                    if let serde_json::Value::String(s) = child {
                        if TEXT_KEYS.contains(&k.as_str())
                            && let Cow::Owned(masked) = self.scan(s)?
                        {
                            *s = masked;
                            changed = true;
                        }
                    } else {
                        changed |= self.apply_json(child)?;
                    }
                }
            }
            serde_json::Value::Array(a) => {
                for child in a {
                    changed |= self.apply_json(child)?;
                }
            }
            _ => {}
        }
        Ok(changed)
    }
}

/// Masks a text that arrives in pieces: what could still be the start of a match is held
/// back until the next piece (or [`StreamMasker::finish`]).
#[derive(Debug, Default)]
pub struct StreamMasker {
    held: String,
}

impl StreamMasker {
    /// The text that can be released after `chunk`; `Err` when a rejecting rule matched.
    pub fn push(&mut self, guard: &Guard, chunk: &str) -> Result<String, String> {
        self.held.push_str(chunk);
        let text = std::mem::take(&mut self.held);
        if text.len() <= HOLD {
            self.held = text;
            return Ok(String::new());
        }
        let mut cut = text.len() - HOLD;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        let hits = guard.find(&text);
        if let Some(h) = hits.iter().find(|h| h.start < cut && h.end > cut) {
            cut = h.start;
        }
        let out = guard.render(&text, &hits, 0, cut)?;
        self.held = text[cut..].to_string();
        Ok(out)
    }

    /// Everything still held, checked.
    pub fn finish(&mut self, guard: &Guard) -> Result<String, String> {
        let text = std::mem::take(&mut self.held);
        guard.scan(&text).map(Cow::into_owned)
    }
}

#[cfg(test)]
mod tests;
