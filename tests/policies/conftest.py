"""Fixtures: a mock LLM provider, a JWKS server, a real redis-server, and two agora-proxy
processes sharing one policy config (and Redis) on loopback."""

import base64
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(HERE))
from support import free_port, wait_http  # noqa: E402
from credentials import ISSUER, JWT_SECRET, sha1_line  # noqa: E402
from grpc_authz import serve as grpc_authz_serve  # noqa: E402


CONFIG = """
gateway: test/policies
binds:
- port: {port}
  listeners:
  - name: http
    routes:
    - {{name: keyed, matches: [{{path: {{value: /keyed}}}}], backendRefs: [{{name: openai}}]}}
    - {{name: jwt, matches: [{{path: {{value: /jwt}}}}], backendRefs: [{{name: openai}}]}}
    - {{name: limited, matches: [{{path: {{value: /limited}}}}], backendRefs: [{{name: openai}}]}}
    - {{name: tokens, matches: [{{path: {{value: /tokens}}}}], backendRefs: [{{name: openai}}]}}
    - {{name: cors, matches: [{{path: {{value: /cors}}}}], backendRefs: [{{name: openai}}]}}
    - {{name: guarded, matches: [{{path: {{value: /guarded}}}}], backendRefs: [{{name: openai}}]}}
    - {{name: basic, matches: [{{path: {{value: /basic}}}}], backendRefs: [{{name: openai}}]}}
    - {{name: global, matches: [{{path: {{value: /global}}}}], backendRefs: [{{name: openai}}]}}
    - {{name: global-open, matches: [{{path: {{value: /gopen}}}}], backendRefs: [{{name: openai}}]}}
    - {{name: global-tokens, matches: [{{path: {{value: /gtokens}}}}], backendRefs: [{{name: openai}}]}}
    - {{name: llm-route, matches: [{{path: {{value: /example}}}}], backendRefs: [{{name: openai}}]}}
    - {{name: open, matches: [{{path: {{value: /open}}}}], backendRefs: [{{name: openai}}]}}
    - {{name: extauth, matches: [{{path: {{value: /extauth}}}}], backendRefs: [{{name: openai}}]}}
    - {{name: extauth-down, matches: [{{path: {{value: /xdown}}}}], backendRefs: [{{name: openai}}]}}
    - {{name: extauth-down-open, matches: [{{path: {{value: /xopen}}}}], backendRefs: [{{name: openai}}]}}
    - {{name: extauth-grpc, matches: [{{path: {{value: /xgrpc}}}}], backendRefs: [{{name: openai}}]}}
    - {{name: extauth-grpc-down, matches: [{{path: {{value: /xgdown}}}}], backendRefs: [{{name: openai}}]}}
    - {{name: headers, matches: [{{path: {{value: /headers}}}}], backendRefs: [{{name: openai}}]}}
    - {{name: models, matches: [{{path: {{value: /models-rule}}}}], backendRefs: [{{name: openai}}]}}
    - {{name: answers, matches: [{{path: {{value: /answers}}}}], backendRefs: [{{name: openai}}]}}
    - {{name: webhook, matches: [{{path: {{value: /webhook}}}}], backendRefs: [{{name: openai}}]}}
    - {{name: budget-tokens, matches: [{{path: {{value: /btokens}}}}], backendRefs: [{{name: openai}}]}}
    - {{name: budget-cost, matches: [{{path: {{value: /bcost}}}}], backendRefs: [{{name: openai}}]}}
backends:
- name: openai
  ai:
    provider: {{openai: {{}}, host: 127.0.0.1, port: {mock}}}
  policies:
    auth: {{key: sk-upstream-openai}}
policies:
- name: keyed
  targetRefs: [{{kind: HTTPRoute, name: keyed}}]
  traffic:
    apiKeyAuthentication:
      keys:
      - {{key: sk-alice-0123456789, id: alice, metadata: {{team: ml}}}}
      - {{key: sk-bob-0123456789, id: bob, metadata: {{team: web}}}}
    authorization:
      action: Allow
      policy: {{matchExpressions: ['apiKey.team == "ml"']}}
- name: jwt
  targetRefs: [{{kind: HTTPRoute, name: jwt}}]
  traffic:
    jwtAuthentication:
      providers:
      - issuer: {issuer}
        audiences: [agora]
        jwks: {{remote: {{url: "http://127.0.0.1:{jwks}/jwks.json", cacheDuration: 1m}}}}
    authorization:
      action: Require
      policy: {{matchExpressions: ['"ml" in jwt.groups']}}
- name: limited
  targetRefs: [{{kind: HTTPRoute, name: limited}}]
  traffic:
    rateLimit:
      local: [{{requests: 3, unit: Minutes}}]
- name: tokens
  targetRefs: [{{kind: HTTPRoute, name: tokens}}]
  traffic:
    rateLimit:
      local: [{{tokens: 60, unit: Minutes}}]
- name: cors
  targetRefs: [{{kind: HTTPRoute, name: cors}}]
  traffic:
    cors:
      allowOrigins: [https://chat.example.com]
      allowMethods: [POST, OPTIONS]
      allowHeaders: [content-type, authorization]
      maxAge: 600
- name: guarded
  targetRefs: [{{kind: HTTPRoute, name: guarded}}]
  backend:
    ai:
      promptGuard:
        request:
        - regex: {{action: Reject, builtins: [Ssn, CreditCard]}}
          response: {{message: "prompt contains PII"}}
        - regex: {{action: Mask, builtins: [Email]}}
- name: basic
  targetRefs: [{{kind: HTTPRoute, name: basic}}]
  traffic:
    basicAuthentication:
      realm: llm
      users: ["{htpasswd}"]
- name: global
  targetRefs: [{{kind: HTTPRoute, name: global}}]
  traffic:
    rateLimit:
      global:
        limits: [{{requests: 10, unit: Minutes}}]
- name: global-open
  targetRefs: [{{kind: HTTPRoute, name: global-open}}]
  traffic:
    rateLimit:
      global:
        failureMode: FailOpen
        limits: [{{requests: 1000, unit: Minutes}}]
- name: global-tokens
  targetRefs: [{{kind: HTTPRoute, name: global-tokens}}]
  traffic:
    rateLimit:
      global:
        limits:
        - tokens: 90
          unit: Hours
          descriptors: [{{name: user, expression: 'request.headers["x-user"]'}}]
- name: budget-tokens
  targetRefs: [{{kind: HTTPRoute, name: budget-tokens}}]
  traffic:
    apiKeyAuthentication:
      keys:
      - {{key: sk-alice-0123456789, id: alice, group: ml}}
      - {{key: sk-bob-0123456789, id: bob, group: ml}}
    budget: {{window: 1h, maxTokens: 50}}
- name: budget-cost
  targetRefs: [{{kind: HTTPRoute, name: budget-cost}}]
  traffic:
    apiKeyAuthentication:
      keys:
      - {{key: sk-alice-0123456789, id: alice, group: ml}}
      - {{key: sk-bob-0123456789, id: bob, group: ml}}
    budget:
      per: Group
      window: 24h
      maxCostUSD: 0.005
      prices: {{"gpt-*": {{input: 100, output: 100}}}}
- name: extauth
  targetRefs: [{{kind: HTTPRoute, name: extauth}}]
  traffic:
    extAuth: {{url: "http://127.0.0.1:{hooks}/authz", upstreamHeaders: [x-user-id], timeout: 2s}}
- name: extauth-down
  targetRefs: [{{kind: HTTPRoute, name: extauth-down}}]
  traffic:
    extAuth: {{url: "http://127.0.0.1:{closed}/authz", timeout: 500ms}}
- name: extauth-down-open
  targetRefs: [{{kind: HTTPRoute, name: extauth-down-open}}]
  traffic:
    extAuth: {{url: "http://127.0.0.1:{closed}/authz", timeout: 500ms, failureMode: FailOpen}}
- name: extauth-grpc
  targetRefs: [{{kind: HTTPRoute, name: extauth-grpc}}]
  traffic:
    extAuth: {{url: "grpc://127.0.0.1:{grpc}", upstreamHeaders: [x-user-id], timeout: 2s}}
- name: extauth-grpc-down
  targetRefs: [{{kind: HTTPRoute, name: extauth-grpc-down}}]
  traffic:
    extAuth: {{url: "grpc://127.0.0.1:{closed}", timeout: 500ms}}
- name: headers
  targetRefs: [{{kind: HTTPRoute, name: headers}}]
  traffic:
    headerModifiers:
      request: {{set: [{{name: x-policy, value: applied}}], remove: [x-internal]}}
      response: {{add: [{{name: x-served-by, value: agora}}]}}
- name: models
  targetRefs: [{{kind: HTTPRoute, name: models}}]
  traffic:
    authorization:
      action: Allow
      policy: {{matchExpressions: ['llm.provider == "openai" && llm.requestModel.startsWith("gpt-") && llm.inputTokens < 1000u']}}
- name: answers
  targetRefs: [{{kind: HTTPRoute, name: answers}}]
  backend:
    ai:
      promptGuard:
        response:
        - regex: {{action: Reject, matches: ["(?i)secret-model"]}}
          response: {{message: "answer withheld"}}
        - regex: {{action: Mask, builtins: [Email]}}
- name: webhook
  targetRefs: [{{kind: HTTPRoute, name: webhook}}]
  backend:
    ai:
      promptGuard:
        request:
        - webhook: {{url: "http://127.0.0.1:{hooks}/guard"}}
# ../shared/examples/kubernetes/05-policy.yaml, as local config.
- name: llm-limits
  targetRefs: [{{group: gateway.networking.k8s.io, kind: HTTPRoute, name: llm-route}}]
  traffic:
    rateLimit:
      local:
      - {{tokens: 100000, unit: Minutes}}
      - {{requests: 60, unit: Minutes}}
    cors:
      allowOrigins: [https://chat.example.com]
      allowMethods: [POST, OPTIONS]
    authorization:
      action: Allow
      policy:
        matchExpressions:
        - 'request.headers["x-team"] == "ml-platform"'
"""


class JwksHandler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_GET(self):
        k = base64.urlsafe_b64encode(JWT_SECRET).rstrip(b"=").decode()
        body = json.dumps({"keys": [{"kty": "oct", "kid": "test-1", "alg": "HS256", "k": k}]}).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class HooksHandler(BaseHTTPRequestHandler):
    """An external authorization service (`/authz/...`: admits requests carrying
    `x-allow: yes`, naming the user upstream) and a prompt guard webhook (`/guard`: refuses
    prompts mentioning "forbidden-topic")."""

    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def reply(self, status, body=b"", headers=()):
        self.send_response(status)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def authz(self):
        if self.headers.get("x-allow") == "yes" and self.path.startswith("/authz/"):
            self.reply(200, headers=[("x-user-id", "user-42")])
        else:
            self.reply(403, b"denied")

    do_GET = authz

    def do_POST(self):
        if self.path.startswith("/authz"):
            length = int(self.headers.get("content-length") or 0)
            self.rfile.read(length)
            return self.authz()
        body = self.rfile.read(int(self.headers["content-length"]))
        if b"forbidden-topic" in body:
            verdict = {"allow": False, "reason": "topic not allowed here"}
        else:
            verdict = {"allow": True}
        self.reply(200, json.dumps(verdict).encode(), [("content-type", "application/json")])


class Env:
    def __init__(self, ports, admins, record, redis_port, redis_proc, grpc_authz):
        self.grpc_authz = grpc_authz
        self.ports = ports
        self.admins = admins
        self.record = record
        self.redis_port = redis_port
        self.redis_proc = redis_proc

    def url(self, prefix, proxy=0):
        return f"http://127.0.0.1:{self.ports[proxy]}{prefix}"

    def recorded(self):
        return [json.loads(l) for l in self.record.read_text().splitlines() if l.strip()]

    def metrics(self, proxy=0):
        with urllib.request.urlopen(f"http://{self.admins[proxy]}/metrics") as r:
            return r.read().decode()


def start_redis(port, tmp):
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.fail("redis-server is not installed (scripts/setup.sh installs it)")
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--dir", str(tmp)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    import redis

    deadline = time.time() + 10
    while time.time() < deadline:
        try:
            redis.Redis(port=port).ping()
            return proc
        except Exception:
            time.sleep(0.05)
    raise RuntimeError("redis-server never came up")


@pytest.fixture(scope="session")
def env():
    binary = os.environ.get("AGORA_PROXY_BIN", str(ROOT / "target" / "debug" / "agora-proxy"))
    tmp = Path(tempfile.mkdtemp(prefix="agora-policies-"))
    record = tmp / "record.jsonl"
    record.write_text("")
    mock_port, jwks_port, redis_port = free_port(), free_port(), free_port()
    mock = subprocess.Popen(
        [sys.executable, str(ROOT / "tests" / "llm" / "mock_providers.py"), str(mock_port), str(record)]
    )
    jwks = ThreadingHTTPServer(("127.0.0.1", jwks_port), JwksHandler)
    threading.Thread(target=jwks.serve_forever, daemon=True).start()
    hooks_port, closed_port = free_port(), free_port()
    hooks = ThreadingHTTPServer(("127.0.0.1", hooks_port), HooksHandler)
    threading.Thread(target=hooks.serve_forever, daemon=True).start()
    grpc_port = free_port()
    grpc_server, grpc_authz = grpc_authz_serve(grpc_port)
    redis_proc = start_redis(redis_port, tmp)
    ports = [free_port(), free_port()]
    admins = [free_port(), free_port()]
    procs, logs = [], []
    for i in range(2):
        cfg = tmp / f"config{i}.yaml"
        cfg.write_text(
            CONFIG.format(
                port=ports[i], mock=mock_port, jwks=jwks_port, issuer=ISSUER,
                hooks=hooks_port, closed=closed_port, grpc=grpc_port,
                htpasswd=sha1_line("carol", "correct horse"),
            )
        )
        log = open(tmp / f"proxy{i}.log", "w")
        logs.append(log)
        procs.append(
            subprocess.Popen(
                [binary, "-f", str(cfg), "--admin", f"127.0.0.1:{admins[i]}",
                 "--redis", f"redis://127.0.0.1:{redis_port}/0"],
                stdout=subprocess.DEVNULL,
                stderr=log,
            )
        )
    try:
        for a in admins:
            wait_http(f"http://127.0.0.1:{a}/readyz")
        env = Env(ports, [f"127.0.0.1:{a}" for a in admins], record, redis_port, redis_proc,
                  grpc_authz)
        yield env
        # A test may have restarted redis-server.
        redis_proc = env.redis_proc
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait(10)
        redis_proc.terminate()
        mock.terminate()
        jwks.shutdown()
        hooks.shutdown()
        grpc_server.stop(None)
        for l in logs:
            l.close()
        for i in range(2):
            print((tmp / f"proxy{i}.log").read_text()[-3000:])
