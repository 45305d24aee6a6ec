//! Table-driven tests of matching and precedence, one case per Gateway API rule. Configs are
//! written as local YAML and go through the full config → proto → IR path.

use std::path::Path;

use super::{Arrival, Decision, decide, hostname};
use crate::backend::StateRegistry;
use crate::config;
use crate::ir::{self, Ir};

fn ir(yaml: &str) -> Ir {
    let loaded = config::load_str(yaml, Path::new(".")).expect("config loads");
    ir::build(&loaded.gateway, loaded.resources, &StateRegistry::default()).expect("ir builds")
}

fn req(method: &str, host: &str, uri: &str, headers: &[(&str, &str)]) -> http::request::Parts {
    let mut b = http::Request::builder()
        .method(method)
        .uri(uri)
        .header("host", host);
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    b.body(()).expect("request").into_parts().0
}

/// The route name a request lands on ("404" / "500" for errors, "redirect"/"direct").
fn route_of(
    ir: &Ir,
    port: u16,
    method: &str,
    host: &str,
    uri: &str,
    headers: &[(&str, &str)],
) -> String {
    let parts = req(method, host, uri, headers);
    match decide(
        ir,
        Arrival {
            port,
            tls: false,
            req: &parts,
        },
        0,
    ) {
        Ok((Decision::Proxy(p), _)) => p.rule().route_name.trim_start_matches("local/").to_string(),
        Ok((Decision::Redirect { location, .. }, _)) => format!("redirect {location}"),
        Ok((Decision::Direct { status, .. }, _)) => format!("direct {status}"),
        Err(e) => e.status().to_string(),
    }
}

const BACKENDS: &str = "
backends:
- name: b
  static: {host: 127.0.0.1, port: 9}
";

fn with_routes(listener_host: Option<&str>, routes: &str) -> Ir {
    let host = listener_host
        .map(|h| format!("    hostname: \"{h}\"\n"))
        .unwrap_or_default();
    ir(&format!(
        "binds:\n- port: 80\n  listeners:\n  - name: l\n{host}    routes:\n{routes}{BACKENDS}"
    ))
}

#[test]
fn path_match_kinds() {
    let ir = with_routes(
        None,
        "
    - name: exact
      matches: [{path: {type: Exact, value: /exact}}]
      backendRefs: [{name: b}]
    - name: prefix
      matches: [{path: {type: PathPrefix, value: /pre}}]
      backendRefs: [{name: b}]
    - name: regex
      matches: [{path: {type: RegularExpression, value: '/re/[0-9]+'}}]
      backendRefs: [{name: b}]
",
    );
    let cases = [
        ("/exact", "exact"),
        ("/exact/", "404"),
        ("/exactly", "404"),
        ("/pre", "prefix"),
        ("/pre/", "prefix"),
        ("/pre/x/y", "prefix"),
        ("/prefix", "404"),
        ("/re/123", "regex"),
        ("/re/123/x", "404"),
        ("/re/abc", "404"),
        ("/pre?x=1", "prefix"),
    ];
    for (uri, want) in cases {
        assert_eq!(route_of(&ir, 80, "GET", "a", uri, &[]), want, "{uri}");
    }
}

#[test]
fn path_precedence() {
    let ir = with_routes(
        None,
        "
    - name: root
      backendRefs: [{name: b}]
    - name: short
      matches: [{path: {type: PathPrefix, value: /a}}]
      backendRefs: [{name: b}]
    - name: long
      matches: [{path: {type: PathPrefix, value: /a/b/}}]
      backendRefs: [{name: b}]
    - name: exact
      matches: [{path: {type: Exact, value: /a/b}}]
      backendRefs: [{name: b}]
    - name: regex
      matches: [{path: {type: RegularExpression, value: '/a/b/c.*'}}]
      backendRefs: [{name: b}]
",
    );
    let cases = [
        ("/", "root"),
        ("/x", "root"),
        ("/a", "short"),
        ("/a/x", "short"),
        ("/a/b", "exact"),
        ("/a/b/", "long"),
        ("/a/b/x", "long"),
        // The regex value is longer than the /a/b prefix, so it wins where both match.
        ("/a/b/cde", "regex"),
    ];
    for (uri, want) in cases {
        assert_eq!(route_of(&ir, 80, "GET", "a", uri, &[]), want, "{uri}");
    }
}

#[test]
fn method_headers_and_query_add_precedence() {
    let ir = with_routes(
        None,
        "
    - name: plain
      matches: [{path: {type: PathPrefix, value: /}}]
      backendRefs: [{name: b}]
    - name: one-header
      matches: [{headers: [{name: X-Env, value: prod}]}]
      backendRefs: [{name: b}]
    - name: two-headers
      matches: [{headers: [{name: x-env, value: prod}, {name: x-team, type: RegularExpression, value: 'ml-.*'}]}]
      backendRefs: [{name: b}]
    - name: method
      matches: [{method: POST}]
      backendRefs: [{name: b}]
    - name: query
      matches: [{queryParams: [{name: v, value: '2'}]}]
      backendRefs: [{name: b}]
",
    );
    type Case<'a> = (&'a str, &'a str, &'a [(&'a str, &'a str)], &'a str);
    let cases: [Case; 7] = [
        ("GET", "/", &[], "plain"),
        ("GET", "/", &[("x-env", "prod")], "one-header"),
        ("GET", "/", &[("x-env", "dev")], "plain"),
        (
            "GET",
            "/",
            &[("x-env", "prod"), ("x-team", "ml-infra")],
            "two-headers",
        ),
        // A method match outranks header matches.
        ("POST", "/", &[("x-env", "prod")], "method"),
        ("GET", "/?v=2", &[], "query"),
        // Header matches outrank query matches.
        ("GET", "/?v=2", &[("x-env", "prod")], "one-header"),
    ];
    for (method, uri, headers, want) in cases {
        assert_eq!(
            route_of(&ir, 80, method, "a", uri, headers),
            want,
            "{method} {uri} {headers:?}"
        );
    }
}

#[test]
fn ties_go_to_route_order_then_name() {
    let ir = with_routes(
        None,
        "
    - name: zeta
      matches: [{path: {type: PathPrefix, value: /same}}]
      backendRefs: [{name: b}]
    - name: alpha
      matches: [{path: {type: PathPrefix, value: /same}}]
      backendRefs: [{name: b}]
",
    );
    // Same creation time: the alphabetically first route name wins.
    assert_eq!(route_of(&ir, 80, "GET", "a", "/same", &[]), "alpha");
}

#[test]
fn hostname_precedence_and_fallthrough() {
    let ir = with_routes(
        None,
        "
    - name: any
      backendRefs: [{name: b}]
    - name: wild
      hostnames: ['*.example.com']
      backendRefs: [{name: b}]
    - name: deep-wild
      hostnames: ['*.api.example.com']
      backendRefs: [{name: b}]
    - name: exact
      hostnames: [foo.example.com]
      matches: [{path: {type: PathPrefix, value: /only}}]
      backendRefs: [{name: b}]
",
    );
    let cases = [
        ("other.org", "/", "any"),
        ("x.example.com", "/", "wild"),
        ("a.b.example.com", "/", "wild"),
        ("example.com", "/", "any"),
        ("v1.api.example.com", "/", "deep-wild"),
        ("foo.example.com", "/only", "exact"),
        // The exact-host rule does not match /x, so the wildcard rule for that host does.
        ("foo.example.com", "/x", "wild"),
        ("FOO.Example.com:8080", "/only", "exact"),
    ];
    for (host, uri, want) in cases {
        assert_eq!(
            route_of(&ir, 80, "GET", host, uri, &[]),
            want,
            "{host}{uri}"
        );
    }
}

#[test]
fn listener_hostname_intersects_route_hostnames() {
    let ir = with_routes(
        Some("*.example.com"),
        "
    - name: r
      hostnames: [foo.example.com, other.org]
      backendRefs: [{name: b}]
",
    );
    assert_eq!(route_of(&ir, 80, "GET", "foo.example.com", "/", &[]), "r");
    // other.org is outside the listener's hostname, and bar.example.com outside the route's.
    assert_eq!(route_of(&ir, 80, "GET", "other.org", "/", &[]), "404");
    assert_eq!(route_of(&ir, 80, "GET", "bar.example.com", "/", &[]), "404");
}

#[test]
fn hostname_intersection_rules() {
    let i = |l: &str, r: &[&str]| {
        hostname::intersect(l, &r.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    };
    assert_eq!(i("", &[]), Some(vec![]));
    assert_eq!(i("a.com", &[]), Some(vec!["a.com".to_string()]));
    assert_eq!(i("", &["a.com"]), Some(vec!["a.com".to_string()]));
    assert_eq!(
        i("*.a.com", &["x.a.com", "b.com"]),
        Some(vec!["x.a.com".to_string()])
    );
    assert_eq!(
        i("x.a.com", &["*.a.com"]),
        Some(vec!["x.a.com".to_string()])
    );
    assert_eq!(
        i("*.a.com", &["*.x.a.com"]),
        Some(vec!["*.x.a.com".to_string()])
    );
    assert_eq!(
        i("*.x.a.com", &["*.a.com"]),
        Some(vec!["*.x.a.com".to_string()])
    );
    assert_eq!(i("a.com", &["b.com"]), None);
    assert_eq!(i("*.a.com", &["a.com"]), None);
}

#[test]
fn listeners_on_one_port_are_chosen_by_host() {
    let ir = ir(&format!(
        "
binds:
- port: 80
  listeners:
  - name: any
    routes: [{{name: from-any, backendRefs: [{{name: b}}]}}]
  - name: wild
    hostname: '*.example.com'
    routes: [{{name: from-wild, backendRefs: [{{name: b}}]}}]
  - name: exact
    hostname: foo.example.com
    routes: [{{name: from-exact, backendRefs: [{{name: b}}]}}]
- port: 81
  listeners:
  - name: other
    routes: [{{name: from-81, backendRefs: [{{name: b}}]}}]
{BACKENDS}"
    ));
    assert_eq!(
        route_of(&ir, 80, "GET", "foo.example.com", "/", &[]),
        "from-exact"
    );
    assert_eq!(
        route_of(&ir, 80, "GET", "bar.example.com", "/", &[]),
        "from-wild"
    );
    assert_eq!(route_of(&ir, 80, "GET", "x.org", "/", &[]), "from-any");
    assert_eq!(
        route_of(&ir, 81, "GET", "foo.example.com", "/", &[]),
        "from-81"
    );
    assert_eq!(route_of(&ir, 82, "GET", "x.org", "/", &[]), "404");
}

#[test]
fn redirect_and_direct_response_answer_without_backend() {
    let ir = with_routes(
        None,
        "
    - name: r
      matches: [{path: {type: PathPrefix, value: /old}}]
      filters:
      - type: RequestRedirect
        requestRedirect: {scheme: https, hostname: new.example.com, statusCode: 301, path: {type: ReplacePrefixMatch, replacePrefixMatch: /new}}
    - name: d
      matches: [{path: {type: Exact, value: /ping}}]
      filters:
      - type: DirectResponse
        directResponse: {status: 204}
",
    );
    assert_eq!(
        route_of(&ir, 80, "GET", "a", "/old/page?q=1", &[]),
        "redirect https://new.example.com/new/page?q=1"
    );
    assert_eq!(route_of(&ir, 80, "GET", "a", "/ping", &[]), "direct 204");
}

#[test]
fn rules_without_usable_backends_answer_500() {
    let ir = with_routes(
        None,
        "
    - name: none
      matches: [{path: {type: Exact, value: /none}}]
    - name: zero
      matches: [{path: {type: Exact, value: /zero}}]
      backendRefs: [{name: b, weight: 0}]
",
    );
    assert_eq!(route_of(&ir, 80, "GET", "a", "/none", &[]), "500");
    assert_eq!(route_of(&ir, 80, "GET", "a", "/zero", &[]), "500");
}

#[test]
fn invalid_backend_reference_answers_500_in_proportion() {
    use agora_proto::resource::{self as pb, resource::Kind};
    let loaded = config::load_str(
        &format!("binds:\n- port: 80\n  listeners:\n  - name: l\n    routes:\n    - name: r\n      backendRefs: [{{name: b}}]\n{BACKENDS}"),
        Path::new("."),
    )
    .expect("config");
    // What the control plane sends for a half-invalid rule: one good, one unresolved ref.
    let resources = loaded
        .resources
        .into_iter()
        .map(|mut r| {
            if let Some(Kind::Route(route)) = &mut r.kind {
                route.backends.push(pb::RouteBackend {
                    weight: 1,
                    invalid: "Service missing not found".into(),
                    ..Default::default()
                });
            }
            r
        })
        .collect();
    let ir = ir::build("local", resources, &StateRegistry::default()).expect("ir");
    let parts = req("GET", "a", "/", &[]);
    let outcome = |roll| match decide(
        &ir,
        Arrival {
            port: 80,
            tls: false,
            req: &parts,
        },
        roll,
    ) {
        Ok(_) => 200,
        Err(e) => e.status(),
    };
    assert_eq!(outcome(0), 200);
    assert_eq!(outcome(1), 500);
}

#[test]
fn weighted_choice_follows_weights() {
    let ir = ir("
binds:
- port: 80
  listeners:
  - name: l
    routes:
    - name: r
      backendRefs: [{name: a, weight: 1}, {name: c, weight: 3}]
backends:
- {name: a, static: {host: 127.0.0.1, port: 9}}
- {name: c, static: {host: 127.0.0.1, port: 10}}
");
    let parts = req("GET", "x", "/", &[]);
    let mut counts = std::collections::HashMap::new();
    for roll in 0..400u32 {
        if let Ok((Decision::Proxy(p), _)) = decide(
            &ir,
            Arrival {
                port: 80,
                tls: false,
                req: &parts,
            },
            roll,
        ) {
            *counts.entry(p.backend.name.clone()).or_insert(0) += 1;
        }
    }
    assert_eq!(counts["a"], 100);
    assert_eq!(counts["c"], 300);
}

#[test]
fn bad_regex_rejects_the_config_naming_the_route() {
    let loaded = config::load_str(
        &format!("binds:\n- port: 80\n  listeners:\n  - name: l\n    routes:\n    - name: r\n      matches: [{{path: {{type: RegularExpression, value: '/(unclosed'}}}}]\n      backendRefs: [{{name: b}}]\n{BACKENDS}"),
        Path::new("."),
    )
    .expect("structurally valid");
    let err =
        ir::build("local", loaded.resources, &StateRegistry::default()).expect_err("bad regex");
    let msg = err.to_string();
    assert!(
        msg.contains("listener/80/l/r.matches[0]") && msg.contains("invalid regex"),
        "{msg}"
    );
}

#[test]
fn config_errors_name_the_field() {
    let cases = [
        (
            "binds:\n- port: 80\n  listeners:\n  - routes:\n    - matches: [{path: {type: Prefix}}]\n",
            "binds[0].listeners[0].routes[0].matches[0].path.type",
        ),
        (
            "binds:\n- port: 80\n  listeners:\n  - routes:\n    - backendRefs: [{name: nope}]\n",
            "binds[0].listeners[0].routes[0].backendRefs[0].name",
        ),
        (
            "binds:\n- port: 80\n  listeners:\n  - routes:\n    - filters: [{type: RequestRedirect}]\n",
            "binds[0].listeners[0].routes[0].filters[0].requestRedirect",
        ),
        (
            "binds:\n- port: 80\n  listeners:\n  - routes:\n    - timeouts: {request: 10}\n",
            "binds[0].listeners[0].routes[0].timeouts.request",
        ),
        (
            "binds:\n- port: 80\n  listeners: []\n  bogus: 1\n",
            "binds[0]",
        ),
        ("backends:\n- name: x\n", "backends[0].endpoints"),
        (
            "binds:\n- port: 80\n  listeners:\n  - protocol: HTTPS\n",
            "binds[0].listeners[0].tls",
        ),
        (
            "backends:\n- name: x\n  static: {host: 127.0.0.1, port: 1}\n  policies: {auth: {key: k}}\n",
            "backends[0].policies",
        ),
        (
            "backends:\n- name: x\n  ai: {provider: {openai: {}, policies: {auth: {aws: {accessKeyId: a, secretAccessKey: b}}}}}\n",
            "backends[0].ai.provider.policies.auth.aws",
        ),
        (
            "backends:\n- name: x\n  ai: {provider: {openai: {}, anthropic: {}}}\n",
            "backends[0].ai.provider",
        ),
    ];
    for (yaml, field) in cases {
        let err = config::load_str(yaml, Path::new("."))
            .expect_err(yaml)
            .to_string();
        assert!(err.contains(field), "expected {field} in: {err}");
    }
}

#[test]
fn regex_precedence_uses_the_pattern_length() {
    // "/abc/.+" (7 chars) vs prefix "/abc/def" (8): the prefix is longer and wins; against
    // prefix "/abc/d" (6) the regex wins.
    let ir = with_routes(
        None,
        "
    - name: regex
      matches: [{path: {type: RegularExpression, value: '/abc/.+'}}]
      backendRefs: [{name: b}]
    - name: long-prefix
      matches: [{path: {type: PathPrefix, value: /abc/def}}]
      backendRefs: [{name: b}]
    - name: short-prefix
      matches: [{path: {type: PathPrefix, value: /abc/d}}]
      backendRefs: [{name: b}]
",
    );
    assert_eq!(
        route_of(&ir, 80, "GET", "a", "/abc/def", &[]),
        "long-prefix"
    );
    assert_eq!(route_of(&ir, 80, "GET", "a", "/abc/d", &[]), "regex");
}

fn build_err(yaml: &str) -> String {
    let loaded = config::load_str(yaml, Path::new(".")).expect("structurally valid");
    ir::build(&loaded.gateway, loaded.resources, &StateRegistry::default())
        .expect_err("rejected")
        .to_string()
}

#[test]
fn semantic_errors_reject_the_config() {
    let dup = build_err(&format!(
        "binds:\n- port: 80\n  listeners:\n  - {{name: a, hostname: '*.x.com'}}\n  - {{name: b, hostname: '*.x.com'}}\n{BACKENDS}"
    ));
    assert!(dup.contains("two listeners with one hostname"), "{dup}");
    let redirect_on_backend = build_err(&format!(
        "binds:\n- port: 80\n  listeners:\n  - routes:\n    - backendRefs:\n      - name: b\n        filters: [{{type: RequestRedirect, requestRedirect: {{statusCode: 301}}}}]\n{BACKENDS}"
    ));
    assert!(
        redirect_on_backend.contains("backends[0].filters[0]"),
        "{redirect_on_backend}"
    );
    // A route that does not attach (hostname outside the listener's) is still validated.
    let unattached = build_err(&format!(
        "binds:\n- port: 80\n  listeners:\n  - hostname: a.com\n    routes:\n    - hostnames: [b.com]\n      matches: [{{headers: [{{name: x, type: RegularExpression, value: '['}}]}}]\n      backendRefs: [{{name: b}}]\n{BACKENDS}"
    ));
    assert!(unattached.contains("invalid regex"), "{unattached}");
    let bad_host = build_err(&format!(
        "binds:\n- port: 80\n  listeners:\n  - hostname: Bad_Host\n{BACKENDS}"
    ));
    assert!(bad_host.contains("hostname"), "{bad_host}");
}
