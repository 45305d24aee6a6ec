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

#[cfg(feature = "xds")]
/// Delta xDS envelope (`DeltaDiscoveryRequest` / `DeltaDiscoveryResponse`) and the ADS service.
pub mod xds {
    #![allow(clippy::all, missing_docs)]
    include!(concat!(env!("OUT_DIR"), "/agora.xds.v1.rs"));

    /// The one type URL Agora's xDS carries: every resource is an `agora.resource.v1.Resource`.
    pub const RESOURCE_TYPE_URL: &str = "type.googleapis.com/agora.resource.v1.Resource";
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

/// Serializes a secret string as `"[redacted]"`.
pub fn redact_str<S: serde::Serializer>(v: &str, s: S) -> Result<S::Ok, S::Error> {
    redact(v.as_bytes(), s)
}
