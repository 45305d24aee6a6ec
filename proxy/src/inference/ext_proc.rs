//! The endpoint picker call: one `envoy.service.ext_proc.v3.ExternalProcessor/Process`
//! stream per request, as Envoy's ext_proc filter drives it for an InferencePool: the request
//! headers, then the whole body (in chunks, the last marked end of stream), then the send side
//! closes; the picker's answers are read until the body's answer is complete (or it answers
//! immediately, or ends the stream).
//!
//! What the answers carry: header mutations (the chosen endpoint usually among them, as
//! `x-gateway-destination-endpoint`), dynamic metadata (`envoy.lb` /
//! `x-gateway-destination-endpoint`), a replacement body (whole, or streamed in chunks in
//! full-duplex mode), or an immediate response for the client.

use std::time::Duration;

use agora_proto::ext_proc as pb;
use agora_proto::ext_proc::external_processor_client::ExternalProcessorClient;
use bytes::{Bytes, BytesMut};
use tonic::transport::Channel;

/// The header and metadata key of the chosen endpoint(s).
pub const DESTINATION: &str = "x-gateway-destination-endpoint";
/// The dynamic metadata namespace of the chosen endpoint(s).
pub const METADATA_NAMESPACE: &str = "envoy.lb";

/// Body chunk size sent to the picker (gRPC servers take 4 MiB messages by default).
const CHUNK: usize = 64 * 1024;

/// `ProcessingMode.BodySendMode.FULL_DUPLEX_STREAMED`: how the body is sent (what the
/// Inference Extension's pickers expect).
const FULL_DUPLEX_STREAMED: i32 = 4;

/// The request as the picker sees it.
pub struct PickRequest<'a> {
    pub method: &'a str,
    /// Path and query.
    pub path: &'a str,
    pub authority: &'a str,
    pub scheme: &'a str,
    pub headers: &'a http::HeaderMap,
    pub body: &'a Bytes,
    /// Largest replacement body the picker may send (the route's body limit).
    pub max_body: u64,
}

/// A header the picker sets.
#[derive(Clone, Debug, PartialEq)]
pub struct HeaderSet {
    pub name: http::HeaderName,
    pub value: http::HeaderValue,
    pub action: SetAction,
}

/// How a set header combines with one already present (Envoy's `append_action`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SetAction {
    Append,
    AddIfAbsent,
    Overwrite,
    OverwriteIfExists,
}

/// Changes the picker asks for on the upstream request.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Mutation {
    pub set: Vec<HeaderSet>,
    pub remove: Vec<http::HeaderName>,
    /// A replacement body.
    pub body: Option<Bytes>,
}

/// What the picker answered for a request it routes.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Picked {
    /// The raw destination value (`ip:port[,ip:port...]`), from the dynamic metadata or, if
    /// absent there, the header mutation.
    pub destination: Option<String>,
    pub mutation: Mutation,
}

/// A response the picker wants the client to get instead (no upstream request).
#[derive(Clone, Debug, PartialEq)]
pub struct Immediate {
    pub status: u16,
    pub headers: Vec<HeaderSet>,
    pub body: Bytes,
}

/// The picker's answer.
#[derive(Clone, Debug, PartialEq)]
pub enum Answer {
    Picked(Picked),
    Immediate(Immediate),
}

/// Calls the picker on `channel` about `req`, bounded by `timeout`. `Err` says why the picker
/// gave no usable answer (unreachable, an error status, timed out).
pub async fn call(
    channel: Channel,
    timeout: Duration,
    req: PickRequest<'_>,
) -> Result<Answer, String> {
    let messages = requests(&req);
    let empty = req.body.is_empty();
    let max_body = req.max_body;
    let exchange = async move {
        let mut client = ExternalProcessorClient::new(channel);
        let mut answers = client
            .process(tokio_stream::iter(messages))
            .await
            .map_err(status_text)?
            .into_inner();
        let mut acc = Accumulator::new(empty);
        acc.max_body = usize::try_from(max_body).unwrap_or(usize::MAX);
        while let Some(m) = answers.message().await.map_err(status_text)? {
            let done = acc.add(m);
            if let Some(e) = acc.broken.take() {
                return Err(e);
            }
            if let Some(done) = done {
                return Ok(done);
            }
        }
        if acc.streamed.is_some() {
            return Err("the picker's streamed body ended before its end_of_stream".into());
        }
        Ok(acc.finish())
    };
    tokio::time::timeout(timeout, exchange)
        .await
        .map_err(|_| format!("no answer within {timeout:?}"))?
}

fn status_text(s: tonic::Status) -> String {
    format!("{:?}: {}", s.code(), s.message())
}

/// The messages of one request: headers (pseudo-headers first), then the body in chunks.
pub fn requests(req: &PickRequest<'_>) -> Vec<pb::ProcessingRequest> {
    let pseudo = [
        (":method", req.method),
        (":path", req.path),
        (":authority", req.authority),
        (":scheme", req.scheme),
    ];
    let mut headers: Vec<pb::HeaderValue> = pseudo
        .iter()
        .map(|(k, v)| pb::HeaderValue {
            key: (*k).to_string(),
            value: String::new(),
            raw_value: Bytes::copy_from_slice(v.as_bytes()),
        })
        .collect();
    headers.extend(req.headers.iter().map(|(k, v)| pb::HeaderValue {
        key: k.as_str().to_string(),
        value: String::new(),
        raw_value: Bytes::copy_from_slice(v.as_bytes()),
    }));
    let empty = req.body.is_empty();
    let mut out = vec![pb::ProcessingRequest {
        request: Some(pb::processing_request::Request::RequestHeaders(
            pb::HttpHeaders {
                headers: Some(pb::HeaderMap { headers }),
                end_of_stream: empty,
            },
        )),
        protocol_config: Some(pb::ProtocolConfiguration {
            request_body_mode: FULL_DUPLEX_STREAMED,
            response_body_mode: 0,
            send_body_without_waiting_for_header_response: true,
        }),
        ..Default::default()
    }];
    let mut offset = 0;
    while offset < req.body.len() {
        let end = (offset + CHUNK).min(req.body.len());
        out.push(pb::ProcessingRequest {
            request: Some(pb::processing_request::Request::RequestBody(pb::HttpBody {
                body: req.body.slice(offset..end),
                end_of_stream: end == req.body.len(),
            })),
            ..Default::default()
        });
        offset = end;
    }
    out
}

/// Collects the picker's answers until the request's processing is complete.
#[derive(Default)]
pub struct Accumulator {
    picked: Picked,
    header_value: Option<String>,
    streamed: Option<BytesMut>,
    /// The request had no body: the headers' answer is the last one.
    headers_only: bool,
    /// Largest streamed replacement body accepted.
    pub max_body: usize,
    /// Why the picker's answer cannot be used (a replacement body over `max_body`).
    pub broken: Option<String>,
}

impl Accumulator {
    /// For a request with (`headers_only` false) or without a body.
    pub fn new(headers_only: bool) -> Self {
        Self {
            headers_only,
            max_body: usize::MAX,
            ..Default::default()
        }
    }

    /// Takes one answer; `Some` once nothing more is needed (an immediate response, or the
    /// body's answer complete).
    pub fn add(&mut self, m: pb::ProcessingResponse) -> Option<Answer> {
        use pb::processing_response::Response as R;
        if let Some(md) = &m.dynamic_metadata
            && let Some(d) = destination_metadata(md)
        {
            self.picked.destination = Some(d);
        }
        match m.response? {
            R::ImmediateResponse(i) => Some(Answer::Immediate(immediate(i))),
            R::RequestHeaders(h) => {
                if let Some(c) = h.response {
                    self.common(c);
                }
                self.headers_only.then(|| self.finish())
            }
            R::RequestBody(b) => {
                let Some(c) = b.response else {
                    return Some(self.finish());
                };
                let body = c.body_mutation.clone();
                self.common(c);
                match body.and_then(|b| b.mutation) {
                    Some(pb::body_mutation::Mutation::StreamedResponse(s)) => {
                        let buf = self.streamed.get_or_insert_with(BytesMut::new);
                        if buf.len().saturating_add(s.body.len()) > self.max_body {
                            self.broken = Some(format!(
                                "the picker's replacement body exceeds {} bytes",
                                self.max_body
                            ));
                            return None;
                        }
                        buf.extend_from_slice(&s.body);
                        s.end_of_stream.then(|| self.finish())
                    }
                    _ => Some(self.finish()),
                }
            }
            _ => None,
        }
    }

    /// The answer so far (the stream ended, or the body's answer is complete).
    pub fn finish(&mut self) -> Answer {
        let mut picked = std::mem::take(&mut self.picked);
        if let Some(s) = self.streamed.take() {
            picked.mutation.body = Some(s.freeze());
        }
        if picked.destination.is_none() {
            picked.destination = self.header_value.take();
        }
        Answer::Picked(picked)
    }

    fn common(&mut self, c: pb::CommonResponse) {
        if let Some(hm) = c.header_mutation {
            for h in set_headers(&hm.set_headers) {
                if h.name.as_str() == DESTINATION
                    && let Ok(v) = h.value.to_str()
                {
                    self.header_value = Some(v.to_string());
                }
                self.picked.mutation.set.push(h);
            }
            self.picked.mutation.remove.extend(
                hm.remove_headers
                    .iter()
                    .filter_map(|n| http::HeaderName::from_bytes(n.as_bytes()).ok())
                    .filter(|n| !protected(n)),
            );
        }
        match c.body_mutation.and_then(|b| b.mutation) {
            Some(pb::body_mutation::Mutation::Body(b)) => self.picked.mutation.body = Some(b),
            Some(pb::body_mutation::Mutation::ClearBody(true)) => {
                self.picked.mutation.body = Some(Bytes::new());
            }
            _ => {}
        }
    }
}

/// `envoy.lb` / `x-gateway-destination-endpoint` of the dynamic metadata, if present.
fn destination_metadata(md: &prost_types::Struct) -> Option<String> {
    use prost_types::value::Kind;
    let Some(Kind::StructValue(ns)) = md.fields.get(METADATA_NAMESPACE)?.kind.as_ref() else {
        return None;
    };
    match ns.fields.get(DESTINATION)?.kind.as_ref()? {
        Kind::StringValue(s) => Some(s.clone()),
        // A list of endpoints, in order.
        Kind::ListValue(l) => {
            let v: Vec<&str> = l
                .values
                .iter()
                .filter_map(|v| match &v.kind {
                    Some(Kind::StringValue(s)) => Some(s.as_str()),
                    _ => None,
                })
                .collect();
            Some(v.join(","))
        }
        _ => None,
    }
}

/// Headers a picker may not set or remove: the message framing, the connection's own
/// headers and the authority are the gateway's (as Envoy's default mutation rules keep them).
fn protected(name: &http::HeaderName) -> bool {
    use http::header as h;
    [
        h::HOST,
        h::CONTENT_LENGTH,
        h::TRANSFER_ENCODING,
        h::CONNECTION,
        h::TE,
        h::TRAILER,
        h::UPGRADE,
    ]
    .contains(name)
        || matches!(name.as_str(), "keep-alive" | "proxy-connection")
}

/// Valid headers of a `HeaderValueOption` list (pseudo-headers, bad names and the
/// [`protected`] ones left out).
fn set_headers(list: &[pb::HeaderValueOption]) -> Vec<HeaderSet> {
    list.iter()
        .filter_map(|o| {
            let h = o.header.as_ref()?;
            let value = if h.raw_value.is_empty() {
                h.value.as_bytes()
            } else {
                &h.raw_value
            };
            let action = match (&o.append, o.append_action) {
                (Some(a), _) if a.value => SetAction::Append,
                (Some(_), _) => SetAction::Overwrite,
                // Unset: the picker's value replaces the client's (ext_proc's default).
                (None, 0 | 2) => SetAction::Overwrite,
                (None, 1) => SetAction::AddIfAbsent,
                (None, _) => SetAction::OverwriteIfExists,
            };
            Some(HeaderSet {
                name: http::HeaderName::from_bytes(h.key.as_bytes())
                    .ok()
                    .filter(|n| !protected(n))?,
                value: http::HeaderValue::from_bytes(value).ok()?,
                action,
            })
        })
        .collect()
}

fn immediate(i: pb::ImmediateResponse) -> Immediate {
    Immediate {
        status: i
            .status
            .and_then(|s| u16::try_from(s.code).ok())
            .filter(|c| (200..=599).contains(c))
            .unwrap_or(500),
        headers: i
            .headers
            .map(|h| set_headers(&h.set_headers))
            .unwrap_or_default(),
        body: i.body,
    }
}
