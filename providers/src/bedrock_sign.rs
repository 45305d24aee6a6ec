//! AWS Signature Version 4 request signing, as a pure function (the caller supplies the clock).
//!
//! [`sign`] returns the headers to add to a request: `x-amz-date`, `x-amz-content-sha256`,
//! `x-amz-security-token` (temporary credentials only) and `authorization`. The canonical
//! request follows the AWS specification:
//!
//! - canonical URI: `path_and_query`'s path is taken as already percent-encoded (as it goes on
//!   the wire); `.` and `..` segments are removed and, for every service but S3, each segment
//!   is percent-encoded again (so a Bedrock model id `...v1%3A0` is signed as `...v1%253A0`,
//!   as the AWS SDKs do);
//! - canonical query: each parameter decoded and re-encoded with the SigV4 rules, sorted by
//!   name then value;
//! - signed headers: `host`, every `x-amz-*` header and `content-type`, names lowercased and
//!   sorted, values trimmed with inner runs of spaces collapsed, repeated headers joined with
//!   `,`;
//! - payload: the SHA-256 of the body, hex.

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

/// AWS credentials.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The access key id (`AKIA...` / `ASIA...`).
    pub access_key_id: String,
    /// The secret access key.
    pub secret_access_key: String,
    /// The session token of temporary credentials.
    pub session_token: Option<String>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"<redacted>")
            .field(
                "session_token",
                &self.session_token.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

/// The parts of a request that are signed.
#[derive(Debug, Clone, Copy)]
pub struct RequestParts<'a> {
    /// HTTP method, e.g. `POST`.
    pub method: &'a str,
    /// The `Host` header value (the request's own `host` header, if any, is ignored).
    pub host: &'a str,
    /// The path, already percent-encoded, and the query string, if any.
    pub path_and_query: &'a str,
    /// The request's headers; `host`, `x-amz-*` and `content-type` ones are signed.
    pub headers: &'a [(String, String)],
}

const ALGORITHM: &str = "AWS4-HMAC-SHA256";

/// Signs a request made at `unix_time` (seconds); returns the headers to add to it. Headers of
/// the same names already in `headers` are replaced by these (they are left out of the
/// signature).
#[allow(clippy::too_many_arguments)]
pub fn sign(
    method: &str,
    host: &str,
    path_and_query: &str,
    headers: &[(String, String)],
    body: &[u8],
    region: &str,
    service: &str,
    creds: &Credentials,
    unix_time: u64,
) -> Vec<(String, String)> {
    let amz_date = amz_date(unix_time);
    let payload_hash = hex::encode(Sha256::digest(body));
    let mut added = vec![
        ("x-amz-date".to_string(), amz_date.clone()),
        ("x-amz-content-sha256".to_string(), payload_hash.clone()),
    ];
    if let Some(token) = &creds.session_token {
        added.push(("x-amz-security-token".to_string(), token.clone()));
    }
    let mut all: Vec<(String, String)> = headers
        .iter()
        .filter(|(name, _)| {
            !added.iter().any(|(a, _)| name.eq_ignore_ascii_case(a))
                && !name.eq_ignore_ascii_case("authorization")
        })
        .cloned()
        .collect();
    all.extend(added.iter().cloned());
    let req = RequestParts {
        method,
        host,
        path_and_query,
        headers: &all,
    };
    let auth = authorization(&req, &payload_hash, &amz_date, region, service, creds);
    added.push(("authorization".to_string(), auth));
    added
}

/// The `Authorization` header value for a request whose headers already hold `x-amz-date`
/// (= `amz_date`, `YYYYMMDDTHHMMSSZ`) and any other `x-amz-*` header to sign.
/// `payload_hash` is the hex SHA-256 of the body.
pub fn authorization(
    req: &RequestParts<'_>,
    payload_hash: &str,
    amz_date: &str,
    region: &str,
    service: &str,
    creds: &Credentials,
) -> String {
    let (canonical, signed_headers) = canonical_request(req, payload_hash, service);
    let day = amz_date.get(..8).unwrap_or(amz_date);
    let scope = format!("{day}/{region}/{service}/aws4_request");
    let string_to_sign = format!(
        "{ALGORITHM}\n{amz_date}\n{scope}\n{}",
        hex::encode(Sha256::digest(canonical.as_bytes()))
    );
    let secret = format!("AWS4{}", creds.secret_access_key);
    let mut key = hmac(secret.as_bytes(), day.as_bytes());
    for part in [region, service, "aws4_request"] {
        key = hmac(&key, part.as_bytes());
    }
    let signature = hex::encode(hmac(&key, string_to_sign.as_bytes()));
    format!(
        "{ALGORITHM} Credential={}/{scope}, SignedHeaders={signed_headers}, Signature={signature}",
        creds.access_key_id
    )
}

/// The canonical request and the signed header list (`host;x-amz-date`).
pub fn canonical_request(
    req: &RequestParts<'_>,
    payload_hash: &str,
    service: &str,
) -> (String, String) {
    let (path, query) = match req.path_and_query.split_once('?') {
        Some((p, q)) => (p, q),
        None => (req.path_and_query, ""),
    };
    let mut headers: Vec<(String, String)> = vec![("host".into(), normalize_value(req.host))];
    for (name, value) in req.headers {
        let name = name.trim().to_ascii_lowercase();
        if name == "host" || !(name.starts_with("x-amz-") || name == "content-type") {
            continue;
        }
        let value = normalize_value(value);
        match headers.iter_mut().find(|(n, _)| *n == name) {
            Some((_, v)) => {
                v.push(',');
                v.push_str(&value);
            }
            None => headers.push((name, value)),
        }
    }
    headers.sort_by(|a, b| a.0.cmp(&b.0));
    let signed: Vec<&str> = headers.iter().map(|(n, _)| n.as_str()).collect();
    let signed = signed.join(";");
    let mut canonical = String::new();
    canonical.push_str(&req.method.to_ascii_uppercase());
    canonical.push('\n');
    canonical.push_str(&canonical_uri(path, service != "s3"));
    canonical.push('\n');
    canonical.push_str(&canonical_query(query));
    canonical.push('\n');
    for (name, value) in &headers {
        canonical.push_str(name);
        canonical.push(':');
        canonical.push_str(value);
        canonical.push('\n');
    }
    canonical.push('\n');
    canonical.push_str(&signed);
    canonical.push('\n');
    canonical.push_str(payload_hash);
    (canonical, signed)
}

/// Percent-encodes every byte outside `A-Za-z0-9-._~` (the SigV4 rule, also what Bedrock
/// model ids need in a path).
pub fn uri_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for &b in s.as_bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `YYYYMMDDTHHMMSSZ` for a Unix time.
pub fn amz_date(unix_time: u64) -> String {
    let days = unix_time / 86_400;
    let secs = unix_time % 86_400;
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}{m:02}{d:02}T{:02}{:02}{:02}Z",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

/// Year, month, day of a count of days since 1970-01-01 (Howard Hinnant's algorithm).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + u64::from(m <= 2);
    (y, m, d)
}

fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
    // HMAC takes keys of any length, so this cannot fail.
    match Hmac::<Sha256>::new_from_slice(key) {
        Ok(mut mac) => {
            mac.update(data);
            mac.finalize().into_bytes().to_vec()
        }
        Err(_) => Vec::new(),
    }
}

/// Trims a header value and collapses inner runs of spaces.
fn normalize_value(v: &str) -> String {
    v.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The canonical URI of an already-encoded path.
fn canonical_uri(path: &str, encode_again: bool) -> String {
    let mut segments: Vec<&str> = Vec::new();
    let parts: Vec<&str> = path.split('/').collect();
    for (i, seg) in parts.iter().enumerate() {
        match *seg {
            "." => {}
            ".." => {
                segments.pop();
            }
            // The empty segment before the leading slash is implied below.
            "" if i == 0 => {}
            s => segments.push(s),
        }
    }
    // A path that ended in `/` (or `/.`, `/..`) keeps its trailing slash.
    let trailing = matches!(parts.last(), Some(&("" | "." | ".."))) && !segments.is_empty();
    let mut out = String::from("/");
    let encoded: Vec<String> = segments
        .iter()
        .map(|s| {
            if encode_again {
                uri_encode(s)
            } else {
                (*s).to_string()
            }
        })
        .collect();
    out.push_str(&encoded.join("/"));
    if trailing && !out.ends_with('/') {
        out.push('/');
    }
    out
}

/// The canonical query string.
fn canonical_query(query: &str) -> String {
    let mut params: Vec<(String, String)> = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (
                uri_encode(&percent_decode(k)),
                uri_encode(&percent_decode(v)),
            )
        })
        .collect();
    params.sort();
    params
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

/// Decodes `%XX` sequences (others are kept as they are).
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| char::from(b).to_digit(16);
        if bytes[i] == b'%'
            && let (Some(&h), Some(&l)) = (bytes.get(i + 1), bytes.get(i + 2))
            && let (Some(h), Some(l)) = (hex(h), hex(l))
        {
            out.push((h * 16 + l) as u8);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(amz_date(0), "19700101T000000Z");
        assert_eq!(amz_date(1_440_938_160), "20150830T123600Z");
        assert_eq!(amz_date(951_782_400), "20000229T000000Z");
        assert_eq!(amz_date(4_102_444_799), "20991231T235959Z");
    }

    #[test]
    fn uris() {
        assert_eq!(canonical_uri("", true), "/");
        assert_eq!(canonical_uri("/", true), "/");
        assert_eq!(
            canonical_uri("/model/a.b-v1%3A0/converse", true),
            "/model/a.b-v1%253A0/converse"
        );
        assert_eq!(
            canonical_uri("/model/a.b-v1%3A0/converse", false),
            "/model/a.b-v1%3A0/converse"
        );
        assert_eq!(canonical_uri("/example/..", true), "/");
        assert_eq!(canonical_uri("/a/./b/../c/", true), "/a/c/");
        assert_eq!(canonical_query("b=2&a=%7e&a=1&c"), "a=1&a=~&b=2&c=");
        assert_eq!(percent_decode("%zz%4"), "%zz%4");
        assert_eq!(uri_encode("a:b/c d"), "a%3Ab%2Fc%20d");
    }
}
