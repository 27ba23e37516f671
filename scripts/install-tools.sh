#!/usr/bin/env bash
# The command-line tools `make test` runs besides Python: promtool and amtool (alert rules),
# redis-server (tests start their own), pgbouncer (transaction-pooling tests). On a Debian or
# Ubuntu machine they are installed when missing (as root); elsewhere this says what to install.
# `install-tools.sh bench` adds what `make bench` runs: wrk (HTTP load) and pgbench.
set -euo pipefail

declare -A package=(
  [promtool]=prometheus
  [amtool]=prometheus-alertmanager
  [redis-server]=redis-server
  [pgbouncer]=pgbouncer
)
if [ "${1:-}" = bench ]; then
  package[wrk]=wrk
  package[pgbench]=postgresql-contrib
fi
missing=()
for tool in "${!package[@]}"; do
  command -v "$tool" >/dev/null 2>&1 || [ -x "/usr/sbin/$tool" ] || missing+=("${package[$tool]}")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" -eq 0 ]; then
  echo "installing: ${missing[*]}"
  apt-get update -q >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >/dev/null
  exit 0
fi
echo "make ${1:-test} needs these packages (Debian/Ubuntu names): ${missing[*]}" >&2
echo "install them (e.g. sudo apt-get install ${missing[*]}) and run make ${1:-test} again" >&2
exit 1
