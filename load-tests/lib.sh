# shellcheck shell=bash disable=SC2034
# (SC2034: the variables below are used by the scripts that source this file.)
# Shared helpers for load-tests/bench.sh and load-tests/k6.sh: build, start the
# mock upstream and the proxy on loopback, wait for readiness, clean up on exit.
#
# Source it, then call `lt_init` once (sets the EXIT trap).

LT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$LT_DIR/.." && pwd)"
BIN_DIR="${CARGO_TARGET_DIR:-$REPO_ROOT/target}/release"

# Everything targets loopback only.
LT_HOST=127.0.0.1
MOCK_PORT="${MOCK_PORT:-18000}"
PROXY_PORT="${PROXY_PORT:-18080}"
ADMIN_PORT="${ADMIN_PORT:-15900}"
MOCK_THREADS="${MOCK_THREADS:-1}"
PROXY_THREADS="${PROXY_THREADS:-1}"

# plain: any path, small JSON answers. llm / llm-stream: OpenAI chat completions through an
# AI backend (JSON / SSE). translate: an Anthropic client in front of an OpenAI upstream
# (the direct baseline is the mock answering the Anthropic request itself).
SCENARIO="${SCENARIO:-plain}"
case "$SCENARIO" in
    plain) MOCK_PATH=/bench PROXY_PATH=/bench ;;
    llm | llm-stream) MOCK_PATH=/v1/chat/completions PROXY_PATH=/v1/chat/completions ;;
    translate) MOCK_PATH=/v1/messages PROXY_PATH=/anthropic/v1/messages ;;
    *) printf 'unknown SCENARIO %s (plain, llm, llm-stream, translate)\n' "$SCENARIO" >&2; exit 2 ;;
esac
MOCK_URL="http://$LT_HOST:$MOCK_PORT$MOCK_PATH"
PROXY_URL="http://$LT_HOST:$PROXY_PORT$PROXY_PATH"
ADMIN_URL="http://$LT_HOST:$ADMIN_PORT"

LT_PIDS=()
MOCK_PID=""
PROXY_PID=""
LT_WORK=""

lt_log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
lt_die() {
    lt_log "error: $*"
    exit 1
}

# Stops what we started, by pid: SIGTERM first, then SIGKILL for anything
# still alive after 5 s (the proxy's SIGTERM drain can take longer).
lt_cleanup() {
    local rc=$? pid i
    trap - EXIT INT TERM
    for pid in "${LT_PIDS[@]}"; do
        [[ -n "$pid" ]] || continue
        kill -TERM "$pid" 2>/dev/null || true
    done
    for pid in "${LT_PIDS[@]}"; do
        [[ -n "$pid" ]] || continue
        for ((i = 0; i < 50; i++)); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    if [[ -n "$LT_WORK" && -d "$LT_WORK" ]]; then
        if [[ "${KEEP_WORK:-0}" == 1 ]]; then
            lt_log "kept work dir $LT_WORK"
        else
            rm -rf "$LT_WORK"
        fi
    fi
    exit "$rc"
}

lt_init() {
    LT_WORK="$(mktemp -d "${TMPDIR:-/tmp}/agora-load.XXXXXX")"
    trap lt_cleanup EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
}

# Registers a background process for cleanup.
lt_track() { LT_PIDS+=("$1"); }

lt_port_in_use() { (exec 3<>"/dev/tcp/$LT_HOST/$1") 2>/dev/null; }

lt_require_free_ports() {
    local port
    for port in "$@"; do
        if lt_port_in_use "$port"; then
            lt_die "port $port on $LT_HOST is already in use (stop whatever listens there, or set MOCK_PORT/PROXY_PORT/ADMIN_PORT)"
        fi
    done
}

# lt_wait_for NAME PID TIMEOUT_S CMD...: polls CMD every 0.1 s until it succeeds;
# fails early if PID dies.
lt_wait_for() {
    local name=$1 pid=$2 timeout=$3 i
    shift 3
    for ((i = 0; i < timeout * 10; i++)); do
        if "$@" >/dev/null 2>&1; then
            return 0
        fi
        if ! kill -0 "$pid" 2>/dev/null; then
            lt_log "$name exited early; last log lines:"
            tail -n 20 "$LT_WORK/$name.log" >&2 || true
            lt_die "$name did not start"
        fi
        sleep 0.1
    done
    lt_log "$name not ready after ${timeout}s; last log lines:"
    tail -n 20 "$LT_WORK/$name.log" >&2 || true
    lt_die "$name did not become ready"
}

# Builds the given packages (default: proxy + mock upstream) in release mode.
lt_build() {
    local pkgs=("$@") args=()
    ((${#pkgs[@]})) || pkgs=(agora-proxy agora-mock-upstream)
    local p
    for p in "${pkgs[@]}"; do args+=(-p "$p"); done
    lt_log "cargo build --release ${args[*]}"
    (cd "$REPO_ROOT" && cargo build --release "${args[@]}") || lt_die "build failed"
}

lt_start_mock() {
    local bin="$BIN_DIR/agora-mock-upstream"
    [[ -x "$bin" ]] || lt_die "$bin not found (build first)"
    lt_require_free_ports "$MOCK_PORT"
    "$bin" --host "$LT_HOST" --port "$MOCK_PORT" --threads "$MOCK_THREADS" >"$LT_WORK/mock.log" 2>&1 &
    MOCK_PID=$!
    lt_track "$MOCK_PID"
    lt_wait_for mock "$MOCK_PID" 10 curl -sf -o /dev/null "http://$LT_HOST:$MOCK_PORT/ready"
    lt_log "mock upstream pid $MOCK_PID on $LT_HOST:$MOCK_PORT ($MOCK_THREADS thread(s))"
}

lt_write_proxy_config() {
    local cfg="$LT_WORK/proxy.yaml"
    if [[ "$SCENARIO" != plain ]]; then
        cat >"$cfg" <<EOF
gateway: bench/bench
binds:
- port: $PROXY_PORT
  listeners:
  - name: http
    routes:
    - name: llm
      backendRefs: [{name: llm}]
backends:
- name: llm
  ai:
    provider: {openai: {}, host: $LT_HOST, port: $MOCK_PORT}
  policies: {auth: {key: sk-bench}}
EOF
        printf '%s\n' "$cfg"
        return
    fi
    cat >"$cfg" <<EOF
gateway: bench/bench
binds:
- port: $PROXY_PORT
  listeners:
  - name: http
    routes:
    - name: bench
      backendRefs:
      - name: mock
backends:
- name: mock
  static: {host: $LT_HOST, port: $MOCK_PORT}
EOF
    printf '%s\n' "$cfg"
}

lt_start_proxy() {
    local bin="$BIN_DIR/agora-proxy" cfg
    [[ -x "$bin" ]] || lt_die "$bin not found (build first)"
    lt_require_free_ports "$PROXY_PORT" "$ADMIN_PORT"
    cfg="$(lt_write_proxy_config)"
    # ACCESS_LOG=1 keeps the JSON access log on (as the proxy runs by default).
    local log_flag=(--no-access-log)
    [[ "${ACCESS_LOG:-0}" == 1 ]] && log_flag=()
    "$bin" -f "$cfg" --admin "$LT_HOST:$ADMIN_PORT" "${log_flag[@]}" --threads "$PROXY_THREADS" \
        >"$LT_WORK/proxy.log" 2>&1 &
    PROXY_PID=$!
    lt_track "$PROXY_PID"
    lt_wait_for proxy "$PROXY_PID" 30 curl -sf -o /dev/null "$ADMIN_URL/readyz"
    # Ready means config loaded; also wait until the data plane answers end to end.
    local probe="$LT_WORK/probe.json"
    lt_make_body 256 "$probe"
    lt_wait_for proxy "$PROXY_PID" 10 curl -sf -o /dev/null -H 'content-type: application/json' \
        --data-binary "@$probe" "$PROXY_URL"
    lt_log "proxy pid $PROXY_PID on $LT_HOST:$PROXY_PORT ($PROXY_THREADS thread(s)), admin $LT_HOST:$ADMIN_PORT"
}

# Makes a JSON body file of exactly N bytes: {"pad":"xxxx..."} for the plain scenario, else a
# chat completions / messages request whose user message pads it to N bytes.
lt_make_body() {
    local size=$1 out=$2 head tail='"}]}'
    case "$SCENARIO" in
        plain) head='{"pad":"' tail='"}' ;;
        llm) head='{"model":"bench-model","stream":false,"messages":[{"role":"user","content":"' ;;
        llm-stream) head='{"model":"bench-model","stream":true,"messages":[{"role":"user","content":"' ;;
        translate) head='{"model":"bench-model","max_tokens":64,"stream":false,"messages":[{"role":"user","content":"' ;;
    esac
    ((size >= ${#head} + ${#tail} + 1)) || lt_die "body size must be >= $((${#head} + ${#tail} + 1)) bytes"
    {
        printf '%s' "$head"
        head -c $((size - ${#head} - ${#tail})) /dev/zero | tr '\0' 'x'
        printf '%s' "$tail"
    } >"$out"
    [[ $(stat -c %s "$out") -eq $size ]] || lt_die "bad body file $out"
}

# utime+stime of PID in clock ticks (fields 14 and 15 of /proc/PID/stat; the
# command name in field 2 may contain spaces, so split after the last ')').
lt_cpu_ticks() {
    local stat
    stat="$(<"/proc/$1/stat")" || return 1
    stat="${stat##*) }"
    # shellcheck disable=SC2086
    set -- $stat
    # After the cut: $1 = state (field 3), so utime = $12, stime = $13.
    echo $((${12} + ${13}))
}

# Resident set size of PID in KiB.
lt_rss_kb() {
    local key val _
    while read -r key val _; do
        if [[ "$key" == VmRSS: ]]; then
            echo "$val"
            return 0
        fi
    done <"/proc/$1/status"
    return 1
}
