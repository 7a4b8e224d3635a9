#!/usr/bin/env bash
# What the cluster tests (test/cluster, test/helpers/cluster-hosts.ts) need: iproute2 (ip netns,
# veth, bridge), util-linux (nsenter and unshare: a Docker engine per network and UTS namespace)
# and iptables (the bridge's FORWARD rule). Installed with apt when we are root; otherwise the
# message names the packages.
set -euo pipefail

say() { printf '[setup] %s\n' "$*" >&2; }

missing=()
command -v ip >/dev/null 2>&1 || [ -x /usr/sbin/ip ] || [ -x /sbin/ip ] || missing+=(iproute2)
{ command -v nsenter >/dev/null 2>&1 && command -v unshare >/dev/null 2>&1; } || missing+=(util-linux)
command -v iptables >/dev/null 2>&1 || [ -x /usr/sbin/iptables ] || missing+=(iptables)
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  say "Installing the cluster test tools with apt-get: ${missing[*]}..."
  export DEBIAN_FRONTEND=noninteractive
  if ! apt-get install -y -qq "${missing[@]}" >/dev/null 2>&1; then
    apt-get update -qq >/dev/null
    apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
  exit 0
fi
say "The cluster tests need: ${missing[*]}. Fix: install them (Debian: apt-get install ${missing[*]}), then re-run."
exit 1
