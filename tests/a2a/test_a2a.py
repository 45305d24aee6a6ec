"""A2A through the gateway with the official a2a-sdk: two replicas of an agent behind one
a2a backend. The card's URLs name the gateway, messages and streams pass through, a
conversation stays on the replica that holds it, and errors are JSON-RPC errors."""

import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT / "tests"))
from support import free_port, wait_http  # noqa: E402

from a2a.client import A2ACardResolver, ClientConfig, ClientFactory  # noqa: E402
from a2a.helpers import get_stream_response_text  # noqa: E402
from a2a.types import GetTaskRequest, Message, Part, Role, SendMessageRequest  # noqa: E402

CONFIG = """
gateway: test/a2a
binds:
- port: {port}
  listeners:
  - name: http
    routes:
    - name: planner
      matches: [{{path: {{type: PathPrefix, value: /planner}}}}]
      filters:
      - type: URLRewrite
        urlRewrite: {{path: {{type: ReplacePrefixMatch, replacePrefixMatch: /}}}}
      backendRefs: [{{name: planner}}]
policies:
- name: no-streams-for-batch
  targetRefs: [{{kind: HTTPRoute, name: planner}}]
  traffic:
    authorization:
      action: Deny
      # A missing header is an evaluation error, and errors never admit: test for it first.
      policy: {{matchExpressions: ['a2a.method == "message/stream" && "x-client" in request.headers && request.headers["x-client"] == "batch"']}}
backends:
- name: planner
  a2a: {{}}
  endpoints:
  - {{host: 127.0.0.1, port: {a}}}
  - {{host: 127.0.0.1, port: {b}}}
"""


@pytest.fixture(scope="module")
def gw():
    binary = os.environ.get("AGORA_PROXY_BIN", str(ROOT / "target" / "debug" / "agora-proxy"))
    tmp = Path(tempfile.mkdtemp(prefix="agora-a2a-"))
    a, b, port, admin = free_port(), free_port(), free_port(), free_port()
    agents = [
        subprocess.Popen([sys.executable, str(HERE / "agent.py"), str(p), name])
        for p, name in ((a, "replica-a"), (b, "replica-b"))
    ]
    (tmp / "config.yaml").write_text(CONFIG.format(port=port, a=a, b=b))
    log = open(tmp / "proxy.log", "w")
    proxy = subprocess.Popen(
        [binary, "-f", str(tmp / "config.yaml"), "--admin", f"127.0.0.1:{admin}"],
        stdout=subprocess.DEVNULL, stderr=log,
    )
    try:
        for p in (a, b):
            wait_http(f"http://127.0.0.1:{p}/.well-known/agent-card.json")
        wait_http(f"http://127.0.0.1:{admin}/readyz")
        yield {"base": f"http://127.0.0.1:{port}/planner", "port": port, "admin": admin}
    finally:
        proxy.terminate()
        for p in agents:
            p.terminate()
        proxy.wait(10)
        for p in agents:
            p.wait(10)
        log.close()
        print((tmp / "proxy.log").read_text()[-3000:])


def message(text, context_id="", task_id=""):
    return SendMessageRequest(message=Message(
        role=Role.ROLE_USER, message_id=str(uuid.uuid4()), parts=[Part(text=text)],
        context_id=context_id, task_id=task_id,
    ))


def reply(ev):
    if ev.HasField("task") and ev.task.status.HasField("message"):
        return " ".join(p.text for p in ev.task.status.message.parts)
    return get_stream_response_text(ev, " ")


def test_card_urls_are_rewritten_to_the_gateway(gw):
    for path in ("/.well-known/agent-card.json", "/.well-known/agent.json"):
        card = json.loads(urllib.request.urlopen(gw["base"] + path).read())
        urls = [i["url"] for i in card["supportedInterfaces"]] + [card["url"]]
        assert urls and all(u == f"http://127.0.0.1:{gw['port']}/planner/" for u in urls), urls


def test_send_stream_and_conversations_stick_to_their_replica(gw):
    async def run():
        async with httpx.AsyncClient(timeout=30) as http:
            card = await A2ACardResolver(http, gw["base"]).get_agent_card()
            client = ClientFactory(ClientConfig(streaming=False, httpx_client=http)).create(card)
            stream = ClientFactory(ClientConfig(streaming=True, httpx_client=http)).create(card)
            replicas = set()
            for i in range(6):
                first = [ev async for ev in client.send_message(message(f"hello {i}"))][-1]
                text = reply(first)
                assert f"echo hello {i} (turn 1)" in text, text
                owner = text.split(":")[0]
                replicas.add(owner)
                task, ctx = first.task.id, first.task.context_id
                # Continuing the task (its id only lives on the replica that made it).
                follow = [ev async for ev in client.send_message(message("again", ctx, task))][-1]
                assert reply(follow) == f"{owner}: echo again (turn 2)"
                assert follow.task.id == task
                # A call naming only the task finds the replica that holds it.
                for _ in range(3):
                    got = await client.get_task(GetTaskRequest(id=task))
                    assert got.id == task and got.context_id == ctx
                # Streaming in the same context: several events, all from the same replica.
                events = [ev async for ev in stream.send_message(message("stream", ctx))]
                assert len(events) >= 2
                last = [reply(e) for e in events if reply(e)][-1]
                assert last == f"{owner}: echo stream (turn 3)", last
            # New conversations spread over both replicas.
            assert replicas == {"replica-a", "replica-b"}, replicas
            await client.close()
            await stream.close()

    asyncio.run(run())


def test_errors_are_jsonrpc(gw):
    r = httpx.post(gw["base"] + "/", content=b"{not json", headers={"content-type": "application/json"})
    assert r.status_code == 400
    body = r.json()
    assert body["jsonrpc"] == "2.0" and body["error"]["code"] == -32700 and body["id"] is None
    r = httpx.post(gw["base"] + "/", json={"jsonrpc": "2.0", "id": 5, "params": {}})
    assert r.status_code == 400 and r.json()["error"]["code"] == -32600 and r.json()["id"] == 5


def test_authorization_by_jsonrpc_method(gw):
    call = {"jsonrpc": "2.0", "id": "s1", "method": "message/stream", "params": {"message": {
        "kind": "message", "messageId": "m1", "role": "user", "parts": [{"kind": "text", "text": "hi"}]}}}
    r = httpx.post(gw["base"] + "/", json=call, headers={"x-client": "batch"})
    assert r.status_code == 403
    assert r.json()["id"] == "s1" and r.json()["error"]["code"] == -32603
    # The same call from another client streams (v0.3 method names work too).
    with httpx.stream("POST", gw["base"] + "/", json=call, headers={"accept": "text/event-stream"}) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        events = [line for line in r.iter_lines() if line.startswith("data:")]
    assert len(events) >= 2


def test_metrics_by_method(gw):
    m = urllib.request.urlopen(f"http://127.0.0.1:{gw['admin']}/metrics").read().decode()
    assert 'agora_a2a_requests_total{backend="planner",gateway="test/a2a",method="message/send"' in m
    assert 'method="message/stream"' in m and 'method="agent_card"' in m
