#!/usr/bin/env bash
# Runs the whole test suite: formatting, lints, Rust unit and end-to-end tests, then the
# Python end-to-end tests that drive the gateway with the official SDK clients.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh

cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --locked --no-fail-fast
else
  cargo test --workspace --locked --no-fail-fast
fi

# SDK-driven end-to-end tests (official openai / anthropic clients) against the debug binary.
cargo build --locked -p agora-proxy -p agora-control
if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
.venv/bin/pip install -q -r tests/llm/requirements.txt -r tests/policies/requirements.txt -r tests/a2a/requirements.txt -r tests/mcp/requirements.txt -r tests/conformance/requirements.txt -r tests/controlplane/requirements.txt
AGORA_PROXY_BIN="$PWD/target/debug/agora-proxy" .venv/bin/python -m pytest tests -q -p no:cacheprovider

# MCP conformance (npm @modelcontextprotocol/conformance): every server scenario that passes
# against the reference server directly must pass through the gateway too.
.venv/bin/python tests/mcp-conformance/run.py --compare target/debug/agora-proxy

# Gateway API conformance without a cluster: controller on a manifest directory, proxies
# over xDS, echo backends on loopback.
.venv/bin/python tests/conformance/run.py
