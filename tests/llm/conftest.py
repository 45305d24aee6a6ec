"""Fixtures: a mock provider and the agora-proxy binary on loopback."""

import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT / "tests"))
from support import free_port, wait_http  # noqa: E402,F401


CONFIG = """
gateway: test/llm
binds:
- port: {port}
  listeners:
  - name: http
    routes:
    - name: openai
      matches: [{{path: {{type: PathPrefix, value: /openai}}}}]
      backendRefs: [{{name: openai}}]
    - name: anthropic
      matches: [{{path: {{type: PathPrefix, value: /anthropic}}}}]
      backendRefs: [{{name: anthropic}}]
    - name: anthropic-client-openai-upstream
      matches: [{{path: {{type: PathPrefix, value: /x-anthropic}}}}]
      backendRefs: [{{name: openai}}]
    - name: openai-client-anthropic-upstream
      matches: [{{path: {{type: PathPrefix, value: /x-openai}}}}]
      backendRefs: [{{name: anthropic}}]
    - name: failover
      matches: [{{path: {{type: PathPrefix, value: /failover}}}}]
      backendRefs: [{{name: failover}}]
    - name: ejecting
      matches: [{{path: {{type: PathPrefix, value: /ejecting}}}}]
      backendRefs: [{{name: ejecting}}]
    - name: gemini
      matches: [{{path: {{type: PathPrefix, value: /gemini}}}}]
      backendRefs: [{{name: gemini}}]
    - name: vertex
      matches: [{{path: {{type: PathPrefix, value: /vertex}}}}]
      backendRefs: [{{name: vertex}}]
    - name: vertex-claude
      matches: [{{path: {{type: PathPrefix, value: /vclaude}}}}]
      backendRefs: [{{name: vertex-claude}}]
    - name: bedrock
      matches: [{{path: {{type: PathPrefix, value: /bedrock}}}}]
      backendRefs: [{{name: bedrock}}]
    - name: azure
      matches: [{{path: {{type: PathPrefix, value: /azure}}}}]
      backendRefs: [{{name: azure}}]
    - name: shaped
      matches: [{{path: {{type: PathPrefix, value: /shaped}}}}]
      backendRefs: [{{name: shaped}}]
    - name: by-model
      matches: [{{path: {{type: PathPrefix, value: /by-model}}}}]
      backendRefs: [{{name: by-model}}]
    - name: preset
      matches: [{{path: {{type: PathPrefix, value: /preset}}}}]
      backendRefs: [{{name: preset}}]
    - name: virtual
      matches: [{{path: {{type: PathPrefix, value: /virtual}}}}]
      backendRefs: [{{name: virtual}}]
    - name: small
      matches: [{{path: {{type: PathPrefix, value: /small}}}}]
      maxRequestBodyBytes: 2048
      backendRefs: [{{name: openai}}]
backends:
- name: openai
  ai:
    provider: {{openai: {{}}, host: 127.0.0.1, port: {mock}}}
  policies:
    auth: {{key: sk-upstream-openai}}
    ai: {{modelAliases: {{fast: gpt-fast-real}}}}
- name: anthropic
  ai:
    provider: {{anthropic: {{}}, host: 127.0.0.1, port: {mock}}}
  policies:
    auth: {{key: sk-ant-upstream}}
- name: failover
  ai:
    groups:
    - providers:
      - {{name: primary, openai: {{model: primary-503}}, host: 127.0.0.1, port: {mock}}}
    - providers:
      - name: secondary
        anthropic: {{model: claude-backup}}
        host: 127.0.0.1
        port: {mock}
        policies: {{auth: {{key: sk-ant-backup}}}}
  healthCheck: {{consecutiveFailures: 100000}}
  policies:
    auth: {{key: sk-primary}}
- name: gemini
  ai:
    provider: {{gemini: {{}}, host: 127.0.0.1, port: {mock}}}
  policies:
    auth: {{key: gemini-upstream-key}}
- name: vertex
  ai:
    provider: {{vertexai: {{projectId: proj-1, region: us-east5}}, host: 127.0.0.1, port: {mock}}}
  policies:
    auth: {{key: gcp-access-token}}
- name: vertex-claude
  ai:
    provider: {{vertexai: {{projectId: proj-1, region: us-east5, model: claude-vertex}}, host: 127.0.0.1, port: {mock}}}
  policies:
    auth: {{key: gcp-access-token}}
- name: bedrock
  ai:
    provider: {{bedrock: {{region: us-west-2}}, host: 127.0.0.1, port: {mock}}}
  policies:
    auth: {{aws: {{accessKeyId: AKIDTEST, secretAccessKey: secret-test}}}}
- name: azure
  ai:
    provider: {{azureopenai: {{endpoint: "https://res.openai.azure.com", deploymentName: gpt4o-dep, apiVersion: 2024-10-21}}, host: 127.0.0.1, port: {mock}}}
  policies:
    auth: {{key: azure-key}}
- name: shaped
  ai:
    provider: {{openai: {{}}, host: 127.0.0.1, port: {mock}}}
  policies:
    ai:
      defaults: {{temperature: 0.2}}
      overrides: {{max_tokens: 99}}
      prompt:
        prepend: [{{role: system, content: Follow the house rules.}}]
        append: [{{role: user, content: Answer in one line.}}]
- name: by-model
  ai:
    groups:
    - providers:
      - {{name: gpts, openai: {{}}, models: ["gpt-*"], host: 127.0.0.1, port: {mock}, policies: {{auth: {{key: k-openai}}}}}}
      - {{name: claudes, anthropic: {{}}, models: ["claude-*"], host: 127.0.0.1, port: {mock}, policies: {{auth: {{key: k-anthropic}}}}}}
- name: preset
  ai:
    provider: {{openai: {{model: llama-3.1-8b-instant}}, preset: groq, host: 127.0.0.1, port: {mock}, tls: false}}
  policies:
    auth: {{key: gsk-test}}
- name: ejecting
  ai:
    groups:
    - providers:
      - {{name: flaky, openai: {{model: flaky-503}}, host: 127.0.0.1, port: {mock}}}
    - providers:
      - {{name: steady, openai: {{model: steady}}, host: 127.0.0.1, port: {mock}}}
  healthCheck: {{consecutiveFailures: 2, baseEjectionTime: 60s}}
- name: virtual
  ai:
    groups:
    - providers:
      - {{name: vo, openai: {{}}, host: 127.0.0.1, port: {mock}, policies: {{auth: {{key: k-vo}}}}}}
      - {{name: va, anthropic: {{}}, host: 127.0.0.1, port: {mock}, policies: {{auth: {{key: k-va}}}}}}
    virtualModels:
    - name: split
      targets:
      - {{provider: vo, model: gpt-4o, weight: 3}}
      - {{provider: va, model: claude-sonnet-4-5, weight: 1}}
    - name: sturdy
      targets:
      - {{provider: vo, model: gpt-primary-503}}
      - {{provider: vo, model: gpt-second-429, priority: 1}}
      - {{provider: va, model: claude-fallback, priority: 2}}
    - name: tiered
      targets:
      - {{provider: va, model: claude-opus-4-1, when: 'request.headers["x-tier"] == "premium"'}}
      - {{provider: vo, model: gpt-4o-mini, priority: 1}}
    - name: members
      targets:
      - {{provider: vo, model: gpt-4o, when: 'request.headers["x-team"] == "core"'}}
  healthCheck: {{consecutiveFailures: 100000}}
"""


class Gateway:
    def __init__(self, port, admin, record, access_log=None):
        self.port = port
        self.admin = admin
        self.record = record
        self.access_log = access_log

    def access_lines(self):
        """The access log lines written so far (the proxy flushes them every 100 ms)."""
        time.sleep(0.3)
        return [json.loads(l) for l in self.access_log.read_text().splitlines() if l.startswith("{")]

    def url(self, prefix):
        return f"http://127.0.0.1:{self.port}{prefix}"

    def recorded(self):
        if not self.record.exists():
            return []
        return [json.loads(l) for l in self.record.read_text().splitlines() if l.strip()]

    def last(self):
        return self.recorded()[-1]

    def clear(self):
        self.record.write_text("")

    def metrics(self):
        with urllib.request.urlopen(f"http://{self.admin}/metrics") as r:
            return r.read().decode()


@pytest.fixture(scope="session")
def gateway():
    binary = os.environ.get("AGORA_PROXY_BIN", str(ROOT / "target" / "debug" / "agora-proxy"))
    if not Path(binary).exists():
        subprocess.run(["cargo", "build", "-p", "agora-proxy"], cwd=ROOT, check=True)
    tmp = Path(tempfile.mkdtemp(prefix="agora-llm-"))
    record = tmp / "record.jsonl"
    record.write_text("")
    mock_port, port, admin_port = free_port(), free_port(), free_port()
    mock = subprocess.Popen([sys.executable, str(HERE / "mock_providers.py"), str(mock_port), str(record)])
    (tmp / "config.yaml").write_text(CONFIG.format(port=port, mock=mock_port))
    log = open(tmp / "proxy.log", "w")
    access = open(tmp / "access.log", "w")
    proxy = subprocess.Popen(
        [binary, "-f", str(tmp / "config.yaml"), "--admin", f"127.0.0.1:{admin_port}"],
        stdout=access,
        stderr=log,
    )
    try:
        wait_http(f"http://127.0.0.1:{admin_port}/readyz")
        time.sleep(0.2)
        yield Gateway(port, f"127.0.0.1:{admin_port}", record, tmp / "access.log")
    finally:
        proxy.terminate()
        mock.terminate()
        proxy.wait(10)
        mock.wait(10)
        log.close()
        access.close()
        print((tmp / "proxy.log").read_text()[-4000:])
