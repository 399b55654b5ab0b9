#!/usr/bin/env bash
# Installs the real servers the stack and the tests use, from Debian packages.
# Idempotent: does nothing when every binary is already there.
set -euo pipefail

need=()
command -v redis-server >/dev/null || need+=(redis-server)
command -v prometheus >/dev/null || need+=(prometheus)
command -v promtool >/dev/null || need+=(prometheus)
command -v prometheus-alertmanager >/dev/null || need+=(prometheus-alertmanager)
command -v amtool >/dev/null || need+=(prometheus-alertmanager)
command -v wrk >/dev/null || need+=(wrk)
# Only its `config` command is used: it checks the compose files without an engine.
command -v docker-compose >/dev/null || docker compose version >/dev/null 2>&1 || need+=(docker-compose)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)

# Go is not installed from Debian: bookworm's golang-go (1.19) is too old for the
# collector builder, which needs Go >= 1.25. `trading-otel collector build` finds a Go
# toolchain (PATH or /usr/local/go) and says clearly when there is none.

if ((${#need[@]} == 0)); then
  exit 0
fi
if [[ $(id -u) -ne 0 ]]; then
  echo "missing system packages: ${need[*]} (run as root, or: sudo apt-get install ${need[*]})" >&2
  exit 1
fi
echo "==> installing system packages: ${need[*]}"
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
# Debian's postinst may start system copies on the default ports; we never use them,
# and we do not stop them either (we did not start them).
echo "==> system packages ready"
