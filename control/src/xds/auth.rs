//! Proxy authentication for xDS in a cluster: the proxy sends its projected ServiceAccount
//! token (audience `agora-xds`); a TokenReview must accept it, and the ServiceAccount must
//! live in the namespace of the Gateway the proxy asks for. Verdicts are cached for a minute
//! so a reconnect storm does not become a TokenReview storm.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use k8s_openapi::api::authentication::v1::{TokenReview, TokenReviewSpec};
use kube::api::PostParams;
use kube::{Api, Client};
use tonic::Status;

/// The audience proxies' tokens are minted for.
pub const AUDIENCE: &str = "agora-xds";
const CACHE_FOR: Duration = Duration::from_secs(60);

/// Checks bearer tokens with the API server.
pub struct TokenReviewer {
    client: Client,
    cache: Mutex<HashMap<String, (Instant, Option<String>)>>,
}

impl TokenReviewer {
    pub fn new(client: Client) -> Self {
        Self {
            client,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// Admits `authorization` (the request header) for `gateway` (`namespace/name`).
    pub async fn admit(&self, authorization: Option<&str>, gateway: &str) -> Result<(), Status> {
        let token = authorization
            .and_then(|a| a.strip_prefix("Bearer "))
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| Status::unauthenticated("a ServiceAccount bearer token is required"))?;
        let user = self.user(token).await?;
        let Some(user) = user else {
            return Err(Status::unauthenticated(
                "the token was not accepted (TokenReview)",
            ));
        };
        let ns = gateway.split_once('/').map_or("", |(ns, _)| ns);
        let sa_ns = user
            .strip_prefix("system:serviceaccount:")
            .and_then(|r| r.split_once(':'))
            .map(|(ns, _)| ns);
        if sa_ns != Some(ns) {
            return Err(Status::permission_denied(format!(
                "{user} may not read the config of Gateway {gateway} (another namespace)"
            )));
        }
        Ok(())
    }

    async fn user(&self, token: &str) -> Result<Option<String>, Status> {
        if let Ok(cache) = self.cache.lock()
            && let Some((at, user)) = cache.get(token)
            && at.elapsed() < CACHE_FOR
        {
            return Ok(user.clone());
        }
        let api: Api<TokenReview> = Api::all(self.client.clone());
        let review = TokenReview {
            spec: TokenReviewSpec {
                token: Some(token.to_string()),
                audiences: Some(vec![AUDIENCE.to_string()]),
            },
            ..Default::default()
        };
        let out = api
            .create(&PostParams::default(), &review)
            .await
            .map_err(|e| Status::unavailable(format!("TokenReview failed: {e}")))?;
        let st = out.status.unwrap_or_default();
        let user = st
            .authenticated
            .unwrap_or(false)
            .then(|| st.user.and_then(|u| u.username))
            .flatten();
        if let Ok(mut cache) = self.cache.lock() {
            cache.retain(|_, (at, _)| at.elapsed() < CACHE_FOR);
            cache.insert(token.to_string(), (Instant::now(), user.clone()));
        }
        Ok(user)
    }
}
