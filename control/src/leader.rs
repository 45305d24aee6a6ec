//! Lease-based leader election (`coordination.k8s.io/v1` Lease): the holder renews every
//! `RENEW`; another replica takes over once a lease is `DURATION` old. Only the leader writes
//! statuses; every replica serves xDS.

use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::api::PostParams;
use kube::{Api, Client};
use tokio::sync::watch;

/// How long a lease lasts without renewal.
pub const DURATION: Duration = Duration::from_secs(15);
/// How often the holder renews (and others check).
pub const RENEW: Duration = Duration::from_secs(5);

/// Campaigns forever; `leader` says whether this replica holds the lease right now.
pub async fn run(
    client: Client,
    namespace: String,
    name: String,
    identity: String,
    leader: watch::Sender<bool>,
) {
    let api: Api<Lease> = Api::namespaced(client, &namespace);
    loop {
        let held = match try_acquire(&api, &name, &identity).await {
            Ok(h) => h,
            Err(e) => {
                tracing::warn!(error = %e, "leader election: cannot reach the Lease");
                false
            }
        };
        if *leader.borrow() != held {
            tracing::info!(identity = %identity, leader = held, "leadership changed");
            leader.send_replace(held);
        }
        tokio::time::sleep(RENEW).await;
    }
}

/// One round: create, renew or take over the lease. Returns whether we hold it.
pub async fn try_acquire(api: &Api<Lease>, name: &str, identity: &str) -> kube::Result<bool> {
    let now = jiff::Timestamp::now();
    let fresh = |transitions: i32| LeaseSpec {
        holder_identity: Some(identity.to_string()),
        lease_duration_seconds: Some(DURATION.as_secs() as i32),
        acquire_time: Some(MicroTime(now)),
        renew_time: Some(MicroTime(now)),
        lease_transitions: Some(transitions),
        ..Default::default()
    };
    let Some(mut lease) = api.get_opt(name).await? else {
        let lease = Lease {
            metadata: ObjectMeta {
                name: Some(name.to_string()),
                ..Default::default()
            },
            spec: Some(fresh(0)),
        };
        return match api.create(&PostParams::default(), &lease).await {
            Ok(_) => Ok(true),
            Err(kube::Error::Api(s)) if s.is_already_exists() => Ok(false),
            Err(e) => Err(e),
        };
    };
    let spec = lease.spec.clone().unwrap_or_default();
    let mine = spec.holder_identity.as_deref() == Some(identity);
    let expired = spec.renew_time.as_ref().is_none_or(|t| {
        let secs = i64::from(spec.lease_duration_seconds.unwrap_or(15));
        t.0.as_second() + secs < now.as_second()
    });
    if !mine && !expired {
        return Ok(false);
    }
    lease.spec = Some(if mine {
        LeaseSpec {
            renew_time: Some(MicroTime(now)),
            ..spec
        }
    } else {
        fresh(spec.lease_transitions.unwrap_or(0) + 1)
    });
    // The resourceVersion in `lease` makes this a compare-and-swap: of two replicas taking
    // over at once, one gets a conflict.
    match api.replace(name, &PostParams::default(), &lease).await {
        Ok(_) => Ok(true),
        Err(kube::Error::Api(s)) if s.is_conflict() => Ok(false),
        Err(e) => Err(e),
    }
}
