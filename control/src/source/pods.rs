//! Pods, as InferencePool selectors read them: labels, `status.podIP` and the Ready
//! condition. Both sources keep only that much of each Pod (a cluster has many, and their
//! specs are large).

use k8s_openapi::api::core::v1::{Pod, PodCondition, PodStatus};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

/// The parts of `p` the translator reads: name, namespace, labels, generation; pod IPs and
/// conditions. Runs when a Pod enters the snapshot.
pub(crate) fn lean_pod(p: Pod) -> Pod {
    let status = p.status.map(|s| PodStatus {
        pod_ip: s.pod_ip,
        pod_ips: s.pod_ips,
        phase: s.phase,
        conditions: s.conditions.map(|c| {
            c.into_iter()
                .filter(|c| c.type_ == "Ready")
                .map(|c| PodCondition {
                    type_: c.type_,
                    status: c.status,
                    ..Default::default()
                })
                .collect()
        }),
        ..Default::default()
    });
    Pod {
        metadata: ObjectMeta {
            name: p.metadata.name,
            namespace: p.metadata.namespace,
            labels: p.metadata.labels,
            deletion_timestamp: p.metadata.deletion_timestamp,
            ..Default::default()
        },
        spec: None,
        status,
    }
}

/// Whether the Pod serves traffic: it has an IP, is not being deleted, and its Ready
/// condition is True.
pub(crate) fn ready(p: &Pod) -> bool {
    let Some(s) = &p.status else {
        return false;
    };
    p.metadata.deletion_timestamp.is_none()
        && s.pod_ip.as_deref().is_some_and(|ip| !ip.is_empty())
        && s.conditions
            .iter()
            .flatten()
            .any(|c| c.type_ == "Ready" && c.status == "True")
}
