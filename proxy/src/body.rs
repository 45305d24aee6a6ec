//! Request bodies: the size limit, buffering for body-aware routing, and replaying a
//! buffered body to the upstream.
//!
//! Pingora forwards a body that `request_filter` has read only through its retry buffer,
//! which holds at most 64 KiB. A buffered body below that is replayed from the retry buffer;
//! a larger one is re-sent through a subrequest whose body is preset to the buffered bytes
//! (the subrequest runs the same phases with the routing decision handed over in
//! [`SubrequestInfo`]).
//!
//! An LLM request is different: every attempt sends a body translated for its provider, which
//! the LLM state supplies in `request_body_filter`. Its subrequest therefore carries no body
//! at all, so Pingora asks for the body on every attempt (and can fail over to the next
//! provider however large the request is).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use pingora::proxy::Session;

use crate::error::Error;
use crate::routing::ProxyPlan;

/// Pingora's retry buffer size (`BODY_BUF_LIMIT`); a body this large or larger is truncated
/// there and must be replayed another way.
pub const RETRY_BUFFER_LIMIT: usize = 64 * 1024;

/// Per-request body state.
#[derive(Debug, Default)]
pub struct BodyCtx {
    /// Upper bound on the request body size.
    pub limit: u64,
    /// Bytes seen so far in `request_body_filter` (streamed bodies).
    pub seen: u64,
    /// The whole body, when the route buffers it.
    pub buffered: Option<Bytes>,
}

impl BodyCtx {
    /// Counts a streamed chunk against the limit.
    pub fn account(&mut self, chunk: Option<&Bytes>) -> Result<(), Error> {
        self.seen += chunk.map_or(0, |c| c.len() as u64);
        if self.limit > 0 && self.seen > self.limit {
            return Err(Error::BodyTooLarge { limit: self.limit });
        }
        Ok(())
    }
}

/// The declared `Content-Length`, if any and valid.
pub fn content_length(req: &http::request::Parts) -> Option<u64> {
    req.headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse().ok())
}

/// Reads the whole request body, failing with 413 as soon as it passes `limit`. Enables the
/// retry buffer first, so a body below [`RETRY_BUFFER_LIMIT`] is still forwarded.
pub async fn read_all(session: &mut Session, limit: u64) -> Result<Bytes, ReadError> {
    session.enable_retry_buffering();
    let mut buf = BytesMut::with_capacity(
        content_length(session.req_header()).map_or(0, |l| l.min(limit) as usize),
    );
    while let Some(chunk) = session
        .read_request_body()
        .await
        .map_err(ReadError::Downstream)?
    {
        if buf.len() as u64 + chunk.len() as u64 > limit {
            return Err(ReadError::Gateway(Error::BodyTooLarge { limit }));
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(buf.freeze())
}

/// Why reading a body failed.
#[derive(Debug)]
pub enum ReadError {
    /// Our own verdict (413).
    Gateway(Error),
    /// The client's connection failed.
    Downstream(Box<pingora::Error>),
}

/// What a replay subrequest inherits from its parent request.
#[derive(Debug)]
pub struct SubrequestInfo {
    pub plan: Arc<ProxyPlan>,
    pub gateway: Arc<str>,
    pub body_len: usize,
    pub start: Instant,
    pub deadline: Option<Instant>,
    pub client: Option<SocketAddr>,
    pub limit: u64,
    /// The client API and body of an LLM request (its state is rebuilt from them).
    pub llm: Option<(agora_providers::ClientApi, Bytes)>,
    /// The parent's LLM state (virtual-model targets matched, first provider chosen), taken
    /// over by the subrequest.
    pub llm_state: std::sync::Mutex<Option<Box<crate::llm::LlmCtx>>>,
    /// The parent's policy state (identity, response headers, charges to settle), taken over
    /// by the subrequest.
    pub policy: std::sync::Mutex<Option<crate::policy::PolicyCtx>>,
    /// The parent's InferencePool endpoint choice and header changes.
    pub inference: crate::gateway::InferenceCtx,
}

/// The parent's info when `session` is a replay subrequest.
pub fn subrequest_info(session: &Session) -> Option<&SubrequestInfo> {
    session
        .subrequest_ctx
        .as_ref()
        .and_then(|c| c.user_ctx())
        .and_then(|u| u.downcast_ref::<SubrequestInfo>())
}

/// Sends the request again as a subrequest whose body is `body`, and waits until it has
/// answered the client. The caller then ends its own processing (`request_filter` → true).
pub async fn replay_via_subrequest(
    session: &mut Session,
    info: SubrequestInfo,
    body: Bytes,
) -> pingora::Result<()> {
    use pingora::proxy::subrequest::BodyMode;
    use pingora::proxy::subrequest::Ctx as SubCtx;
    use pingora::proxy::subrequest::pipe::{InputBody, InputBodyType, pipe_subrequest};

    let llm = info.llm.is_some();
    let sctx = SubCtx::builder()
        .body_mode(if llm {
            BodyMode::NoBody
        } else {
            BodyMode::ExpectBody
        })
        .user_ctx(Box::new(info))
        .build();
    // Pingora 0.9 renders the subrequest's header from the parent's; an HTTP/2 version there
    // makes the subrequest's HTTP/1 parser reject it, so present it as HTTP/1.1 meanwhile.
    let version = session.req_header().version;
    session.req_header_mut().set_version(http::Version::HTTP_11);
    let Some(spawner) = session.subrequest_spawner.as_ref() else {
        session.req_header_mut().set_version(version);
        return Err(pingora::Error::explain(
            pingora::ErrorType::InternalError,
            "subrequests disabled",
        ));
    };
    let (prepared, handle) = spawner.create_subrequest(session.as_downstream(), sctx);
    session.req_header_mut().set_version(version);
    let state = pipe_subrequest(
        session,
        prepared,
        handle,
        |task| Ok(Some(task)),
        InputBodyType::Preset(if llm {
            InputBody::NoBody
        } else {
            InputBody::Bytes(vec![body])
        }),
    )
    .await
    .map_err(|e| e.error)?;
    if let Some(join) = state.join_handle {
        let _ = join.await;
    }
    Ok(())
}
