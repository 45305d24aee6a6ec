//! GCP OAuth2 access tokens (scope `cloud-platform`): from a service-account key (a signed
//! JWT assertion exchanged at the key's `token_uri`), or Application Default Credentials
//! (`GOOGLE_APPLICATION_CREDENTIALS`, the gcloud well-known file, then the GCE/GKE metadata
//! server at `GCE_METADATA_HOST` or `metadata.google.internal`).

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http::HeaderValue;
use ring::signature::RsaKeyPair;
use serde::Deserialize;

use super::{Clock, Env, Expiring, Refreshing, Source, fail, http, metadata_http, snippet};
use crate::error::Result;

pub const SCOPE: &str = "https://www.googleapis.com/auth/cloud-platform";
const GOOGLE_TOKEN_URI: &str = "https://oauth2.googleapis.com/token";
const JWT_BEARER: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
/// Lifetime asked for in an assertion (Google's maximum).
const ASSERTION_TTL: u64 = 3600;

/// A parsed service-account key: who signs, where to exchange, and the RSA key.
#[derive(Clone)]
pub struct ServiceAccountKey {
    pub client_email: String,
    pub token_uri: String,
    pub private_key_id: Option<String>,
    key: Arc<RsaKeyPair>,
}

impl std::fmt::Debug for ServiceAccountKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceAccountKey")
            .field("client_email", &self.client_email)
            .field("token_uri", &self.token_uri)
            .finish_non_exhaustive()
    }
}

/// The fields of a credentials JSON document we read (service_account or authorized_user).
#[derive(Deserialize)]
struct CredentialsFile {
    #[serde(rename = "type", default)]
    kind: String,
    #[serde(default)]
    client_email: String,
    #[serde(default)]
    private_key: String,
    #[serde(default)]
    private_key_id: Option<String>,
    #[serde(default)]
    token_uri: Option<String>,
    #[serde(default)]
    client_id: String,
    #[serde(default)]
    client_secret: String,
    #[serde(default)]
    refresh_token: String,
}

/// A gcloud user's refresh token (`gcloud auth application-default login`).
#[derive(Clone)]
struct AuthorizedUser {
    client_id: String,
    client_secret: String,
    refresh_token: String,
    token_uri: String,
}

enum FileCredentials {
    ServiceAccount(ServiceAccountKey),
    AuthorizedUser(AuthorizedUser),
}

impl ServiceAccountKey {
    /// Parses a service-account key JSON document. The error says what is missing or wrong,
    /// never the key.
    pub fn parse(json: &str) -> Result<Self> {
        match parse_credentials(json)? {
            FileCredentials::ServiceAccount(k) => Ok(k),
            FileCredentials::AuthorizedUser(_) => Err(fail(
                "expected a service-account key (type service_account), got authorized_user",
            )),
        }
    }

    /// The signed JWT assertion (RS256) for a token request at `now`: iss and sub are the
    /// client email, aud the token URI, scope `cloud-platform`, valid for an hour.
    pub fn assertion(&self, now: u64) -> Result<String> {
        let mut header = serde_json::json!({"alg": "RS256", "typ": "JWT"});
        if let Some(kid) = &self.private_key_id {
            header["kid"] = kid.clone().into();
        }
        let claims = serde_json::json!({
            "iss": self.client_email,
            "sub": self.client_email,
            "aud": self.token_uri,
            "scope": SCOPE,
            "iat": now,
            "exp": now + ASSERTION_TTL,
        });
        let signing_input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let mut sig = vec![0u8; self.key.public().modulus_len()];
        self.key
            .sign(
                &ring::signature::RSA_PKCS1_SHA256,
                &ring::rand::SystemRandom::new(),
                signing_input.as_bytes(),
                &mut sig,
            )
            .map_err(|_| fail("cannot sign the service-account assertion"))?;
        Ok(format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(sig)))
    }

    /// The public key (DER `RSAPublicKey`), for tests that check signatures.
    #[cfg(test)]
    pub fn public_key_der(&self) -> Vec<u8> {
        use ring::signature::KeyPair;
        self.key.public_key().as_ref().to_vec()
    }
}

fn parse_credentials(json: &str) -> Result<FileCredentials> {
    let f: CredentialsFile = serde_json::from_str(json)
        .map_err(|e| fail(format!("not a GCP credentials JSON document: {e}")))?;
    match f.kind.as_str() {
        "service_account" => {
            if f.client_email.is_empty() || f.private_key.is_empty() {
                return Err(fail(
                    "the service-account key lacks client_email or private_key",
                ));
            }
            let key = rsa_key(&f.private_key)?;
            Ok(FileCredentials::ServiceAccount(ServiceAccountKey {
                client_email: f.client_email,
                token_uri: f
                    .token_uri
                    .filter(|u| !u.is_empty())
                    .unwrap_or_else(|| GOOGLE_TOKEN_URI.into()),
                private_key_id: f.private_key_id.filter(|k| !k.is_empty()),
                key: Arc::new(key),
            }))
        }
        "authorized_user" => {
            if f.client_id.is_empty() || f.refresh_token.is_empty() {
                return Err(fail(
                    "the authorized_user credentials lack client_id or refresh_token",
                ));
            }
            Ok(FileCredentials::AuthorizedUser(AuthorizedUser {
                client_id: f.client_id,
                client_secret: f.client_secret,
                refresh_token: f.refresh_token,
                token_uri: f
                    .token_uri
                    .filter(|u| !u.is_empty())
                    .unwrap_or_else(|| GOOGLE_TOKEN_URI.into()),
            }))
        }
        "" => Err(fail("the credentials JSON has no type")),
        other => Err(fail(format!(
            "GCP credentials of type {other:?} are not supported (use service_account or authorized_user)"
        ))),
    }
}

/// The RSA key of a PEM `private_key` (PKCS#8, or PKCS#1 `RSA PRIVATE KEY`).
fn rsa_key(pem: &str) -> Result<RsaKeyPair> {
    use rustls::pki_types::PrivateKeyDer;
    let der = rustls_pemfile::private_key(&mut pem.as_bytes())
        .ok()
        .flatten()
        .ok_or_else(|| fail("the service-account private_key is not a PEM private key"))?;
    let key = match &der {
        PrivateKeyDer::Pkcs8(k) => RsaKeyPair::from_pkcs8(k.secret_pkcs8_der()),
        PrivateKeyDer::Pkcs1(k) => RsaKeyPair::from_der(k.secret_pkcs1_der()),
        _ => return Err(fail("the service-account private_key is not an RSA key")),
    };
    key.map_err(|e| fail(format!("the service-account private_key is unusable: {e}")))
}

/// Where a [`GcpSource`] gets tokens.
enum Kind {
    ServiceAccount(ServiceAccountKey),
    Adc(Env),
}

/// A token source for [`Refreshing`].
pub struct GcpSource {
    kind: Kind,
    clock: Clock,
}

impl GcpSource {
    /// Tokens from a service-account key.
    pub fn service_account(key: ServiceAccountKey, clock: Clock) -> Refreshing<HeaderValue> {
        Refreshing::new(
            Self {
                kind: Kind::ServiceAccount(key),
                clock: clock.clone(),
            },
            clock,
        )
    }

    /// Tokens from Application Default Credentials, looked up at each fetch.
    pub fn adc(env: Env, clock: Clock) -> Refreshing<HeaderValue> {
        Refreshing::new(
            Self {
                kind: Kind::Adc(env),
                clock: clock.clone(),
            },
            clock,
        )
    }
}

#[async_trait::async_trait]
impl Source<HeaderValue> for GcpSource {
    async fn fetch(&self) -> Result<Expiring<HeaderValue>> {
        match &self.kind {
            Kind::ServiceAccount(k) => exchange_assertion(k, &self.clock).await,
            Kind::Adc(env) => adc(env, &self.clock).await,
        }
    }

    fn describe(&self) -> String {
        match &self.kind {
            Kind::ServiceAccount(k) => format!("gcp service account {}", k.client_email),
            Kind::Adc(_) => "gcp application default credentials".into(),
        }
    }
}

/// Application Default Credentials, in Google's order.
async fn adc(env: &Env, clock: &Clock) -> Result<Expiring<HeaderValue>> {
    let file = env.var("GOOGLE_APPLICATION_CREDENTIALS").or_else(|| {
        let dir = env
            .var("CLOUDSDK_CONFIG")
            .or_else(|| env.var("HOME").map(|h| format!("{h}/.config/gcloud")))?;
        let path = format!("{dir}/application_default_credentials.json");
        std::path::Path::new(&path).exists().then_some(path)
    });
    if let Some(path) = file {
        let json = tokio::fs::read_to_string(&path)
            .await
            .map_err(|e| fail(format!("cannot read GCP credentials {path}: {e}")))?;
        return match parse_credentials(&json)? {
            FileCredentials::ServiceAccount(k) => exchange_assertion(&k, clock).await,
            FileCredentials::AuthorizedUser(u) => refresh_user(&u, clock).await,
        };
    }
    metadata_server(env, clock).await
}

/// Exchanges a signed assertion for an access token at the key's `token_uri`.
async fn exchange_assertion(k: &ServiceAccountKey, clock: &Clock) -> Result<Expiring<HeaderValue>> {
    let assertion = k.assertion(clock())?;
    let req = http()
        .post(&k.token_uri)
        .form(&[("grant_type", JWT_BEARER), ("assertion", &assertion)]);
    token_response(req, &k.token_uri, clock).await
}

/// Exchanges a gcloud user's refresh token for an access token.
async fn refresh_user(u: &AuthorizedUser, clock: &Clock) -> Result<Expiring<HeaderValue>> {
    let req = http().post(&u.token_uri).form(&[
        ("grant_type", "refresh_token"),
        ("client_id", &u.client_id),
        ("client_secret", &u.client_secret),
        ("refresh_token", &u.refresh_token),
    ]);
    token_response(req, &u.token_uri, clock).await
}

/// The default service account's token from the GCE/GKE metadata server.
async fn metadata_server(env: &Env, clock: &Clock) -> Result<Expiring<HeaderValue>> {
    let host = env
        .var("GCE_METADATA_HOST")
        .unwrap_or_else(|| "metadata.google.internal".into());
    let url = format!("http://{host}/computeMetadata/v1/instance/service-accounts/default/token");
    let req = metadata_http()
        .get(&url)
        .header("Metadata-Flavor", "Google");
    token_response(req, "the GCE metadata server", clock)
        .await
        .map_err(|e| {
            fail(format!(
                "no GCP credentials: GOOGLE_APPLICATION_CREDENTIALS is unset and {e}"
            ))
        })
}

#[derive(Deserialize)]
struct TokenAnswer {
    #[serde(default)]
    access_token: String,
    #[serde(default)]
    expires_in: Option<u64>,
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    error_description: Option<String>,
}

/// Sends a token request and reads an OAuth2 token answer (`access_token`, `expires_in`).
async fn token_response(
    req: reqwest::RequestBuilder,
    what: &str,
    clock: &Clock,
) -> Result<Expiring<HeaderValue>> {
    let resp = req
        .send()
        .await
        .map_err(|e| fail(format!("{what} is unreachable: {e}")))?;
    let status = resp.status();
    let body = resp
        .text()
        .await
        .map_err(|e| fail(format!("{what}: {e}")))?;
    let answer: Option<TokenAnswer> = serde_json::from_str(&body).ok();
    if !status.is_success() {
        let detail = answer
            .and_then(|a| {
                a.error
                    .map(|e| format!("{e}: {}", a.error_description.unwrap_or_default()))
            })
            .unwrap_or_else(|| snippet(&body));
        return Err(fail(format!(
            "{what} answered {}: {detail}",
            status.as_u16()
        )));
    }
    let answer = answer
        .filter(|a| !a.access_token.is_empty())
        .ok_or_else(|| fail(format!("{what} answered without an access_token")))?;
    let mut value =
        HeaderValue::try_from(format!("Bearer {}", answer.access_token)).map_err(|_| {
            fail(format!(
                "{what} answered an access token that is not a header value"
            ))
        })?;
    value.set_sensitive(true);
    Ok(Expiring {
        value,
        expires_at: Some(clock() + answer.expires_in.unwrap_or(3600)),
    })
}

#[cfg(test)]
mod tests {
    use super::super::testing::serve;
    use super::*;

    const KEY_PEM: &str = include_str!("test-key.pem");

    fn key_json(token_uri: &str) -> String {
        serde_json::json!({
            "type": "service_account",
            "project_id": "p",
            "private_key_id": "kid-1",
            "private_key": KEY_PEM,
            "client_email": "gw@p.iam.gserviceaccount.com",
            "token_uri": token_uri,
        })
        .to_string()
    }

    fn clock(t: u64) -> Clock {
        Arc::new(move || t)
    }

    #[test]
    fn assertion_claims_and_signature() {
        let k = ServiceAccountKey::parse(&key_json("https://oauth2.example/token")).unwrap();
        let jwt = k.assertion(1_700_000_000).unwrap();
        let parts: Vec<&str> = jwt.split('.').collect();
        assert_eq!(parts.len(), 3);
        let header: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[0]).unwrap()).unwrap();
        assert_eq!(header["alg"], "RS256");
        assert_eq!(header["kid"], "kid-1");
        let claims: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
        assert_eq!(claims["iss"], "gw@p.iam.gserviceaccount.com");
        assert_eq!(claims["sub"], "gw@p.iam.gserviceaccount.com");
        assert_eq!(claims["aud"], "https://oauth2.example/token");
        assert_eq!(claims["scope"], SCOPE);
        assert_eq!(claims["iat"], 1_700_000_000u64);
        assert_eq!(claims["exp"], 1_700_003_600u64);
        let public = ring::signature::UnparsedPublicKey::new(
            &ring::signature::RSA_PKCS1_2048_8192_SHA256,
            k.public_key_der(),
        );
        let signed = format!("{}.{}", parts[0], parts[1]);
        let sig = URL_SAFE_NO_PAD.decode(parts[2]).unwrap();
        public.verify(signed.as_bytes(), &sig).unwrap();
        assert!(public.verify(b"tampered", &sig).is_err());
    }

    #[test]
    fn bad_keys_are_named_without_material() {
        let e = ServiceAccountKey::parse("{").unwrap_err().to_string();
        assert!(e.contains("not a GCP credentials JSON"), "{e}");
        let e = ServiceAccountKey::parse(r#"{"type":"external_account"}"#)
            .unwrap_err()
            .to_string();
        assert!(e.contains("external_account"), "{e}");
        let j = serde_json::json!({"type":"service_account","client_email":"a@b","private_key":"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"});
        let e = ServiceAccountKey::parse(&j.to_string())
            .unwrap_err()
            .to_string();
        assert!(e.contains("private_key"), "{e}");
        assert!(!e.contains("AAAA"), "{e}");
    }

    #[tokio::test]
    async fn service_account_exchange() {
        let mock = serve(|req| {
            assert_eq!(req.method, "POST");
            assert!(
                req.body
                    .contains("grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer")
            );
            assert!(req.body.contains("&assertion=ey"));
            (
                200,
                r#"{"access_token":"ya29.minted","expires_in":3599,"token_type":"Bearer"}"#.into(),
            )
        })
        .await;
        let k = ServiceAccountKey::parse(&key_json(&format!("{}/token", mock.url()))).unwrap();
        let cache = Arc::new(GcpSource::service_account(k, clock(1000)));
        let e = cache.get().await.unwrap();
        assert_eq!(e.value.to_str().unwrap(), "Bearer ya29.minted");
        assert!(e.value.is_sensitive());
        assert_eq!(e.expires_at, Some(1000 + 3599));
        assert_eq!(mock.requests()[0].path, "/token");
    }

    #[tokio::test]
    async fn token_endpoint_errors_are_reported() {
        let mock = serve(|_| {
            (
                400,
                r#"{"error":"invalid_grant","error_description":"Invalid JWT Signature."}"#.into(),
            )
        })
        .await;
        let k = ServiceAccountKey::parse(&key_json(&format!("{}/token", mock.url()))).unwrap();
        let cache = Arc::new(GcpSource::service_account(k, clock(1000)));
        let e = cache.get().await.unwrap_err().to_string();
        assert!(
            e.contains("400") && e.contains("invalid_grant: Invalid JWT Signature."),
            "{e}"
        );
    }

    #[tokio::test]
    async fn adc_metadata_server() {
        let mock = serve(|req| {
            assert_eq!(req.header("metadata-flavor"), Some("Google"));
            assert_eq!(
                req.path,
                "/computeMetadata/v1/instance/service-accounts/default/token"
            );
            (
                200,
                r#"{"access_token":"ya29.gce","expires_in":1800}"#.into(),
            )
        })
        .await;
        let env = Env::from_pairs(&[("GCE_METADATA_HOST", &mock.addr.to_string())]);
        let cache = Arc::new(GcpSource::adc(env, clock(50)));
        let e = cache.get().await.unwrap();
        assert_eq!(e.value.to_str().unwrap(), "Bearer ya29.gce");
        assert_eq!(e.expires_at, Some(1850));
    }

    #[tokio::test]
    async fn adc_authorized_user_file() {
        let mock = serve(|req| {
            assert!(req.body.contains("grant_type=refresh_token"));
            assert!(req.body.contains("refresh_token=1%2Frt"));
            (
                200,
                r#"{"access_token":"ya29.user","expires_in":3600}"#.into(),
            )
        })
        .await;
        let dir = std::env::temp_dir().join(format!("agora-adc-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("adc.json");
        std::fs::write(
            &path,
            serde_json::json!({
                "type": "authorized_user", "client_id": "cid", "client_secret": "cs",
                "refresh_token": "1/rt", "token_uri": format!("{}/token", mock.url()),
            })
            .to_string(),
        )
        .unwrap();
        let env = Env::from_pairs(&[("GOOGLE_APPLICATION_CREDENTIALS", path.to_str().unwrap())]);
        let cache = Arc::new(GcpSource::adc(env, clock(0)));
        assert_eq!(
            cache.get().await.unwrap().value.to_str().unwrap(),
            "Bearer ya29.user"
        );
        let _ = std::fs::remove_dir_all(dir);
    }

    #[tokio::test]
    async fn adc_without_anything_says_so() {
        // A port nothing listens on stands for "not on GCE".
        let env = Env::from_pairs(&[("GCE_METADATA_HOST", "127.0.0.1:9")]);
        let cache = Arc::new(GcpSource::adc(env, clock(0)));
        let e = cache.get().await.unwrap_err().to_string();
        assert!(e.contains("GOOGLE_APPLICATION_CREDENTIALS is unset"), "{e}");
    }
}
