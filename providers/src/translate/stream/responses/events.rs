//! Chat completion chunks → Responses API stream events.
//!
//! The first chunk opens the response (`response.created`, `response.in_progress`). One
//! output item is open at a time, in the order the chunks give them: reasoning text opens a
//! reasoning item (its summary streamed with `response.reasoning_summary_*` events), text
//! opens an assistant message (one `output_text` content part, `response.output_text.*`),
//! each new tool call opens a function call item
//! (`response.function_call_arguments.*`). Output of another kind, or the finish reason,
//! closes the open item (`…done` events, `response.output_item.done`). `[DONE]` completes
//! the response: `response.completed` (or `response.incomplete` after a `length` or
//! `content_filter` finish), carrying every item and the usage. An error chunk, or a stream
//! that ends before its finish reason, fails it: `response.failed` with the error, the open
//! item left `incomplete`. Every event has the next `sequence_number`, from 0.
//!
//! Argument pieces for a tool call that is no longer the open item (interleaved calls, which
//! the chat translators never write) are dropped and reported. Chat `refusal` deltas are not
//! read: the chat translators of the providers served here (Anthropic, Gemini, Bedrock)
//! never write them (an OpenAI-format provider's Responses stream is passed through).

use serde::Serialize;
use serde_json::{Value, json};

use super::super::via_chat::{ChatSink, Failure};
use crate::openai::{ChunkChoice, Delta, ToolCallDelta};
use crate::responses::{OutputContent, OutputItem, Response, ResponseError, ResponseUsage};
use crate::sse;
use crate::translate::responses::{Ids, finished, reasoning_item, summary};
use crate::{Error, Usage};

/// The Responses stream being written and what has been sent on it.
#[derive(Default)]
pub(super) struct ResponsesOut {
    /// The next event's `sequence_number`.
    sequence: u64,
    /// Set once the response is open.
    ids: Option<Ids>,
    model: String,
    /// Closed items, in output order (the open item's output index is their count).
    output: Vec<OutputItem>,
    open: Option<Open>,
    /// Tool calls opened so far (ids for calls that come without one).
    calls: u32,
    finish_reason: Option<String>,
}

/// The output item being streamed.
enum Open {
    Reasoning {
        id: String,
        text: String,
    },
    Message {
        id: String,
        /// The text of its one content part.
        text: String,
    },
    Call {
        id: String,
        call_id: String,
        name: String,
        arguments: String,
        /// The chat tool call index.
        index: u32,
    },
}

/// One event: its type, its fields, its sequence number.
#[derive(Serialize)]
struct Event<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    #[serde(flatten)]
    fields: Value,
    sequence_number: u64,
}

/// Appends an `error` event (the stream's own error, no response attached).
pub(super) fn error_event(out: &mut Vec<u8>, sequence: u64, message: &str) -> Result<(), Error> {
    let fields = json!({"code": "server_error", "message": message, "param": null});
    let ev = Event {
        kind: "error",
        fields,
        sequence_number: sequence,
    };
    sse::write_json_event(out, Some("error"), &ev)
}

impl ChatSink for ResponsesOut {
    fn open(&mut self, id: &str, model: &str, out: &mut Vec<u8>) -> Result<(), Error> {
        self.start(id, model, out)
    }

    fn choices(&mut self, choices: Vec<ChunkChoice>, out: &mut Vec<u8>) -> Result<(), Error> {
        let mut result = Ok(());
        for choice in choices.into_iter().filter(|c| c.index == 0) {
            if let Err(e) = self.delta(choice.delta, out) {
                result = result.and(Err(e));
            }
            if let Some(reason) = choice.finish_reason {
                self.close_open(out)?;
                self.finish_reason = Some(reason);
            }
        }
        result
    }

    fn has_finish_reason(&self) -> bool {
        self.finish_reason.is_some()
    }

    /// Completes the response: `response.completed` or `response.incomplete`.
    fn complete(&mut self, usage: &Usage, out: &mut Vec<u8>) -> Result<(), Error> {
        self.start("", "", out)?;
        self.close_open(out)?;
        let r = finished(
            self.ids()?.response(),
            self.model.clone(),
            // Closed: nothing reads the items after this.
            std::mem::take(&mut self.output),
            self.finish_reason.as_deref(),
            usage,
        );
        let kind = if r.status == "incomplete" {
            "response.incomplete"
        } else {
            "response.completed"
        };
        self.emit(out, kind, json!({ "response": r }))
    }

    /// Fails the response: `response.failed` with the error, the open item `incomplete`.
    fn fail(
        &mut self,
        failure: Failure<'_>,
        usage: &Usage,
        out: &mut Vec<u8>,
    ) -> Result<(), Error> {
        let (kind, message) = match failure {
            Failure::Upstream { kind, message } => (kind, message),
            Failure::Truncated => {
                self.start("", "", out)?;
                (None, super::TRUNCATED_MESSAGE)
            }
        };
        if let Some(open) = self.open.take() {
            self.output.push(item(open, "incomplete"));
        }
        let mut r = self.snapshot("failed")?;
        r.output = std::mem::take(&mut self.output);
        r.usage = Some(ResponseUsage::from_usage(usage));
        r.error = Some(ResponseError {
            code: match kind {
                Some("rate_limit_error") => "rate_limit_exceeded",
                _ => "server_error",
            }
            .into(),
            message: message.to_string(),
        });
        self.emit(out, "response.failed", json!({ "response": r }))
    }
}

impl ResponsesOut {
    fn emit(&mut self, out: &mut Vec<u8>, kind: &str, fields: Value) -> Result<(), Error> {
        let ev = Event {
            kind,
            fields,
            sequence_number: self.sequence,
        };
        self.sequence += 1;
        sse::write_json_event(out, Some(kind), &ev)
    }

    fn ids(&self) -> Result<&Ids, Error> {
        self.ids
            .as_ref()
            .ok_or_else(|| Error::InvalidResponse("response not started".into()))
    }

    /// The response snapshot with `status` (output and usage left to the caller).
    fn snapshot(&self, status: &'static str) -> Result<Response, Error> {
        Ok(Response::new(
            self.ids()?.response(),
            self.model.clone(),
            status,
            Vec::new(),
        ))
    }

    /// Opens the response on the first chunk (`response.created`, `response.in_progress`);
    /// later chunks may only fill in the model.
    fn start(&mut self, chat_id: &str, model: &str, out: &mut Vec<u8>) -> Result<(), Error> {
        if self.model.is_empty() {
            self.model = model.to_string();
        }
        if self.ids.is_some() {
            return Ok(());
        }
        self.ids = Some(Ids::new(chat_id));
        let response = self.snapshot("in_progress")?;
        self.emit(out, "response.created", json!({ "response": response }))?;
        self.emit(out, "response.in_progress", json!({ "response": response }))
    }

    /// Streams one chat delta.
    fn delta(&mut self, delta: Delta, out: &mut Vec<u8>) -> Result<(), Error> {
        if let Some(r) = delta.reasoning_text().filter(|r| !r.is_empty()) {
            let r = r.to_string();
            self.reasoning(r, out)?;
        }
        if let Some(t) = delta.content.filter(|t| !t.is_empty()) {
            self.text(t, out)?;
        }
        let mut result = Ok(());
        for call in delta.tool_calls.unwrap_or_default() {
            if let Err(e) = self.tool_call(call, out) {
                result = result.and(Err(e));
            }
        }
        result
    }

    fn reasoning(&mut self, delta: String, out: &mut Vec<u8>) -> Result<(), Error> {
        if !matches!(self.open, Some(Open::Reasoning { .. })) {
            self.close_open(out)?;
            let index = self.output.len();
            let id = self.ids()?.item("rs", index);
            let item = OutputItem::Reasoning {
                id: id.clone(),
                summary: Vec::new(),
            };
            self.emit(
                out,
                "response.output_item.added",
                json!({"output_index": index, "item": item}),
            )?;
            self.emit(
                out,
                "response.reasoning_summary_part.added",
                json!({"item_id": id, "output_index": index, "summary_index": 0,
                       "part": summary(String::new())}),
            )?;
            self.open = Some(Open::Reasoning {
                id,
                text: String::new(),
            });
        }
        let index = self.output.len();
        let Some(Open::Reasoning { id, text }) = &mut self.open else {
            return Ok(());
        };
        text.push_str(&delta);
        let fields = json!({"item_id": id, "output_index": index, "summary_index": 0,
                            "delta": delta});
        self.emit(out, "response.reasoning_summary_text.delta", fields)
    }

    /// Streams a text `delta` into the open message (opening it, with its content part, if
    /// needed).
    fn text(&mut self, delta: String, out: &mut Vec<u8>) -> Result<(), Error> {
        if !matches!(self.open, Some(Open::Message { .. })) {
            self.close_open(out)?;
            let index = self.output.len();
            let id = self.ids()?.item("msg", index);
            let item = OutputItem::Message {
                id: id.clone(),
                status: "in_progress",
                role: "assistant",
                content: Vec::new(),
            };
            self.emit(
                out,
                "response.output_item.added",
                json!({"output_index": index, "item": item}),
            )?;
            let fields = json!({"item_id": id, "output_index": index, "content_index": 0,
                                "part": OutputContent::text(String::new())});
            self.emit(out, "response.content_part.added", fields)?;
            self.open = Some(Open::Message {
                id,
                text: String::new(),
            });
        }
        let index = self.output.len();
        let Some(Open::Message { id, text }) = &mut self.open else {
            return Ok(());
        };
        text.push_str(&delta);
        let fields = json!({"item_id": id, "output_index": index, "content_index": 0,
                            "delta": delta, "logprobs": []});
        self.emit(out, "response.output_text.delta", fields)
    }

    fn tool_call(&mut self, call: ToolCallDelta, out: &mut Vec<u8>) -> Result<(), Error> {
        let current = match &self.open {
            Some(Open::Call { index, .. }) => Some(*index),
            _ => None,
        };
        let index = call.index.unwrap_or(self.calls);
        let (name, arguments) = call
            .function
            .map(|f| (f.name, f.arguments))
            .unwrap_or_default();
        let new = call.index.is_none() || current != Some(index);
        if new {
            if call.id.is_none() && name.is_none() {
                return Err(Error::InvalidResponse(format!(
                    "arguments for tool call {index}, which is not the one being streamed"
                )));
            }
            self.close_open(out)?;
            let output_index = self.output.len();
            let id = self.ids()?.item("fc", output_index);
            let call_id = call.id.unwrap_or_else(|| format!("call_{}", self.calls));
            self.calls += 1;
            let name = name.unwrap_or_default();
            let item = OutputItem::FunctionCall {
                id: id.clone(),
                call_id: call_id.clone(),
                name: name.clone(),
                arguments: String::new(),
                status: "in_progress",
            };
            self.emit(
                out,
                "response.output_item.added",
                json!({"output_index": output_index, "item": item}),
            )?;
            self.open = Some(Open::Call {
                id,
                call_id,
                name,
                arguments: String::new(),
                index,
            });
        }
        let Some(delta) = arguments.filter(|a| !a.is_empty()) else {
            return Ok(());
        };
        let output_index = self.output.len();
        let Some(Open::Call { id, arguments, .. }) = &mut self.open else {
            return Ok(());
        };
        arguments.push_str(&delta);
        let fields = json!({"item_id": id, "output_index": output_index, "delta": delta});
        self.emit(out, "response.function_call_arguments.delta", fields)
    }

    /// Closes the open item, if any: its `…done` events, then `response.output_item.done`.
    fn close_open(&mut self, out: &mut Vec<u8>) -> Result<(), Error> {
        let Some(open) = self.open.take() else {
            return Ok(());
        };
        let index = self.output.len();
        let open = match open {
            Open::Reasoning { id, text } => {
                let at = json!({"item_id": id, "output_index": index, "summary_index": 0});
                let mut fields = json!({ "text": text });
                merge(&mut fields, &at);
                self.emit(out, "response.reasoning_summary_text.done", fields)?;
                let mut fields = json!({ "part": summary(text.clone()) });
                merge(&mut fields, &at);
                self.emit(out, "response.reasoning_summary_part.done", fields)?;
                Open::Reasoning { id, text }
            }
            Open::Message { id, text } => {
                let at = json!({"item_id": id, "output_index": index, "content_index": 0});
                let mut fields = json!({"text": text, "logprobs": []});
                merge(&mut fields, &at);
                self.emit(out, "response.output_text.done", fields)?;
                let mut fields = json!({ "part": OutputContent::text(text.clone()) });
                merge(&mut fields, &at);
                self.emit(out, "response.content_part.done", fields)?;
                Open::Message { id, text }
            }
            Open::Call {
                id,
                call_id,
                name,
                arguments,
                index: call_index,
            } => {
                let fields = json!({"item_id": id, "output_index": index, "name": name,
                                    "arguments": arguments});
                self.emit(out, "response.function_call_arguments.done", fields)?;
                Open::Call {
                    id,
                    call_id,
                    name,
                    arguments,
                    index: call_index,
                }
            }
        };
        let item = item(open, "completed");
        let fields = json!({"output_index": index, "item": item});
        self.emit(out, "response.output_item.done", fields)?;
        self.output.push(item);
        Ok(())
    }
}

/// The output item for an open item (a message's open part included unless empty).
fn item(open: Open, status: &'static str) -> OutputItem {
    match open {
        Open::Reasoning { id, text } => reasoning_item(id, text),
        Open::Message { id, text } => OutputItem::Message {
            id,
            status,
            role: "assistant",
            content: if text.is_empty() {
                Vec::new()
            } else {
                vec![OutputContent::text(text)]
            },
        },
        Open::Call {
            id,
            call_id,
            name,
            arguments,
            ..
        } => OutputItem::FunctionCall {
            id,
            call_id,
            name,
            arguments,
            status,
        },
    }
}

/// Adds the fields of object `from` to object `to`.
fn merge(to: &mut Value, from: &Value) {
    if let (Some(to), Some(from)) = (to.as_object_mut(), from.as_object()) {
        for (k, v) in from {
            to.insert(k.clone(), v.clone());
        }
    }
}
