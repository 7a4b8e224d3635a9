#!/usr/bin/env bash
# HAProxy, the edge's front: it serves running public previews at native speed while previewd's
# built-in edge wakes, authorises and explains. Installed with apt when missing and we are root;
# otherwise previewd runs with the built-in edge alone (edge.front "auto") and this says how to
# get the front.
set -euo pipefail

say() { printf '[setup] %s\n' "$*" >&2; }

bin="${PREVIEWD_EDGE_HAPROXY_BIN:-haproxy}"
if command -v "$bin" >/dev/null 2>&1 && "$bin" -v >/dev/null 2>&1; then
  exit 0
fi
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  say "Installing HAProxy (the edge's front) with apt-get..."
  export DEBIAN_FRONTEND=noninteractive
  if ! apt-get install -y -qq haproxy >/dev/null 2>&1; then
    apt-get update -qq >/dev/null
    apt-get install -y -qq haproxy >/dev/null
  fi
  # previewd runs its own HAProxy; the package's system service is not needed.
  if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet haproxy 2>/dev/null; then
    systemctl disable --now haproxy >/dev/null 2>&1 || true
  fi
  exit 0
fi
say "HAProxy is not installed: previews will be served by the built-in edge alone (about a third of"
say "HAProxy's throughput). Fix: install it (Debian: apt-get install haproxy), then restart previewd."
exit 0
