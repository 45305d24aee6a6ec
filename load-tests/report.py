#!/usr/bin/env python3
"""Turns the oha runs recorded by bench.sh into a markdown table (stdlib only).

The manifest is a TSV with one line per oha run:
    kind  concurrency  body_bytes  round  oha_json_path  cpu_ticks  peak_rss_kb
where kind is "direct" or "proxy"; cpu_ticks and peak_rss_kb are "-" for
direct runs (they describe the proxy process).

oha JSON facts used (checked against oha 1.16 `--output-format json`):
  summary.total                      wall-clock seconds of the run
  statusCodeDistribution             {"200": n, ...} completed responses
  errorDistribution                  {"aborted due to deadline": n, ...}
  latencyPercentiles.p50 / .p99      seconds, over completed responses

--latency-us adds a table of the latency the proxy adds, in µs; --session-bench FILE adds
the key=value lines printed by `cargo bench -p agora-proxy --bench mcp_session` (the cost
of sealing and opening an MCP session id).
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
from collections import defaultdict
from dataclasses import dataclass

DEADLINE_ERROR = "aborted due to deadline"


@dataclass
class Run:
    kind: str
    conc: int
    size: int
    round: int
    elapsed_s: float
    ok: int  # 2xx responses
    completed: int  # responses of any status
    total: int  # completed + real errors (deadline aborts at the end of -z are not counted)
    p50_ms: float | None
    p99_ms: float | None
    cpu_ticks: int | None
    peak_rss_kb: int | None


def _num(v) -> float | None:
    if isinstance(v, (int, float)) and not (isinstance(v, float) and math.isnan(v)):
        return float(v)
    return None


def load_run(fields: list[str]) -> Run:
    kind, conc, size, rnd, path, cpu, rss = fields
    with open(path, encoding="utf-8") as f:
        data = json.load(f)
    codes = {int(k): int(v) for k, v in (data.get("statusCodeDistribution") or {}).items()}
    errors = {str(k): int(v) for k, v in (data.get("errorDistribution") or {}).items()}
    ok = sum(n for code, n in codes.items() if 200 <= code < 300)
    completed = sum(codes.values())
    real_errors = sum(n for k, n in errors.items() if k != DEADLINE_ERROR)
    pct = data.get("latencyPercentiles") or {}
    p50, p99 = _num(pct.get("p50")), _num(pct.get("p99"))
    if p50 is None or p99 is None:  # fall back to metrics.latency_ms (already ms)
        lat = (data.get("metrics") or {}).get("latency_ms") or {}
        p50 = None if _num(lat.get("p50")) is None else _num(lat.get("p50")) / 1000.0
        p99 = None if _num(lat.get("p99")) is None else _num(lat.get("p99")) / 1000.0
    return Run(
        kind=kind,
        conc=int(conc),
        size=int(size),
        round=int(rnd),
        elapsed_s=float(data["summary"]["total"]),
        ok=ok,
        completed=completed,
        total=completed + real_errors,
        p50_ms=None if p50 is None else p50 * 1000.0,
        p99_ms=None if p99 is None else p99 * 1000.0,
        cpu_ticks=None if cpu == "-" else int(cpu),
        peak_rss_kb=None if rss == "-" else int(rss),
    )


def median(values):
    vals = [v for v in values if v is not None]
    return statistics.median(vals) if vals else None


def fmt(v, digits=0, suffix=""):
    if v is None:
        return "n/a"
    return f"{v:,.{digits}f}{suffix}"


def fmt_signed(v, digits=3):
    if v is None:
        return "n/a"
    return f"{v:+.{digits}f}"


def build_table(runs: list[Run], clk_tck: int) -> tuple[list[str], list[str]]:
    cases: dict[tuple[int, int], dict[str, list[Run]]] = defaultdict(lambda: defaultdict(list))
    for r in runs:
        cases[(r.conc, r.size)][r.kind].append(r)

    header = [
        "conc",
        "body",
        "direct rps",
        "proxy rps",
        "proxy/direct",
        "direct p50 ms",
        "proxy p50 ms",
        "direct p99 ms",
        "proxy p99 ms",
        "added p99 ms",
        "proxy CPU µs/req",
        "proxy peak RSS MiB",
        "ok/total direct",
        "ok/total proxy",
    ]
    lines = [
        "| " + " | ".join(header) + " |",
        "|" + "|".join(["---:"] * len(header)) + "|",
    ]
    warnings: list[str] = []
    for (conc, size), kinds in sorted(cases.items()):
        d, p = kinds.get("direct", []), kinds.get("proxy", [])
        d_rps = median(r.ok / r.elapsed_s if r.elapsed_s > 0 else None for r in d)
        p_rps = median(r.ok / r.elapsed_s if r.elapsed_s > 0 else None for r in p)
        ratio = p_rps / d_rps if d_rps and p_rps is not None else None
        d_p50, p_p50 = median(r.p50_ms for r in d), median(r.p50_ms for r in p)
        d_p99, p_p99 = median(r.p99_ms for r in d), median(r.p99_ms for r in p)
        added = p_p99 - d_p99 if d_p99 is not None and p_p99 is not None else None
        ticks = sum(r.cpu_ticks or 0 for r in p)
        reqs = sum(r.completed for r in p)
        cpu_us = ticks / clk_tck * 1e6 / reqs if reqs and clk_tck else None
        rss = [r.peak_rss_kb for r in p if r.peak_rss_kb is not None]
        rss_mib = max(rss) / 1024.0 if rss else None
        d_ok, d_tot = sum(r.ok for r in d), sum(r.total for r in d)
        p_ok, p_tot = sum(r.ok for r in p), sum(r.total for r in p)
        size_label = f"{size // 1024} KiB" if size % 1024 == 0 else f"{size} B"
        lines.append(
            "| "
            + " | ".join(
                [
                    str(conc),
                    size_label,
                    fmt(d_rps),
                    fmt(p_rps),
                    fmt(ratio, 3),
                    fmt(d_p50, 3),
                    fmt(p_p50, 3),
                    fmt(d_p99, 3),
                    fmt(p_p99, 3),
                    fmt_signed(added),
                    fmt(cpu_us, 1),
                    fmt(rss_mib, 1),
                    f"{d_ok}/{d_tot}",
                    f"{p_ok}/{p_tot}",
                ]
            )
            + " |"
        )
        for kind, ok, tot in (("direct", d_ok, d_tot), ("proxy", p_ok, p_tot)):
            if tot == 0:
                warnings.append(f"c={conc} body={size}: no {kind} requests completed")
            elif ok < tot:
                warnings.append(f"c={conc} body={size}: {kind} had {tot - ok} non-2xx/failed of {tot}")
    return lines, warnings


def latency_table(runs: list[Run]) -> list[str]:
    """Per case: direct and proxy p50/p99 (medians over rounds) and the difference, in µs."""
    cases: dict[tuple[int, int], dict[str, list[Run]]] = defaultdict(lambda: defaultdict(list))
    for r in runs:
        cases[(r.conc, r.size)][r.kind].append(r)
    us = lambda ms: None if ms is None else ms * 1000.0
    lines = [
        "| conc | body | direct p50 µs | proxy p50 µs | added p50 µs | direct p99 µs | proxy p99 µs | added p99 µs |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for (conc, size), kinds in sorted(cases.items()):
        d, p = kinds.get("direct", []), kinds.get("proxy", [])
        row = [str(conc), f"{size} B"]
        for pick in (lambda r: r.p50_ms, lambda r: r.p99_ms):
            dv, pv = us(median(pick(r) for r in d)), us(median(pick(r) for r in p))
            added = pv - dv if dv is not None and pv is not None else None
            row += [fmt(dv, 0), fmt(pv, 0), fmt_signed(added, 0)]
        lines.append("| " + " | ".join(row) + " |")
    return lines


def session_section(path: str) -> list[str]:
    """The mcp_session bench's key=value lines as a table."""
    kv: dict[str, str] = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            key, sep, value = line.strip().partition("=")
            if sep and key.isidentifier():
                kv[key] = value
    for need in ("seal_ns", "open_ns", "id_bytes"):
        if need not in kv:
            raise SystemExit(f"{path}: no {need}= line (did the mcp_session bench run?)")
    return [
        "## MCP session id: seal / open",
        "",
        f"`cargo bench -p agora-proxy --bench mcp_session`: a session of {kv.get('targets', '?')} "
        "Streamable HTTP targets (32-hex upstream session ids, ip:port endpoints) and a client's "
        "`initialize` params, AES-256-GCM (ring) + URL-safe base64; median of 5 rounds, "
        f"{int(kv.get('ops', '0')):,} operations each way. Aim: < 5 µs.",
        "",
        "| seal ns/op | open ns/op | id bytes | sealed state JSON bytes |",
        "|---:|---:|---:|---:|",
        f"| {kv['seal_ns']} | {kv['open_ns']} | {kv['id_bytes']} | {kv.get('state_json_bytes', 'n/a')} |",
    ] + parts_table(kv)


def parts_table(kv: dict[str, str]) -> list[str]:
    """Where the time goes: seal = JSON encode + encrypt + base64 encode (+ a random nonce),
    open = base64 decode + decrypt + JSON decode, each part timed on its own."""
    names = ["json_encode", "aead_encrypt", "b64_encode", "b64_decode", "aead_decrypt", "json_decode"]
    if not all(f"{n}_ns" in kv for n in names):
        return []
    return [
        "",
        "Parts, each timed alone (ns/op): seal = JSON encode + AES-256-GCM (ring) encrypt + base64 "
        "encode (+ a random nonce); open = base64 decode + decrypt + JSON decode.",
        "",
        "| " + " | ".join(names) + " |",
        "|" + "|".join(["---:"] * len(names)) + "|",
        "| " + " | ".join(kv[f"{n}_ns"] for n in names) + " |",
    ]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--manifest", required=True)
    ap.add_argument("--out", help="also write the markdown here")
    ap.add_argument("--clk-tck", type=int, default=100)
    ap.add_argument("--meta", action="append", default=[], help="KEY=VALUE shown above the table")
    ap.add_argument("--latency-us", action="store_true", help="add the added-latency table in µs")
    ap.add_argument("--session-bench", help="output of the mcp_session bench to add")
    args = ap.parse_args()

    runs: list[Run] = []
    with open(args.manifest, encoding="utf-8") as f:
        for line in f:
            line = line.rstrip("\n")
            if not line or line.startswith("#"):
                continue
            runs.append(load_run(line.split("\t")))
    if not runs:
        print("no runs recorded", file=sys.stderr)
        return 1

    table, warnings = build_table(runs, args.clk_tck)
    out = ["# Agora proxy benchmark", ""]
    for kv in args.meta:
        key, _, value = kv.partition("=")
        out.append(f"- **{key}**: {value}")
    out += [
        "",
        "rps = 2xx responses ÷ run wall time (median over rounds); p50/p99 from oha (median over rounds);",
        "proxy CPU µs/req = proxy utime+stime ÷ proxy responses; peak RSS = max VmRSS sampled every 0.2 s.",
        "",
        *table,
    ]
    if warnings:
        out += ["", "**Warnings**", ""] + [f"- {w}" for w in warnings]
    if args.latency_us:
        out += [
            "",
            "## Added latency",
            "",
            "Proxy minus direct, medians over rounds, in µs (c=1 is the latency a lone client "
            "sees added).",
            "",
            *latency_table(runs),
        ]
    if args.session_bench:
        out += ["", *session_section(args.session_bench)]
    text = "\n".join(out) + "\n"
    sys.stdout.write(text)
    if args.out:
        with open(args.out, "w", encoding="utf-8") as f:
            f.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
