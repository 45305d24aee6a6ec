//! Policy evaluation for the gateway: CEL expressions, authentication (JWT, API keys, basic),
//! authorization, rate limits, CORS and prompt guards. Pure where it can be: the proxy owns
//! I/O (Redis, JWKS fetching, webhooks) and calls in with what it learned.

pub mod authn;
pub mod authz;
pub mod budget;
pub mod cel;
pub mod compile;
pub mod cors;
pub mod error;
pub mod guard;
pub mod merge;
pub mod ratelimit;
pub mod spec;

pub use compile::{Policy, Target, compile};
pub use error::{Error, Scheme};
pub use merge::{Effective, merge};

/// Seconds since the Unix epoch (0 if the clock is before it).
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
