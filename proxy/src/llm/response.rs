//! The response side of an LLM call: same-format bodies pass through untouched (a copy is
//! kept only to read usage), translated JSON is buffered and converted at the end, SSE is
//! translated event by event as it arrives, and errors reach the client in its own format.

use std::sync::Arc;
use std::time::Instant;

use agora_policies::guard::Guard;
use agora_providers::{ClientApi, StreamTranslator, Usage, WireFormat};
use bytes::Bytes;

use super::guard::{Outcome, SseGuard, check_json};

/// How the response body is handled.
#[derive(Default)]
enum Mode {
    /// Not decided yet (no response header seen).
    #[default]
    Pending,
    /// Same format, not streamed: forward as is, keep a copy to read usage at the end.
    Passthrough,
    /// Different format, not streamed: buffer, translate at the end.
    Translate,
    /// Streamed: every chunk through the translator.
    Stream(Box<dyn StreamTranslator>),
    /// An upstream error in another format: buffer, translate at the end.
    Error(u16),
}

/// Response state of one attempt.
#[derive(Default)]
pub struct ResponseState {
    api: Option<ClientApi>,
    format: Option<WireFormat>,
    hide_usage: bool,
    mode: Mode,
    buf: Vec<u8>,
    pub usage: Usage,
    pub first_token: Option<Instant>,
    pub status: u16,
    guard: Option<Arc<Guard>>,
    sse_guard: Option<SseGuard>,
    /// What the response guard did.
    pub guard_outcome: Option<Outcome>,
}

impl ResponseState {
    pub fn new(
        api: ClientApi,
        format: WireFormat,
        hide_usage: bool,
        guard: Option<Arc<Guard>>,
    ) -> Self {
        Self {
            api: Some(api),
            format: Some(format),
            hide_usage,
            guard: guard.filter(|g| !g.is_empty()),
            ..Default::default()
        }
    }

    /// Decides the mode from the upstream status and content type. Returns whether the body
    /// changes (the caller then drops `Content-Length`).
    pub fn on_header(&mut self, status: u16, content_type: Option<&str>) -> bool {
        let (Some(api), Some(format)) = (self.api, self.format) else {
            return false;
        };
        self.status = status;
        // Passthrough answers are forwarded as they are, whatever the provider's format.
        let same = api.format() == format || api == ClientApi::Passthrough;
        // SSE, or Bedrock's binary event stream.
        let sse = content_type.is_some_and(|c| {
            c.starts_with("text/event-stream")
                || c.starts_with("application/vnd.amazon.eventstream")
        });
        self.mode = if status >= 400 {
            if same {
                Mode::Passthrough
            } else {
                Mode::Error(status)
            }
        } else if sse && api != ClientApi::Passthrough {
            self.sse_guard = self.guard.clone().map(|g| SseGuard::new(g, api));
            Mode::Stream(agora_providers::stream_translator(
                api,
                format,
                self.hide_usage,
            ))
        } else if same && (self.guard.is_none() || api == ClientApi::Passthrough) {
            Mode::Passthrough
        } else {
            Mode::Translate
        };
        match &self.mode {
            Mode::Passthrough => false,
            // A same-format stream is forwarded as is unless the usage chunk is hidden, but
            // event boundaries may move, so its length is never kept.
            _ => true,
        }
    }

    fn mode_is_error(&self) -> bool {
        matches!(self.mode, Mode::Error(_))
    }

    /// The content type the client gets, when it changes.
    pub fn content_type(&self) -> Option<&'static str> {
        match &self.mode {
            Mode::Stream(_) => Some("text/event-stream"),
            Mode::Translate | Mode::Error(_) => Some("application/json"),
            _ => None,
        }
    }

    /// Filters one body chunk in place. Errors in translation end the response with what
    /// has been produced so far (the client sees a truncated stream, never a panic).
    pub fn on_body(&mut self, body: &mut Option<Bytes>, end_of_stream: bool) {
        let Some(api) = self.api else { return };
        match &mut self.mode {
            Mode::Pending => {}
            Mode::Passthrough => {
                if let Some(b) = body.as_ref() {
                    self.buf.extend_from_slice(b);
                }
                if end_of_stream && self.status < 400 {
                    // Usage only; the bytes already went out untouched.
                    if let Ok((_, usage)) =
                        agora_providers::translate_response(api, api.format(), &self.buf)
                    {
                        self.usage = usage;
                    }
                    self.buf = Vec::new();
                }
            }
            Mode::Stream(t) => {
                let mut out = Vec::with_capacity(body.as_ref().map_or(0, |b| b.len() + 256));
                if let Some(b) = body.take()
                    && let Err(e) = t.push(&b, &mut out)
                {
                    tracing::warn!(error = %e, "stream translation failed");
                }
                if end_of_stream && let Err(e) = t.finish(&mut out) {
                    tracing::warn!(error = %e, "stream translation failed at the end");
                }
                if self.first_token.is_none() && t.output_started() {
                    self.first_token = Some(Instant::now());
                }
                if *t.usage() != self.usage {
                    self.usage = t.usage().clone();
                }
                if let Some(g) = self.sse_guard.as_mut() {
                    out = g.filter(out, end_of_stream);
                    if g.outcome != Outcome::Clean {
                        self.guard_outcome = Some(g.outcome);
                    }
                }
                *body = Some(Bytes::from(out));
            }
            Mode::Translate | Mode::Error(_) => {
                if let Some(b) = body.take() {
                    self.buf.extend_from_slice(&b);
                }
                if end_of_stream {
                    let format = self.format.unwrap_or(api.format());
                    let out = match self.mode {
                        Mode::Error(status) => {
                            agora_providers::translate_error(api, format, status, &self.buf)
                                .unwrap_or_else(|| std::mem::take(&mut self.buf))
                        }
                        _ => match agora_providers::translate_response(api, format, &self.buf) {
                            Ok((translated, usage)) => {
                                self.usage = usage;
                                translated.unwrap_or_else(|| std::mem::take(&mut self.buf))
                            }
                            Err(e) => agora_providers::gateway_error(api, 502, &e.to_string()),
                        },
                    };
                    let out = match (&self.guard, self.mode_is_error()) {
                        (Some(g), false) => {
                            let (out, outcome) = check_json(g, out);
                            if outcome != Outcome::Clean {
                                self.guard_outcome = Some(outcome);
                            }
                            out
                        }
                        _ => out,
                    };
                    *body = Some(Bytes::from(out));
                }
            }
        }
        if end_of_stream && self.first_token.is_none() && self.status < 400 {
            self.first_token = Some(Instant::now());
        }
    }
}
