//! Agora's resource model, generated from `proto/agora/resource/v1/resource.proto`, and the
//! delta-xDS envelope that carries it (`proto/agora/xds/v1/xds.proto`).
//!
//! The types are plain prost messages with `serde::Serialize` (for `/config_dump`): secret
//! fields serialize as `"[redacted]"`.

/// Resource model v1.
pub mod resource {
    #![allow(clippy::all, missing_docs)]
    include!(concat!(env!("OUT_DIR"), "/agora.resource.v1.rs"));
}

pub mod mcp_spec;

#[cfg(feature = "xds")]
/// Delta xDS envelope (`DeltaDiscoveryRequest` / `DeltaDiscoveryResponse`) and the ADS service.
pub mod xds {
    #![allow(clippy::all, missing_docs)]
    include!(concat!(env!("OUT_DIR"), "/agora.xds.v1.rs"));

    /// The one type URL Agora's xDS carries: every resource is an `agora.resource.v1.Resource`.
    pub const RESOURCE_TYPE_URL: &str = "type.googleapis.com/agora.resource.v1.Resource";
}

#[cfg(feature = "xds")]
/// Envoy's external authorization API (`envoy.service.auth.v3`, the subset Agora speaks):
/// the `extAuth` policy's gRPC client; the server side serves tests.
pub mod ext_authz {
    #![allow(clippy::all, missing_docs)]
    include!(concat!(env!("OUT_DIR"), "/envoy.service.auth.v3.rs"));
}

#[cfg(feature = "xds")]
/// Envoy's external processing API (`envoy.service.ext_proc.v3`, the subset Agora speaks):
/// the InferencePool endpoint picker's gRPC client; the server side serves tests.
pub mod ext_proc {
    #![allow(clippy::all, missing_docs)]
    include!(concat!(env!("OUT_DIR"), "/envoy.service.ext_proc.v3.rs"));
}

/// `google.protobuf.Duration`, serialized as a `"1.5s"` string in dumps.
#[derive(Clone, Copy, PartialEq, Eq, Hash, prost::Message)]
pub struct Duration {
    #[prost(int64, tag = "1")]
    pub seconds: i64,
    #[prost(int32, tag = "2")]
    pub nanos: i32,
}

impl From<std::time::Duration> for Duration {
    fn from(d: std::time::Duration) -> Self {
        Self {
            seconds: i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
            nanos: i32::try_from(d.subsec_nanos()).unwrap_or(0),
        }
    }
}

impl From<Duration> for std::time::Duration {
    fn from(d: Duration) -> Self {
        std::time::Duration::new(
            u64::try_from(d.seconds).unwrap_or(0),
            u32::try_from(d.nanos).unwrap_or(0),
        )
    }
}

impl serde::Serialize for Duration {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let d: std::time::Duration = (*self).into();
        s.serialize_str(&format!("{}s", d.as_secs_f64()))
    }
}

/// Serializes a secret as `"[redacted]"` (or nothing, when it is empty).
pub fn redact<S: serde::Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(if v.is_empty() { "" } else { "[redacted]" })
}

/// Serializes a list of secrets as one `"[redacted]"` per entry.
pub fn redact_strs<S: serde::Serializer>(v: &[String], s: S) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeSeq;
    let mut seq = s.serialize_seq(Some(v.len()))?;
    for _ in v {
        seq.serialize_element("[redacted]")?;
    }
    seq.end()
}

/// Serializes a secret string as `"[redacted]"`.
pub fn redact_str<S: serde::Serializer>(v: &str, s: S) -> Result<S::Ok, S::Error> {
    redact(v.as_bytes(), s)
}

/// Parses a Gateway API duration (`1h`, `10s`, `500ms`, `1m30s`; units h, m, s, ms).
pub fn parse_duration(s: &str) -> Option<std::time::Duration> {
    let s = s.trim();
    if s.is_empty() {
        return None;
    }
    if s == "0" {
        return Some(std::time::Duration::ZERO);
    }
    let mut total = std::time::Duration::ZERO;
    let mut rest = s;
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit() && c != '.')?;
        if digits == 0 {
            return None;
        }
        let n: f64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let secs = match &rest[..unit_len] {
            "h" => n * 3600.0,
            "m" => n * 60.0,
            "s" => n,
            "ms" => n / 1000.0,
            _ => return None,
        };
        total += std::time::Duration::try_from_secs_f64(secs).ok()?;
        rest = &rest[unit_len..];
    }
    Some(total)
}

#[cfg(test)]
mod tests {
    use super::parse_duration;
    use std::time::Duration;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("10s"), Some(Duration::from_secs(10)));
        assert_eq!(parse_duration("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(parse_duration("1m30s"), Some(Duration::from_secs(90)));
        assert_eq!(parse_duration("1h"), Some(Duration::from_secs(3600)));
        assert_eq!(parse_duration("0"), Some(Duration::ZERO));
        assert_eq!(parse_duration("10"), None);
        assert_eq!(parse_duration("s"), None);
        assert_eq!(parse_duration("10x"), None);
    }
}
