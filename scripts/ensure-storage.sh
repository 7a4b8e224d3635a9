#!/usr/bin/env bash
# Sandbox storage (docs/runtimes.md, "Workspaces, layers and disks"): previewd mounts each
# sandbox's workspace as an overlay and its disk (resources.diskMb) as a loop-mounted ext4 image.
# That needs mount, losetup and fallocate (util-linux), mkfs.ext4 (e2fsprogs), the overlay file
# system and loop devices. Installed with apt when missing and we are root; otherwise this says
# what previewd does without them (plain directories: no copy-on-write layers, no disk quota).
set -euo pipefail

say() { printf '[setup] %s\n' "$*" >&2; }

have() { command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ] || [ -x "/sbin/$1" ]; }
missing=()
{ have mount && have losetup && have fallocate; } || missing+=(util-linux mount)
have mkfs.ext4 || missing+=(e2fsprogs)

if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    say "Installing ${missing[*]} with apt-get (sandbox workspaces and disks)..."
    export DEBIAN_FRONTEND=noninteractive
    if ! apt-get install -y -qq "${missing[@]}" >/dev/null 2>&1; then
      apt-get update -qq >/dev/null
      apt-get install -y -qq "${missing[@]}" >/dev/null
    fi
  else
    say "Missing: ${missing[*]}. Without them previewd gives sandboxes plain directories: no"
    say "copy-on-write template layers, no disk quota. Fix: apt-get install ${missing[*]}, run as root."
    exit 0
  fi
fi

if [ "$(id -u)" = "0" ]; then
  # Loop devices are made on demand through /dev/loop-control; the module may need loading.
  [ -e /dev/loop-control ] || modprobe loop 2>/dev/null || true
  grep -qw overlay /proc/filesystems || modprobe overlay 2>/dev/null || true
  grep -qw overlay /proc/filesystems || say "The kernel has no overlay file system: sandboxes get plain directories."
  losetup -f >/dev/null 2>&1 || say "No loop device (losetup -f failed): sandboxes get no disk quota."
else
  say "previewd mounts sandbox storage only as root: as $(id -un) sandboxes get plain directories, no disk quota."
fi
exit 0
