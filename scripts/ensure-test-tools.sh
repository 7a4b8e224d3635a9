#!/usr/bin/env bash
# What `make test` needs beyond `make setup`: Debian's Chromium (browser tests drive it through
# playwright-core; `npx playwright install` cannot work offline), docker-compose (validates the
# Traefik deployment), openssl (TLS tests) and HAProxy (the edge suites run with its front).
# Installed with apt when we are root; otherwise the message names the packages.
set -euo pipefail

say() { printf '[setup] %s\n' "$*" >&2; }

"$(dirname "$0")/ensure-cluster-tools.sh"  # iproute2, util-linux, iptables (test/cluster)
missing=()
[ -x /usr/bin/chromium ] || missing+=(chromium)
command -v docker-compose >/dev/null 2>&1 || missing+=(docker-compose)
command -v openssl >/dev/null 2>&1 || missing+=(openssl)
command -v haproxy >/dev/null 2>&1 || missing+=(haproxy)
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  say "Installing test tools with apt-get: ${missing[*]} (about a minute)..."
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq "${missing[@]}" >/dev/null
  exit 0
fi
say "The tests need: ${missing[*]}. Fix: install them with your package manager (Debian: apt-get install ${missing[*]}), then re-run."
exit 1
