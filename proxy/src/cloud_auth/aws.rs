//! AWS credentials for SigV4: the default chain the AWS SDKs walk (environment variables,
//! web identity through STS `AssumeRoleWithWebIdentity` (EKS IRSA), ECS / EKS Pod Identity
//! container credentials, EC2 instance metadata (IMDSv2)), and optionally an STS
//! `AssumeRole` on top. Temporary credentials carry their `Expiration`, which the cache
//! refreshes ahead of.

use agora_providers::bedrock_sign::{self, Credentials};
use serde::Deserialize;

use super::{
    Clock, Env, Expiring, Refreshing, Source, fail, http, metadata_http, parse_rfc3339, snippet,
};
use crate::error::Result;

const STS_VERSION: &str = "2011-06-15";
const ECS_HOST: &str = "http://169.254.170.2";
const IMDS: &str = "http://169.254.169.254";

/// A credential source for [`Refreshing`]: fixed keys or the default chain, optionally
/// assuming a role with them.
pub struct AwsSource {
    fixed: Option<Credentials>,
    role: Option<String>,
    env: Env,
    clock: Clock,
}

impl AwsSource {
    /// A cached source: `fixed` keys or the default chain, assuming `role` when set.
    pub fn cached(
        fixed: Option<Credentials>,
        role: Option<String>,
        env: Env,
        clock: Clock,
    ) -> Refreshing<Credentials> {
        Refreshing::new(
            Self {
                fixed,
                role,
                env,
                clock: clock.clone(),
            },
            clock,
        )
    }
}

#[async_trait::async_trait]
impl Source<Credentials> for AwsSource {
    async fn fetch(&self) -> Result<Expiring<Credentials>> {
        let base = match &self.fixed {
            Some(c) => Expiring {
                value: c.clone(),
                expires_at: None,
            },
            None => chain(&self.env, &self.clock).await?,
        };
        match &self.role {
            None => Ok(base),
            Some(arn) => assume_role(&base.value, arn, &self.env, &self.clock).await,
        }
    }

    fn describe(&self) -> String {
        let base = if self.fixed.is_some() {
            "aws static keys"
        } else {
            "aws default credential chain"
        };
        match &self.role {
            Some(r) => format!("{base}, assuming {r}"),
            None => base.to_string(),
        }
    }
}

/// The first credentials the chain finds. Each step is read afresh at every fetch (a
/// rotated web identity token file is picked up).
async fn chain(env: &Env, clock: &Clock) -> Result<Expiring<Credentials>> {
    if let (Some(id), Some(secret)) = (
        env.var("AWS_ACCESS_KEY_ID"),
        env.var("AWS_SECRET_ACCESS_KEY"),
    ) {
        return Ok(Expiring {
            value: Credentials {
                access_key_id: id,
                secret_access_key: secret,
                session_token: env.var("AWS_SESSION_TOKEN"),
            },
            expires_at: None,
        });
    }
    if let (Some(file), Some(role)) = (
        env.var("AWS_WEB_IDENTITY_TOKEN_FILE"),
        env.var("AWS_ROLE_ARN"),
    ) {
        return web_identity(&file, &role, env, clock).await;
    }
    if env.var("AWS_CONTAINER_CREDENTIALS_FULL_URI").is_some()
        || env.var("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI").is_some()
    {
        return container(env, clock).await;
    }
    if env
        .var("AWS_EC2_METADATA_DISABLED")
        .is_some_and(|v| v.eq_ignore_ascii_case("true"))
    {
        return Err(fail(
            "no AWS credentials: no AWS_ACCESS_KEY_ID, web identity or container credentials, and instance metadata is disabled",
        ));
    }
    imds(env, clock).await.map_err(|e| {
        fail(format!(
            "no AWS credentials: no AWS_ACCESS_KEY_ID, web identity or container credentials, and instance metadata failed: {e}"
        ))
    })
}

/// The STS endpoint: `AWS_ENDPOINT_URL_STS` (or `AWS_ENDPOINT_URL`), else the regional
/// endpoint of `AWS_REGION` / `AWS_DEFAULT_REGION` unless `AWS_STS_REGIONAL_ENDPOINTS` is
/// `legacy`, else the global one. Also returns the region to sign for.
fn sts_endpoint(env: &Env) -> (String, String) {
    let region = env
        .var("AWS_REGION")
        .or_else(|| env.var("AWS_DEFAULT_REGION"));
    let sign_region = region.clone().unwrap_or_else(|| "us-east-1".into());
    if let Some(url) = env
        .var("AWS_ENDPOINT_URL_STS")
        .or_else(|| env.var("AWS_ENDPOINT_URL"))
    {
        return (url.trim_end_matches('/').to_string(), sign_region);
    }
    let legacy = env
        .var("AWS_STS_REGIONAL_ENDPOINTS")
        .is_some_and(|v| v.eq_ignore_ascii_case("legacy"));
    match region {
        Some(r) if !legacy => {
            let suffix = if r.starts_with("cn-") {
                "amazonaws.com.cn"
            } else {
                "amazonaws.com"
            };
            (format!("https://sts.{r}.{suffix}"), r)
        }
        _ => ("https://sts.amazonaws.com".into(), "us-east-1".into()),
    }
}

/// `application/x-www-form-urlencoded` of `pairs`.
fn form(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| {
            format!(
                "{}={}",
                bedrock_sign::uri_encode(k),
                bedrock_sign::uri_encode(v)
            )
        })
        .collect::<Vec<_>>()
        .join("&")
}

const FORM: &str = "application/x-www-form-urlencoded; charset=utf-8";

fn session_name(env: &Env, clock: &Clock) -> String {
    env.var("AWS_ROLE_SESSION_NAME")
        .unwrap_or_else(|| format!("agora-{}", clock()))
}

/// IRSA / EKS: exchanges the projected service-account token for role credentials.
async fn web_identity(
    file: &str,
    role: &str,
    env: &Env,
    clock: &Clock,
) -> Result<Expiring<Credentials>> {
    let token = tokio::fs::read_to_string(file).await.map_err(|e| {
        fail(format!(
            "cannot read AWS_WEB_IDENTITY_TOKEN_FILE {file}: {e}"
        ))
    })?;
    let (endpoint, _) = sts_endpoint(env);
    let body = form(&[
        ("Action", "AssumeRoleWithWebIdentity"),
        ("Version", STS_VERSION),
        ("RoleArn", role),
        ("RoleSessionName", &session_name(env, clock)),
        ("WebIdentityToken", token.trim()),
    ]);
    let req = http()
        .post(format!("{endpoint}/"))
        .header(http::header::CONTENT_TYPE, FORM)
        .body(body);
    sts_call(
        req,
        &endpoint,
        &format!("STS AssumeRoleWithWebIdentity for {role}"),
    )
    .await
}

/// Sends an STS request and reads the credentials of its answer; errors name `what`.
async fn sts_call(
    req: reqwest::RequestBuilder,
    endpoint: &str,
    what: &str,
) -> Result<Expiring<Credentials>> {
    let resp = req
        .send()
        .await
        .map_err(|e| fail(format!("STS {endpoint} is unreachable: {e}")))?;
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap_or_default();
    parse_sts_credentials(status, &text).map_err(|e| fail(format!("{what}: {e}")))
}

/// STS `AssumeRole` signed with `base`.
async fn assume_role(
    base: &Credentials,
    role: &str,
    env: &Env,
    clock: &Clock,
) -> Result<Expiring<Credentials>> {
    let (endpoint, region) = sts_endpoint(env);
    let url = reqwest::Url::parse(&format!("{endpoint}/"))
        .map_err(|e| fail(format!("STS endpoint {endpoint}: {e}")))?;
    let host = match (url.host_str(), url.port()) {
        (Some(h), Some(p)) => format!("{h}:{p}"),
        (Some(h), None) => h.to_string(),
        (None, _) => return Err(fail(format!("STS endpoint {endpoint} has no host"))),
    };
    let body = form(&[
        ("Action", "AssumeRole"),
        ("Version", STS_VERSION),
        ("RoleArn", role),
        ("RoleSessionName", &session_name(env, clock)),
    ]);
    let headers = vec![("content-type".to_string(), FORM.to_string())];
    let signed = bedrock_sign::sign(
        "POST",
        &host,
        "/",
        &headers,
        body.as_bytes(),
        &region,
        "sts",
        base,
        clock(),
    );
    let mut req = http()
        .post(url)
        .header(http::header::CONTENT_TYPE, FORM)
        .body(body);
    for (k, v) in signed {
        req = req.header(k, v);
    }
    sts_call(req, &endpoint, &format!("STS AssumeRole for {role}")).await
}

/// The credentials of an STS answer (`AssumeRole*Response`, XML), or its error
/// (`Code: Message`). Only the few elements needed are read.
pub fn parse_sts_credentials(
    status: u16,
    xml: &str,
) -> std::result::Result<Expiring<Credentials>, String> {
    if !(200..300).contains(&status) || xml_text(xml, "Error").is_some() {
        let code = xml_text(xml, "Code").unwrap_or_default();
        let message = xml_text(xml, "Message").unwrap_or_else(|| snippet(xml));
        return Err(format!("answered {status}: {code}: {message}"));
    }
    let creds = xml_text(xml, "Credentials").ok_or("no Credentials in the answer")?;
    let field = |name: &str| {
        xml_text(&creds, name)
            .filter(|v| !v.is_empty())
            .ok_or_else(|| format!("no {name} in the answer"))
    };
    let expiration = field("Expiration")?;
    Ok(Expiring {
        value: Credentials {
            access_key_id: field("AccessKeyId")?,
            secret_access_key: field("SecretAccessKey")?,
            session_token: Some(field("SessionToken")?),
        },
        expires_at: Some(
            parse_rfc3339(&expiration).ok_or_else(|| format!("bad Expiration {expiration:?}"))?,
        ),
    })
}

/// The text inside the first `<tag>…</tag>` (entities decoded), if any.
fn xml_text(xml: &str, tag: &str) -> Option<String> {
    let open = format!("<{tag}>");
    let close = format!("</{tag}>");
    let start = xml.find(&open)? + open.len();
    let end = start + xml[start..].find(&close)?;
    let raw = xml[start..end].trim();
    Some(
        raw.replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&quot;", "\"")
            .replace("&apos;", "'")
            .replace("&amp;", "&"),
    )
}

/// The JSON credentials of the container endpoint and IMDS.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct JsonCredentials {
    #[serde(default)]
    access_key_id: String,
    #[serde(default)]
    secret_access_key: String,
    #[serde(default)]
    token: Option<String>,
    #[serde(default)]
    expiration: Option<String>,
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    message: Option<String>,
}

fn json_credentials(what: &str, body: &str, clock: &Clock) -> Result<Expiring<Credentials>> {
    let c: JsonCredentials = serde_json::from_str(body).map_err(|_| {
        fail(format!(
            "{what} answered no credentials JSON: {}",
            snippet(body)
        ))
    })?;
    if let Some(code) = c.code.as_deref().filter(|c| *c != "Success") {
        return Err(fail(format!(
            "{what} answered {code}: {}",
            c.message.unwrap_or_default()
        )));
    }
    if c.access_key_id.is_empty() || c.secret_access_key.is_empty() {
        return Err(fail(format!(
            "{what} answered without AccessKeyId / SecretAccessKey"
        )));
    }
    // Temporary credentials without a readable expiry are refreshed within minutes.
    let expires_at = c
        .expiration
        .as_deref()
        .and_then(parse_rfc3339)
        .or_else(|| Some(clock() + 900));
    Ok(Expiring {
        value: Credentials {
            access_key_id: c.access_key_id,
            secret_access_key: c.secret_access_key,
            session_token: c.token.filter(|t| !t.is_empty()),
        },
        expires_at,
    })
}

/// ECS task role / EKS Pod Identity: the container credentials endpoint.
async fn container(env: &Env, clock: &Clock) -> Result<Expiring<Credentials>> {
    let url = match env.var("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI") {
        Some(rel) => format!("{ECS_HOST}{rel}"),
        None => env
            .var("AWS_CONTAINER_CREDENTIALS_FULL_URI")
            .unwrap_or_default(),
    };
    let token = match env.var("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE") {
        Some(f) => Some(
            tokio::fs::read_to_string(&f)
                .await
                .map_err(|e| {
                    fail(format!(
                        "cannot read AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE {f}: {e}"
                    ))
                })?
                .trim()
                .to_string(),
        ),
        None => env.var("AWS_CONTAINER_AUTHORIZATION_TOKEN"),
    };
    let mut req = metadata_http().get(&url);
    if let Some(t) = token {
        req = req.header(http::header::AUTHORIZATION, t);
    }
    let what = "the container credentials endpoint";
    let resp = req
        .send()
        .await
        .map_err(|e| fail(format!("{what} {url} is unreachable: {e}")))?;
    let status = resp.status();
    let body = resp.text().await.unwrap_or_default();
    if !status.is_success() {
        return Err(fail(format!(
            "{what} answered {}: {}",
            status.as_u16(),
            snippet(&body)
        )));
    }
    json_credentials(what, &body, clock)
}

/// EC2 instance role through IMDSv2: a session token, the role name, its credentials.
async fn imds(env: &Env, clock: &Clock) -> Result<Expiring<Credentials>> {
    let base = env
        .var("AWS_EC2_METADATA_SERVICE_ENDPOINT")
        .unwrap_or_else(|| IMDS.into());
    let base = base.trim_end_matches('/');
    let c = metadata_http();
    let step = |what: &'static str| move |e: reqwest::Error| fail(format!("IMDS {what}: {e}"));
    let token = c
        .put(format!("{base}/latest/api/token"))
        .header("x-aws-ec2-metadata-token-ttl-seconds", "21600")
        .send()
        .await
        .and_then(reqwest::Response::error_for_status)
        .map_err(step("token"))?
        .text()
        .await
        .map_err(step("token"))?;
    let creds_path = format!("{base}/latest/meta-data/iam/security-credentials/");
    let roles = c
        .get(&creds_path)
        .header("x-aws-ec2-metadata-token", token.trim())
        .send()
        .await
        .and_then(reqwest::Response::error_for_status)
        .map_err(step("role name (is an instance profile attached?)"))?
        .text()
        .await
        .map_err(step("role name"))?;
    let role = roles
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .ok_or_else(|| fail("IMDS: no instance profile role"))?;
    let body = c
        .get(format!("{creds_path}{role}"))
        .header("x-aws-ec2-metadata-token", token.trim())
        .send()
        .await
        .and_then(reqwest::Response::error_for_status)
        .map_err(step("credentials"))?
        .text()
        .await
        .map_err(step("credentials"))?;
    json_credentials("IMDS", &body, clock)
}

#[cfg(test)]
mod tests;
