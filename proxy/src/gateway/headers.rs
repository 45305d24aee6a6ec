//! Applies route filters to Pingora's request and response headers through the
//! [`HeaderOps`] trait of the pure `filters` module.

use http::{HeaderName, HeaderValue};
use pingora::http::{RequestHeader, ResponseHeader};

use crate::filters::{self, HeaderOps};
use crate::ir::FilterIr;
use crate::routing::ProxyPlan;

struct Req<'a>(&'a mut RequestHeader);
struct Resp<'a>(&'a mut ResponseHeader);

macro_rules! header_ops {
    ($t:ident) => {
        impl HeaderOps for $t<'_> {
            fn set(&mut self, name: &HeaderName, value: &HeaderValue) {
                let _ = self.0.insert_header(name.clone(), value.clone());
            }
            fn add(&mut self, name: &HeaderName, value: &HeaderValue) {
                let joined = filters::join(self.0.headers.get(name), value);
                let _ = self.0.insert_header(name.clone(), joined);
            }
            fn remove(&mut self, name: &HeaderName) {
                let _ = self.0.remove_header(name);
            }
        }
    };
}
header_ops!(Req);
header_ops!(Resp);

/// Request header modifiers and URL rewrites of the rule and the chosen backend.
pub fn apply_request_filters(plan: &ProxyPlan, req: &mut RequestHeader) -> pingora::Result<()> {
    for f in plan.filters() {
        match f {
            FilterIr::RequestHeaders(m) => m.apply(&mut Req(req)),
            FilterIr::Rewrite { hostname, path } => {
                if let Some(h) = hostname {
                    req.insert_header(http::header::HOST, h.as_str())?;
                }
                if let Some(p) = path {
                    let new_path =
                        filters::rewrite_path(p, req.uri.path(), plan.matched.prefix_len);
                    let uri = match req.uri.query() {
                        Some(q) => format!("{new_path}?{q}"),
                        None => new_path,
                    };
                    let uri = uri.parse::<http::Uri>().map_err(|e| {
                        pingora::Error::explain(
                            pingora::ErrorType::InternalError,
                            format!("rewritten path: {e}"),
                        )
                    })?;
                    req.set_uri(uri);
                }
            }
            _ => {}
        }
    }
    Ok(())
}

/// Response header modifiers among `filters` (the rule's, then the chosen backend's).
pub fn apply_response_filters<'a>(
    filters: impl Iterator<Item = &'a FilterIr>,
    resp: &mut ResponseHeader,
) {
    for f in filters {
        if let FilterIr::ResponseHeaders(m) = f {
            m.apply(&mut Resp(resp));
        }
    }
}

/// Makes the request announce exactly `len` body bytes.
pub fn set_body_length(req: &mut RequestHeader, len: usize) -> pingora::Result<()> {
    req.remove_header(&http::header::TRANSFER_ENCODING);
    req.insert_header(http::header::CONTENT_LENGTH, len.to_string())?;
    Ok(())
}

/// Whether the request carries a body.
pub fn has_body(req: &RequestHeader) -> bool {
    req.headers.contains_key(http::header::TRANSFER_ENCODING)
        || crate::body::content_length(req).is_some_and(|l| l > 0)
}
