#!/usr/bin/env python3
"""Gateway API HTTPRoute conformance, end to end on loopback, without a cluster.

Starts one echo backend per Service of the base manifests, `agora-controller --manifests DIR`
and one `agora-proxy --xds ... --gateway NS/NAME --port-map ...` per Gateway the cases are
sent to, then, test by test: puts the test's manifests in the directory (the previous test's
removed), waits until the controller has translated them (its status file names the test's
routes) and runs the suite's replay.py against the proxy of each Gateway the cases use.

The suite is ../shared/conformance/gateway-api when present (the project's shared copy),
else the vendored tests/conformance/gateway-api. Tests the suite ships without cases.json get
ours from tests/conformance/cases-extra (transcribed from the upstream Go tests).

usage: run.py [--tests t1,t2|all] [--bin-dir target/debug] [--keep]
Ends with the replay totals; exit status 0 only when no case failed.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
SHARED = os.path.join(ROOT, "..", "shared", "conformance", "gateway-api")
SUITE = SHARED if os.path.isdir(os.path.join(SHARED, "cases")) else os.path.join(HERE, "gateway-api")
EXTRA = os.path.join(HERE, "cases-extra")
CLASS = "agora"
GATEWAY_CLASS = f"""apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata:
  name: {CLASS}
spec:
  controllerName: agora.dev/gateway-controller
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, timeout: float = 20.0) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port}")


def docs(path: str) -> list[dict]:
    text = open(path, encoding="utf-8").read().replace("{GATEWAY_CLASS_NAME}", CLASS)
    return [d for d in yaml.safe_load_all(text) if d]


def gateway_ports(test: str) -> dict[str, list[int]]:
    """Gateway name -> its listener ports, from the base and the test's manifests."""
    out = {}
    files = [os.path.join(SUITE, "cases", "base", "manifests.yaml")]
    tdir = os.path.join(SUITE, "cases", test)
    files += [os.path.join(tdir, f) for f in sorted(os.listdir(tdir)) if f.endswith(".yaml")]
    for f in files:
        for d in docs(f):
            if d.get("kind") == "Gateway":
                out[d["metadata"]["name"]] = sorted({l["port"] for l in d["spec"]["listeners"]})
    return out


def endpoint_slices(services: list[dict], echo_ports: dict[str, int]) -> list[dict]:
    """One EndpointSlice per Service, its endpoint the Service's echo backend on loopback."""
    out = []
    for svc in services:
        name = svc["metadata"]["name"]
        if name not in echo_ports:
            continue
        out.append({
            "apiVersion": "discovery.k8s.io/v1",
            "kind": "EndpointSlice",
            "metadata": {
                "name": f"{name}-loopback",
                "namespace": svc["metadata"]["namespace"],
                "labels": {"kubernetes.io/service-name": name},
            },
            "addressType": "IPv4",
            "ports": [{"name": p.get("name", ""), "port": echo_ports[name], "protocol": "TCP"}
                      for p in svc["spec"].get("ports", [])],
            "endpoints": [{"addresses": ["127.0.0.1"], "conditions": {"ready": True}}],
        })
    return out


# Tests whose later cases run after the upstream test changed the cluster: (first case index,
# kinds of the test's objects to delete before it).
STEPS = {
    "httproute-reference-grant": [(1, {"ReferenceGrant"})],
}


class Harness:
    def __init__(self, a):
        self.a = a
        self.procs: list[subprocess.Popen] = []
        self.work = tempfile.mkdtemp(prefix="agora-conformance-")
        self.mdir = os.path.join(self.work, "manifests")
        os.makedirs(self.mdir)
        self.record = os.path.join(self.work, "echo.jsonl")
        self.status = os.path.join(self.work, "status.yaml")
        self.logs = os.path.join(self.work, "logs")
        os.makedirs(self.logs)
        self.proxies: dict[str, dict[int, int]] = {}

    def spawn(self, name: str, argv: list[str], env: dict | None = None) -> subprocess.Popen:
        log = open(os.path.join(self.logs, f"{name}.log"), "wb")
        p = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT,
                             env={**os.environ, **(env or {})}, start_new_session=True)
        self.procs.append(p)
        return p

    def start(self) -> None:
        base = docs(os.path.join(SUITE, "cases", "base", "manifests.yaml"))
        services = [d for d in base if d.get("kind") == "Service"]
        echo_ports = {}
        for svc in services:
            name, ns = svc["metadata"]["name"], svc["metadata"]["namespace"]
            port = free_port()
            echo_ports[name] = port
            self.spawn(f"echo-{name}", [sys.executable, os.path.join(SUITE, "echo_backend.py"), str(port),
                                        name, "--namespace", ns, "--record", self.record, "--quiet"])
        for port in echo_ports.values():
            wait_port(port)
        with open(os.path.join(self.mdir, "00-gatewayclass.yaml"), "w") as f:
            f.write(GATEWAY_CLASS)
        with open(os.path.join(self.mdir, "01-base.yaml"), "w") as f:
            yaml.safe_dump_all(base, f)
        with open(os.path.join(self.mdir, "02-endpoints.yaml"), "w") as f:
            yaml.safe_dump_all(endpoint_slices(services, echo_ports), f)

        self.xds = free_port()
        self.spawn("controller", [os.path.join(self.a.bin_dir, "agora-controller"), "--manifests", self.mdir,
                                  "--xds-listen", f"127.0.0.1:{self.xds}", "--status-file", self.status],
                   {"RUST_LOG": "info"})
        wait_port(self.xds)

    def proxy_for(self, gw: str, ports: list[int]) -> dict[int, int]:
        """The listener-port map of the proxy serving Gateway `gw`, started on first use."""
        if gw in self.proxies:
            return self.proxies[gw]
        pmap = {p: free_port() for p in ports}
        admin = free_port()
        self.spawn(f"proxy-{gw}", [os.path.join(self.a.bin_dir, "agora-proxy"), "--xds", f"http://127.0.0.1:{self.xds}",
                                   "--gateway", f"gateway-conformance-infra/{gw}",
                                   "--port-map", ",".join(f"{k}={v}" for k, v in pmap.items()),
                                   "--admin", f"127.0.0.1:{admin}", "--no-access-log"],
                   {"RUST_LOG": "warn"})
        self.proxies[gw] = pmap
        deadline = time.time() + 20
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{admin}/readyz", timeout=1)
                return pmap
            except Exception:  # noqa: BLE001
                if time.time() > deadline:
                    raise RuntimeError(f"proxy for {gw} never became ready")
                time.sleep(0.1)

    def apply_test(self, test: str, drop_kinds: set[str] = frozenset()) -> None:
        for f in os.listdir(self.mdir):
            if f.startswith("10-"):
                os.remove(os.path.join(self.mdir, f))
        tdir = os.path.join(SUITE, "cases", test)
        routes = []
        for f in sorted(os.listdir(tdir)):
            if f.endswith(".yaml"):
                ds = [d for d in docs(os.path.join(tdir, f)) if d.get("kind") not in drop_kinds]
                routes += [d["metadata"]["name"] for d in ds if d.get("kind") == "HTTPRoute"]
                with open(os.path.join(self.mdir, f"10-{f}"), "w") as out:
                    yaml.safe_dump_all(ds, out)
        # Wait until the controller's statuses name exactly this test's routes.
        deadline = time.time() + 15
        while time.time() < deadline:
            try:
                st = yaml.safe_load(open(self.status, encoding="utf-8")) or []
            except (OSError, yaml.YAMLError):
                st = []
            have = sorted(s["name"] for s in st if s.get("kind") == "HTTPRoute")
            if have == sorted(routes):
                break
            time.sleep(0.05)
        time.sleep(0.3)  # the proxies apply the delta

    def run_test(self, test: str) -> tuple[int, int, int]:
        """Applies the test and replays its cases, in steps where the upstream test changes
        objects between cases."""
        steps = STEPS.get(test, [])
        bounds = [0] + [i for i, _ in steps] + [None]
        drops = [frozenset()] + [k for _, k in steps]
        totals = (0, 0, 0)
        for lo, hi, drop in zip(bounds, bounds[1:], drops):
            self.apply_test(test, set(drop))
            r = self.replay(test, (lo, hi))
            totals = tuple(a + b for a, b in zip(totals, r))
        return totals

    def replay(self, test: str, window: tuple[int, int | None]) -> tuple[int, int, int]:
        own = os.path.join(SUITE, "cases", test, "cases.json")
        cases = json.load(open(own if os.path.exists(own) else os.path.join(EXTRA, test, "cases.json"),
                               encoding="utf-8"))
        cases_dir = os.path.join(SUITE, "cases")
        if window != (0, None) or not os.path.exists(own):
            # replay.py takes whole tests: give it a copy holding only this step's cases.
            cases_dir = os.path.join(self.work, "cases-step")
            shutil.rmtree(cases_dir, ignore_errors=True)
            shutil.copytree(os.path.join(SUITE, "cases", test), os.path.join(cases_dir, test))
            shutil.copytree(os.path.join(SUITE, "cases", "base"), os.path.join(cases_dir, "base"))
            cases["cases"] = cases["cases"][window[0]:window[1]]
            with open(os.path.join(cases_dir, test, "cases.json"), "w") as f:
                json.dump(cases, f)
        totals = [0, 0, 0]
        listeners = gateway_ports(test)
        for gw in sorted({c.get("gateway") or "same-namespace" for c in cases["cases"]}):
            if gw not in listeners:
                print(f"FAIL {test}: no Gateway {gw} in the manifests", flush=True)
                totals[1] += 1
                continue
            pmap = self.proxy_for(gw, listeners[gw])
            r = subprocess.run([sys.executable, os.path.join(SUITE, "replay.py"), "--gateway-addr", "127.0.0.1",
                                "--port-map", ",".join(f"{k}={v}" for k, v in pmap.items()),
                                "--tests", test, "--only-gateway", gw, "--echo-record", self.record,
                                "--cases-dir", cases_dir, "--max-time", "20"],
                               capture_output=True, text=True)
            sys.stdout.write("".join(l + "\n" for l in r.stdout.splitlines()[:-1]))
            m = re.search(r"(\d+) passed, (\d+) failed, (\d+) skipped", r.stdout)
            if not m:
                print(f"FAIL {test}: replay.py crashed\n{r.stderr}", flush=True)
                totals[1] += 1
                continue
            for i in range(3):
                totals[i] += int(m.group(i + 1))
        return totals[0], totals[1], totals[2]

    def stop(self) -> None:
        for p in self.procs:
            try:
                os.killpg(p.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        for p in self.procs:
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
        if not self.a.keep:
            shutil.rmtree(self.work, ignore_errors=True)
        else:
            print(f"kept {self.work}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tests", default="all")
    ap.add_argument("--bin-dir", default=os.path.join(ROOT, "target", "debug"))
    ap.add_argument("--keep", action="store_true", help="keep the work directory (logs, manifests)")
    a = ap.parse_args()
    cases_dir = os.path.join(SUITE, "cases")
    tests = sorted(d for d in os.listdir(cases_dir)
                   if os.path.exists(os.path.join(cases_dir, d, "cases.json"))
                   or os.path.exists(os.path.join(EXTRA, d, "cases.json"))) \
        if a.tests == "all" else a.tests.split(",")
    h = Harness(a)
    passed = failed = skipped = 0
    try:
        h.start()
        for t in tests:
            p, f, s = h.run_test(t)
            passed, failed, skipped = passed + p, failed + f, skipped + s
    finally:
        h.stop()
    print(f"conformance ({SUITE}): {len(tests)} tests, {passed} passed, {failed} failed, {skipped} skipped")
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
