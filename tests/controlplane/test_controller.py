"""The controller path end to end: Kubernetes YAML (Gateway API + agentgateway.dev CRDs) in a
directory -> agora-controller -> delta xDS -> agora-proxy -> a mock LLM provider, driven with
the official openai and anthropic SDKs; and the users' example manifests, unchanged."""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import anthropic
import openai
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(os.environ.get("AGORA_BIN_DIR", ROOT / "target" / "debug"))
MOCK = ROOT / "tests" / "llm" / "mock_providers.py"
CLASS = """apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata: {name: agora}
spec: {controllerName: agora.dev/gateway-controller}
"""


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ready(admin, timeout=20):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(f"http://{admin}/readyz", timeout=1):
                return
        except Exception:
            time.sleep(0.05)
    raise RuntimeError("proxy never became ready")


class Stack:
    """Controller on a manifest directory plus one proxy for `gateway`."""

    def __init__(self, manifests: Path, gateway: str):
        self.dir = manifests
        self.status_file = manifests.parent / "status.yaml"
        self.port, self.admin, xds = free_port(), f"127.0.0.1:{free_port()}", free_port()
        self.procs = [
            subprocess.Popen([str(BIN / "agora-controller"), "--manifests", str(manifests),
                              "--xds-listen", f"127.0.0.1:{xds}", "--status-file", str(self.status_file)],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL),
        ]
        time.sleep(0.3)
        self.procs.append(subprocess.Popen(
            [str(BIN / "agora-proxy"), "--xds", f"http://127.0.0.1:{xds}", "--gateway", gateway,
             "--port-map", f"80={self.port}", "--admin", self.admin, "--no-access-log"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        wait_ready(self.admin)

    def url(self, path):
        return f"http://127.0.0.1:{self.port}{path}"

    def statuses(self):
        return yaml.safe_load(self.status_file.read_text()) or []

    def wait_status(self, kind, name, pred, timeout=10):
        deadline = time.time() + timeout
        while time.time() < deadline:
            try:
                for s in self.statuses():
                    if s["kind"] == kind and s["name"] == name and pred(s["status"]):
                        return s["status"]
            except (OSError, yaml.YAMLError):
                pass
            time.sleep(0.05)
        raise AssertionError(f"{kind} {name}: status never matched; have {self.statuses()}")

    def stop(self):
        for p in self.procs:
            p.send_signal(signal.SIGTERM)
        for p in self.procs:
            p.wait(10)


def conditions(status):
    out = {c["type"]: c for c in status.get("conditions", [])}
    for p in status.get("parents", []):
        out.update({c["type"]: c for c in p["conditions"]})
    return out


@pytest.fixture()
def mock_provider(tmp_path):
    port = free_port()
    record = tmp_path / "record.jsonl"
    record.write_text("")
    p = subprocess.Popen([sys.executable, str(MOCK), str(port), str(record)])
    deadline = time.time() + 10
    while time.time() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                break
        time.sleep(0.05)
    yield port, record
    p.terminate()
    p.wait(10)


def test_llm_backend_through_the_controller(tmp_path, mock_provider):
    mock_port, record = mock_provider
    m = tmp_path / "m"
    m.mkdir()
    (m / "class.yaml").write_text(CLASS)
    (m / "app.yaml").write_text(f"""
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {{name: gw, namespace: ai}}
spec:
  gatewayClassName: agora
  listeners: [{{name: http, port: 80, protocol: HTTP}}]
---
apiVersion: v1
kind: Secret
metadata: {{name: openai-key, namespace: ai}}
stringData: {{Authorization: "Bearer k-openai"}}
---
apiVersion: agentgateway.dev/v1alpha1
kind: AgentgatewayBackend
metadata: {{name: openai, namespace: ai}}
spec:
  ai:
    provider: {{openai: {{model: gpt-4o-mini}}, host: 127.0.0.1, port: {mock_port}}}
  policies:
    auth: {{secretRef: {{name: openai-key}}}}
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {{name: llm, namespace: ai}}
spec:
  parentRefs: [{{name: gw}}]
  rules:
  - matches: [{{path: {{type: PathPrefix, value: /llm}}}}]
    filters:
    - type: URLRewrite
      urlRewrite: {{path: {{type: ReplacePrefixMatch, replacePrefixMatch: /}}}}
    backendRefs: [{{group: agentgateway.dev, kind: AgentgatewayBackend, name: openai}}]
""")
    st = Stack(m, "ai/gw")
    try:
        route = st.wait_status("HTTPRoute", "llm", lambda s: conditions(s)["ResolvedRefs"]["status"] == "True")
        assert conditions(route)["Accepted"]["status"] == "True"

        # OpenAI client -> OpenAI provider, the key from the Secret.
        client = openai.OpenAI(base_url=st.url("/llm/v1"), api_key="client-key-not-forwarded")
        r = client.chat.completions.create(model="anything", messages=[{"role": "user", "content": "hi"}])
        assert r.choices[0].message.content
        sent = json.loads(record.read_text().splitlines()[-1])
        assert sent["headers"].get("authorization") == "Bearer k-openai"
        assert sent["body"]["model"] == "gpt-4o-mini"

        # Anthropic client -> the same OpenAI provider, translated both ways.
        a = anthropic.Anthropic(base_url=st.url("/llm"), api_key="x")
        msg = a.messages.create(model="claude-x", max_tokens=20, messages=[{"role": "user", "content": "hi"}])
        assert msg.content[0].text

        # Drop the Secret: the backend is no longer valid, the route says why and answers 500
        # in the client's protocol; the rest keeps serving.
        (m / "app.yaml").write_text((m / "app.yaml").read_text().replace("name: openai-key", "name: gone", 1))
        st.wait_status("AgentgatewayBackend", "openai", lambda s: conditions(s)["Accepted"]["status"] == "False")
        route = st.wait_status("HTTPRoute", "llm", lambda s: conditions(s)["ResolvedRefs"]["status"] == "False")
        assert "Secret ai/openai-key not found" in conditions(route)["ResolvedRefs"]["message"]
        deadline = time.time() + 10
        while True:
            try:
                client.chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}])
            except openai.InternalServerError:
                break
            assert time.time() < deadline, "the route kept serving after its backend became invalid"
            time.sleep(0.1)
    finally:
        st.stop()


def test_kubernetes_examples_are_accepted_and_served(tmp_path):
    m = tmp_path / "m"
    shutil.copytree(ROOT / "examples" / "kubernetes", m)
    (m / "class.yaml").write_text(CLASS)
    st = Stack(m, "default/agentgateway")
    try:
        llm = st.wait_status("HTTPRoute", "llm-route", lambda s: bool(s.get("parents")))
        assert conditions(llm)["Accepted"]["status"] == "True"
        assert conditions(llm)["ResolvedRefs"]["status"] == "True"
        for b in ("gemini", "anthropic", "ollama", "planner-agent", "mcp-tools"):
            s = st.wait_status("AgentgatewayBackend", b, lambda s: True)
            assert conditions(s)["Accepted"]["status"] == "True", (b, s)
        mcp = st.wait_status("HTTPRoute", "mcp", lambda s: bool(s.get("parents")))
        assert conditions(mcp)["ResolvedRefs"]["status"] == "True", mcp
        pol = st.wait_status("AgentgatewayPolicy", "llm-limits", lambda s: True)
        assert pol["ancestors"][0]["conditions"][0]["status"] == "True", pol
        gw = st.wait_status("Gateway", "agentgateway", lambda s: True)
        assert gw["listeners"][0]["attachedRoutes"] == 3  # llm-route, mcp, planner

        # 05-policy.yaml is enforced: without the x-team header its CEL rule denies (in
        # Anthropic's error shape); with it, the Anthropic route reaches the Anthropic provider
        # (no network here: an Anthropic-shaped 503). The MCP route is a virtual MCP server
        # whose targets (cluster names) do not exist here: initialize gets a JSON-RPC error
        # naming them. Unknown paths 404.
        a = anthropic.Anthropic(base_url=st.url("/ai/claude"), api_key="x", max_retries=0)
        with pytest.raises(anthropic.PermissionDeniedError):
            a.messages.create(model="claude-sonnet-4-5", max_tokens=5, messages=[{"role": "user", "content": "hi"}])
        a = anthropic.Anthropic(
            base_url=st.url("/ai/claude"), api_key="x", max_retries=0,
            default_headers={"x-team": "ml-platform"},
        )
        with pytest.raises(anthropic.APIStatusError) as e:
            a.messages.create(model="claude-sonnet-4-5", max_tokens=5, messages=[{"role": "user", "content": "hi"}])
        assert e.value.status_code in (502, 503)
        assert e.value.body["type"] == "error"
        init = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {},
            "clientInfo": {"name": "t", "version": "0"}}}).encode()
        req = urllib.request.Request(st.url("/mcp"), data=init, headers={
            "content-type": "application/json", "accept": "application/json, text/event-stream"})
        with urllib.request.urlopen(req, timeout=30) as r:
            answer = json.loads(r.read())
        assert answer["error"]["code"] == -32002, answer
        assert "time" in answer["error"]["message"] and "docs" in answer["error"]["message"], answer
        try:
            urllib.request.urlopen(st.url("/nothing-here"), timeout=5)
            got = 200
        except urllib.error.HTTPError as err:
            got = err.code
        assert got == 404
    finally:
        st.stop()
