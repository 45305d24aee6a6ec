//! `spec.traffic` / `spec.backend.ai.promptGuard` → proto. Errors name the field at fault.
//! Expressions and patterns are checked here too, so a bad one is reported where it was
//! written (the proxy compiles them again when it loads the config).

use std::collections::BTreeMap;
use std::time::Duration;

use agora_proto::resource as pb;

use super::*;
use crate::error::Error;

pub type Result<T> = std::result::Result<T, Error>;

fn invalid(field: impl Into<String>, message: impl Into<String>) -> Error {
    Error::Config {
        field: field.into(),
        message: message.into(),
    }
}

/// Where secrets come from: a cluster's Secrets for the controller, the environment for the
/// local config file.
pub trait Secrets {
    /// The entries of the Secret `name` (values decoded), for the field at `at`.
    fn secret(&mut self, name: &str, at: &str) -> Result<BTreeMap<String, String>>;
    /// The value of the environment variable `var`, for the field at `at`.
    fn env(&mut self, var: &str, at: &str) -> Result<String>;
}

/// Converts `spec.traffic`; `at` is its field path.
pub fn traffic(
    t: &TrafficConfig,
    at: &str,
    secrets: &mut dyn Secrets,
) -> Result<pb::TrafficPolicy> {
    let mut out = pb::TrafficPolicy::default();
    if let Some(a) = &t.authorization {
        let at = format!("{at}.authorization");
        if a.policy.match_expressions.is_empty() {
            return Err(invalid(
                format!("{at}.policy.matchExpressions"),
                "needs at least one expression",
            ));
        }
        for (i, e) in a.policy.match_expressions.iter().enumerate() {
            crate::cel::Expr::compile(e)
                .map_err(|m| invalid(format!("{at}.policy.matchExpressions[{i}]"), m))?;
        }
        out.authorization = Some(pb::Authorization {
            action: match a.action {
                AuthorizationAction::Allow => pb::authorization::Action::Allow,
                AuthorizationAction::Deny => pb::authorization::Action::Deny,
                AuthorizationAction::Require => pb::authorization::Action::Require,
            } as i32,
            expressions: a.policy.match_expressions.clone(),
        });
    }
    if let Some(j) = &t.jwt_authentication {
        out.jwt = Some(jwt(j, &format!("{at}.jwtAuthentication"))?);
    }
    if let Some(k) = &t.api_key_authentication {
        out.api_key = Some(api_keys(k, &format!("{at}.apiKeyAuthentication"), secrets)?);
    }
    if let Some(b) = &t.basic_authentication {
        out.basic = Some(basic(b, &format!("{at}.basicAuthentication"), secrets)?);
    }
    if let Some(r) = &t.rate_limit {
        let at = format!("{at}.rateLimit");
        for (i, l) in r.local.iter().enumerate() {
            out.local_rate_limits
                .push(limit(l, &format!("{at}.local[{i}]"))?);
        }
        if let Some(g) = &r.global {
            if g.limits.is_empty() {
                return Err(invalid(
                    format!("{at}.global.limits"),
                    "needs at least one limit",
                ));
            }
            let limits = g
                .limits
                .iter()
                .enumerate()
                .map(|(i, l)| limit(l, &format!("{at}.global.limits[{i}]")))
                .collect::<Result<_>>()?;
            out.global_rate_limit = Some(pb::GlobalRateLimit {
                limits,
                fail_open: g.failure_mode == FailureMode::FailOpen,
            });
        }
    }
    if let Some(c) = &t.cors {
        out.cors = Some(cors(c, &format!("{at}.cors"))?);
    }
    if let Some(e) = &t.ext_auth {
        let at = format!("{at}.extAuth");
        if !is_grpc_url(&e.url) {
            url(&e.url, &format!("{at}.url"))?;
        }
        out.ext_auth = Some(pb::ExtAuth {
            url: e.url.clone(),
            timeout: duration(e.timeout.as_deref(), &format!("{at}.timeout"))?,
            fail_open: e.failure_mode == FailureMode::FailOpen,
            include_headers: lower(&e.include_request_headers),
            upstream_headers: lower(&e.upstream_headers),
        });
    }
    if let Some(h) = &t.header_modifiers {
        out.request_headers = h.request.as_ref().map(header_modifier);
        out.response_headers = h.response.as_ref().map(header_modifier);
    }
    if let Some(to) = &t.timeouts {
        let at = format!("{at}.timeouts");
        out.timeouts = Some(pb::Timeouts {
            request: duration(to.request.as_deref(), &format!("{at}.request"))?,
            backend_request: duration(
                to.backend_request.as_deref(),
                &format!("{at}.backendRequest"),
            )?,
        });
    }
    if let Some(r) = &t.retry {
        out.retry = Some(pb::Retry {
            attempts: r.attempts.unwrap_or(1),
            codes: r.codes.iter().map(|c| u32::from(*c)).collect(),
            backoff: duration(r.backoff.as_deref(), &format!("{at}.retry.backoff"))?,
        });
    }
    if let Some(b) = &t.budget {
        out.budget = Some(budget(b, &format!("{at}.budget"))?);
    }
    Ok(out)
}

fn budget(b: &BudgetConfig, at: &str) -> Result<pb::Budget> {
    if let Some(e) = &b.expression {
        crate::cel::Expr::compile(e).map_err(|m| invalid(format!("{at}.expression"), m))?;
    }
    let window = duration(Some(&b.window), &format!("{at}.window"))?
        .filter(|d| d.seconds > 0)
        .ok_or_else(|| {
            invalid(
                format!("{at}.window"),
                "a budget window of at least 1s is required",
            )
        })?;
    let max_cost = b.max_cost_usd.unwrap_or(0.0);
    if !(max_cost.is_finite() && max_cost >= 0.0) {
        return Err(invalid(
            format!("{at}.maxCostUSD"),
            "must be a positive amount",
        ));
    }
    if b.max_tokens.unwrap_or(0) == 0 && max_cost == 0.0 {
        return Err(invalid(at, "set maxTokens, maxCostUSD or both"));
    }
    if max_cost > 0.0 && b.prices.is_empty() {
        return Err(invalid(
            format!("{at}.prices"),
            "a cost cap needs model prices",
        ));
    }
    for (m, p) in &b.prices {
        if !(p.input >= 0.0 && p.output >= 0.0 && p.input.is_finite() && p.output.is_finite()) {
            return Err(invalid(
                format!("{at}.prices[{m}]"),
                "prices must be positive numbers",
            ));
        }
    }
    Ok(pb::Budget {
        per: match b.per {
            BudgetPer::Key => pb::budget::Per::Key,
            BudgetPer::Group => pb::budget::Per::Group,
        } as i32,
        expression: b.expression.clone().unwrap_or_default(),
        window: Some(window),
        max_tokens: b.max_tokens.unwrap_or(0),
        max_cost_usd: max_cost,
        prices: b
            .prices
            .iter()
            .map(|(m, p)| {
                (
                    m.clone(),
                    pb::ModelPrice {
                        input: p.input,
                        output: p.output,
                    },
                )
            })
            .collect(),
        fail_open: b.failure_mode == FailureMode::FailOpen,
    })
}

fn lower(v: &[String]) -> Vec<String> {
    v.iter().map(|h| h.to_ascii_lowercase()).collect()
}

/// Whether an `extAuth` URL names a gRPC (Envoy ext_authz) service: `grpc://` or `grpcs://`.
pub fn is_grpc_url(u: &str) -> bool {
    u.starts_with("grpc://") || u.starts_with("grpcs://")
}

fn url(u: &str, at: &str) -> Result<()> {
    if u.starts_with("http://") || u.starts_with("https://") {
        Ok(())
    } else {
        Err(invalid(
            at,
            format!("{u:?} is not an http:// or https:// URL"),
        ))
    }
}

fn duration(v: Option<&str>, at: &str) -> Result<Option<agora_proto::Duration>> {
    v.map(|s| {
        agora_proto::parse_duration(s)
            .map(Into::into)
            .ok_or_else(|| {
                invalid(
                    at,
                    format!("{s:?} is not a duration like 10s, 500ms or 1m30s"),
                )
            })
    })
    .transpose()
}

fn mode(m: AuthModeConfig) -> i32 {
    (match m {
        AuthModeConfig::Strict => pb::AuthMode::Strict,
        AuthModeConfig::Optional => pb::AuthMode::Optional,
        AuthModeConfig::Permissive => pb::AuthMode::Permissive,
    }) as i32
}

fn jwt(j: &JwtConfig, at: &str) -> Result<pb::JwtAuthentication> {
    if j.providers.is_empty() {
        return Err(invalid(
            format!("{at}.providers"),
            "needs at least one provider",
        ));
    }
    let mut providers = Vec::new();
    for (i, p) in j.providers.iter().enumerate() {
        let at = format!("{at}.providers[{i}]");
        let set = [
            p.jwks.inline.is_some(),
            p.jwks.file.is_some(),
            p.jwks.remote.is_some(),
        ];
        if set.iter().filter(|s| **s).count() != 1 {
            return Err(invalid(
                format!("{at}.jwks"),
                "set exactly one of inline, file or remote",
            ));
        }
        let mut refresh = None;
        let jwks = if let Some(inline) = &p.jwks.inline {
            crate::authn::jwt::KeySet::parse(inline.as_bytes())
                .map_err(|e| invalid(format!("{at}.jwks.inline"), e))?;
            pb::jwt_provider::Jwks::Inline(inline.clone())
        } else if let Some(f) = &p.jwks.file {
            pb::jwt_provider::Jwks::File(f.clone())
        } else if let Some(r) = &p.jwks.remote {
            url(&r.url, &format!("{at}.jwks.remote.url"))?;
            refresh = duration(
                r.cache_duration.as_deref(),
                &format!("{at}.jwks.remote.cacheDuration"),
            )?;
            pb::jwt_provider::Jwks::Url(r.url.clone())
        } else {
            unreachable!("exactly one is set")
        };
        providers.push(pb::JwtProvider {
            issuer: p.issuer.clone(),
            audiences: p.audiences.clone(),
            jwks: Some(jwks),
            refresh,
        });
    }
    Ok(pb::JwtAuthentication {
        mode: mode(j.mode),
        providers,
        mcp_resource_metadata: String::new(),
    })
}

/// Converts a policy's `traffic` and `backend` sections (`at` is the spec's path): the
/// request-path policy (with `backend.mcp` folded in: its authentication is a JWT check whose
/// 401s name the resource metadata, its authorization the policy's rules) and the prompt
/// guard. `Ok((None, None))`: the policy sets nothing.
pub fn sections(
    traffic: Option<&TrafficConfig>,
    backend: Option<&BackendPolicyConfig>,
    at: &str,
    secrets: &mut dyn Secrets,
) -> Result<(Option<pb::TrafficPolicy>, Option<pb::PromptGuard>)> {
    let mut out = traffic
        .map(|t| self::traffic(t, &format!("{at}.traffic"), secrets))
        .transpose()?;
    let guard = backend
        .and_then(|b| b.ai.as_ref())
        .and_then(|a| a.prompt_guard.as_ref())
        .map(|g| prompt_guard(g, &format!("{at}.backend.ai.promptGuard")))
        .transpose()?;
    if let Some(m) = backend.and_then(|b| b.mcp.as_ref()) {
        let at = format!("{at}.backend.mcp");
        let t = out.get_or_insert_with(Default::default);
        if let Some(a) = &m.authentication {
            if t.jwt.is_some() {
                return Err(invalid(
                    format!("{at}.authentication"),
                    "the policy also sets traffic.jwtAuthentication; set one",
                ));
            }
            let cfg = JwtConfig {
                mode: a.mode,
                providers: vec![JwtProviderConfig {
                    issuer: a.issuer.clone(),
                    audiences: a.audiences.clone(),
                    jwks: a.jwks.clone(),
                }],
            };
            let mut j = jwt(&cfg, &format!("{at}.authentication"))?;
            j.mcp_resource_metadata =
                serde_json::to_string(&a.resource_metadata).unwrap_or_else(|_| "{}".into());
            t.jwt = Some(j);
        }
        if let Some(a) = &m.authorization {
            if t.authorization.is_some() {
                return Err(invalid(
                    format!("{at}.authorization"),
                    "the policy also sets traffic.authorization; set one",
                ));
            }
            let wrapped = TrafficConfig {
                authorization: Some(a.clone()),
                ..Default::default()
            };
            t.authorization = self::traffic(&wrapped, &at, secrets)?.authorization;
        }
    }
    Ok((out, guard))
}

fn api_keys(
    k: &ApiKeyConfig,
    at: &str,
    secrets: &mut dyn Secrets,
) -> Result<pb::ApiKeyAuthentication> {
    let mut keys = Vec::new();
    for (i, e) in k.keys.iter().enumerate() {
        let at = format!("{at}.keys[{i}]");
        let key = match (&e.key, &e.key_env) {
            (Some(key), None) => key.clone(),
            (None, Some(var)) => secrets.env(var, &format!("{at}.keyEnv"))?,
            _ => return Err(invalid(at, "set exactly one of key or keyEnv")),
        };
        keys.push(api_key(
            key,
            e.id.clone(),
            e.group.clone(),
            e.metadata.clone(),
            &at,
        )?);
    }
    if let Some(s) = &k.secret_ref {
        let at = format!("{at}.secretRef");
        for (id, value) in secrets.secret(&s.name, &at)? {
            keys.push(secret_key(&id, &value, &format!("{at}[{id}]"))?);
        }
    }
    if keys.is_empty() {
        return Err(invalid(format!("{at}.keys"), "no API keys configured"));
    }
    Ok(pb::ApiKeyAuthentication {
        mode: mode(k.mode),
        keys,
        header: k.header.as_deref().unwrap_or("").to_ascii_lowercase(),
    })
}

/// A Secret entry: the key itself, or `{"key": ..., "metadata": {...}, "group": ...}`.
fn secret_key(id: &str, value: &str, at: &str) -> Result<pb::ApiKey> {
    let value = value.trim();
    if value.starts_with('{') {
        #[derive(serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Entry {
            key: String,
            #[serde(default)]
            metadata: Option<serde_json::Map<String, serde_json::Value>>,
            #[serde(default)]
            group: Option<String>,
        }
        let e: Entry = serde_json::from_str(value).map_err(|e| invalid(at, e.to_string()))?;
        return api_key(e.key, Some(id.to_string()), e.group, e.metadata, at);
    }
    api_key(value.to_string(), Some(id.to_string()), None, None, at)
}

fn api_key(
    key: String,
    id: Option<String>,
    group: Option<String>,
    metadata: Option<serde_json::Map<String, serde_json::Value>>,
    at: &str,
) -> Result<pb::ApiKey> {
    if key.len() < 8 {
        return Err(invalid(at, "an API key must be at least 8 characters"));
    }
    let id = id.unwrap_or_else(|| crate::authn::apikey::default_id(&key));
    Ok(pb::ApiKey {
        key,
        id,
        metadata_json: metadata
            .map(|m| serde_json::Value::Object(m).to_string())
            .unwrap_or_default(),
        group: group.unwrap_or_default(),
    })
}

fn basic(
    b: &BasicAuthConfig,
    at: &str,
    secrets: &mut dyn Secrets,
) -> Result<pb::BasicAuthentication> {
    let mut lines = b.users.clone();
    if let Some(s) = &b.secret_ref {
        let at = format!("{at}.secretRef");
        let data = secrets.secret(&s.name, &at)?;
        let file = data
            .get(".htaccess")
            .ok_or_else(|| invalid(&at, format!("Secret {} has no .htaccess entry", s.name)))?;
        lines.extend(file.lines().map(str::to_string));
    }
    lines.retain(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'));
    if lines.is_empty() {
        return Err(invalid(format!("{at}.users"), "no users configured"));
    }
    for (i, l) in lines.iter().enumerate() {
        crate::authn::basic::parse_line(l).map_err(|e| invalid(format!("{at}.users[{i}]"), e))?;
    }
    Ok(pb::BasicAuthentication {
        mode: mode(b.mode),
        htpasswd: lines,
        realm: b.realm.clone().unwrap_or_default(),
    })
}

fn unit(u: RateUnit) -> Duration {
    Duration::from_secs(match u {
        RateUnit::Seconds => 1,
        RateUnit::Minutes => 60,
        RateUnit::Hours => 3600,
        RateUnit::Days => 86_400,
    })
}

fn limit(l: &LimitConfig, at: &str) -> Result<pb::RateLimit> {
    let (kind, n) = match (l.requests, l.tokens) {
        (Some(n), None) => (pb::RateLimitKind::Requests, n),
        (None, Some(n)) => (pb::RateLimitKind::Tokens, n),
        _ => return Err(invalid(at, "set exactly one of requests or tokens")),
    };
    if n == 0 {
        return Err(invalid(
            at,
            "a limit of 0 admits nothing; remove the route instead",
        ));
    }
    for (i, d) in l.descriptors.iter().enumerate() {
        crate::cel::Expr::compile(&d.expression)
            .map_err(|m| invalid(format!("{at}.descriptors[{i}].expression"), m))?;
    }
    Ok(pb::RateLimit {
        kind: kind as i32,
        limit: n,
        window: Some(unit(l.unit).into()),
        burst: l.burst.unwrap_or(0),
        descriptors: l
            .descriptors
            .iter()
            .map(|d| pb::DescriptorEntry {
                name: d.name.clone(),
                expression: d.expression.clone(),
            })
            .collect(),
    })
}

fn cors(c: &CorsConfig, at: &str) -> Result<pb::Cors> {
    for (i, o) in c.allow_origins.iter().enumerate() {
        crate::cors::OriginMatcher::parse(o)
            .map_err(|e| invalid(format!("{at}.allowOrigins[{i}]"), e))?;
    }
    if c.allow_credentials && c.allow_origins.iter().any(|o| o == "*") {
        return Err(invalid(
            format!("{at}.allowCredentials"),
            "credentials cannot be allowed for any origin (\"*\"); list the origins",
        ));
    }
    Ok(pb::Cors {
        allow_origins: c.allow_origins.clone(),
        allow_methods: c
            .allow_methods
            .iter()
            .map(|m| m.to_ascii_uppercase())
            .collect(),
        allow_headers: lower(&c.allow_headers),
        expose_headers: lower(&c.expose_headers),
        max_age: c.max_age.map(|s| Duration::from_secs(u64::from(s)).into()),
        allow_credentials: c.allow_credentials,
    })
}

fn header_modifier(h: &HeaderModifierConfig) -> pb::HeaderModifier {
    let values = |v: &[HeaderValueConfig]| {
        v.iter()
            .map(|h| pb::HeaderValue {
                name: h.name.to_ascii_lowercase(),
                value: h.value.clone(),
            })
            .collect()
    };
    pb::HeaderModifier {
        set: values(&h.set),
        add: values(&h.add),
        remove: lower(&h.remove),
    }
}

/// Converts `spec.backend.ai.promptGuard`; `at` is its field path.
pub fn prompt_guard(g: &PromptGuardConfig, at: &str) -> Result<pb::PromptGuard> {
    let rules = |list: &[GuardConfig], at: &str| -> Result<Vec<pb::GuardRule>> {
        list.iter()
            .enumerate()
            .map(|(i, g)| guard(g, &format!("{at}[{i}]")))
            .collect()
    };
    Ok(pb::PromptGuard {
        request: rules(&g.request, &format!("{at}.request"))?,
        response: rules(&g.response, &format!("{at}.response"))?,
    })
}

fn guard(g: &GuardConfig, at: &str) -> Result<pb::GuardRule> {
    let reject_message = g
        .response
        .as_ref()
        .and_then(|r| r.message.clone())
        .unwrap_or_default();
    match (&g.regex, &g.webhook) {
        (Some(r), None) => {
            if r.builtins.is_empty() && r.matches.is_empty() {
                return Err(invalid(format!("{at}.regex"), "needs builtins or matches"));
            }
            for (i, m) in r.matches.iter().enumerate() {
                regex::Regex::new(m)
                    .map_err(|e| invalid(format!("{at}.regex.matches[{i}]"), e.to_string()))?;
            }
            Ok(pb::GuardRule {
                action: match r.action {
                    GuardAction::Reject => pb::guard_rule::Action::Reject,
                    GuardAction::Mask => pb::guard_rule::Action::Mask,
                } as i32,
                builtins: r
                    .builtins
                    .iter()
                    .map(|b| crate::guard::builtin_name(*b).to_string())
                    .collect(),
                regexes: r.matches.clone(),
                reject_message,
                webhook: None,
            })
        }
        (None, Some(w)) => {
            url(&w.url, &format!("{at}.webhook.url"))?;
            Ok(pb::GuardRule {
                action: pb::guard_rule::Action::Reject as i32,
                builtins: vec![],
                regexes: vec![],
                reject_message,
                webhook: Some(pb::GuardWebhook {
                    url: w.url.clone(),
                    timeout: duration(w.timeout.as_deref(), &format!("{at}.webhook.timeout"))?,
                    fail_open: w.failure_mode == FailureMode::FailOpen,
                }),
            })
        }
        _ => Err(invalid(at, "set exactly one of regex or webhook")),
    }
}
