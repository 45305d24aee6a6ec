//! Fetches the JWKS of every `jwks.remote` URL the policies name, and refreshes each on its
//! own schedule. A key set that cannot be fetched keeps its last good keys (and is retried
//! every few seconds while it has none).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use agora_policies::authn::jwt::{KeySet, remote_jwks};

/// Retry delay for a key set that has never loaded.
const RETRY: Duration = Duration::from_secs(2);

/// Runs until `shutdown` turns true.
pub async fn run(mut shutdown: tokio::sync::watch::Receiver<bool>) {
    let client = match reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
    {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "JWKS client");
            return;
        }
    };
    let mut due: HashMap<String, Instant> = HashMap::new();
    loop {
        let now = Instant::now();
        for (url, refresh, handle) in remote_jwks() {
            if due.get(&url).is_some_and(|t| *t > now) {
                continue;
            }
            let next = match fetch(&client, &url).await {
                Ok(keys) => {
                    tracing::info!(%url, keys = keys.len(), "JWKS loaded");
                    handle.set(keys);
                    refresh
                }
                Err(e) => {
                    tracing::warn!(%url, error = %e, "JWKS fetch failed");
                    if handle.get().is_empty() {
                        RETRY
                    } else {
                        refresh.min(Duration::from_secs(30))
                    }
                }
            };
            due.insert(url, Instant::now() + next);
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(500)) => {}
            _ = shutdown.changed() => return,
        }
    }
}

async fn fetch(client: &reqwest::Client, url: &str) -> Result<KeySet, String> {
    let resp = client.get(url).send().await.map_err(|e| e.to_string())?;
    if !resp.status().is_success() {
        return Err(format!("status {}", resp.status()));
    }
    let body = resp.bytes().await.map_err(|e| e.to_string())?;
    KeySet::parse(&body)
}
