#!/usr/bin/env python3
"""Control-plane benchmark: translation time for N HTTPRoutes, and the time from a manifest
change to the proxy serving it.

usage: control-plane.py [--routes 5000] [--changes 50] [--bin-dir target/release] [--out FILE]

1. Writes a manifest directory: a GatewayClass, one Gateway, one Service with an
   EndpointSlice pointing at a local HTTP server, and N HTTPRoutes (one rule each, distinct
   paths and hostnames). Starts `agora-controller --manifests DIR` and one `agora-proxy --xds`.
   Reports the controller's own translation time for the full set (its "translated" log line:
   the pure translate() call) and the full reload time (read + parse + translate).
2. Then, `--changes` times: rewrites one route file with a new path, and polls the proxy
   (1 ms apart) until that path answers 200; the latency is from the file write to the first
   200. Reports p50 / p90 / p99 / max.
Loopback only; bounded: every wait gives up after 10 s.
"""

from __future__ import annotations

import argparse
import http.client
import http.server
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Ok(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):  # noqa: N802
        self.send_response(200)
        self.send_header("content-length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *a):  # quiet
        pass


def route(i: int, path: str) -> str:
    return f"""apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {{name: r{i}, namespace: bench}}
spec:
  parentRefs: [{{name: gw}}]
  hostnames: [h{i}.example.com]
  rules:
  - matches: [{{path: {{type: PathPrefix, value: {path}}}}}]
    backendRefs: [{{name: svc, port: 80}}]
"""


def get(port: int, host: str, path: str) -> int:
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
    try:
        c.request("GET", path, headers={"Host": host})
        r = c.getresponse()
        r.read()
        return r.status
    except OSError:
        return 0
    finally:
        c.close()


def pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--routes", type=int, default=5000)
    ap.add_argument("--changes", type=int, default=50)
    ap.add_argument("--bin-dir", default=os.path.join(ROOT, "target", "release"))
    ap.add_argument("--out", default=os.path.join(ROOT, "load-tests", "results", "latest-control-plane.md"))
    a = ap.parse_args()

    upstream = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Ok)
    threading.Thread(target=upstream.serve_forever, daemon=True).start()
    up_port = upstream.server_address[1]

    work = tempfile.mkdtemp(prefix="agora-cp-bench-")
    mdir = os.path.join(work, "m")
    os.makedirs(os.path.join(mdir, "routes"))
    with open(os.path.join(mdir, "base.yaml"), "w") as f:
        f.write(f"""apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata: {{name: agora}}
spec: {{controllerName: agora.dev/gateway-controller}}
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {{name: gw, namespace: bench}}
spec:
  gatewayClassName: agora
  listeners: [{{name: http, port: 80, protocol: HTTP, allowedRoutes: {{namespaces: {{from: Same}}}}}}]
---
apiVersion: v1
kind: Service
metadata: {{name: svc, namespace: bench}}
spec: {{ports: [{{name: http, port: 80}}]}}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {{name: svc-1, namespace: bench, labels: {{kubernetes.io/service-name: svc}}}}
addressType: IPv4
ports: [{{name: http, port: {up_port}}}]
endpoints: [{{addresses: [127.0.0.1]}}]
""")
    # Routes in files of 500, plus the one we edit in its own file.
    per = 500
    for start in range(1, a.routes, per):
        with open(os.path.join(mdir, "routes", f"r{start:06d}.yaml"), "w") as f:
            f.write("---\n".join(route(i, f"/p{i}") for i in range(start, min(start + per, a.routes))))
    edit = os.path.join(mdir, "routes", "edit.yaml")
    with open(edit, "w") as f:
        f.write(route(0, "/v0"))

    xds, proxy_port, admin = free_port(), free_port(), free_port()
    clog = open(os.path.join(work, "controller.log"), "w+")
    plog = open(os.path.join(work, "proxy.log"), "w+")
    procs = [subprocess.Popen([os.path.join(a.bin_dir, "agora-controller"), "--manifests", mdir,
                               "--xds-listen", f"127.0.0.1:{xds}"], stdout=clog, stderr=clog,
                              start_new_session=True)]
    time.sleep(0.2)
    t0 = time.time()
    procs.append(subprocess.Popen([os.path.join(a.bin_dir, "agora-proxy"), "--xds", f"http://127.0.0.1:{xds}",
                                   "--gateway", "bench/gw", "--port-map", f"80={proxy_port}",
                                   "--admin", f"127.0.0.1:{admin}", "--no-access-log"],
                                  stdout=plog, stderr=plog, start_new_session=True))
    result = {}
    try:
        deadline = time.time() + 60
        while get(proxy_port, "h0.example.com", "/v0") != 200:
            if time.time() > deadline:
                raise RuntimeError("proxy never served the initial config")
            time.sleep(0.01)
        result["initial_sync_s"] = time.time() - t0
        clog.flush()
        took = [float(m) for m in re.findall(r"translated .*took_ms=([0-9.]+)", open(clog.name).read())]
        result["translate_ms"] = took[0] if took else None

        lat = []
        for n in range(1, a.changes + 1):
            path = f"/v{n}"
            w = time.time()
            with open(edit + ".tmp", "w") as f:
                f.write(route(0, path))
            os.replace(edit + ".tmp", edit)
            deadline = w + 10
            while get(proxy_port, "h0.example.com", path) != 200:
                if time.time() > deadline:
                    raise RuntimeError(f"change {n} not served within 10 s")
                time.sleep(0.001)
            lat.append((time.time() - w) * 1000)
            time.sleep(0.05)
        clog.flush()
        plog.flush()
        took = [float(m) for m in re.findall(r"translated .*took_ms=([0-9.]+)", open(clog.name).read())]
        loads = [float(m) for m in re.findall(r"manifests loaded.*took_ms=([0-9.]+)", open(clog.name).read())]
        applied = [float(m) for m in re.findall(r"xDS update applied.*took_ms=([0-9.]+)", open(plog.name).read())]
        result.update({
            "load_ms_per_change_p50": statistics.median(loads[1:]) if len(loads) > 1 else None,
            "proxy_apply_ms_per_change_p50": statistics.median(applied[1:]) if len(applied) > 1 else None,
            "routes": a.routes, "changes": a.changes,
            "translate_ms_per_change_p50": statistics.median(took[1:]) if len(took) > 1 else None,
            "change_to_serving_ms": {"p50": pct(lat, 50), "p90": pct(lat, 90), "p99": pct(lat, 99),
                                     "max": max(lat), "mean": statistics.mean(lat)},
        })
    finally:
        for p in procs:
            os.killpg(p.pid, signal.SIGTERM)
            p.wait(timeout=10)
        upstream.shutdown()
        shutil.rmtree(work, ignore_errors=True)

    print(json.dumps(result, indent=1))
    c = result["change_to_serving_ms"]
    with open(a.out, "w") as f:
        f.write(f"""# Control plane benchmark

`python3 load-tests/control-plane.py --routes {a.routes} --changes {a.changes}` (release build, loopback, 2 cores shared
by controller, proxy, upstream and poller).

| measure | value |
|---|---|
| HTTPRoutes | {a.routes} |
| translate() of the full snapshot (controller log `took_ms`) | {result['translate_ms']:.1f} ms |
| translate() per change, median | {result['translate_ms_per_change_p50']:.1f} ms |
| manifest directory re-read per change, median (controller log) | {result['load_ms_per_change_p50'] or 0:.1f} ms |
| proxy: xDS update applied per change, median (proxy log) | {result['proxy_apply_ms_per_change_p50'] or 0:.1f} ms |
| initial sync (proxy start → first route served) | {result['initial_sync_s'] * 1000:.0f} ms |
| manifest change → proxy serving it, p50 | {c['p50']:.1f} ms |
| p90 | {c['p90']:.1f} ms |
| p99 | {c['p99']:.1f} ms |
| max | {c['max']:.1f} ms |
| mean | {c['mean']:.1f} ms |

The change latency includes the 5 ms debounce, re-reading the changed file (unchanged files
come from the cache), translating the whole snapshot, the delta to the proxy (one Route), the
proxy's full IR rebuild, and a 1 ms polling granularity.
""")
    return 0


if __name__ == "__main__":
    sys.exit(main())
