#!/usr/bin/env bash
# Agora proxy benchmark: oha against the mock upstream directly and through the
# proxy, interleaved, on 127.0.0.1 only. Bounded: every oha run is `-z DURATION`
# under a hard timeout, and every process started here is stopped on exit.
#
# Usage: load-tests/bench.sh        (env vars: see load-tests/README.md)
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

DURATION="${DURATION:-10}"
WARMUP="${WARMUP:-2}"
ROUNDS="${ROUNDS:-1}"
CONCURRENCY="${CONCURRENCY:-$LT_DEFAULT_CONCURRENCY}"
BODY_SIZES="${BODY_SIZES:-$LT_DEFAULT_BODY_SIZES}"
OHA_THREADS="${OHA_THREADS:-}"
SKIP_BUILD="${SKIP_BUILD:-0}"
RESULTS_DIR="$LT_DIR/results"

for v in DURATION WARMUP ROUNDS; do
    [[ "${!v}" =~ ^[0-9]+$ ]] || lt_die "$v must be a whole number of seconds/rounds, got '${!v}'"
done
((DURATION >= 1)) || lt_die "DURATION must be >= 1"
((ROUNDS >= 1)) || lt_die "ROUNDS must be >= 1"
for c in $CONCURRENCY $BODY_SIZES; do
    [[ "$c" =~ ^[0-9]+$ ]] || lt_die "CONCURRENCY/BODY_SIZES must be whole numbers, got '$c'"
done

# --- oha -------------------------------------------------------------------
find_oha() {
    if [[ -n "${OHA:-}" ]]; then
        printf '%s\n' "$OHA"
    elif command -v oha >/dev/null 2>&1; then
        command -v oha
    elif [[ -x "$HOME/.cargo/bin/oha" ]]; then
        printf '%s\n' "$HOME/.cargo/bin/oha"
    else
        return 1
    fi
}
if ! OHA="$(find_oha)"; then
    lt_log "oha not found; cargo install oha --locked"
    cargo install oha --locked || lt_die "cargo install oha failed"
    OHA="$(find_oha)" || lt_die "oha still not found after install"
fi
OHA_VERSION="$("$OHA" --version 2>/dev/null | head -n1)"
# oha >= 1.0 spells JSON output `--output-format json`; older releases had `--json`.
OHA_HELP="$("$OHA" --help 2>&1)"
if grep -q -- '--output-format' <<<"$OHA_HELP"; then
    OHA_JSON=(--output-format json)
elif grep -q -- '--json' <<<"$OHA_HELP"; then
    OHA_JSON=(--json)
else
    lt_die "$OHA has neither --output-format nor --json"
fi
OHA_EXTRA=()
if [[ -n "$OHA_THREADS" ]]; then
    grep -q -- '--worker-threads' <<<"$OHA_HELP" || lt_die "this oha has no --worker-threads"
    OHA_EXTRA+=(--worker-threads "$OHA_THREADS")
fi
lt_log "using $OHA ($OHA_VERSION)"

# --- build and start -------------------------------------------------------
lt_init
if [[ "$SKIP_BUILD" != 1 ]]; then
    lt_build agora-proxy agora-mock-upstream
    if [[ "$SCENARIO" == mcp ]]; then
        lt_log "cargo bench -p agora-proxy --bench mcp_session --no-run"
        (cd "$REPO_ROOT" && cargo bench -p agora-proxy --bench mcp_session --no-run) ||
            lt_die "building the mcp_session bench failed"
    fi
fi
lt_start_mock
lt_start_redis
lt_start_proxy

CLK_TCK="$(getconf CLK_TCK)"
RAW_DIR="$RESULTS_DIR/raw"
mkdir -p "$RESULTS_DIR"
rm -rf "$RAW_DIR"
mkdir -p "$RAW_DIR"
MANIFEST="$RAW_DIR/manifest.tsv"
: >"$MANIFEST"

for size in $BODY_SIZES; do
    lt_make_body "$size" "$LT_WORK/body-$size.json"
done
read -r first_conc _ <<<"$CONCURRENCY"
read -r first_size _ <<<"$BODY_SIZES"
if [[ "$SCENARIO" == mcp ]]; then
    # An MCP session on each side; the benchmark's request must get the echo answer.
    lt_mcp_setup "$LT_WORK/body-$first_size.json"
fi

# oha_cmd KIND CONC BODY_FILE SECONDS: sets OHA_CMD to one bounded oha run against the
# upstream (KIND direct) or through the proxy (KIND proxy), with that side's headers
# (hard timeout 30 s past the run; `timeout` forwards SIGTERM to oha).
oha_cmd() {
    local kind=$1 conc=$2 body=$3 secs=$4 url side=()
    if [[ "$kind" == proxy ]]; then
        url="$PROXY_URL" side=("${LT_PROXY_HEADERS[@]}")
    else
        url="$MOCK_URL" side=("${LT_DIRECT_HEADERS[@]}")
    fi
    OHA_CMD=(timeout --kill-after=5 $((secs + 30))
        "$OHA" -z "${secs}s" -c "$conc" -m POST -D "$body" -T application/json
        "${LT_HEADERS[@]}" "${side[@]}" --no-tui "${OHA_JSON[@]}" "${OHA_EXTRA[@]}" "$url")
}

# measure KIND CONC SIZE ROUND: runs oha; for proxy runs also records the proxy's
# CPU ticks (utime+stime delta) and peak VmRSS sampled every 0.2 s.
measure() {
    local kind=$1 conc=$2 size=$3 round=$4 out cpu0 cpu1 peak=0 rss oha_pid rc=0
    out="$RAW_DIR/$kind-c$conc-b$size-r$round.json"
    kill -0 "$PROXY_PID" 2>/dev/null || lt_die "proxy died (see log below)$(tail -n 20 "$LT_WORK/proxy.log")"
    kill -0 "$MOCK_PID" 2>/dev/null || lt_die "mock upstream died"

    cpu0="$(lt_cpu_ticks "$PROXY_PID")"
    oha_cmd "$kind" "$conc" "$LT_WORK/body-$size.json" "$DURATION"
    "${OHA_CMD[@]}" >"$out" 2>"$out.stderr" &
    oha_pid=$!
    lt_track "$oha_pid"
    while kill -0 "$oha_pid" 2>/dev/null; do
        if rss="$(lt_rss_kb "$PROXY_PID" 2>/dev/null)" && ((rss > peak)); then
            peak=$rss
        fi
        sleep 0.2
    done
    wait "$oha_pid" || rc=$?
    cpu1="$(lt_cpu_ticks "$PROXY_PID")"
    if ((rc != 0)) || [[ ! -s "$out" ]]; then
        cat "$out.stderr" >&2 || true
        lt_die "oha failed (exit $rc) for $kind c=$conc body=$size"
    fi
    if [[ "$kind" == proxy ]]; then
        printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$kind" "$conc" "$size" "$round" "$out" \
            $((cpu1 - cpu0)) "$peak" >>"$MANIFEST"
    else
        printf '%s\t%s\t%s\t%s\t%s\t-\t-\n' "$kind" "$conc" "$size" "$round" "$out" >>"$MANIFEST"
    fi
    lt_log "$(printf '%-6s c=%-3s body=%-6s round %s: %s' "$kind" "$conc" "$size" "$round" \
        "$(python3 -c 'import json,sys; print("%.0f req/s" % json.load(open(sys.argv[1]))["summary"]["requestsPerSec"])' \
            "$out" 2>/dev/null || echo '?')")"
}

# warm_up KIND: a short unrecorded run so pools and caches are warm.
warm_up() {
    local out="$LT_WORK/warmup-$1.json"
    oha_cmd "$1" "$first_conc" "$LT_WORK/body-$first_size.json" "$WARMUP"
    "${OHA_CMD[@]}" >"$out" 2>"$out.stderr" || lt_die "warm-up ($1) failed: $(cat "$out.stderr")"
}
if ((WARMUP > 0)); then
    lt_log "warm-up ${WARMUP}s direct + ${WARMUP}s proxy (c=$first_conc, body=$first_size)"
    warm_up direct
    warm_up proxy
fi

n_cases=$(($(wc -w <<<"$CONCURRENCY") * $(wc -w <<<"$BODY_SIZES")))
lt_log "running $n_cases cases x $ROUNDS round(s) x 2 (direct, proxy) x ${DURATION}s"
for ((round = 1; round <= ROUNDS; round++)); do
    for conc in $CONCURRENCY; do
        for size in $BODY_SIZES; do
            measure direct "$conc" "$size" "$round"
            measure proxy "$conc" "$size" "$round"
        done
    done
done

# mcp: the cost of sealing and opening a session id, measured while nothing else runs.
REPORT_EXTRA=()
if [[ "$SCENARIO" == mcp ]]; then
    session_bench="$RAW_DIR/mcp-session.txt"
    lt_log "cargo bench -p agora-proxy --bench mcp_session"
    (cd "$REPO_ROOT" && timeout --kill-after=5 600 cargo bench -p agora-proxy --bench mcp_session) \
        >"$session_bench" 2>"$LT_WORK/mcp-session.log" ||
        lt_die "the mcp_session bench failed: $(tail -n 20 "$LT_WORK/mcp-session.log")"
    grep -v '=' "$session_bench" >&2 || true
    REPORT_EXTRA+=(--latency-us --session-bench "$session_bench"
        --meta "mcp=per side: initialize + notifications/initialized (curl), then oha POSTs tools/call of echo (text \"hi\") with mcp-session-id and mcp-protocol-version $LT_MCP_VERSION; the proxy is a virtual MCP server with one Streamable HTTP target (the mock), AGORA_MCP_SESSION_KEY fixed")
fi

git_rev="$(git -C "$REPO_ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)"
if [[ -n "$(git -C "$REPO_ROOT" status --porcelain 2>/dev/null)" ]]; then git_rev+="-dirty"; fi
cpu_model="$(awk -F': ' '/^model name/{print $2; exit}' /proc/cpuinfo 2>/dev/null || true)"

REPORT="$RESULTS_DIR/latest.md"
[[ "$SCENARIO" == plain ]] || REPORT="$RESULTS_DIR/latest-$SCENARIO.md"
python3 "$LT_DIR/report.py" --manifest "$MANIFEST" --out "$REPORT" --clk-tck "$CLK_TCK" \
    --meta "date=$(date -u +%Y-%m-%dT%H:%M:%SZ)" \
    --meta "scenario=$SCENARIO" \
    --meta "commit=$git_rev" \
    --meta "machine=${cpu_model:-unknown}, $(nproc) CPUs, $(uname -sr)" \
    --meta "load generator=$OHA_VERSION${OHA_THREADS:+, $OHA_THREADS worker thread(s)}" \
    --meta "setup=proxy --threads $PROXY_THREADS $([[ "${ACCESS_LOG:-0}" == 1 ]] && echo "with access log" || echo --no-access-log); mock upstream --threads $MOCK_THREADS; POST application/json, keep-alive" \
    --meta "runs=${DURATION}s each, $ROUNDS round(s), warm-up ${WARMUP}s, direct and proxy interleaved" \
    "${REPORT_EXTRA[@]}"
lt_log "wrote $REPORT (raw oha JSON in $RAW_DIR)"
