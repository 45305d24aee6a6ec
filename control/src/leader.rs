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

/// Keeps the cluster equal to what `desired` derives from the latest `input`, while this
/// replica leads: an item (id, value) is written when it differs from what was last written;
/// a failed write is retried on the next change; a new leader rewrites everything.
pub async fn reconcile<T, I, F, W, Fut>(
    mut input: watch::Receiver<T>,
    mut leader: watch::Receiver<bool>,
    desired: F,
    mut write: W,
) where
    T: Clone,
    I: Clone + PartialEq,
    F: Fn(&T) -> Vec<(String, I)>,
    W: FnMut(I) -> Fut,
    Fut: std::future::Future<Output = Result<(), String>>,
{
    let mut written: std::collections::HashMap<String, I> = std::collections::HashMap::new();
    loop {
        if *leader.borrow_and_update() {
            let current = input.borrow_and_update().clone();
            for (id, item) in desired(&current) {
                if written.get(&id) == Some(&item) {
                    continue;
                }
                match write(item.clone()).await {
                    Ok(()) => {
                        written.insert(id, item);
                    }
                    Err(e) => {
                        tracing::warn!(object = %id, error = %e, "write failed; retrying on the next change")
                    }
                }
            }
        } else {
            written.clear();
        }
        tokio::select! {
            r = input.changed() => if r.is_err() { return },
            r = leader.changed() => if r.is_err() { return },
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use tokio::sync::watch;

    #[tokio::test]
    async fn reconcile_writes_changes_only_while_leading() {
        let (input_tx, input) = watch::channel(vec![("a", 1), ("b", 1)]);
        let (leader_tx, leader) = watch::channel(false);
        let writes = Arc::new(Mutex::new(Vec::new()));
        let fail_b = Arc::new(Mutex::new(true));
        let (w, f) = (writes.clone(), fail_b.clone());
        tokio::spawn(super::reconcile(
            input,
            leader,
            |v: &Vec<(&'static str, i32)>| v.iter().map(|(k, n)| (k.to_string(), *n)).collect(),
            move |n: i32| {
                let (w, f) = (w.clone(), f.clone());
                async move {
                    w.lock().expect("lock").push(n);
                    if n == 1 && *f.lock().expect("lock") && w.lock().expect("lock").len() == 2 {
                        return Err("b fails once".to_string());
                    }
                    Ok(())
                }
            },
        ));
        let settle = || tokio::time::sleep(Duration::from_millis(50));
        settle().await;
        assert!(
            writes.lock().expect("lock").is_empty(),
            "no writes while not leading"
        );

        leader_tx.send_replace(true);
        settle().await;
        assert_eq!(*writes.lock().expect("lock"), [1, 1]); // a ok, b failed
        *fail_b.lock().expect("lock") = false;

        // A change to `a` rewrites `a` and retries the failed `b`.
        input_tx.send_replace(vec![("a", 2), ("b", 1)]);
        settle().await;
        assert_eq!(*writes.lock().expect("lock"), [1, 1, 2, 1]);

        // Unchanged input: nothing written.
        input_tx.send_replace(vec![("a", 2), ("b", 1)]);
        settle().await;
        assert_eq!(writes.lock().expect("lock").len(), 4);

        // Leadership lost and regained: everything is rewritten.
        leader_tx.send_replace(false);
        settle().await;
        leader_tx.send_replace(true);
        settle().await;
        assert_eq!(*writes.lock().expect("lock"), [1, 1, 2, 1, 2, 1]);
    }
}
