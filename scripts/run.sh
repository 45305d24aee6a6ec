#!/usr/bin/env bash
# Runs the gateway on the embedded quickstart config (no cluster, no upstream needed).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec cargo run --release --locked -p agora-proxy -- -f "${1:-examples/quickstart.yaml}"
