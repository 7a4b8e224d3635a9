#!/bin/sh
# previewd warm-pool waiter (POSIX sh: runs in the node and the python images alike).
#
# The main process of a warm pool container (src/pool/): it runs as root with only CAP_SETUID and
# CAP_SETGID (no-new-privileges, read-only rootfs) and does nothing until previewd claims the
# container for a sandbox. The claim mounts the sandbox's workspace, home and run directory onto
# the container's (rslave) mount points, writes the sandbox's identity and environment into the
# control directory (root-only, never readable by the sandbox's uid) and opens the FIFO `go`.
# Then this script drops to the sandbox's uid/gid for good (setpriv: no groups, no capabilities
# left, none inheritable) and execs the app supervisor, whose output is the container's.
CTL=/run/previewd-pool
SAY='[previewd]'

: >"$CTL/ready" || exit 70
# Blocks until previewd opens the FIFO for writing (the claim).
read -r _ <"$CTL/go" || exit 71
read -r uid gid <"$CTL/identity" || exit 72
case "$uid:$gid" in
  *[!0-9:]* | :* | *: | 0:* | *:0) echo "$SAY bad identity" >&2; exit 73 ;;
esac
# Written by previewd: one `set -- 'NAME=value' ...` line (names checked, values single-quoted).
# It only sets this script's arguments: nothing of the sandbox's is exported while it is root.
. "$CTL/env" || exit 74
# The working directory was the empty mount point under the sandbox's workspace: enter it again.
cd /workspace || exit 75
# The sandbox's environment is applied by `env`, already running as the sandbox's user.
exec setpriv --reuid="$uid" --regid="$gid" --clear-groups --inh-caps=-all \
  env "$@" sh /opt/previewd/supervisor.sh
