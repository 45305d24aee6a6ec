use std::net::SocketAddr;
use std::time::Duration;

use agora_proto::ext_proc as pb;
use bytes::Bytes;

use super::ext_proc::{Accumulator, DESTINATION, requests};
use super::*;

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

#[test]
fn endpoints_parse_in_order_without_duplicates_or_junk() {
    assert_eq!(
        parse_endpoints("10.0.0.1:8000"),
        vec![addr("10.0.0.1:8000")]
    );
    assert_eq!(
        parse_endpoints(" 10.0.0.2:8000 ,10.0.0.1:8000,10.0.0.2:8000"),
        vec![addr("10.0.0.2:8000"), addr("10.0.0.1:8000")]
    );
    assert_eq!(
        parse_endpoints("[fd00::1]:8000,pod-a:8000,10.0.0.1,,10.0.0.3:9"),
        vec![addr("[fd00::1]:8000"), addr("10.0.0.3:9")]
    );
    assert!(parse_endpoints("").is_empty());
}

fn picked(dest: Option<&str>) -> Result<Answer, String> {
    Ok(Answer::Picked(Picked {
        destination: dest.map(str::to_string),
        mutation: Mutation::default(),
    }))
}

#[test]
fn only_pool_members_are_routed_to() {
    let pool = [addr("10.0.0.1:8000"), addr("10.0.0.2:8000")];
    let in_pool = |a: &SocketAddr| pool.contains(a);
    let v = verdict(
        picked(Some("10.9.9.9:8000,10.0.0.2:8000,10.0.0.1:8000")),
        in_pool,
        false,
    );
    assert_eq!(
        v,
        Verdict::Route {
            endpoints: vec![addr("10.0.0.2:8000"), addr("10.0.0.1:8000")],
            mutation: Mutation::default(),
        }
    );
    // Nothing of the pool: a failure, decided by the failure mode.
    let v = verdict(picked(Some("10.9.9.9:8000")), in_pool, false);
    assert!(matches!(&v, Verdict::Refuse(m) if m.contains("not an endpoint of the pool")));
    assert_eq!(v.label(), "failed_closed");
    let v = verdict(picked(Some("10.9.9.9:8000")), in_pool, true);
    assert_eq!(v.label(), "failed_open");
}

#[test]
fn failures_follow_the_failure_mode() {
    let any = |_: &SocketAddr| true;
    let down = || Err::<Answer, _>("Unavailable: connection refused".to_string());
    assert!(matches!(verdict(down(), any, true), Verdict::AnyEndpoint(m) if m.contains("refused")));
    assert!(matches!(verdict(down(), any, false), Verdict::Refuse(_)));
    assert!(
        matches!(verdict(picked(None), any, false), Verdict::Refuse(m) if m.contains("no endpoint"))
    );
    assert!(matches!(
        verdict(picked(None), any, true),
        Verdict::AnyEndpoint(_)
    ));
    // An immediate response is passed on whatever the mode.
    let i = Immediate {
        status: 429,
        headers: vec![],
        body: Bytes::from_static(b"busy"),
    };
    let v = verdict(Ok(Answer::Immediate(i.clone())), any, false);
    assert_eq!(v, Verdict::Respond(i));
    assert_eq!(v.label(), "immediate_response");
}

#[test]
fn picker_addresses() {
    let p = |host: &str, port| pb_picker(host, port);
    assert_eq!(
        PickerIr::new(&p("10.96.0.10", 9002)).unwrap().url,
        "http://10.96.0.10:9002"
    );
    assert_eq!(
        PickerIr::new(&p("fd00::a", 9002)).unwrap().url,
        "http://[fd00::a]:9002"
    );
    assert_eq!(
        PickerIr::new(&p("epp.ai.svc.cluster.local", 9002))
            .unwrap()
            .timeout,
        DEFAULT_TIMEOUT
    );
    assert!(PickerIr::new(&p("", 9002)).is_err());
    assert!(PickerIr::new(&p("epp", 0)).is_err());
    assert!(PickerIr::new(&p("epp", 70000)).is_err());
}

fn pb_picker(host: &str, port: u32) -> agora_proto::resource::EndpointPicker {
    agora_proto::resource::EndpointPicker {
        host: host.into(),
        port,
        fail_open: false,
        timeout: None,
    }
}

#[test]
fn requests_carry_pseudo_headers_then_the_body_in_chunks() {
    let mut headers = http::HeaderMap::new();
    headers.insert("x-model", "m1".parse().unwrap());
    let body = Bytes::from(vec![b'a'; 150 * 1024]);
    let req = PickRequest {
        method: "POST",
        path: "/v1/chat/completions",
        authority: "gw",
        scheme: "http",
        headers: &headers,
        body: &body,
        max_body: u64::MAX,
    };
    let msgs = requests(&req);
    assert_eq!(msgs.len(), 4);
    let Some(pb::processing_request::Request::RequestHeaders(h)) = &msgs[0].request else {
        panic!("headers first");
    };
    assert!(!h.end_of_stream);
    let hs = &h.headers.as_ref().unwrap().headers;
    assert_eq!(hs[1].key, ":path");
    assert_eq!(&hs[1].raw_value[..], b"/v1/chat/completions");
    assert!(
        hs.iter()
            .any(|h| h.key == "x-model" && &h.raw_value[..] == b"m1")
    );
    let mut total = 0;
    for (i, m) in msgs[1..].iter().enumerate() {
        let Some(pb::processing_request::Request::RequestBody(b)) = &m.request else {
            panic!("body chunks after the headers");
        };
        total += b.body.len();
        assert_eq!(b.end_of_stream, i == 2);
    }
    assert_eq!(total, body.len());
    // Without a body, the headers end the stream.
    let empty = Bytes::new();
    let msgs = requests(&PickRequest {
        body: &empty,
        ..req
    });
    assert_eq!(msgs.len(), 1);
}

fn header_option(k: &str, v: &str) -> pb::HeaderValueOption {
    pb::HeaderValueOption {
        header: Some(pb::HeaderValue {
            key: k.into(),
            value: String::new(),
            raw_value: Bytes::copy_from_slice(v.as_bytes()),
        }),
        append: None,
        append_action: 0,
    }
}

fn common(
    set: Vec<pb::HeaderValueOption>,
    body: Option<pb::body_mutation::Mutation>,
) -> pb::CommonResponse {
    pb::CommonResponse {
        header_mutation: Some(pb::HeaderMutation {
            set_headers: set,
            remove_headers: vec!["x-drop".into()],
        }),
        body_mutation: body.map(|m| pb::BodyMutation { mutation: Some(m) }),
        ..Default::default()
    }
}

#[test]
fn answers_in_full_duplex_mode_accumulate_until_the_body_ends() {
    use pb::processing_response::Response as R;
    let mut acc = Accumulator::new(false);
    let headers = pb::ProcessingResponse {
        response: Some(R::RequestHeaders(pb::HeadersResponse {
            response: Some(common(
                vec![header_option(DESTINATION, "10.0.0.2:8000")],
                None,
            )),
        })),
        ..Default::default()
    };
    assert!(acc.add(headers).is_none());
    let chunk = |b: &'static [u8], eos| pb::ProcessingResponse {
        response: Some(R::RequestBody(pb::BodyResponse {
            response: Some(pb::CommonResponse {
                body_mutation: Some(pb::BodyMutation {
                    mutation: Some(pb::body_mutation::Mutation::StreamedResponse(
                        pb::StreamedBodyResponse {
                            body: Bytes::from_static(b),
                            end_of_stream: eos,
                        },
                    )),
                }),
                ..Default::default()
            }),
        })),
        ..Default::default()
    };
    assert!(acc.add(chunk(b"{\"model\":", false)).is_none());
    let Some(Answer::Picked(p)) = acc.add(chunk(b"\"m2\"}", true)) else {
        panic!("the last chunk completes the answer");
    };
    assert_eq!(p.destination.as_deref(), Some("10.0.0.2:8000"));
    assert_eq!(p.mutation.body.as_deref(), Some(&b"{\"model\":\"m2\"}"[..]));
    assert_eq!(
        p.mutation.remove,
        vec![http::HeaderName::from_static("x-drop")]
    );
    assert_eq!(p.mutation.set[0].action, SetAction::Overwrite);
}

#[test]
fn pickers_cannot_touch_framing_or_authority_headers_nor_send_bodies_over_the_limit() {
    use pb::processing_response::Response as R;
    let mut acc = Accumulator::new(false);
    acc.max_body = 8;
    let mut c = common(
        vec![
            header_option(DESTINATION, "10.0.0.2:8000"),
            header_option("content-length", "1"),
            header_option("Host", "evil"),
            header_option("transfer-encoding", "chunked"),
            header_option("x-ok", "1"),
        ],
        None,
    );
    c.header_mutation
        .as_mut()
        .unwrap()
        .remove_headers
        .extend(["connection".into(), "host".into()]);
    let headers = pb::ProcessingResponse {
        response: Some(R::RequestHeaders(pb::HeadersResponse { response: Some(c) })),
        ..Default::default()
    };
    assert!(acc.add(headers).is_none());
    let big = pb::ProcessingResponse {
        response: Some(R::RequestBody(pb::BodyResponse {
            response: Some(pb::CommonResponse {
                body_mutation: Some(pb::BodyMutation {
                    mutation: Some(pb::body_mutation::Mutation::StreamedResponse(
                        pb::StreamedBodyResponse {
                            body: Bytes::from_static(b"0123456789"),
                            end_of_stream: true,
                        },
                    )),
                }),
                ..Default::default()
            }),
        })),
        ..Default::default()
    };
    assert!(acc.add(big).is_none());
    assert!(
        acc.broken
            .take()
            .is_some_and(|e| e.contains("exceeds 8 bytes"))
    );
    let Answer::Picked(p) = acc.finish() else {
        panic!("picked");
    };
    let set: Vec<&str> = p.mutation.set.iter().map(|h| h.name.as_str()).collect();
    assert_eq!(set, [DESTINATION, "x-ok"]);
    assert_eq!(
        p.mutation.remove,
        vec![http::HeaderName::from_static("x-drop")]
    );
}

#[test]
fn metadata_names_the_destination_before_the_header() {
    use pb::processing_response::Response as R;
    use prost_types::{Struct, Value, value::Kind};
    let s = |fields: Vec<(&str, Kind)>| Struct {
        fields: fields
            .into_iter()
            .map(|(k, v)| (k.to_string(), Value { kind: Some(v) }))
            .collect(),
    };
    let md = s(vec![(
        "envoy.lb",
        Kind::StructValue(s(vec![(
            DESTINATION,
            Kind::StringValue("10.0.0.1:8000,10.0.0.2:8000".into()),
        )])),
    )]);
    let mut acc = Accumulator::new(false);
    let m = pb::ProcessingResponse {
        response: Some(R::RequestBody(pb::BodyResponse {
            response: Some(common(
                vec![header_option(DESTINATION, "10.0.0.3:8000")],
                None,
            )),
        })),
        dynamic_metadata: Some(md),
    };
    let Some(Answer::Picked(p)) = acc.add(m) else {
        panic!("a body answer without streaming completes it");
    };
    assert_eq!(
        p.destination.as_deref(),
        Some("10.0.0.1:8000,10.0.0.2:8000")
    );
    assert_eq!(p.mutation.body, None);
}

#[test]
fn immediate_responses_end_the_exchange() {
    use pb::processing_response::Response as R;
    let mut acc = Accumulator::new(false);
    let m = pb::ProcessingResponse {
        response: Some(R::ImmediateResponse(pb::ImmediateResponse {
            status: Some(pb::HttpStatus { code: 429 }),
            headers: Some(pb::HeaderMutation {
                set_headers: vec![header_option("retry-after", "1")],
                remove_headers: vec![],
            }),
            body: Bytes::from_static(b"shed"),
            details: String::new(),
        })),
        ..Default::default()
    };
    let Some(Answer::Immediate(i)) = acc.add(m) else {
        panic!("immediate");
    };
    assert_eq!(i.status, 429);
    assert_eq!(i.headers[0].name.as_str(), "retry-after");
    assert_eq!(&i.body[..], b"shed");
}

/// A picker on loopback that names the endpoint from the request's `x-pick` header and
/// echoes the body back in streamed chunks; `x-immediate` makes it answer 503 itself.
mod server {
    use super::*;
    use agora_proto::ext_proc::external_processor_server::{
        ExternalProcessor, ExternalProcessorServer,
    };
    use futures_util::StreamExt;
    use std::pin::Pin;
    use tokio_stream::Stream;

    pub struct Picker;

    type Out = Pin<Box<dyn Stream<Item = Result<pb::ProcessingResponse, tonic::Status>> + Send>>;

    #[tonic::async_trait]
    impl ExternalProcessor for Picker {
        type ProcessStream = Out;

        async fn process(
            &self,
            req: tonic::Request<tonic::Streaming<pb::ProcessingRequest>>,
        ) -> Result<tonic::Response<Out>, tonic::Status> {
            use pb::processing_request::Request as Q;
            use pb::processing_response::Response as R;
            let mut input = req.into_inner();
            let mut pick = String::new();
            let mut immediate = false;
            let mut body = Vec::new();
            while let Some(m) = input.next().await {
                match m?.request {
                    Some(Q::RequestHeaders(h)) => {
                        for hv in h.headers.unwrap_or_default().headers {
                            match hv.key.as_str() {
                                "x-pick" => pick = String::from_utf8_lossy(&hv.raw_value).into(),
                                "x-immediate" => immediate = true,
                                _ => {}
                            }
                        }
                    }
                    Some(Q::RequestBody(b)) => {
                        body.extend_from_slice(&b.body);
                        if b.end_of_stream {
                            break;
                        }
                    }
                    _ => {}
                }
            }
            let out: Vec<Result<pb::ProcessingResponse, tonic::Status>> = if immediate {
                vec![Ok(pb::ProcessingResponse {
                    response: Some(R::ImmediateResponse(pb::ImmediateResponse {
                        status: Some(pb::HttpStatus { code: 503 }),
                        body: Bytes::from_static(b"no capacity"),
                        ..Default::default()
                    })),
                    ..Default::default()
                })]
            } else {
                let headers = pb::ProcessingResponse {
                    response: Some(R::RequestHeaders(pb::HeadersResponse {
                        response: Some(common(vec![header_option(DESTINATION, &pick)], None)),
                    })),
                    ..Default::default()
                };
                let mut v = vec![Ok(headers)];
                let half = body.len() / 2;
                for (part, eos) in [(&body[..half], false), (&body[half..], true)] {
                    v.push(Ok(pb::ProcessingResponse {
                        response: Some(R::RequestBody(pb::BodyResponse {
                            response: Some(pb::CommonResponse {
                                body_mutation: Some(pb::BodyMutation {
                                    mutation: Some(pb::body_mutation::Mutation::StreamedResponse(
                                        pb::StreamedBodyResponse {
                                            body: Bytes::copy_from_slice(part),
                                            end_of_stream: eos,
                                        },
                                    )),
                                }),
                                ..Default::default()
                            }),
                        })),
                        ..Default::default()
                    }));
                }
                v
            };
            Ok(tonic::Response::new(Box::pin(tokio_stream::iter(out))))
        }
    }

    /// Serves the picker on a free loopback port; returns its address.
    pub async fn start() -> SocketAddr {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(
            tonic::transport::Server::builder()
                .add_service(ExternalProcessorServer::new(Picker))
                .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
        );
        addr
    }
}

fn chat<'a>(headers: &'a http::HeaderMap, body: &'a Bytes) -> PickRequest<'a> {
    PickRequest {
        method: "POST",
        path: "/v1/completions",
        authority: "gw",
        scheme: "http",
        headers,
        body,
        max_body: u64::MAX,
    }
}

#[tokio::test]
async fn a_picker_on_loopback_is_called_over_ext_proc() {
    let at = server::start().await;
    let picker = PickerIr::new(&pb_picker("127.0.0.1", u32::from(at.port()))).unwrap();
    let mut headers = http::HeaderMap::new();
    headers.insert("x-pick", "10.0.0.7:8000".parse().unwrap());
    let body = Bytes::from(vec![b'x'; 100 * 1024]);
    let Answer::Picked(p) = picker.pick(chat(&headers, &body)).await.unwrap() else {
        panic!("picked");
    };
    assert_eq!(p.destination.as_deref(), Some("10.0.0.7:8000"));
    assert_eq!(p.mutation.body.as_ref(), Some(&body));

    headers.insert("x-immediate", "1".parse().unwrap());
    let Answer::Immediate(i) = picker.pick(chat(&headers, &body)).await.unwrap() else {
        panic!("immediate");
    };
    assert_eq!((i.status, &i.body[..]), (503, &b"no capacity"[..]));
}

#[tokio::test]
async fn an_unreachable_picker_is_an_error_within_the_timeout() {
    let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = free.local_addr().unwrap().port();
    drop(free);
    let mut p = PickerIr::new(&pb_picker("127.0.0.1", u32::from(port))).unwrap();
    p.timeout = Duration::from_secs(2);
    let headers = http::HeaderMap::new();
    let body = Bytes::new();
    let started = std::time::Instant::now();
    let r = p
        .pick(PickRequest {
            method: "GET",
            path: "/",
            authority: "gw",
            scheme: "http",
            headers: &headers,
            body: &body,
            max_body: u64::MAX,
        })
        .await;
    assert!(r.is_err(), "{r:?}");
    assert!(started.elapsed() < Duration::from_secs(3));
}
