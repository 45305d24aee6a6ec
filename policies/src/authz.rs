//! Authorization rules in CEL. An expression that fails to evaluate (a missing claim, a type
//! error) never admits a request: it does not match an Allow rule, and it denies under Deny
//! and Require.

use agora_proto::resource as pb;

use crate::Error;
use crate::cel::{Expr, Uses};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Allow,
    Deny,
    Require,
}

/// A compiled `authorization`.
#[derive(Debug)]
pub struct Authorization {
    action: Action,
    exprs: Vec<Expr>,
    uses: Uses,
}

impl Authorization {
    pub fn compile(a: &pb::Authorization) -> Result<Authorization, String> {
        let exprs = a
            .expressions
            .iter()
            .map(|e| Expr::compile(e))
            .collect::<Result<Vec<_>, _>>()?;
        let uses = exprs.iter().fold(Uses::default(), |u, e| u.union(e.uses()));
        let action = match pb::authorization::Action::try_from(a.action) {
            Ok(pb::authorization::Action::Deny) => Action::Deny,
            Ok(pb::authorization::Action::Require) => Action::Require,
            _ => Action::Allow,
        };
        Ok(Authorization {
            action,
            exprs,
            uses,
        })
    }

    pub fn uses(&self) -> Uses {
        self.uses
    }

    /// Admits or denies (403) the request described by `ctx`.
    pub fn check(&self, ctx: &cel::Context) -> Result<(), Error> {
        match self.action {
            Action::Allow => {
                if self.exprs.iter().any(|e| e.eval_bool(ctx) == Ok(true)) {
                    Ok(())
                } else {
                    Err(Error::Forbidden(
                        "no authorization rule allows this request".into(),
                    ))
                }
            }
            Action::Deny => match self.exprs.iter().find(|e| e.eval_bool(ctx) != Ok(false)) {
                Some(e) => Err(Error::Forbidden(format!("denied by rule {:?}", e.source()))),
                None => Ok(()),
            },
            Action::Require => match self.exprs.iter().find(|e| e.eval_bool(ctx) != Ok(true)) {
                Some(e) => Err(Error::Forbidden(format!(
                    "rule {:?} does not hold",
                    e.source()
                ))),
                None => Ok(()),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::authn::Identity;
    use crate::cel::{Attributes, RequestView};

    fn check(action: pb::authorization::Action, exprs: &[&str], team: &str) -> Result<(), Error> {
        let a = Authorization::compile(&pb::Authorization {
            action: action as i32,
            expressions: exprs.iter().map(|s| s.to_string()).collect(),
        })
        .expect("compiles");
        let mut h = http::HeaderMap::new();
        h.insert("x-team", team.parse().expect("value"));
        let id = Identity::default();
        let attrs = Attributes {
            request: RequestView {
                method: "GET",
                path: "/",
                host: "h",
                headers: &h,
            },
            source: None,
            identity: &id,
            llm: None,
            mcp: None,
            a2a: None,
        };
        a.check(&attrs.context(a.uses()))
    }

    const TEAM: &str = r#"request.headers["x-team"] == "ml-platform""#;

    #[test]
    fn allow_deny_require() {
        use pb::authorization::Action as A;
        assert!(check(A::Allow, &[TEAM], "ml-platform").is_ok());
        assert_eq!(
            check(A::Allow, &[TEAM], "web")
                .expect_err("denied")
                .status(),
            403
        );
        assert!(check(A::Deny, &[TEAM], "web").is_ok());
        assert!(check(A::Deny, &[TEAM], "ml-platform").is_err());
        assert!(
            check(
                A::Require,
                &[TEAM, r#"request.method == "GET""#],
                "ml-platform"
            )
            .is_ok()
        );
        assert!(
            check(
                A::Require,
                &[TEAM, r#"request.method == "POST""#],
                "ml-platform"
            )
            .is_err()
        );
    }

    #[test]
    fn evaluation_errors_never_admit() {
        use pb::authorization::Action as A;
        let missing = "jwt.sub == 'alice'";
        assert!(check(A::Allow, &[missing], "x").is_err());
        assert!(check(A::Deny, &[missing], "x").is_err());
        assert!(check(A::Require, &[missing], "x").is_err());
    }
}
