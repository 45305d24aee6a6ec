#!/usr/bin/env bash
# Installs what a fresh Debian machine lacks to build and test Agora. Idempotent.
set -euo pipefail

need_apt=()
command -v cmake >/dev/null 2>&1 || need_apt+=(cmake)      # Pingora builds zlib-ng with cmake
command -v curl >/dev/null 2>&1 || need_apt+=(curl)
command -v redis-server >/dev/null 2>&1 || need_apt+=(redis-server)  # global rate limits
command -v npm >/dev/null 2>&1 || need_apt+=(npm)            # MCP conformance suite (Node 22 comes from npm)
if [ ${#need_apt[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need_apt[@]}"
fi

command -v cargo >/dev/null 2>&1 || { echo "setup: a Rust toolchain (cargo) is required" >&2; exit 1; }
