"""MCP through the gateway with the official `mcp` SDK (v2): one virtual MCP server in front of
three real ones, alpha (Streamable HTTP), beta (legacy SSE) and gamma (stdio, started by the
gateway itself). Tools and prompts come back named `{target}_{name}`, resources
`{target}+{uri}`; calls, progress, logging and sampling pass through to the server that owns
the name; the session id is sealed with the backend's key, so another gateway replica (or the
same one after a crash) carries on a session it never saw; sessions that don't verify are 404.

test_servers_direct runs the same checks against the servers without the gateway: it guards
the fixture (servers.py), not the gateway."""

import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
import httpx
import httpx2
import mcp_types as types
import pytest
from mcp import ClientSession, MCPError
from mcp.client.sse import sse_client
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp_types.version import HANDSHAKE_PROTOCOL_VERSIONS

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT / "tests"))
from support import free_port, wait_http  # noqa: E402

SERVERS = HERE / "servers.py"
TARGETS = ("alpha", "beta", "gamma")
# What every server in servers.py offers.
CORE_TOOLS = {"echo", "whoami", "slow_count", "ask_llm", "grow", "fail"}
# alpha has NOOPS more tools and answers tools/list PAGE_SIZE tools at a time, so the
# gateway has to follow nextCursor to see all of alpha's tools.
NOOPS, PAGE_SIZE = 5, 4
ALPHA_FLAGS = ["--noop", str(NOOPS), "--page-size", str(PAGE_SIZE)]

# The key sealing session ids (64 hex characters = 32 bytes); every gateway in this module
# shares it, which is what lets one replica resume another's session.
SESSION_KEY = "4f1c2a9e8b7d6c5a4938271605f4e3d2c1b0a99887766554433221100ffeeddc"

CONFIG = """
gateway: test/mcp
binds:
- port: {port}
  listeners:
  - name: http
    routes:
    - name: mcp
      matches: [{{path: {{type: PathPrefix, value: /mcp}}}}]
      backendRefs: [{{name: tools}}]
    - name: open
      matches: [{{path: {{type: PathPrefix, value: /open}}}}]
      backendRefs: [{{name: tools-open}}]
    - name: closed
      matches: [{{path: {{type: PathPrefix, value: /closed}}}}]
      backendRefs: [{{name: tools-closed}}]
backends:
- name: tools
  mcp:
    targets:
    - name: alpha
      static: {{host: 127.0.0.1, port: {a}, path: /mcp, protocol: StreamableHTTP}}
    - name: beta
      static: {{host: 127.0.0.1, port: {b}, path: /sse, protocol: SSE}}
    - name: gamma
      stdio: {{cmd: {python}, args: [{servers}, stdio, gamma]}}
- name: tools-open
  mcp:
    failureMode: FailOpen
    targets:
    - name: alpha
      static: {{host: 127.0.0.1, port: {a}, path: /mcp, protocol: StreamableHTTP}}
    - name: dead
      static: {{host: 127.0.0.1, port: {dead}, path: /mcp, protocol: StreamableHTTP}}
- name: tools-closed
  mcp:
    targets:
    - name: alpha
      static: {{host: 127.0.0.1, port: {a}, path: /mcp, protocol: StreamableHTTP}}
    - name: dead
      static: {{host: 127.0.0.1, port: {dead}, path: /mcp, protocol: StreamableHTTP}}
"""


def run(fn, *args, timeout=60):
    """Run an async test body under a deadline, so a gateway that never answers fails the test."""
    async def main():
        with anyio.fail_after(timeout):
            return await fn(*args)
    return anyio.run(main)


class Gateway:
    def __init__(self, tmp, name, servers):
        binary = os.environ.get("AGORA_PROXY_BIN", str(ROOT / "target" / "debug" / "agora-proxy"))
        self.name, self.port, self.admin = name, free_port(), free_port()
        config = tmp / f"{name}.yaml"
        config.write_text(CONFIG.format(
            port=self.port, a=servers["a"], b=servers["b"], dead=servers["dead"],
            python=json.dumps(sys.executable), servers=json.dumps(str(SERVERS)),
        ))
        self.log_path = tmp / f"{name}.log"
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen(
            [binary, "-f", str(config), "--admin", f"127.0.0.1:{self.admin}"],
            stdout=subprocess.DEVNULL, stderr=self.log,
            env={**os.environ, "AGORA_MCP_SESSION_KEY": SESSION_KEY},
        )

    def url(self, path="/mcp"):
        return f"http://127.0.0.1:{self.port}{path}"

    def wait(self, timeout=20):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited ({self.proc.returncode}):\n" + self.log_path.read_text()[-3000:])
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.admin}/readyz", timeout=1) as r:
                    if r.status == 200:
                        return
            except Exception:
                time.sleep(0.05)
        raise RuntimeError(f"{self.name} never became ready")

    def stop(self, crash=False):
        if self.proc.poll() is None:
            if crash:
                self.proc.kill()
            else:
                self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
        self.log.close()
        print(f"--- {self.name} log ---\n" + self.log_path.read_text()[-3000:])


@pytest.fixture(scope="module")
def servers():
    """alpha (Streamable HTTP) and beta (SSE); gamma is started by whoever wants it over stdio."""
    tmp = Path(tempfile.mkdtemp(prefix="agora-mcp-"))
    a, b, dead = free_port(), free_port(), free_port()
    log = open(tmp / "servers.log", "w")
    procs = {
        "alpha": subprocess.Popen([sys.executable, str(SERVERS), "http", str(a), "alpha", *ALPHA_FLAGS], stderr=log),
        "beta": subprocess.Popen([sys.executable, str(SERVERS), "sse", str(b), "beta"], stderr=log),
    }
    try:
        wait_http(f"http://127.0.0.1:{a}/healthz")
        wait_http(f"http://127.0.0.1:{b}/healthz")
        yield {"a": a, "b": b, "dead": dead, "tmp": tmp, "pids": {n: p.pid for n, p in procs.items()}}
    finally:
        for p in procs.values():
            p.terminate()
        for p in procs.values():
            p.wait(10)
        log.close()
        print("--- servers log ---\n" + (tmp / "servers.log").read_text()[-3000:])


@pytest.fixture(scope="module")
def gw(servers):
    """Two gateway replicas with the same configuration and session key."""
    gws = [Gateway(servers["tmp"], name, servers) for name in ("gw1", "gw2")]
    try:
        for g in gws:
            g.wait()
        yield {"one": gws[0], "two": gws[1], "servers": servers}
    finally:
        for g in gws:
            g.stop()


# --- client helpers ------------------------------------------------------------------------


class Recorder:
    """The client-side callbacks a ClientSession reports to, and what they saw."""

    def __init__(self):
        self.logs, self.questions, self.notifications = [], [], []

    async def on_log(self, params):
        self.logs.append(params.data)

    async def on_sample(self, context, params):
        question = params.messages[0].content.text
        self.questions.append(question)
        return types.CreateMessageResult(
            role="assistant", model="test-llm",
            content=types.TextContent(type="text", text=f"sampled answer to {question}"),
        )

    async def on_message(self, message):
        self.notifications.append(message)

    def callbacks(self):
        return {"logging_callback": self.on_log, "sampling_callback": self.on_sample, "message_handler": self.on_message}


@asynccontextmanager
async def connect(url, **callbacks):
    """An initialized ClientSession over Streamable HTTP; `session.session_id()` is the
    Mcp-Session-Id the server handed out (the v2 transport does not expose it)."""
    seen = []

    async def remember(response):
        if sid := response.headers.get("mcp-session-id"):
            seen.append(sid)

    async with httpx2.AsyncClient(timeout=httpx2.Timeout(30, read=300), event_hooks={"response": [remember]}) as http:
        async with streamable_http_client(url, http_client=http) as (read, write):
            async with ClientSession(read, write, **callbacks) as session:
                await session.initialize()
                session.session_id = lambda: seen[-1] if seen else None
                yield session


async def listing(method, attr):
    """Every item of a paginated list call, following nextCursor."""
    items, cursor = [], None
    for _ in range(50):
        page = await method(params=types.PaginatedRequestParams(cursor=cursor) if cursor else None)
        items += getattr(page, attr)
        cursor = page.next_cursor
        if not cursor:
            return items
    raise AssertionError("pagination never ended")


def text(result):
    return "".join(c.text for c in result.content if isinstance(c, types.TextContent))


async def eventually(predicate, timeout=5):
    with anyio.fail_after(timeout):
        while not predicate():
            await anyio.sleep(0.05)


def ancestors(pid):
    """pid's parent, grandparent, ... (Linux /proc)."""
    out = []
    while pid > 1:
        status = Path(f"/proc/{pid}/status").read_text()
        pid = int(next(line.split()[1] for line in status.splitlines() if line.startswith("PPid:")))
        out.append(pid)
    return out


# Raw Streamable HTTP, for what the SDK client does not let a test do (another replica, a
# forged session id, DELETE).

ACCEPT = "application/json, text/event-stream"


def headers(session_id=None, version=None):
    h = {"accept": ACCEPT, "content-type": "application/json"}
    if session_id is not None:
        h["mcp-session-id"] = session_id
    if version is not None:
        h["mcp-protocol-version"] = version
    return h


def answer(response, request_id):
    """The JSON-RPC response to request_id in a JSON or an SSE body."""
    if response.headers.get("content-type", "").startswith("text/event-stream"):
        for event in response.text.replace("\r\n", "\n").split("\n\n"):
            data = "\n".join(line[5:].lstrip() for line in event.split("\n") if line.startswith("data:"))
            if data:
                msg = json.loads(data)
                if msg.get("id") == request_id and ("result" in msg or "error" in msg):
                    return msg
        raise AssertionError(f"no answer to {request_id} in {response.text!r}")
    return response.json()


async def raw_initialize(http, url):
    r = await http.post(url, headers=headers(), json={
        "jsonrpc": "2.0", "id": "init", "method": "initialize",
        "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "raw", "version": "0"}},
    })
    assert r.status_code == 200, r.text
    sid, version = r.headers["mcp-session-id"], answer(r, "init")["result"]["protocolVersion"]
    r = await http.post(url, headers=headers(sid, version), json={"jsonrpc": "2.0", "method": "notifications/initialized"})
    assert r.status_code in (200, 202), r.text
    return sid, version


async def raw_call(http, url, sid, version, tool, arguments, request_id=7):
    r = await http.post(url, headers=headers(sid, version), json={
        "jsonrpc": "2.0", "id": request_id, "method": "tools/call", "params": {"name": tool, "arguments": arguments},
    })
    return r


def raw_text(response, request_id=7):
    assert response.status_code == 200, (response.status_code, response.text)
    msg = answer(response, request_id)
    assert "result" in msg, msg
    return "".join(c["text"] for c in msg["result"]["content"] if c["type"] == "text")


# --- the servers on their own ----------------------------------------------------------------


async def exercise(session, name, recorder):
    """What the gateway tests check, against one server directly (no prefixes)."""
    tools = await listing(session.list_tools, "tools")
    expected = CORE_TOOLS | ({f"noop_{i}" for i in range(NOOPS)} if name == "alpha" else set())
    assert {t.name for t in tools if not t.name.startswith("grown_")} == expected
    assert text(await session.call_tool("echo", {"text": "hi"})) == f"{name}: hi"
    assert text(await session.call_tool("whoami", {})).startswith(f"{name} pid=")
    prompt = await session.get_prompt("greet", {"name": "Bob"})
    assert prompt.messages[0].content.text == f"Hello Bob, from {name}"
    assert [str(r.uri) for r in (await session.list_resources()).resources] == [f"{name}://readme"]
    assert (await session.read_resource(f"{name}://readme")).contents[0].text == f"{name} readme"
    templates = (await session.list_resource_templates()).resource_templates
    assert [t.uri_template for t in templates] == [f"{name}://items/{{id}}"]
    assert (await session.read_resource(f"{name}://items/7")).contents[0].text == f"{name} item 7"

    progress = []

    async def on_progress(p, total, message):
        progress.append((p, total, message))

    result = await session.call_tool("slow_count", {"n": 3}, progress_callback=on_progress)
    assert text(result) == f"{name}: counted 3"
    assert progress == [(i, 3, f"{name} step {i}") for i in (1, 2, 3)]
    await eventually(lambda: len(recorder.logs) >= 3)
    assert recorder.logs == [f"{name} log {i}" for i in (1, 2, 3)]

    result = await session.call_tool("ask_llm", {"question": f"{name}?"})
    assert text(result) == f"sampled answer to {name}?"
    assert recorder.questions == [f"{name}?"]

    assert (await session.call_tool("fail", {})).is_error
    # MCPServer answers an unknown tool with a tool error (isError), not a JSON-RPC error.
    assert (await session.call_tool("nope", {})).is_error


def test_servers_direct(servers):
    async def body():
        rec = Recorder()
        first = await anyio.to_thread.run_sync(
            lambda: httpx.post(f"http://127.0.0.1:{servers['a']}/mcp", headers=headers(), json={
                "jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}))
        # A stateful server wants a session before anything but initialize.
        assert first.status_code == 400, first.text
        async with connect(f"http://127.0.0.1:{servers['a']}/mcp", **rec.callbacks()) as s:
            page = await s.list_tools()
            assert len(page.tools) == PAGE_SIZE and page.next_cursor
            assert s.session_id()
            await exercise(s, "alpha", rec)
        # The raw helpers the gateway tests use, against alpha itself.
        async with httpx.AsyncClient(timeout=30) as http:
            url = f"http://127.0.0.1:{servers['a']}/mcp"
            sid, version = await raw_initialize(http, url)
            assert raw_text(await raw_call(http, url, sid, version, "echo", {"text": "raw"})) == "alpha: raw"
            r = await raw_call(http, url, flip(sid), version, "echo", {"text": "raw"})
            assert r.status_code == 404, r.text
            r = await http.delete(url, headers=headers(sid, version))
            assert r.status_code in (200, 204), r.text
            r = await raw_call(http, url, sid, version, "echo", {"text": "raw"})
            assert r.status_code == 404, r.text
        rec = Recorder()
        async with sse_client(f"http://127.0.0.1:{servers['b']}/sse") as (read, write):
            async with ClientSession(read, write, **rec.callbacks()) as s:
                await s.initialize()
                await exercise(s, "beta", rec)
        rec = Recorder()
        params = StdioServerParameters(command=sys.executable, args=[str(SERVERS), "stdio", "gamma"])
        async with stdio_client(params) as (read, write):
            async with ClientSession(read, write, **rec.callbacks()) as s:
                await s.initialize()
                await exercise(s, "gamma", rec)

    run(body)


# --- through the gateway -----------------------------------------------------------------------


def test_initialize_answers_as_the_gateway(gw):
    async def body():
        async with connect(gw["one"].url()) as s:
            init = await s.initialize()
            assert init.server_info.name not in TARGETS
            assert init.protocol_version in HANDSHAKE_PROTOCOL_VERSIONS
            caps = init.capabilities
            assert caps.tools is not None and caps.prompts is not None and caps.resources is not None
            assert s.session_id()

    run(body)


def test_tools_are_the_union_named_by_target(gw):
    async def body():
        async with connect(gw["one"].url()) as s:
            tools = await listing(s.list_tools, "tools")
            names = [t.name for t in tools if "_grown_" not in t.name]
            assert len(names) == len(set(names)), names
            expected = {f"{t}_{n}" for t in TARGETS for n in CORE_TOOLS}
            # alpha's tools come in pages of PAGE_SIZE: all of them are there.
            expected |= {f"alpha_noop_{i}" for i in range(NOOPS)}
            assert set(names) == expected
            echo = next(t for t in tools if t.name == "beta_echo")
            assert set(echo.input_schema["properties"]) == {"text"}
            assert echo.description == "Echo the text back, prefixed with the server's name."

    run(body)


def test_calls_go_to_the_named_server(gw):
    async def body():
        async with connect(gw["one"].url()) as s:
            for t in TARGETS:
                result = await s.call_tool(f"{t}_echo", {"text": "hi"})
                assert text(result) == f"{t}: hi" and not result.is_error
                assert result.structured_content == {"result": f"{t}: hi"}
            assert text(await s.call_tool("alpha_noop_4", {})) == "alpha: noop 4"
            # A tool error is a result, passed through.
            failed = await s.call_tool("beta_fail", {})
            assert failed.is_error
            # gamma runs over stdio as a child of the gateway, not of this test.
            who = text(await s.call_tool("gamma_whoami", {}))
            assert who.startswith("gamma pid=")
            pid = int(who.split("=")[1])
            assert gw["one"].proc.pid in ancestors(pid), who
            assert pid not in gw["servers"]["pids"].values()
            assert text(await s.call_tool("alpha_whoami", {})) == f"alpha pid={gw['servers']['pids']['alpha']}"

    run(body)


def test_prompts_named_by_target(gw):
    async def body():
        async with connect(gw["one"].url()) as s:
            prompts = await listing(s.list_prompts, "prompts")
            assert {p.name for p in prompts} == {f"{t}_greet" for t in TARGETS}
            assert [a.name for a in next(p for p in prompts if p.name == "alpha_greet").arguments] == ["name"]
            for t in TARGETS:
                got = await s.get_prompt(f"{t}_greet", {"name": "Bob"})
                assert got.messages[0].content.text == f"Hello Bob, from {t}"

    run(body)


def test_resources_and_templates_named_by_target(gw):
    async def body():
        async with connect(gw["one"].url()) as s:
            resources = await listing(s.list_resources, "resources")
            assert {str(r.uri) for r in resources} == {f"{t}+{t}://readme" for t in TARGETS}
            templates = await listing(s.list_resource_templates, "resource_templates")
            assert {t.uri_template for t in templates} == {f"{t}+{t}://items/{{id}}" for t in TARGETS}
            for t in TARGETS:
                read = await s.read_resource(f"{t}+{t}://readme")
                assert [c.text for c in read.contents] == [f"{t} readme"]
                read = await s.read_resource(f"{t}+{t}://items/7")
                assert [c.text for c in read.contents] == [f"{t} item 7"]

    run(body)


@pytest.mark.parametrize("target", TARGETS)
def test_progress_and_logging_reach_the_client(gw, target):
    async def body():
        rec, progress = Recorder(), []

        async def on_progress(p, total, message):
            progress.append((p, total, message))

        async with connect(gw["one"].url(), **rec.callbacks()) as s:
            result = await s.call_tool(f"{target}_slow_count", {"n": 3}, progress_callback=on_progress)
            assert text(result) == f"{target}: counted 3"
            assert progress == [(i, 3, f"{target} step {i}") for i in (1, 2, 3)]
            await eventually(lambda: len(rec.logs) >= 3)
            assert rec.logs == [f"{target} log {i}" for i in (1, 2, 3)]

    run(body)


@pytest.mark.parametrize("target", TARGETS)
def test_sampling_is_relayed_to_the_client(gw, target):
    async def body():
        rec = Recorder()
        async with connect(gw["one"].url(), **rec.callbacks()) as s:
            result = await s.call_tool(f"{target}_ask_llm", {"question": f"why {target}?"})
            assert text(result) == f"sampled answer to why {target}?"
            assert rec.questions == [f"why {target}?"]

    run(body)


@pytest.mark.parametrize("target", TARGETS)
def test_tool_list_changes_reach_the_client(gw, target):
    async def body():
        rec = Recorder()
        async with connect(gw["one"].url(), **rec.callbacks()) as s:
            # A Streamable HTTP server sends list_changed on its GET stream, which the client
            # (and the gateway, per target) opens in the background after initialize; one sent
            # before that is lost, as the protocol has it. So: grow until a change arrives.
            changed = lambda: any(isinstance(n, types.ToolListChangedNotification) for n in rec.notifications)  # noqa: E731
            for _ in range(10):
                grown = text(await s.call_tool(f"{target}_grow", {}))
                assert grown.startswith("grown_")
                try:
                    await eventually(changed, timeout=2)
                    break
                except TimeoutError:
                    continue
            assert changed(), rec.notifications
            names = {t.name for t in await listing(s.list_tools, "tools")}
            assert f"{target}_{grown}" in names
            assert text(await s.call_tool(f"{target}_{grown}", {})) == f"{target}: {grown}"

    run(body)


def test_unknown_names_are_jsonrpc_errors(gw):
    async def body():
        async with connect(gw["one"].url()) as s:
            for name in ("zeta_echo", "echo", "dead_echo"):
                with pytest.raises(MCPError):
                    await s.call_tool(name, {"text": "x"})
            with pytest.raises(MCPError):
                await s.get_prompt("zeta_greet", {"name": "x"})
            with pytest.raises(MCPError):
                await s.read_resource("zeta+zeta://readme")
            with pytest.raises(MCPError):
                await s.read_resource("alpha://readme")  # not prefixed
            # An unknown tool on a known server: whatever the server answers, it is no success.
            try:
                assert (await s.call_tool("alpha_nope", {})).is_error
            except MCPError:
                pass
            # The session is still good.
            assert text(await s.call_tool("alpha_echo", {"text": "still"})) == "alpha: still"

    run(body)


def test_another_replica_carries_on_the_session(gw):
    async def body():
        async with httpx.AsyncClient(timeout=30) as http, connect(gw["one"].url()) as s:
            sid, version = s.session_id(), s.protocol_version
            assert text(await s.call_tool("alpha_echo", {"text": "one"})) == "alpha: one"
            # gw2 has never seen this session: the id itself tells it where alpha's session is.
            r = await raw_call(http, gw["two"].url(), sid, version, "alpha_echo", {"text": "two"})
            assert raw_text(r) == "alpha: two"
            # ... and the SDK's session on gw1 goes on.
            assert text(await s.call_tool("alpha_echo", {"text": "three"})) == "alpha: three"

    run(body)


def test_a_session_outlives_a_crashed_gateway(gw):
    g3 = Gateway(gw["servers"]["tmp"], "gw3", gw["servers"])
    try:
        g3.wait()

        async def body():
            async with httpx.AsyncClient(timeout=30) as http:
                sid, version = await raw_initialize(http, g3.url())
                assert raw_text(await raw_call(http, g3.url(), sid, version, "alpha_echo", {"text": "a"})) == "alpha: a"
                g3.proc.send_signal(signal.SIGKILL)
                await anyio.to_thread.run_sync(g3.proc.wait)
                r = await raw_call(http, gw["two"].url(), sid, version, "alpha_echo", {"text": "b"})
                assert raw_text(r) == "alpha: b"

        run(body)
    finally:
        g3.stop(crash=True)


def flip(sid):
    """sid with its middle character changed to another of the same kind."""
    i = len(sid) // 2
    c = sid[i]
    for alphabet in ("0123456789", "abcdefghijklmnopqrstuvwxyz", "ABCDEFGHIJKLMNOPQRSTUVWXYZ"):
        if c in alphabet:
            new = alphabet[(alphabet.index(c) + 1) % len(alphabet)]
            break
    else:
        new = "A"
    return sid[:i] + new + sid[i + 1:]


def test_forged_session_ids_are_404(gw):
    async def body():
        async with httpx.AsyncClient(timeout=30) as http:
            url = gw["one"].url()
            sid, version = await raw_initialize(http, url)
            assert raw_text(await raw_call(http, url, sid, version, "alpha_echo", {"text": "ok"})) == "alpha: ok"
            for bad in (flip(sid), "garbage", "0" * len(sid), sid + "A", sid[:-4]):
                assert bad != sid
                r = await raw_call(http, url, bad, version, "alpha_echo", {"text": "no"})
                assert r.status_code == 404, (bad, r.status_code, r.text)
                r = await raw_call(http, gw["two"].url(), bad, version, "alpha_echo", {"text": "no"})
                assert r.status_code == 404, (bad, r.status_code, r.text)

    run(body)


def test_delete_ends_the_session(gw):
    async def body():
        async with httpx.AsyncClient(timeout=30) as http:
            url = gw["one"].url()
            sid, version = await raw_initialize(http, url)
            assert raw_text(await raw_call(http, url, sid, version, "beta_echo", {"text": "x"})) == "beta: x"
            r = await http.delete(url, headers=headers(sid, version))
            assert r.status_code in (200, 204), (r.status_code, r.text)

    run(body)


def test_fail_open_leaves_out_a_dead_server(gw):
    async def body():
        async with connect(gw["one"].url("/open")) as s:
            names = {t.name for t in await listing(s.list_tools, "tools")}
            assert "alpha_echo" in names
            assert all(n.startswith("alpha_") for n in names), names
            assert text(await s.call_tool("alpha_echo", {"text": "open"})) == "alpha: open"

    run(body)


def test_fail_closed_refuses_to_initialize(gw):
    async def body():
        async with streamable_http_client(gw["one"].url("/closed")) as (read, write):
            async with ClientSession(read, write) as s:
                with pytest.raises(MCPError):
                    await s.initialize()

    run(body)


def test_legacy_sse_clients(gw):
    async def body():
        rec = Recorder()
        async with sse_client(gw["one"].url("/mcp/sse")) as (read, write):
            async with ClientSession(read, write, **rec.callbacks()) as s:
                await s.initialize()
                names = {t.name for t in await listing(s.list_tools, "tools")}
                assert {f"{t}_echo" for t in TARGETS} <= names
                for t in TARGETS:
                    assert text(await s.call_tool(f"{t}_echo", {"text": "via sse"})) == f"{t}: via sse"

    run(body)


def metric_samples(text_, name):
    """(labels, value) for each sample of metric `name` in a Prometheus text exposition."""
    out = []
    for line in text_.splitlines():
        if line.startswith(name + "{"):
            labels_, value = line[len(name) + 1:].rsplit("} ", 1)
            out.append((dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', labels_)), float(value.split()[0])))
    return out


def test_metrics_by_method_server_and_resource(gw):
    async def body():
        async with connect(gw["one"].url()) as s:
            for _ in range(2):
                await s.call_tool("alpha_echo", {"text": "m"})
            await s.list_tools()

    run(body)
    m = httpx.get(f"http://127.0.0.1:{gw['one'].admin}/metrics").text
    samples = metric_samples(m, "agora_mcp_requests_total")
    calls = [(labels, v) for labels, v in samples
             if labels.get("method") == "tools/call" and labels.get("server") == "alpha" and labels.get("resource") == "echo"]
    assert calls, samples
    labels, value = calls[0]
    assert "resource_type" in labels and value >= 2, calls
    assert any(labels.get("method") == "tools/list" for labels, _ in samples), samples
