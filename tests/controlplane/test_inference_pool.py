"""InferencePool end to end: Kubernetes YAML (Pods, the picker's Service, InferencePools,
HTTPRoutes) in a directory -> agora-controller -> delta xDS -> agora-proxy, which asks the
pool's endpoint picker (a Python ext_proc server on the published Envoy protos) per request
and sends it to the model server the picker chose; driven with the official openai client.

The pool is one Pod at 127.0.0.1 with two target ports: two loopback model servers stand in
for two model-server endpoints."""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import openai
import pytest

import epp
from test_controller import CLASS, Stack, conditions, free_port


class ModelServer:
    """An OpenAI-compatible chat completions server that says which port served it and
    records what it received."""

    def __init__(self):
        self.port = free_port()
        self.seen = []
        seen, port = self.seen, self.port

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers.get("content-length", 0))))
                seen.append({"headers": {k.lower(): v for k, v in self.headers.items()}, "body": body})
                out = json.dumps({
                    "id": "c1", "object": "chat.completion", "created": 1, "model": body.get("model"),
                    "choices": [{"index": 0, "finish_reason": "stop",
                                 "message": {"role": "assistant", "content": f"served by {port}"}}],
                    "usage": {"prompt_tokens": 1, "completion_tokens": 3, "total_tokens": 4},
                }).encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

            def log_message(self, *a):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture()
def models():
    a, b = ModelServer(), ModelServer()
    yield a, b
    a.stop()
    b.stop()


def manifests(a, b, epp_port, dead_port):
    pool = """
apiVersion: inference.networking.k8s.io/v1
kind: InferencePool
metadata: {{name: {name}, namespace: ai}}
spec:
  selector: {{matchLabels: {{app: vllm}}}}
  targetPorts: [{{number: {a}}}, {{number: {b}}}]
  endpointPickerRef: {{name: {svc}, port: {{number: {port}}}, failureMode: {mode}}}
"""
    route = """
  - matches: [{{path: {{value: /{prefix}}}}}]
    filters:
    - type: URLRewrite
      urlRewrite: {{path: {{type: ReplacePrefixMatch, replacePrefixMatch: /}}}}
    backendRefs: [{{group: inference.networking.k8s.io, kind: InferencePool, name: {name}}}]"""
    return "\n---\n".join([
        CLASS,
        """
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: gw, namespace: ai}
spec:
  gatewayClassName: agora
  listeners: [{name: http, port: 80, protocol: HTTP}]
""",
        # The model-server Pod (and one that is not ready, which must not be chosen).
        """
apiVersion: v1
kind: Pod
metadata: {name: vllm-0, namespace: ai, labels: {app: vllm}}
status:
  podIP: 127.0.0.1
  conditions: [{type: Ready, status: "True"}]
""",
        """
apiVersion: v1
kind: Pod
metadata: {name: vllm-1, namespace: ai, labels: {app: vllm}}
status:
  podIP: 127.0.0.9
  conditions: [{type: Ready, status: "False"}]
""",
        f"""
apiVersion: v1
kind: Service
metadata: {{name: epp, namespace: ai}}
spec:
  clusterIP: 127.0.0.1
  ports: [{{name: grpc, port: {epp_port}}}]
""",
        f"""
apiVersion: v1
kind: Service
metadata: {{name: epp-dead, namespace: ai}}
spec:
  clusterIP: 127.0.0.1
  ports: [{{name: grpc, port: {dead_port}}}]
""",
        pool.format(name="vllm-open", a=a, b=b, svc="epp", port=epp_port, mode="FailOpen"),
        pool.format(name="vllm-closed", a=a, b=b, svc="epp-dead", port=dead_port, mode="FailClose"),
        pool.format(name="vllm-no-epp", a=a, b=b, svc="missing", port=9002, mode="FailClose"),
        """
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: llm, namespace: ai}
spec:
  parentRefs: [{name: gw}]
  rules:""" + route.format(prefix="open", name="vllm-open")
        + route.format(prefix="closed", name="vllm-closed")
        + route.format(prefix="none", name="vllm-no-epp") + "\n",
    ])


def metric(st, result, backend="inference/ai/vllm-open"):
    import urllib.request
    text = urllib.request.urlopen(f"http://{st.admin}/metrics", timeout=2).read().decode()
    for line in text.splitlines():
        if line.startswith("agora_inference_picker_requests_total{") and f'backend="{backend}"' in line \
                and f'result="{result}"' in line:
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_inference_pool_routes_where_the_picker_says(tmp_path, models):
    a, b = models
    epp_port, dead_port = free_port(), free_port()
    ends = [f"127.0.0.1:{a.port}", f"127.0.0.1:{b.port}"]
    server, picker = epp.serve(epp_port, ends)
    m = tmp_path / "m"
    m.mkdir()
    (m / "all.yaml").write_text(manifests(a.port, b.port, epp_port, dead_port))
    st = Stack(m, "ai/gw")
    try:
        ok = lambda s: bool(s.get("parents")) and conditions(s)["ResolvedRefs"]["status"] == "True"
        pool = st.wait_status("InferencePool", "vllm-open", ok)
        parent = pool["parents"][0]
        assert parent["parentRef"] == {"group": "gateway.networking.k8s.io", "kind": "Gateway",
                                       "namespace": "ai", "name": "gw"}
        assert conditions(pool)["Accepted"]["status"] == "True"
        bad = st.wait_status("InferencePool", "vllm-no-epp", lambda s: bool(s.get("parents")))
        assert conditions(bad)["ResolvedRefs"]["status"] == "False"
        assert conditions(bad)["ResolvedRefs"]["reason"] == "InvalidExtensionRef"
        route = st.wait_status("HTTPRoute", "llm", lambda s: bool(s.get("parents")))
        assert conditions(route)["Accepted"]["status"] == "True"
        assert "ai/missing not found" in conditions(route)["ResolvedRefs"]["message"]

        client = openai.OpenAI(base_url=st.url("/open/v1"), api_key="k", max_retries=0)
        msgs = [{"role": "user", "content": "hi"}]
        # The picker's choice serves each request, whatever the order.
        for model, server_ in [("model-b", b), ("model-a", a), ("model-b", b), ("model-b", b)]:
            before = len(server_.seen)
            r = client.chat.completions.create(model=model, messages=msgs)
            assert r.choices[0].message.content == f"served by {server_.port}", model
            assert len(server_.seen) == before + 1
        sent = b.seen[-1]
        # The picker's header mutations reach the model server.
        assert sent["headers"]["x-gateway-destination-endpoint"] == f"127.0.0.1:{b.port}"
        assert sent["headers"]["x-epp"] == "seen"
        # The picker saw the client's request: headers (pseudo-headers too) and the body.
        call = picker.calls[-1]
        assert call["model"] == "model-b"
        assert call["headers"][":path"] == "/open/v1/chat/completions"
        assert call["headers"][":method"] == "POST"

        # A header-directed pick, and a body the picker rewrites (its length changes).
        r = client.chat.completions.create(model="model-b", messages=msgs,
                                           extra_headers={"x-target": f"127.0.0.1:{a.port}"})
        assert r.choices[0].message.content == f"served by {a.port}"
        r = client.chat.completions.create(model="alias-b", messages=msgs)
        assert r.choices[0].message.content == f"served by {b.port}"
        assert b.seen[-1]["body"]["model"] == "model-b"
        assert b.seen[-1]["body"]["messages"] == msgs

        # A large prompt (over the 64 KiB replay buffer) goes through the picker too.
        big = [{"role": "user", "content": "x" * 100_000}]
        r = client.chat.completions.create(model="alias-a", messages=big)
        assert r.choices[0].message.content == f"served by {a.port}"
        assert a.seen[-1]["body"]["model"] == "model-a"
        assert a.seen[-1]["body"]["messages"] == big

        # The picker answers itself: the client gets its response.
        with pytest.raises(openai.RateLimitError) as e:
            client.chat.completions.create(model="shed", messages=msgs)
        assert e.value.status_code == 429
        assert "shed by the endpoint picker" in e.value.message

        # A choice outside the pool is not followed: FailOpen serves from the pool (and the
        # verdict says the picker's answer was unusable).
        open_before = metric(st, "failed_open")
        r = client.chat.completions.create(model="outside", messages=msgs)
        assert r.choices[0].message.content in (f"served by {a.port}", f"served by {b.port}")
        assert metric(st, "failed_open") == open_before + 1

        # FailClose with the picker unreachable: 503 in OpenAI's error shape.
        closed = openai.OpenAI(base_url=st.url("/closed/v1"), api_key="k", max_retries=0)
        with pytest.raises(openai.InternalServerError) as e:
            closed.chat.completions.create(model="model-a", messages=msgs)
        assert e.value.status_code == 503
        assert "endpoint picker" in e.value.message

        assert metric(st, "picked") >= 7
        assert metric(st, "immediate_response") == 1
        assert metric(st, "failed_closed", backend="inference/ai/vllm-closed") == 1

        # FailOpen with the picker down: any pool endpoint serves.
        server.stop(0)
        served = set()
        for _ in range(4):
            r = client.chat.completions.create(model="model-b", messages=msgs)
            served.add(r.choices[0].message.content)
        assert served <= {f"served by {a.port}", f"served by {b.port}"}
        assert metric(st, "failed_open") >= 5
    finally:
        st.stop()
        server.stop(0)
