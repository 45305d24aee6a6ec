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
# llm-policy: the llm route behind JWT authentication, a CEL rule on its claims and a local
# token limit. llm-redis: the llm route with Redis-backed global request and token limits (a
# redis-server is started on REDIS_PORT). mcp: MCP tools/call over Streamable HTTP, to the
# mock's MCP server directly and through a virtual MCP server (one target) of the proxy.
SCENARIO="${SCENARIO:-plain}"
# Defaults of bench.sh's CONCURRENCY and BODY_SIZES for the scenario.
LT_DEFAULT_CONCURRENCY="16 64"
LT_DEFAULT_BODY_SIZES="1024 16384"
case "$SCENARIO" in
    plain) MOCK_PATH=/bench PROXY_PATH=/bench ;;
    llm | llm-stream | llm-policy | llm-redis) MOCK_PATH=/v1/chat/completions PROXY_PATH=/v1/chat/completions ;;
    translate) MOCK_PATH=/v1/messages PROXY_PATH=/anthropic/v1/messages ;;
    mcp)
        MOCK_PATH=/mcp PROXY_PATH=/mcp
        # c=1 for the added latency, then the usual concurrencies for throughput and CPU;
        # 97 bytes is the tools/call request with "text":"hi" exactly (see lt_make_body).
        LT_DEFAULT_CONCURRENCY="1 16 64"
        LT_DEFAULT_BODY_SIZES=97
        ;;
    *) printf 'unknown SCENARIO %s (plain, llm, llm-stream, llm-policy, llm-redis, translate, mcp)\n' "$SCENARIO" >&2; exit 2 ;;
esac
REDIS_PORT="${REDIS_PORT:-16379}"
# Extra request headers (oha -H) of the scenario, set when its config is written; the
# DIRECT / PROXY ones go only to the upstream / only through the proxy (mcp: session ids).
LT_HEADERS=()
LT_DIRECT_HEADERS=()
LT_PROXY_HEADERS=()
# The key sealing the proxy's MCP session ids (AGORA_MCP_SESSION_KEY: 64 hex digits).
LT_MCP_SESSION_KEY=a9e1c07f4b3d2e6f8a1b0c9d8e7f60514233241506f7e8d9cabbdcedf0011223
# The MCP protocol version the mcp scenario's client speaks.
LT_MCP_VERSION=2025-06-18
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
    if [[ "$SCENARIO" == mcp ]]; then
        # One target: tool names are not prefixed, so the same tools/call works directly.
        cat >"$cfg" <<EOF
gateway: bench/bench
binds:
- port: $PROXY_PORT
  listeners:
  - name: http
    routes:
    - name: mcp
      matches: [{path: {type: PathPrefix, value: /mcp}}]
      backendRefs: [{name: mcp}]
backends:
- name: mcp
  mcp:
    targets:
    - name: echo
      static: {host: $LT_HOST, port: $MOCK_PORT, path: $MOCK_PATH}
EOF
        printf '%s\n' "$cfg"
        return
    fi
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
        lt_write_policies "$cfg"
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

# HS256 secret of the llm-policy scenario's JWTs (its JWKS is inline in the config).
LT_JWT_SECRET="agora-bench-secret-0123456789abcdef"

# A JWT for the llm-policy scenario, signed with python3's stdlib.
lt_jwt() {
    python3 - "$LT_JWT_SECRET" <<'PY'
import base64, hashlib, hmac, json, sys, time
b64 = lambda b: base64.urlsafe_b64encode(b).rstrip(b"=").decode()
head = b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": "bench"}).encode())
body = b64(json.dumps({"iss": "https://idp.bench", "aud": "agora", "sub": "bench", "groups": ["ml"],
                        "exp": int(time.time()) + 3600}).encode())
sig = hmac.new(sys.argv[1].encode(), f"{head}.{body}".encode(), hashlib.sha256).digest()
print(f"{head}.{body}.{b64(sig)}")
PY
}

# Appends the scenario's policies to the proxy config.
lt_write_policies() {
    local cfg=$1 k
    case "$SCENARIO" in
        llm-policy)
            k="$(python3 -c 'import base64,sys; print(base64.urlsafe_b64encode(sys.argv[1].encode()).rstrip(b"=").decode())' "$LT_JWT_SECRET")"
            cat >>"$cfg" <<EOF
policies:
- name: bench
  targetRefs: [{kind: HTTPRoute, name: llm}]
  traffic:
    jwtAuthentication:
      providers:
      - issuer: https://idp.bench
        audiences: [agora]
        jwks: {inline: '{"keys":[{"kty":"oct","kid":"bench","alg":"HS256","k":"$k"}]}'}
    authorization:
      action: Require
      policy: {matchExpressions: ['"ml" in jwt.groups']}
    rateLimit:
      local: [{tokens: 1000000000000, unit: Minutes}]
EOF
            ;;
        llm-redis)
            cat >>"$cfg" <<EOF
policies:
- name: bench
  targetRefs: [{kind: HTTPRoute, name: llm}]
  traffic:
    rateLimit:
      global:
        limits:
        - {requests: 1000000000000, unit: Minutes}
        - {tokens: 1000000000000, unit: Minutes}
EOF
            ;;
    esac
}

# Sets LT_HEADERS for the scenario (call before starting the proxy).
lt_scenario_headers() {
    if [[ "$SCENARIO" == llm-policy ]]; then
        LT_HEADERS=(-H "authorization: Bearer $(lt_jwt)")
    fi
}

# Starts redis-server for the llm-redis scenario.
lt_start_redis() {
    [[ "$SCENARIO" == llm-redis ]] || return 0
    command -v redis-server >/dev/null || lt_die "redis-server not installed (scripts/setup.sh)"
    lt_require_free_ports "$REDIS_PORT"
    redis-server --port "$REDIS_PORT" --bind "$LT_HOST" --save '' --appendonly no \
        --dir "$LT_WORK" >"$LT_WORK/redis.log" 2>&1 &
    local pid=$!
    lt_track "$pid"
    lt_wait_for redis "$pid" 10 bash -c "exec 3<>/dev/tcp/$LT_HOST/$REDIS_PORT"
    lt_log "redis-server pid $pid on $LT_HOST:$REDIS_PORT"
}

lt_start_proxy() {
    local bin="$BIN_DIR/agora-proxy" cfg
    [[ -x "$bin" ]] || lt_die "$bin not found (build first)"
    lt_require_free_ports "$PROXY_PORT" "$ADMIN_PORT"
    cfg="$(lt_write_proxy_config)"
    # ACCESS_LOG=1 keeps the JSON access log on (as the proxy runs by default).
    local log_flag=(--no-access-log)
    [[ "${ACCESS_LOG:-0}" == 1 ]] && log_flag=()
    local redis_flag=()
    [[ "$SCENARIO" == llm-redis ]] && redis_flag=(--redis "redis://$LT_HOST:$REDIS_PORT/0")
    lt_scenario_headers
    # The session key matters to MCP backends only (a fixed one, as replicas would share).
    AGORA_MCP_SESSION_KEY="$LT_MCP_SESSION_KEY" \
        "$bin" -f "$cfg" --admin "$LT_HOST:$ADMIN_PORT" "${log_flag[@]}" --threads "$PROXY_THREADS" \
        "${redis_flag[@]}" >"$LT_WORK/proxy.log" 2>&1 &
    PROXY_PID=$!
    lt_track "$PROXY_PID"
    lt_wait_for proxy "$PROXY_PID" 30 curl -sf -o /dev/null "$ADMIN_URL/readyz"
    # Ready means config loaded; also wait until the data plane answers end to end.
    local probe="$LT_WORK/probe.json"
    if [[ "$SCENARIO" == mcp ]]; then
        lt_mcp_initialize_body "$probe"
    else
        lt_make_body 256 "$probe"
    fi
    lt_wait_for proxy "$PROXY_PID" 10 curl -sf -o /dev/null -H 'content-type: application/json' \
        "${LT_HEADERS[@]}" --data-binary "@$probe" "$PROXY_URL"
    lt_log "proxy pid $PROXY_PID on $LT_HOST:$PROXY_PORT ($PROXY_THREADS thread(s)), admin $LT_HOST:$ADMIN_PORT"
}

# Makes a JSON body file of exactly N bytes: {"pad":"xxxx..."} for the plain scenario, a
# chat completions / messages request whose user message pads it to N bytes, or (mcp) a
# tools/call of echo whose text is "hi" padded with x to N bytes.
lt_make_body() {
    local size=$1 out=$2 head tail='"}]}' fill=1
    case "$SCENARIO" in
        plain) head='{"pad":"' tail='"}' ;;
        llm | llm-policy | llm-redis) head='{"model":"bench-model","stream":false,"messages":[{"role":"user","content":"' ;;
        llm-stream) head='{"model":"bench-model","stream":true,"messages":[{"role":"user","content":"' ;;
        translate) head='{"model":"bench-model","max_tokens":64,"stream":false,"messages":[{"role":"user","content":"' ;;
        mcp) head='{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"text":"hi' tail='"}}}' fill=0 ;;
    esac
    ((size >= ${#head} + ${#tail} + fill)) || lt_die "body size must be >= $((${#head} + ${#tail} + fill)) bytes"
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

# --- mcp scenario ------------------------------------------------------------

# Writes an `initialize` request like a real client's to FILE.
lt_mcp_initialize_body() {
    printf '{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"%s","capabilities":{"sampling":{},"elicitation":{},"roots":{"listChanged":true}},"clientInfo":{"name":"agora-bench","version":"1.0.0"}}}' \
        "$LT_MCP_VERSION" >"$1"
}

# lt_mcp_post URL OUT BODY_FILE [HEADER...]: one bounded MCP POST; the answer's body goes
# to OUT, its headers to OUT.headers; prints the HTTP status.
lt_mcp_post() {
    local url=$1 out=$2 body=$3 h args=()
    shift 3
    for h in "$@"; do args+=(-H "$h"); done
    curl -sS --max-time 10 -o "$out" -D "$out.headers" -w '%{http_code}' \
        -H 'content-type: application/json' -H 'accept: application/json, text/event-stream' \
        "${args[@]}" --data-binary "@$body" "$url"
}

# lt_mcp_session NAME URL: the MCP handshake against URL (initialize, then
# notifications/initialized); prints the session id. Fails loudly on anything unexpected.
lt_mcp_session() {
    local name=$1 url=$2 init="$LT_WORK/mcp-initialize.json" note="$LT_WORK/mcp-initialized.json"
    local out="$LT_WORK/mcp-$1-initialize" status sid
    lt_mcp_initialize_body "$init"
    printf '%s' '{"jsonrpc":"2.0","method":"notifications/initialized"}' >"$note"
    status="$(lt_mcp_post "$url" "$out" "$init")" || lt_die "$name: initialize failed ($url)"
    [[ "$status" == 200 ]] || lt_die "$name: initialize answered HTTP $status: $(head -c 500 "$out")"
    sid="$(awk 'tolower($1) == "mcp-session-id:" { sub(/\r$/, "", $2); print $2 }' "$out.headers")"
    [[ -n "$sid" ]] || lt_die "$name: initialize answered no mcp-session-id header"
    python3 - "$out" "$LT_MCP_VERSION" <<'PY' || lt_die "$name: bad initialize answer: $(head -c 500 "$out")"
import json, sys
m = json.load(open(sys.argv[1], encoding="utf-8"))
assert m["id"] == 0 and m["result"]["protocolVersion"] == sys.argv[2], m
assert "tools" in m["result"]["capabilities"], m
PY
    status="$(lt_mcp_post "$url" "$out-note" "$note" "mcp-session-id: $sid" \
        "mcp-protocol-version: $LT_MCP_VERSION")" || lt_die "$name: notifications/initialized failed"
    [[ "$status" == 202 ]] || lt_die "$name: notifications/initialized answered HTTP $status"
    printf '%s\n' "$sid"
}

# lt_mcp_verify NAME URL BODY_FILE [HEADER...]: the request the benchmark sends must
# answer 200 with the echo tool's result for the request's text.
lt_mcp_verify() {
    local name=$1 url=$2 body=$3 out="$LT_WORK/mcp-$1-call" status
    shift 3
    status="$(lt_mcp_post "$url" "$out" "$body" "$@")" || lt_die "$name: tools/call failed ($url)"
    [[ "$status" == 200 ]] || lt_die "$name: tools/call answered HTTP $status: $(head -c 500 "$out")"
    python3 - "$body" "$out" <<'PY' || lt_die "$name: tools/call answered $(head -c 500 "$out")"
import json, sys
req = json.load(open(sys.argv[1], encoding="utf-8"))
m = json.load(open(sys.argv[2], encoding="utf-8"))
want = {"content": [{"type": "text", "text": req["params"]["arguments"]["text"]}], "isError": False}
assert m.get("jsonrpc") == "2.0" and m.get("id") == req["id"] and m.get("result") == want, m
PY
    lt_log "$name: tools/call answers 200 with the echo result"
}

# lt_mcp_setup BODY_FILE: opens an MCP session directly and one through the proxy, sets
# LT_DIRECT_HEADERS / LT_PROXY_HEADERS (oha -H) to use them, and checks that the
# benchmark's request (BODY_FILE) gets the right answer on both sides.
lt_mcp_setup() {
    local body=$1 kind url sid h headers
    for kind in direct proxy; do
        if [[ "$kind" == proxy ]]; then url="$PROXY_URL"; else url="$MOCK_URL"; fi
        sid="$(lt_mcp_session "$kind" "$url")" || exit 1
        lt_log "MCP session $kind: ${sid:0:24}... (${#sid} characters)"
        headers=("mcp-protocol-version: $LT_MCP_VERSION" "mcp-session-id: $sid")
        lt_mcp_verify "$kind" "$url" "$body" "${headers[@]}"
        # lt_mcp_post sent these two itself (oha -T sets the content type).
        headers+=("accept: application/json, text/event-stream")
        for h in "${headers[@]}"; do
            if [[ "$kind" == proxy ]]; then LT_PROXY_HEADERS+=(-H "$h"); else LT_DIRECT_HEADERS+=(-H "$h"); fi
        done
    done
}
