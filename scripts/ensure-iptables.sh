#!/usr/bin/env bash
# iptables: previewd installs its sandbox-network containment chains with it at start
# (docs/network.md), and the tests build their stand-in internet with iproute2 (ip netns, veth).
# docker.io depends on iptables, so both are usually present; installed with apt when missing and
# we are root, otherwise this says what previewd will do without them.
set -euo pipefail

say() { printf '[setup] %s\n' "$*" >&2; }

missing=()
command -v iptables >/dev/null 2>&1 || [ -x /usr/sbin/iptables ] || missing+=(iptables)
command -v ip >/dev/null 2>&1 || [ -x /usr/sbin/ip ] || [ -x /sbin/ip ] || missing+=(iproute2)
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  say "Installing ${missing[*]} with apt-get (sandbox network containment)..."
  export DEBIAN_FRONTEND=noninteractive
  if ! apt-get install -y -qq "${missing[@]}" >/dev/null 2>&1; then
    apt-get update -qq >/dev/null
    apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
  exit 0
fi
say "Missing: ${missing[*]}. Without iptables previewd cannot keep sandboxes off the host and private"
say "networks (it warns at start; network.containment: required refuses to start)."
say "Fix: install them (Debian: apt-get install ${missing[*]}) and run previewd as root."
exit 0
