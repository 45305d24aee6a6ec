//! CEL: expressions are compiled once at config load ([`Expr::compile`]); each request builds
//! one [`cel::Context`] from its [`Attributes`], with only the variables its expressions use.
//!
//! Variables: `request` (`method`, `path`, `host`, `headers` by lower-case name), `source`
//! (`address`, `port`), `jwt` (the claims), `apiKey` (`id`, `group`, `metadata` and the
//! metadata's keys), `basic` (`username`), `llm` (`requestModel`, `provider`, `inputTokens`,
//! `outputTokens`, `streaming`), `mcp` and `a2a` (protocol attributes, set by those handlers).
//! An absent credential is an empty map, so `has(jwt.sub)` is the way to test for it.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};

use ::cel::common::value::{CowVal, Val};
use ::cel::context::VariableResolver;
pub use ::cel::{Context, Value};

use crate::authn::Identity;

fn env() -> Arc<cel::Env> {
    static ENV: OnceLock<Arc<cel::Env>> = OnceLock::new();
    ENV.get_or_init(|| Arc::new(cel::Env::stdlib())).clone()
}

/// Which top-level variables an expression reads.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Uses(u8);

const VARS: [&str; 8] = [
    "request", "source", "jwt", "apiKey", "basic", "llm", "mcp", "a2a",
];

impl Uses {
    pub fn union(self, o: Uses) -> Uses {
        Uses(self.0 | o.0)
    }
    /// Whether an expression reads what only the request body tells (`llm`, `mcp`, `a2a`).
    pub fn reads_body(self) -> bool {
        self.has(5) || self.has(6) || self.has(7)
    }

    /// Whether an expression reads `llm`.
    pub fn reads_llm(self) -> bool {
        self.has(5)
    }

    fn has(self, i: usize) -> bool {
        self.0 & (1 << i) != 0
    }
}

/// A compiled expression with its source (for errors).
#[derive(Clone)]
pub struct Expr {
    source: Arc<str>,
    program: Arc<cel::Program>,
    uses: Uses,
}

impl std::fmt::Debug for Expr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Expr({:?})", self.source)
    }
}

impl Expr {
    /// Parses `source`; the error names the expression.
    pub fn compile(source: &str) -> Result<Expr, String> {
        let program = env()
            .compile(source)
            .map_err(|e| format!("invalid CEL expression {source:?}: {e}"))?;
        let refs = program.references();
        let mut uses = 0u8;
        for (i, v) in VARS.iter().enumerate() {
            if refs.has_variable(v) {
                uses |= 1 << i;
            }
        }
        let mut bound = Vec::new();
        bound_vars(program.expression(), &mut bound);
        for v in refs.variables() {
            if !VARS.contains(&v) && !bound.contains(&v) {
                return Err(format!(
                    "invalid CEL expression {source:?}: unknown variable {v:?} (known: {})",
                    VARS.join(", ")
                ));
            }
        }
        Ok(Expr {
            source: source.into(),
            program: Arc::new(program),
            uses: Uses(uses),
        })
    }

    pub fn source(&self) -> &str {
        &self.source
    }

    pub fn uses(&self) -> Uses {
        self.uses
    }

    pub fn eval(&self, ctx: &cel::Context) -> Result<Value, String> {
        self.program
            .execute(ctx)
            .map_err(|e| format!("{:?}: {e}", self.source))
    }

    /// True only for a boolean `true`; errors and other types are `Err`.
    pub fn eval_bool(&self, ctx: &cel::Context) -> Result<bool, String> {
        match self.eval(ctx)? {
            Value::Bool(b) => Ok(b),
            other => Err(format!(
                "{:?} gave {:?}, not a boolean",
                self.source,
                other.type_of()
            )),
        }
    }

    /// The value as text, for rate-limit descriptors (`None` when absent or an error).
    pub fn eval_string(&self, ctx: &cel::Context) -> Option<String> {
        match self.eval(ctx).ok()? {
            Value::String(s) => Some(s.to_string()),
            Value::Int(i) => Some(i.to_string()),
            Value::UInt(u) => Some(u.to_string()),
            Value::Bool(b) => Some(b.to_string()),
            Value::Float(f) => Some(f.to_string()),
            Value::Null => None,
            other => other.json().ok().map(|j| j.to_string()),
        }
    }
}

/// Names bound by comprehensions (`list.exists(x, ...)`), which are not free variables.
fn bound_vars<'e>(e: &'e cel::common::ast::IdedExpr, out: &mut Vec<&'e str>) {
    use cel::common::ast::Expr as E;
    match &e.expr {
        E::Comprehension(c) => {
            out.push(&c.iter_var);
            out.extend(c.iter_var2.as_deref());
            out.push(&c.accu_var);
            for x in [
                &c.iter_range,
                &c.accu_init,
                &c.loop_cond,
                &c.loop_step,
                &c.result,
            ] {
                bound_vars(x, out);
            }
        }
        E::Call(c) => {
            for x in c.target.iter().map(|t| &**t).chain(c.args.iter()) {
                bound_vars(x, out);
            }
        }
        E::List(l) => l.elements.iter().for_each(|x| bound_vars(x, out)),
        E::Select(s) => bound_vars(&s.operand, out),
        _ => {}
    }
}

/// The request as CEL sees it.
#[derive(Clone, Copy)]
pub struct RequestView<'a> {
    pub method: &'a str,
    pub path: &'a str,
    pub host: &'a str,
    pub headers: &'a http::HeaderMap,
}

/// LLM attributes, known once the body is read (and the token counts after the response).
#[derive(Debug, Clone, Default)]
pub struct LlmAttrs {
    pub request_model: String,
    pub provider: String,
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub streaming: bool,
}

/// Everything an expression may read about a request.
#[derive(Clone, Copy)]
pub struct Attributes<'a> {
    pub request: RequestView<'a>,
    pub source: Option<SocketAddr>,
    pub identity: &'a Identity,
    pub llm: Option<&'a LlmAttrs>,
    /// Protocol attributes of MCP / A2A requests (a JSON object).
    pub mcp: Option<&'a serde_json::Value>,
    pub a2a: Option<&'a serde_json::Value>,
}

fn map(entries: Vec<(&str, Value)>) -> Value {
    let m: HashMap<String, Value> = entries
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
    Value::from(m)
}

fn json(v: Option<&serde_json::Value>) -> Value {
    v.and_then(|v| cel::to_value(v).ok())
        .unwrap_or_else(|| Value::from(HashMap::<String, Value>::new()))
}

/// A value converted to CEL's evaluation form once (per token, per configured key) and lent
/// to every request's context, instead of being converted again for each evaluation.
#[derive(Clone)]
pub struct CelVal(Arc<dyn Val>);

impl CelVal {
    pub fn from_value(v: Value) -> CelVal {
        let boxed: Box<dyn Val> = v.try_into().unwrap_or_else(|_| empty_map());
        CelVal(Arc::from(boxed))
    }

    /// A JSON value (a non-representable one is an empty map).
    pub fn from_json(v: &serde_json::Value) -> CelVal {
        CelVal::from_value(
            cel::to_value(v).unwrap_or_else(|_| Value::from(HashMap::<String, Value>::new())),
        )
    }

    /// The empty map, as an absent credential is seen.
    pub fn empty() -> CelVal {
        empty_ref().clone()
    }

    fn val(&self) -> &dyn Val {
        &*self.0
    }
}

fn empty_ref() -> &'static CelVal {
    static EMPTY: OnceLock<CelVal> = OnceLock::new();
    EMPTY.get_or_init(|| CelVal(Arc::from(empty_map())))
}

fn empty_map() -> Box<dyn Val> {
    Value::from(HashMap::<String, Value>::new())
        .try_into()
        .expect("an empty map converts")
}

impl std::fmt::Debug for CelVal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl PartialEq for CelVal {
    fn eq(&self, o: &CelVal) -> bool {
        self.0.equals(o.val())
    }
}

/// `jwt` and `apiKey` are lent to the contexts of [`Attributes::context`] from the identity.
impl VariableResolver for Attributes<'_> {
    fn resolve<'b>(&'b self, variable: &str) -> Option<CowVal<'b, 'b>> {
        let v = match variable {
            "jwt" => self.identity.jwt.as_ref().map(|c| &c.cel),
            "apiKey" => self.identity.api_key.as_ref().map(|k| &k.cel),
            _ => return None,
        };
        Some(CowVal::Borrowed(v.unwrap_or_else(|| empty_ref()).val()))
    }
}

impl Attributes<'_> {
    /// A context holding the variables `uses` names. `jwt` and `apiKey` are lent from the
    /// identity (converted once per token / key); the others are built here, once per call.
    pub fn context(&self, uses: Uses) -> cel::Context<'_, '_> {
        let mut c = cel::Context::with_env(env());
        for (i, name) in VARS.iter().enumerate() {
            if !uses.has(i) {
                continue;
            }
            let v = match i {
                0 => self.request_value(),
                1 => map(match self.source {
                    Some(a) => vec![
                        ("address", Value::from(a.ip().to_string())),
                        ("port", Value::Int(i64::from(a.port()))),
                    ],
                    None => vec![],
                }),
                // Lent by the resolver.
                2 | 3 => continue,
                4 => map(match &self.identity.basic_user {
                    Some(u) => vec![("username", Value::from(u.clone()))],
                    None => vec![],
                }),
                5 => map(match self.llm {
                    Some(l) => vec![
                        ("requestModel", Value::from(l.request_model.clone())),
                        ("provider", Value::from(l.provider.clone())),
                        ("inputTokens", Value::UInt(l.input_tokens)),
                        ("outputTokens", Value::UInt(l.output_tokens)),
                        ("streaming", Value::Bool(l.streaming)),
                    ],
                    None => vec![],
                }),
                6 => json(self.mcp),
                _ => json(self.a2a),
            };
            c.add_variable_as_val(*name, v.try_into().unwrap_or_else(|_| empty_map()));
        }
        c.set_variable_resolver(self);
        c
    }

    fn request_value(&self) -> Value {
        let r = &self.request;
        let mut headers: HashMap<String, Value> = HashMap::new();
        for name in r.headers.keys() {
            let joined = r
                .headers
                .get_all(name)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .collect::<Vec<_>>()
                .join(",");
            headers.insert(name.as_str().to_string(), Value::from(joined));
        }
        map(vec![
            ("method", Value::from(r.method)),
            ("path", Value::from(r.path)),
            ("host", Value::from(r.host)),
            ("headers", Value::from(headers)),
        ])
    }
}

#[cfg(test)]
mod tests;
