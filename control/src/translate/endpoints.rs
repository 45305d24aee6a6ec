//! Services and their endpoints: for every Service a backend refers to, a Service resource
//! and one Workload per EndpointSlice address, with each Service port mapped to the port the
//! endpoint serves it on (matched by port name, as kube-proxy does).

use std::collections::{BTreeMap, HashMap};

use agora_proto::resource as pb;
use k8s_openapi::api::core::v1::ServicePort;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::Output;
use crate::snapshot::{ObjKey, Snapshot};

const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";

/// Fills `out.services` (already keyed by the referenced Services) from the snapshot.
pub(super) fn resolve(s: &Snapshot, out: &mut Output) {
    // EndpointSlices by the Service they belong to.
    let mut slices: HashMap<
        ObjKey,
        Vec<(&ObjKey, &k8s_openapi::api::discovery::v1::EndpointSlice)>,
    > = HashMap::new();
    for (k, es) in &s.endpoint_slices {
        if let Some(svc) = es
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get(SERVICE_NAME_LABEL))
        {
            slices
                .entry(ObjKey::new(&k.namespace, svc))
                .or_default()
                .push((k, es));
        }
    }
    for (key, res) in &mut out.services {
        let Some((ns, name)) = key.split_once('/') else {
            continue;
        };
        let okey = ObjKey::new(ns, name);
        let Some(svc) = s.services.get(&okey) else {
            continue;
        };
        let ports: Vec<ServicePort> = svc
            .spec
            .as_ref()
            .and_then(|s| s.ports.clone())
            .unwrap_or_default();
        res.service = pb::Service {
            key: key.clone(),
            hostname: format!("{name}.{ns}.svc.cluster.local"),
            ports: ports
                .iter()
                .filter_map(|p| u32::try_from(p.port).ok())
                .collect(),
        };
        res.workloads.clear();
        for (skey, es) in slices.get(&okey).into_iter().flatten() {
            // Slice port name -> port number.
            let slice_ports: BTreeMap<String, u32> = es
                .ports
                .iter()
                .flatten()
                .filter_map(|p| {
                    Some((
                        p.name.clone().unwrap_or_default(),
                        u32::try_from(p.port?).ok()?,
                    ))
                })
                .collect();
            let mut map = BTreeMap::new();
            for p in &ports {
                let pname = p.name.clone().unwrap_or_default();
                let target = slice_ports
                    .get(&pname)
                    .copied()
                    .or_else(|| match &p.target_port {
                        Some(IntOrString::Int(t)) if slice_ports.is_empty() => {
                            u32::try_from(*t).ok()
                        }
                        None if slice_ports.is_empty() => u32::try_from(p.port).ok(),
                        _ => None,
                    });
                if let (Some(t), Ok(sp)) = (target, u32::try_from(p.port)) {
                    map.insert(sp, t);
                }
            }
            for ep in &es.endpoints {
                let ready = ep.conditions.as_ref().and_then(|c| c.ready).unwrap_or(true);
                for addr in &ep.addresses {
                    res.workloads.push(pb::Workload {
                        key: format!("{skey}/{addr}"),
                        service_key: key.clone(),
                        address: addr.clone(),
                        ports: map.clone(),
                        ready,
                    });
                }
            }
        }
    }
}
