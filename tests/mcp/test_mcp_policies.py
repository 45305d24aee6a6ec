"""MCP routes with policies and the other session modes, driven by the official `mcp` SDK and
raw HTTP: MCP authentication (RFC 9728 metadata, 401 challenges naming it, bearer JWTs),
authorization rules that filter listings and refuse calls by tool name and JWT claims,
stateless mode, passthrough that keeps each session on the replica that issued it, and the
DNS-rebinding checks (Host and Origin)."""

import base64
import json
import os
import subprocess
import sys
import tempfile
import time
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
import httpx
import httpx2
import jwt
import mcp_types as types
import pytest
from mcp import ClientSession, MCPError
from mcp.client.streamable_http import streamable_http_client

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT / "tests"))
from support import free_port, wait_http  # noqa: E402

SERVERS = HERE / "servers.py"
SECRET = b"mcp-auth-test-secret-0123456789abcdef"
ISSUER = "https://idp.mcp.test"
JWKS = json.dumps({"keys": [{
    "kty": "oct", "kid": "k1", "alg": "HS256",
    "k": base64.urlsafe_b64encode(SECRET).rstrip(b"=").decode(),
}]})

CONFIG = """
gateway: test/mcp-policies
binds:
- port: {port}
  listeners:
  - name: http
    routes:
    - name: secure
      matches: [{{path: {{type: PathPrefix, value: /secure}}}}]
      backendRefs: [{{name: secure}}]
    - name: stateless
      matches: [{{path: {{type: PathPrefix, value: /stateless}}}}]
      backendRefs: [{{name: stateless}}]
    - name: pass
      matches: [{{path: {{type: PathPrefix, value: /mcp}}}}]
      backendRefs: [{{name: pass}}]
backends:
- name: secure
  mcp:
    prefixMode: Always
    targets:
    - name: alpha
      static: {{host: 127.0.0.1, port: {a}, path: /mcp}}
- name: stateless
  mcp:
    sessionRouting: Stateless
    targets:
    - name: alpha
      static: {{host: 127.0.0.1, port: {a}, path: /mcp}}
- name: pass
  mcp: {{}}
  endpoints:
  - {{host: 127.0.0.1, port: {a}}}
  - {{host: 127.0.0.1, port: {b}}}
policies:
- name: mcp-auth
  targetRefs: [{{kind: Backend, name: secure}}]
  backend:
    mcp:
      authentication:
        issuer: {issuer}
        audiences: [mcp-tools]
        jwks: {{inline: '{jwks}'}}
        resourceMetadata:
          scopes_supported: [tools]
      authorization:
        action: Allow
        policy:
          matchExpressions:
          - '!has(mcp.tool) || mcp.tool.name == "echo" || jwt.sub == "alice"'
"""


def token(sub, audience="mcp-tools", issuer=ISSUER):
    now = int(time.time())
    return jwt.encode({"sub": sub, "iss": issuer, "aud": audience, "iat": now, "exp": now + 600},
                      SECRET, algorithm="HS256", headers={"kid": "k1"})


@pytest.fixture(scope="module")
def gw():
    binary = os.environ.get("AGORA_PROXY_BIN", str(ROOT / "target" / "debug" / "agora-proxy"))
    tmp = Path(tempfile.mkdtemp(prefix="agora-mcp-policies-"))
    a, b, port, admin = free_port(), free_port(), free_port(), free_port()
    log = open(tmp / "log", "w")
    servers = [
        subprocess.Popen([sys.executable, str(SERVERS), "http", str(p), "alpha"], stdout=log, stderr=log)
        for p in (a, b)
    ]
    (tmp / "config.yaml").write_text(CONFIG.format(
        port=port, a=a, b=b, issuer=ISSUER, jwks=JWKS,
    ))
    proxy = subprocess.Popen(
        [binary, "-f", str(tmp / "config.yaml"), "--admin", f"127.0.0.1:{admin}"],
        stdout=subprocess.DEVNULL, stderr=log,
        env={**os.environ, "AGORA_MCP_SESSION_KEY": "11" * 32},
    )
    try:
        for p in (a, b):
            wait_http(f"http://127.0.0.1:{p}/healthz")
        wait_http(f"http://127.0.0.1:{admin}/readyz")
        yield {"base": f"http://127.0.0.1:{port}", "port": port}
    finally:
        proxy.terminate()
        for s in servers:
            s.terminate()
        proxy.wait(15)
        for s in servers:
            s.wait(10)
        log.close()
        print((tmp / "log").read_text()[-3000:])


def run(fn, timeout=60):
    async def main():
        with anyio.fail_after(timeout):
            return await fn()
    return anyio.run(main)


@asynccontextmanager
async def connect(url, bearer=None, seen=None):
    async def remember(response):
        if seen is not None and (sid := response.headers.get("mcp-session-id")):
            seen.append(sid)

    hdrs = {"authorization": f"Bearer {bearer}"} if bearer else {}
    async with httpx2.AsyncClient(headers=hdrs, timeout=30, event_hooks={"response": [remember]}) as http:
        async with streamable_http_client(url, http_client=http) as (read, write):
            async with ClientSession(read, write) as session:
                await session.initialize()
                yield session


def text(result):
    return "".join(c.text for c in result.content if isinstance(c, types.TextContent))


INIT = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
    "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "raw", "version": "0"}}}
ACCEPT = {"accept": "application/json, text/event-stream", "content-type": "application/json"}


def test_unauthenticated_requests_get_a_challenge_naming_the_resource_metadata(gw):
    r = httpx.post(gw["base"] + "/secure", json=INIT, headers=ACCEPT)
    assert r.status_code == 401, r.text
    challenge = r.headers["www-authenticate"]
    meta_url = f"{gw['base']}/.well-known/oauth-protected-resource/secure"
    assert challenge.startswith("Bearer ") and f'resource_metadata="{meta_url}"' in challenge, challenge
    # The refusal is a JSON-RPC error, as everything on an MCP route.
    assert r.json()["jsonrpc"] == "2.0" and r.json()["error"]["code"] == -32600, r.text
    meta = httpx.get(meta_url).json()
    assert meta["resource"] == gw["base"] + "/secure"
    assert meta["authorization_servers"] == [ISSUER]
    assert meta["scopes_supported"] == ["tools"]
    assert meta["bearer_methods_supported"] == ["header"]
    # A token for another audience or from another issuer is refused the same way.
    for bad in (token("alice", audience="other"), token("alice", issuer="https://evil.test"), "garbage"):
        r = httpx.post(gw["base"] + "/secure", json=INIT, headers={**ACCEPT, "authorization": f"Bearer {bad}"})
        assert r.status_code == 401 and "resource_metadata=" in r.headers["www-authenticate"], r.text
    # Routes without MCP authentication publish no metadata.
    assert httpx.get(f"{gw['base']}/.well-known/oauth-protected-resource/stateless").status_code == 404


def test_listings_and_calls_follow_the_authorization_rules(gw):
    async def body():
        async with connect(gw["base"] + "/secure", bearer=token("bob")) as bob:
            names = {t.name for t in (await bob.list_tools()).tools}
            assert names == {"alpha_echo"}, names
            assert text(await bob.call_tool("alpha_echo", {"text": "hi"})) == "alpha: hi"
            with pytest.raises(MCPError) as e:
                await bob.call_tool("alpha_whoami", {})
            assert "access denied" in str(e.value.error.message), e.value.error
            # Prompts are not tools: the rule lets them through.
            assert {p.name for p in (await bob.list_prompts()).prompts} == {"alpha_greet"}
        async with connect(gw["base"] + "/secure", bearer=token("alice")) as alice:
            names = {t.name for t in (await alice.list_tools()).tools}
            assert {"alpha_echo", "alpha_whoami", "alpha_slow_count"} <= names, names
            assert text(await alice.call_tool("alpha_whoami", {})).startswith("alpha pid=")
    run(body)


def test_stateless_mode_needs_no_session(gw):
    url = gw["base"] + "/stateless"
    r = httpx.post(url, json=INIT, headers=ACCEPT)
    assert r.status_code == 200 and "mcp-session-id" not in r.headers, (r.status_code, r.headers)
    assert r.json()["result"]["serverInfo"]["name"]
    for i in range(3):
        call = {"jsonrpc": "2.0", "id": 10 + i, "method": "tools/call",
                "params": {"name": "echo", "arguments": {"text": f"n{i}"}}}
        r = httpx.post(url, json=call, headers={**ACCEPT, "mcp-protocol-version": "2025-06-18"})
        assert r.status_code == 200, r.text
        msg = r.json()
        assert msg["id"] == 10 + i and msg["result"]["content"][0]["text"] == f"alpha: n{i}", msg
    # The SDK client works too (its GET stream is refused with 405, as the spec allows).
    async def sdk():
        async with connect(url) as s:
            assert text(await s.call_tool("echo", {"text": "sdk"})) == "alpha: sdk"
    run(sdk)


def test_passthrough_keeps_each_session_on_its_replica(gw):
    async def body():
        pids = set()
        for _ in range(4):
            seen = []
            async with connect(gw["base"] + "/mcp", seen=seen) as s:
                owners = {text(await s.call_tool("whoami", {})) for _ in range(5)}
                assert len(owners) == 1, owners
                pids |= owners
                # The client sees the gateway's sealed id, not the server's 32 hex digits.
                assert seen and len(seen[0]) > 60, seen
        # Sessions spread over both replicas, each staying where it started.
        assert len(pids) == 2, pids
    run(body)
    r = httpx.post(gw["base"] + "/mcp", headers={**ACCEPT, "mcp-session-id": "forged"},
                   json={"jsonrpc": "2.0", "id": 2, "method": "tools/list"})
    assert r.status_code == 404 and r.json()["error"]["code"] == -32600, r.text


def test_dns_rebinding_is_refused(gw):
    url = gw["base"] + "/stateless"
    r = httpx.post(url, json=INIT, headers={**ACCEPT, "origin": "http://evil.example.com"})
    assert r.status_code == 403 and "origin" in r.json()["error"]["message"], r.text
    r = httpx.post(url, json=INIT, headers={**ACCEPT, "host": "evil.example.com"})
    assert r.status_code == 403 and "rebinding" in r.json()["error"]["message"], r.text
    # The gateway's own origin is fine.
    r = httpx.post(url, json=INIT, headers={**ACCEPT, "origin": f"http://127.0.0.1:{gw['port']}"})
    assert r.status_code == 200, r.text
