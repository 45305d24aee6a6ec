#!/usr/bin/env python3
"""Writes cases.json for shared conformance tests that ship only their manifests, in the
suite's format, with the expectations of the upstream Go tests (gateway-api v1.6.1) as we
read them. Re-run after editing: python3 tests/conformance/cases-extra/generate.py"""

import json
import os

HERE = os.path.dirname(os.path.abspath(__file__))
NS = "gateway-conformance-infra"


def ok(host, path, backend, gateway="same-namespace", expected=None, **extra):
    c = {"request": {"host": host, "path": path, "method": "GET"}, "expectedRequest": expected,
         "response": {"statusCodes": [200]}, "backend": backend, "namespace": NS, "gateway": gateway}
    c.update(extra)
    return c


def status(host, path, code, gateway="same-namespace", **extra):
    c = {"request": {"host": host, "path": path, "method": "GET"}, "expectedRequest": None,
         "response": {"statusCodes": [code]}, "gateway": gateway}
    c.update(extra)
    return c


TESTS = {
    "httproute-hostname-intersection": {"cases": [
        ok("very.specific.com", "/s1", "infra-backend-v1", "httproute-hostname-intersection"),
        status("non.matching.com", "/s1", 404, "httproute-hostname-intersection"),
        status("foo.nonmatchingwildcard.io", "/s1", 404, "httproute-hostname-intersection"),
        status("foo.wildcard.io", "/s1", 404, "httproute-hostname-intersection"),
        ok("foo.wildcard.io", "/s2", "infra-backend-v2", "httproute-hostname-intersection"),
        ok("bar.wildcard.io", "/s2", "infra-backend-v2", "httproute-hostname-intersection"),
        ok("foo.bar.wildcard.io", "/s2", "infra-backend-v2", "httproute-hostname-intersection"),
        status("non.matching.com", "/s2", 404, "httproute-hostname-intersection"),
        status("wildcard.io", "/s2", 404, "httproute-hostname-intersection"),
        status("very.specific.com", "/s2", 404, "httproute-hostname-intersection"),
        ok("very.specific.com", "/s3", "infra-backend-v3", "httproute-hostname-intersection"),
        status("non.matching.com", "/s3", 404, "httproute-hostname-intersection"),
        status("foo.specific.com", "/s3", 404, "httproute-hostname-intersection"),
        status("foo.wildcard.io", "/s3", 404, "httproute-hostname-intersection"),
        ok("foo.anotherwildcard.io", "/s4", "infra-backend-v1", "httproute-hostname-intersection"),
        ok("foo.bar.anotherwildcard.io", "/s4", "infra-backend-v1", "httproute-hostname-intersection"),
        status("anotherwildcard.io", "/s4", 404, "httproute-hostname-intersection"),
        status("specific.but.wrong.com", "/s5", 404, "httproute-hostname-intersection"),
        status("wildcard.io", "/s5", 404, "httproute-hostname-intersection"),
    ]},
    "httproute-listener-hostname-matching": {"cases": [
        ok("bar.com", "/", "infra-backend-v1", "httproute-listener-hostname-matching"),
        ok("foo.bar.com", "/", "infra-backend-v2", "httproute-listener-hostname-matching"),
        ok("baz.bar.com", "/", "infra-backend-v3", "httproute-listener-hostname-matching"),
        ok("boo.bar.com", "/", "infra-backend-v3", "httproute-listener-hostname-matching"),
        ok("multiple.prefixes.bar.com", "/", "infra-backend-v3", "httproute-listener-hostname-matching"),
        ok("multiple.prefixes.foo.com", "/", "infra-backend-v3", "httproute-listener-hostname-matching"),
        ok("foo.foo.com", "/", "infra-backend-v3", "httproute-listener-hostname-matching"),
        status("no.matching.host", "/", 404, "httproute-listener-hostname-matching"),
        status("foo.com", "/", 404, "httproute-listener-hostname-matching"),
    ]},
    "httproute-invalid-backendref-unknown-kind": {"cases": [
        status("", "/", 500),
    ]},
    "httproute-308-redirect": {"cases": [
        {**status("example.org", "/permanent", 308), "redirect": {}},
        {**status("example.org", "/permanent/sub", 308), "redirect": {}},
    ]},
    "httproute-rewrite-host": {"cases": [
        ok("rewrite.example", "/one", "infra-backend-v1",
           expected={"host": "one.example.org", "path": "/one"}),
        ok("rewrite.example", "/", "infra-backend-v2",
           expected={"host": "example.org", "path": "/"}),
        ok("rewrite.example", "/rewrite-host-and-modify-headers", "infra-backend-v2",
           expected={"host": "test.example.org", "path": "/rewrite-host-and-modify-headers",
                     "headers": {"X-Header-Set": "set-overwrites-values", "X-Header-Add": "header-val-1",
                                 "X-Header-Add-Append": "header-val-2"},
                     "absentHeaders": ["X-Header-Remove"]},
           request={"host": "rewrite.example", "path": "/rewrite-host-and-modify-headers", "method": "GET",
                    "headers": {"X-Header-Set": "some-other-value", "X-Header-Remove": "remove-val"}}),
    ]},
    "httproute-path-match-order": {"cases": [
        ok("", "/match/exact/one", "infra-backend-v3"),
        ok("", "/match/exact", "infra-backend-v2"),
        ok("", "/match", "infra-backend-v1"),
        ok("", "/match/prefix/one/any", "infra-backend-v2"),
        ok("", "/match/prefix/any", "infra-backend-v1"),
        ok("", "/match/any", "infra-backend-v3"),
    ]},
    "httproute-query-param-matching": {"cases": [
        ok("", "/?animal=whale", "infra-backend-v1"),
        ok("", "/?animal=dolphin", "infra-backend-v2"),
        ok("", "/?animal=dolphin&color=blue", "infra-backend-v3"),
        ok("", "/?ANIMAL=Whale", "infra-backend-v3"),
        status("", "/?animal=shark", 404),
        status("", "/?animal=whales", 404),
        status("", "/?ANIMAL=whale", 404),
    ]},
    "httproute-weight": {
        "cases": [ok("", "/", "infra-backend-")],
        "special": {"kind": "weighted-distribution", "requests": 500, "concurrency": 10, "tolerance": 0.05,
                    "expectedWeights": {"infra-backend-v1": 0.7, "infra-backend-v2": 0.3, "infra-backend-v3": 0.0}},
    },
}

for name, body in TESTS.items():
    for c in body["cases"]:
        if c["request"]["host"] == "":
            del c["request"]["host"]
    d = os.path.join(HERE, name)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "cases.json"), "w") as f:
        json.dump({"test": name, "source": "agora: transcribed from the upstream Go test", **body}, f, indent=1)
        f.write("\n")
print(f"wrote {len(TESTS)} tests")
