//! AWS Signature Version 4: AWS's published test vectors and a Bedrock request signed with
//! temporary credentials.

// Test helpers may unwrap too (clippy.toml only covers `#[test]` functions).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use agora_providers::bedrock_sign::{self, Credentials, RequestParts};

fn example_creds(session_token: Option<&str>) -> Credentials {
    Credentials {
        access_key_id: "AKIDEXAMPLE".into(),
        secret_access_key: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY".into(),
        session_token: session_token.map(str::to_string),
    }
}

const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

#[test]
fn sigv4_get_vanilla() {
    // AWS Signature Version 4 test suite, "get-vanilla".
    let headers = vec![("X-Amz-Date".to_string(), "20150830T123600Z".to_string())];
    let req = RequestParts {
        method: "GET",
        host: "example.amazonaws.com",
        path_and_query: "/",
        headers: &headers,
    };
    let (canonical, signed) = bedrock_sign::canonical_request(&req, EMPTY_SHA256, "service");
    assert_eq!(
        canonical,
        format!(
            "GET\n/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\n{EMPTY_SHA256}"
        )
    );
    assert_eq!(signed, "host;x-amz-date");
    let auth = bedrock_sign::authorization(
        &req,
        EMPTY_SHA256,
        "20150830T123600Z",
        "us-east-1",
        "service",
        &example_creds(None),
    );
    assert_eq!(
        auth,
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, \
         SignedHeaders=host;x-amz-date, \
         Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"
    );
}

#[test]
fn sigv4_post_with_body() {
    // AWS Signature Version 4 test suite, "post-x-www-form-urlencoded".
    let headers = vec![
        (
            "Content-Type".to_string(),
            "application/x-www-form-urlencoded".to_string(),
        ),
        ("X-Amz-Date".to_string(), "20150830T123600Z".to_string()),
        ("Content-Length".to_string(), "13".to_string()),
    ];
    let req = RequestParts {
        method: "POST",
        host: "example.amazonaws.com",
        path_and_query: "/",
        headers: &headers,
    };
    let auth = bedrock_sign::authorization(
        &req,
        "9095672bbd1f56dfc5b65f3e153adc8731a4a654192329106275f4c7b24d0b6e",
        "20150830T123600Z",
        "us-east-1",
        "service",
        &example_creds(None),
    );
    assert_eq!(
        auth,
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, \
         SignedHeaders=content-type;host;x-amz-date, \
         Signature=ff11897932ad3f4e8b18135d722051e5ac45fc38421b1da7b9d196a0fe09473a"
    );
}

#[test]
fn sigv4_sign_bedrock_request() {
    // Expected values computed independently from the specification (a Python script with
    // hashlib/hmac), for a Bedrock call with temporary credentials.
    let body = br#"{"messages":[{"role":"user","content":[{"text":"Hi"}]}]}"#;
    let headers = vec![
        ("Content-Type".to_string(), "application/json".to_string()),
        ("Accept".to_string(), "application/json".to_string()),
        ("X-Amz-Date".to_string(), "stale, replaced".to_string()),
    ];
    let token = "IQoJb3JpZ2luX2VjEXAMPLE//token+=";
    let added = bedrock_sign::sign(
        "POST",
        "bedrock-runtime.us-east-1.amazonaws.com",
        "/model/anthropic.claude-3-5-sonnet-20240620-v1%3A0/converse",
        &headers,
        body,
        "us-east-1",
        "bedrock",
        &example_creds(Some(token)),
        1_440_938_160,
    );
    let sha = "45e583fed2564dc00e823303d7609f8587af7f685b993cb0f998afc0d480b01d";
    assert_eq!(
        added,
        vec![
            ("x-amz-date".to_string(), "20150830T123600Z".to_string()),
            ("x-amz-content-sha256".to_string(), sha.to_string()),
            ("x-amz-security-token".to_string(), token.to_string()),
            (
                "authorization".to_string(),
                "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/bedrock/aws4_request, \
                 SignedHeaders=content-type;host;x-amz-content-sha256;x-amz-date;x-amz-security-token, \
                 Signature=fae34dc14de4846c452f5a8b6a7c868c870df64bd2e16760f4b5ba0e571107be"
                    .to_string()
            ),
        ]
    );
    // Without a session token there is no token header, and the signature changes.
    let added = bedrock_sign::sign(
        "POST",
        "bedrock-runtime.us-east-1.amazonaws.com",
        "/model/m/converse",
        &[],
        b"",
        "us-east-1",
        "bedrock",
        &example_creds(None),
        0,
    );
    let names: Vec<&str> = added.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        ["x-amz-date", "x-amz-content-sha256", "authorization"]
    );
    assert_eq!(added[1].1, EMPTY_SHA256);
    assert!(
        added[2]
            .1
            .contains("SignedHeaders=host;x-amz-content-sha256;x-amz-date,")
    );
    // Credentials never show in Debug output.
    let shown = format!("{:?}", example_creds(Some(token)));
    assert!(
        !shown.contains("EXAMPLEKEY") && !shown.contains(token),
        "{shown}"
    );
}
