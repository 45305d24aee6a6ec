use std::sync::Arc;

use super::super::testing::serve;
use super::*;

const STS_OK: &str = r#"<AssumeRoleWithWebIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <AssumeRoleWithWebIdentityResult>
    <SubjectFromWebIdentityToken>system:serviceaccount:ns:sa</SubjectFromWebIdentityToken>
    <Credentials>
      <AccessKeyId>ASIASTSWEBID</AccessKeyId>
      <SecretAccessKey>wJalr/secret+key</SecretAccessKey>
      <SessionToken>FwoG&amp;token==</SessionToken>
      <Expiration>2030-01-01T01:00:00Z</Expiration>
    </Credentials>
  </AssumeRoleWithWebIdentityResult>
</AssumeRoleWithWebIdentityResponse>"#;

fn clock(t: u64) -> Clock {
    Arc::new(move || t)
}

#[test]
fn sts_xml() {
    let e = parse_sts_credentials(200, STS_OK).unwrap();
    assert_eq!(e.value.access_key_id, "ASIASTSWEBID");
    assert_eq!(e.value.secret_access_key, "wJalr/secret+key");
    assert_eq!(e.value.session_token.as_deref(), Some("FwoG&token=="));
    assert_eq!(e.expires_at, parse_rfc3339("2030-01-01T01:00:00Z"));
    let err = r#"<ErrorResponse><Error><Type>Sender</Type><Code>InvalidIdentityToken</Code><Message>Token expired</Message></Error></ErrorResponse>"#;
    let msg = parse_sts_credentials(400, err).unwrap_err();
    assert_eq!(msg, "answered 400: InvalidIdentityToken: Token expired");
    assert!(parse_sts_credentials(200, "<x/>").is_err());
}

#[test]
fn sts_endpoints() {
    let e = |pairs: &[(&str, &str)]| sts_endpoint(&Env::from_pairs(pairs));
    assert_eq!(e(&[]).0, "https://sts.amazonaws.com");
    assert_eq!(
        e(&[("AWS_REGION", "eu-west-1")]),
        (
            "https://sts.eu-west-1.amazonaws.com".into(),
            "eu-west-1".into()
        )
    );
    assert_eq!(
        e(&[("AWS_DEFAULT_REGION", "cn-north-1")]).0,
        "https://sts.cn-north-1.amazonaws.com.cn"
    );
    assert_eq!(
        e(&[
            ("AWS_REGION", "eu-west-1"),
            ("AWS_STS_REGIONAL_ENDPOINTS", "legacy")
        ])
        .0,
        "https://sts.amazonaws.com"
    );
    assert_eq!(
        e(&[("AWS_ENDPOINT_URL_STS", "http://127.0.0.1:1/")]).0,
        "http://127.0.0.1:1"
    );
}

#[tokio::test]
async fn env_comes_first() {
    let env = Env::from_pairs(&[
        ("AWS_ACCESS_KEY_ID", "AKIDENV"),
        ("AWS_SECRET_ACCESS_KEY", "s"),
        ("AWS_WEB_IDENTITY_TOKEN_FILE", "/nonexistent"),
        ("AWS_ROLE_ARN", "arn:aws:iam::1:role/r"),
    ]);
    let c = Arc::new(AwsSource::cached(None, None, env, clock(0)));
    let e = c.get().await.unwrap();
    assert_eq!(e.value.access_key_id, "AKIDENV");
    assert_eq!(e.expires_at, None);
}

#[tokio::test]
async fn web_identity_flow() {
    let sts = serve(|req| {
        assert_eq!(req.method, "POST");
        assert!(req.body.contains("Action=AssumeRoleWithWebIdentity"));
        assert!(
            req.body
                .contains("RoleArn=arn%3Aaws%3Aiam%3A%3A123456789012%3Arole%2Fbedrock")
        );
        assert!(req.body.contains("RoleSessionName=sess-1"));
        assert!(req.body.contains("WebIdentityToken=eyJ.projected.token"));
        assert!(req.header("authorization").is_none());
        (200, STS_OK.into())
    })
    .await;
    let dir = std::env::temp_dir().join(format!("agora-irsa-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let token = dir.join("token");
    std::fs::write(&token, "eyJ.projected.token\n").unwrap();
    let env = Env::from_pairs(&[
        ("AWS_WEB_IDENTITY_TOKEN_FILE", token.to_str().unwrap()),
        ("AWS_ROLE_ARN", "arn:aws:iam::123456789012:role/bedrock"),
        ("AWS_ROLE_SESSION_NAME", "sess-1"),
        ("AWS_ENDPOINT_URL_STS", &sts.url()),
        ("AWS_EC2_METADATA_DISABLED", "true"),
    ]);
    let c = Arc::new(AwsSource::cached(None, None, env, clock(0)));
    let e = c.get().await.unwrap();
    assert_eq!(e.value.access_key_id, "ASIASTSWEBID");
    assert_eq!(e.expires_at, parse_rfc3339("2030-01-01T01:00:00Z"));
    assert_eq!(sts.requests().len(), 1);
    let _ = std::fs::remove_dir_all(dir);
}

const IMDS_CREDS: &str = r#"{"Code":"Success","LastUpdated":"2030-01-01T00:00:00Z","Type":"AWS-HMAC","AccessKeyId":"ASIAIMDS","SecretAccessKey":"imds-secret","Token":"imds-token","Expiration":"2030-01-01T06:00:00Z"}"#;

#[tokio::test]
async fn imds_v2_flow() {
    let imds = serve(|req| match (req.method.as_str(), req.path.as_str()) {
        ("PUT", "/latest/api/token") => {
            assert_eq!(
                req.header("x-aws-ec2-metadata-token-ttl-seconds"),
                Some("21600")
            );
            (200, "session-tok".into())
        }
        ("GET", p) if req.header("x-aws-ec2-metadata-token") != Some("session-tok") => {
            (401, format!("no token for {p}"))
        }
        ("GET", "/latest/meta-data/iam/security-credentials/") => (200, "my-role\n".into()),
        ("GET", "/latest/meta-data/iam/security-credentials/my-role") => (200, IMDS_CREDS.into()),
        _ => (404, String::new()),
    })
    .await;
    let env = Env::from_pairs(&[("AWS_EC2_METADATA_SERVICE_ENDPOINT", &imds.url())]);
    let c = Arc::new(AwsSource::cached(None, None, env, clock(0)));
    let e = c.get().await.unwrap();
    assert_eq!(e.value.access_key_id, "ASIAIMDS");
    assert_eq!(e.value.session_token.as_deref(), Some("imds-token"));
    assert_eq!(e.expires_at, parse_rfc3339("2030-01-01T06:00:00Z"));
    let seen: Vec<String> = imds
        .requests()
        .iter()
        .map(|r| format!("{} {}", r.method, r.path))
        .collect();
    assert_eq!(
        seen,
        [
            "PUT /latest/api/token",
            "GET /latest/meta-data/iam/security-credentials/",
            "GET /latest/meta-data/iam/security-credentials/my-role"
        ]
    );
}

#[tokio::test]
async fn disabled_instance_metadata_is_not_called() {
    for value in ["true", "TRUE"] {
        let imds = serve(|_| (200, IMDS_CREDS.into())).await;
        let env = Env::from_pairs(&[
            ("AWS_EC2_METADATA_SERVICE_ENDPOINT", &imds.url()),
            ("AWS_EC2_METADATA_DISABLED", value),
        ]);
        let c = Arc::new(AwsSource::cached(None, None, env, clock(0)));
        let e = c.get().await.unwrap_err().to_string();
        assert!(e.contains("instance metadata is disabled"), "{e}");
        assert!(imds.requests().is_empty(), "{value}: {:?}", imds.requests());
    }
    // Any other value leaves it on.
    let imds = serve(|_| (500, String::new())).await;
    let env = Env::from_pairs(&[
        ("AWS_EC2_METADATA_SERVICE_ENDPOINT", &imds.url()),
        ("AWS_EC2_METADATA_DISABLED", "false"),
    ]);
    let c = Arc::new(AwsSource::cached(None, None, env, clock(0)));
    let e = c.get().await.unwrap_err().to_string();
    assert!(e.contains("instance metadata failed"), "{e}");
    assert!(!imds.requests().is_empty());
}

#[tokio::test]
async fn imds_failure_explains_the_chain() {
    let env = Env::from_pairs(&[("AWS_EC2_METADATA_SERVICE_ENDPOINT", "http://127.0.0.1:9")]);
    let c = Arc::new(AwsSource::cached(None, None, env, clock(0)));
    let e = c.get().await.unwrap_err().to_string();
    assert!(e.starts_with("no AWS credentials"), "{e}");
    assert!(e.contains("instance metadata failed"), "{e}");
}

#[tokio::test]
async fn container_credentials_with_token_file() {
    let ecs = serve(|req| {
        assert_eq!(req.path, "/v1/credentials");
        assert_eq!(req.header("authorization"), Some("pod-identity-token"));
        (200, IMDS_CREDS.replace("ASIAIMDS", "ASIAPOD"))
    })
    .await;
    let dir = std::env::temp_dir().join(format!("agora-pod-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let token = dir.join("token");
    std::fs::write(&token, "pod-identity-token\n").unwrap();
    let env = Env::from_pairs(&[
        (
            "AWS_CONTAINER_CREDENTIALS_FULL_URI",
            &format!("{}/v1/credentials", ecs.url()),
        ),
        (
            "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
            token.to_str().unwrap(),
        ),
    ]);
    let c = Arc::new(AwsSource::cached(None, None, env, clock(0)));
    assert_eq!(c.get().await.unwrap().value.access_key_id, "ASIAPOD");
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn assume_role_is_signed_with_the_base_credentials() {
    let sts = serve(|req| {
        assert!(req.body.contains("Action=AssumeRole&"));
        let auth = req.header("authorization").unwrap_or_default();
        assert!(
            auth.starts_with(
                "AWS4-HMAC-SHA256 Credential=AKIDBASE/20300101/eu-west-1/sts/aws4_request"
            ),
            "{auth}"
        );
        (200, STS_OK.replace("WebIdentity", ""))
    })
    .await;
    let env = Env::from_pairs(&[
        ("AWS_ENDPOINT_URL_STS", &sts.url()),
        ("AWS_REGION", "eu-west-1"),
    ]);
    let base = Credentials {
        access_key_id: "AKIDBASE".into(),
        secret_access_key: "base-secret".into(),
        session_token: None,
    };
    let now = parse_rfc3339("2030-01-01T00:00:00Z").unwrap();
    let c = Arc::new(AwsSource::cached(
        Some(base),
        Some("arn:aws:iam::123456789012:role/x".into()),
        env,
        clock(now),
    ));
    assert_eq!(c.get().await.unwrap().value.access_key_id, "ASIASTSWEBID");
}

#[tokio::test]
async fn temporary_credentials_refresh_before_expiration() {
    let n = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let count = n.clone();
    let imds = serve(move |req| match req.method.as_str() {
        "PUT" => (200, "t".into()),
        _ if req.path.ends_with("/security-credentials/") => (200, "r".into()),
        _ => {
            let k = count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            (200, IMDS_CREDS.replace("ASIAIMDS", &format!("ASIA{k}")))
        }
    })
    .await;
    let exp = parse_rfc3339("2030-01-01T06:00:00Z").unwrap();
    let now = Arc::new(std::sync::atomic::AtomicU64::new(exp - 3600));
    let t = now.clone();
    let clock: Clock = Arc::new(move || t.load(std::sync::atomic::Ordering::SeqCst));
    let env = Env::from_pairs(&[("AWS_EC2_METADATA_SERVICE_ENDPOINT", &imds.url())]);
    let c = Arc::new(AwsSource::cached(None, None, env, clock));
    assert_eq!(c.get().await.unwrap().value.access_key_id, "ASIA0");
    now.store(exp - 120, std::sync::atomic::Ordering::SeqCst);
    // Still valid: served at once, refreshed behind the scenes.
    assert_eq!(c.get().await.unwrap().value.access_key_id, "ASIA0");
    for _ in 0..50 {
        if n.load(std::sync::atomic::Ordering::SeqCst) == 2 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    assert_eq!(c.get().await.unwrap().value.access_key_id, "ASIA1");
}
