//! Cloud credentials the gateway obtains itself, Pingora-free: GCP OAuth2 access tokens
//! (from a service-account key or Application Default Credentials) and AWS credentials (static
//! keys, or the default chain: environment, web identity, container, instance metadata;
//! optionally an assumed role).
//!
//! A config build turns a proto [`pb::GcpAuth`] / [`pb::AwsCredentials`] into a shared
//! [`Refreshing`] source ([`gcp`], [`aws`]); equal sources are shared across config
//! updates (a process-wide registry keyed by the source, never by the secret itself), so a
//! config change does not throw a valid token away. Each LLM attempt asks its source for the
//! current value ([`Refreshing::get`]): a cached value that is still valid is returned at
//! once (a refresh starts in the background when it nears expiry); only when nothing valid
//! is cached does the request wait, on one fetch shared by every waiting request.

mod aws;
mod cache;
mod gcp;
#[cfg(test)]
mod testing;

pub use aws::{AwsSource, parse_sts_credentials};
pub use cache::{Entry, Expiring, Refreshing, Source};
pub use gcp::{GcpSource, ServiceAccountKey};

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex, Weak};
use std::time::Duration;

use agora_proto::resource as pb;
use agora_providers::bedrock_sign::Credentials;
use http::HeaderValue;

use crate::error::Error;

/// The current time in Unix seconds; injectable so expiry logic is testable.
pub type Clock = Arc<dyn Fn() -> u64 + Send + Sync>;

/// The system clock.
pub fn system_clock() -> Clock {
    Arc::new(agora_policies::unix_now)
}

/// Environment variable lookup; injectable so the credential chains are testable without
/// touching the process environment.
#[derive(Clone)]
pub struct Env(Arc<Lookup>);

type Lookup = dyn Fn(&str) -> Option<String> + Send + Sync;

impl Env {
    /// The process environment, read at each lookup (so a rotated variable is seen).
    pub fn process() -> Self {
        Self(Arc::new(|k| {
            std::env::var(k).ok().filter(|v| !v.is_empty())
        }))
    }

    /// A fixed set of variables (tests).
    pub fn from_pairs(pairs: &[(&str, &str)]) -> Self {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Self(Arc::new(move |k| map.get(k).cloned()))
    }

    /// The variable's value; unset and empty are the same.
    pub fn var(&self, key: &str) -> Option<String> {
        (self.0)(key)
    }
}

/// A GCP access token, as the `authorization: Bearer …` header value to send (sensitive).
pub type GcpTokens = Arc<Refreshing<HeaderValue>>;
/// AWS credentials for SigV4 signing.
pub type AwsCredentials = Arc<Refreshing<Credentials>>;

/// The token source for a provider's `auth.gcp`: the service-account key when one is given
/// (parsed now, so a bad key rejects the config), else Application Default Credentials.
/// Runs at config build time; the error message names what is wrong with the key.
pub fn gcp(auth: &pb::GcpAuth) -> std::result::Result<GcpTokens, String> {
    if auth.service_account_key.trim().is_empty() {
        return Ok(registry_gcp().get_or_insert("adc".into(), || {
            GcpSource::adc(Env::process(), system_clock())
        }));
    }
    let key = ServiceAccountKey::parse(&auth.service_account_key).map_err(|e| e.to_string())?;
    let id = format!("sa:{}", fingerprint(auth.service_account_key.as_bytes()));
    Ok(registry_gcp().get_or_insert(id, || GcpSource::service_account(key, system_clock())))
}

/// The credential source for a provider's `auth.aws`: fixed static keys, or the default
/// chain; either one assuming `assume_role_arn` when set. Runs at config build time.
pub fn aws(c: &pb::AwsCredentials) -> std::result::Result<AwsCredentials, String> {
    let fixed = (!c.access_key_id.is_empty()).then(|| Credentials {
        access_key_id: c.access_key_id.clone(),
        secret_access_key: c.secret_access_key.clone(),
        session_token: (!c.session_token.is_empty()).then(|| c.session_token.clone()),
    });
    if fixed.is_some() && c.secret_access_key.is_empty() {
        return Err("accessKeyId without secretAccessKey".into());
    }
    let role = (!c.assume_role_arn.is_empty()).then(|| c.assume_role_arn.clone());
    match (fixed, role) {
        (Some(creds), None) => Ok(Arc::new(Refreshing::fixed(creds))),
        (fixed, role) => {
            let id = format!(
                "{}|role={}",
                fixed.as_ref().map_or("chain".to_string(), |f| format!(
                    "static:{}",
                    fingerprint(
                        format!(
                            "{}\n{}\n{:?}",
                            f.access_key_id, f.secret_access_key, f.session_token
                        )
                        .as_bytes()
                    )
                )),
                role.as_deref().unwrap_or("")
            );
            Ok(registry_aws().get_or_insert(id, || {
                AwsSource::cached(fixed, role, Env::process(), system_clock())
            }))
        }
    }
}

/// Process-wide sources, shared by every config that names the same one.
struct Registry<T> {
    map: Mutex<HashMap<String, Weak<Refreshing<T>>>>,
}

impl<T: Send + Sync + 'static> Registry<T> {
    fn new() -> Self {
        Self {
            map: Mutex::new(HashMap::new()),
        }
    }

    /// The live source under `id`, or a new one from `make` (dead entries are dropped).
    fn get_or_insert(
        &self,
        id: String,
        make: impl FnOnce() -> Refreshing<T>,
    ) -> Arc<Refreshing<T>> {
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(live) = map.get(&id).and_then(Weak::upgrade) {
            return live;
        }
        map.retain(|_, w| w.strong_count() > 0);
        let new = Arc::new(make());
        map.insert(id, Arc::downgrade(&new));
        new
    }
}

fn registry_gcp() -> &'static Registry<HeaderValue> {
    static R: LazyLock<Registry<HeaderValue>> = LazyLock::new(Registry::new);
    &R
}

fn registry_aws() -> &'static Registry<Credentials> {
    static R: LazyLock<Registry<Credentials>> = LazyLock::new(Registry::new);
    &R
}

/// A short hex digest naming secret material without revealing it.
fn fingerprint(bytes: &[u8]) -> String {
    let d = ring::digest::digest(&ring::digest::SHA256, bytes);
    d.as_ref()[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The client for token endpoints (Google OAuth2, AWS STS): system proxy settings apply.
fn http() -> &'static reqwest::Client {
    static C: LazyLock<reqwest::Client> = LazyLock::new(|| {
        reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(15))
            .build()
            .unwrap_or_default()
    });
    &C
}

/// The client for link-local metadata services (GCE metadata, EC2 IMDS, ECS/EKS container
/// credentials): never through a proxy, short timeouts (off-cloud they do not answer).
fn metadata_http() -> &'static reqwest::Client {
    static C: LazyLock<reqwest::Client> = LazyLock::new(|| {
        reqwest::Client::builder()
            .no_proxy()
            .connect_timeout(Duration::from_secs(2))
            .timeout(Duration::from_secs(5))
            .build()
            .unwrap_or_default()
    });
    &C
}

/// A credential failure, for the request that needed it and the log line.
fn fail(message: impl std::fmt::Display) -> Error {
    Error::Credentials(message.to_string())
}

/// A response body, cut short for an error message (it never holds secrets we sent: only
/// the endpoint's error text).
fn snippet(body: &str) -> String {
    let body = body.trim();
    match body.char_indices().nth(200) {
        Some((i, _)) => format!("{}…", &body[..i]),
        None => body.to_string(),
    }
}

/// Parses an RFC 3339 UTC timestamp (`2024-05-01T12:00:00Z`, fractional seconds and a
/// numeric offset accepted) into Unix seconds.
pub fn parse_rfc3339(s: &str) -> Option<u64> {
    let s = s.trim();
    let (date, time) = s.split_once(['T', 't', ' '])?;
    let mut d = date.splitn(3, '-');
    let (y, mo, day): (i64, i64, i64) = (
        d.next()?.parse().ok()?,
        d.next()?.parse().ok()?,
        d.next()?.parse().ok()?,
    );
    let (clock, offset) = if let Some(t) = time.strip_suffix(['Z', 'z']) {
        (t, 0)
    } else {
        let at = time.rfind(['+', '-'])?;
        let (t, off) = time.split_at(at);
        let sign = if off.starts_with('-') { -1 } else { 1 };
        let (oh, om) = off[1..].split_once(':')?;
        (
            t,
            sign * (oh.parse::<i64>().ok()? * 3600 + om.parse::<i64>().ok()? * 60),
        )
    };
    let clock = clock.split('.').next()?;
    let mut c = clock.splitn(3, ':');
    let (h, mi, sec): (i64, i64, i64) = (
        c.next()?.parse().ok()?,
        c.next()?.parse().ok()?,
        c.next()?.parse().ok()?,
    );
    if !(1..=12).contains(&mo) || !(1..=31).contains(&day) || h > 23 || mi > 59 || sec > 60 {
        return None;
    }
    // Days from civil (proleptic Gregorian), 1970-01-01 = 0.
    let y = if mo <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (mo + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    u64::try_from(days * 86_400 + h * 3600 + mi * 60 + sec - offset).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339() {
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(parse_rfc3339("2019-11-09T13:34:41Z"), Some(1_573_306_481));
        assert_eq!(
            parse_rfc3339("2019-11-09T13:34:41.123Z"),
            Some(1_573_306_481)
        );
        assert_eq!(
            parse_rfc3339("2019-11-09T15:34:41+02:00"),
            Some(1_573_306_481)
        );
        assert_eq!(parse_rfc3339("2024-02-29T00:00:00Z"), Some(1_709_164_800));
        assert_eq!(parse_rfc3339("yesterday"), None);
        assert_eq!(parse_rfc3339("2024-13-01T00:00:00Z"), None);
    }

    #[test]
    fn registry_shares_live_sources() {
        let r: Registry<String> = Registry::new();
        let a = r.get_or_insert("x".into(), || Refreshing::fixed("one".to_string()));
        let b = r.get_or_insert("x".into(), || Refreshing::fixed("two".to_string()));
        assert!(Arc::ptr_eq(&a, &b));
        drop((a, b));
        let c = r.get_or_insert("x".into(), || Refreshing::fixed("three".to_string()));
        assert_eq!(
            c.cached().map(|e| e.value.clone()).as_deref(),
            Some("three")
        );
    }

    #[test]
    fn snippets_are_short() {
        assert_eq!(snippet(" short "), "short");
        assert_eq!(snippet(&"x".repeat(500)).chars().count(), 201);
    }

    #[test]
    fn static_aws_needs_both_keys() {
        let c = pb::AwsCredentials {
            access_key_id: "AKID".into(),
            ..Default::default()
        };
        assert!(aws(&c).is_err());
    }
}
