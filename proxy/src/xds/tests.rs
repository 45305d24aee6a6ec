//! The xDS client against a scripted in-process ADS server: apply + ACK, NACK with the
//! reason while the last good config keeps serving, reconnect reporting what is held.

use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use agora_proto::resource::{self as pb, resource::Kind};
use agora_proto::xds::aggregated_discovery_service_server::{
    AggregatedDiscoveryService, AggregatedDiscoveryServiceServer,
};
use agora_proto::xds::{DeltaDiscoveryRequest, DeltaDiscoveryResponse, RESOURCE_TYPE_URL};
use prost::Message;
use tokio::sync::{Mutex, mpsc};
use tokio_stream::Stream;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};

use super::{XdsConfig, run};
use crate::metrics::Metrics;
use crate::store::Store;

type Out = mpsc::Sender<Result<DeltaDiscoveryResponse, Status>>;

/// Hands each new stream to the test: its requests and a sender for responses.
struct Script {
    streams: mpsc::Sender<(Streaming<DeltaDiscoveryRequest>, Out)>,
}

#[tonic::async_trait]
impl AggregatedDiscoveryService for Script {
    type DeltaAggregatedResourcesStream =
        Pin<Box<dyn Stream<Item = Result<DeltaDiscoveryResponse, Status>> + Send>>;
    async fn delta_aggregated_resources(
        &self,
        request: Request<Streaming<DeltaDiscoveryRequest>>,
    ) -> Result<Response<Self::DeltaAggregatedResourcesStream>, Status> {
        let (tx, rx) = mpsc::channel(4);
        let _ = self.streams.send((request.into_inner(), tx)).await;
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }
}

fn resource(name: &str, kind: Kind) -> agora_proto::xds::Resource {
    agora_proto::xds::Resource {
        name: name.into(),
        version: "v1".into(),
        resource: Some(prost_types::Any {
            type_url: RESOURCE_TYPE_URL.into(),
            value: pb::Resource { kind: Some(kind) }.encode_to_vec(),
        }),
    }
}

fn bind_and_listener() -> Vec<agora_proto::xds::Resource> {
    vec![
        resource(
            "bind/b",
            Kind::Bind(pb::Bind {
                key: "b".into(),
                address: "127.0.0.1".into(),
                port: 1,
            }),
        ),
        resource(
            "listener/l",
            Kind::Listener(pb::Listener {
                key: "l".into(),
                bind_key: "b".into(),
                gateway: "ns/gw".into(),
                name: "http".into(),
                ..Default::default()
            }),
        ),
    ]
}

async fn next(reqs: &Mutex<Streaming<DeltaDiscoveryRequest>>) -> DeltaDiscoveryRequest {
    tokio::time::timeout(Duration::from_secs(5), reqs.lock().await.message())
        .await
        .expect("a request within 5s")
        .expect("stream ok")
        .expect("not closed")
}

#[tokio::test]
async fn ack_nack_and_reconnect() {
    let (streams_tx, mut streams) = mpsc::channel(4);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(AggregatedDiscoveryServiceServer::new(Script {
                streams: streams_tx,
            }))
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
    );
    let store = Store::new();
    let (_stop, shutdown) = tokio::sync::watch::channel(false);
    tokio::spawn(run(
        XdsConfig {
            url: format!("http://{addr}"),
            gateway: "ns/gw".into(),
            node_id: "p1".into(),
            ca_pem: None,
            token_file: None,
        },
        store.clone(),
        Arc::new(Metrics::new()),
        shutdown,
    ));

    let (reqs, out) = streams.recv().await.expect("a stream");
    let reqs = Mutex::new(reqs);
    let hello = next(&reqs).await;
    let node = hello.node.expect("node on the first request");
    assert_eq!(node.metadata["gateway"], "ns/gw");
    assert!(hello.initial_resource_versions.is_empty());
    assert!(!store.is_ready(), "not ready before the first sync");

    // A valid snapshot is applied and ACKed.
    out.send(Ok(DeltaDiscoveryResponse {
        system_version_info: "1".into(),
        resources: bind_and_listener(),
        type_url: RESOURCE_TYPE_URL.into(),
        nonce: "n1".into(),
        removed_resources: vec![],
    }))
    .await
    .expect("send");
    let ack = next(&reqs).await;
    assert_eq!(ack.response_nonce, "n1");
    assert!(ack.error_detail.is_none(), "{:?}", ack.error_detail);
    assert!(store.is_ready());
    let version = store.version();

    // A route naming an unknown listener is refused whole: NACK, config unchanged.
    out.send(Ok(DeltaDiscoveryResponse {
        resources: vec![resource(
            "route/r",
            Kind::Route(pb::Route {
                key: "r".into(),
                listener_key: "nope".into(),
                ..Default::default()
            }),
        )],
        removed_resources: vec!["listener/l".into()],
        type_url: RESOURCE_TYPE_URL.into(),
        nonce: "n2".into(),
        ..Default::default()
    }))
    .await
    .expect("send");
    let nack = next(&reqs).await;
    assert_eq!(nack.response_nonce, "n2");
    let err = nack.error_detail.expect("a NACK");
    assert!(err.message.contains("unknown listener"), "{}", err.message);
    assert_eq!(store.version(), version);
    assert_eq!(store.load().binds.len(), 1);

    // The controller goes away; the proxy reconnects and reports what it holds (the last
    // good set, not the rejected one).
    drop(out);
    drop(reqs);
    let (reqs, _out) = tokio::time::timeout(Duration::from_secs(5), streams.recv())
        .await
        .expect("reconnect within 5s")
        .expect("a stream");
    let reqs = Mutex::new(reqs);
    let hello = next(&reqs).await;
    let mut held: Vec<&str> = hello
        .initial_resource_versions
        .keys()
        .map(String::as_str)
        .collect();
    held.sort_unstable();
    assert_eq!(held, ["bind/b", "listener/l"]);
    assert!(
        store.is_ready(),
        "still serving while the controller is away"
    );
}
