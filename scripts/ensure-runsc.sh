#!/usr/bin/env bash
# gVisor (runsc), the stronger isolation level (`isolation: "gvisor"`): a sandbox's processes talk
# to gVisor's user-space kernel instead of the host's. Optional: without it previewd runs with
# container isolation only and refuses "gvisor" with isolation_unavailable.
#
# When we are root with apt and the engine is the local one: installs runsc (Debian package) and
# registers it in /etc/docker/daemon.json under the runtime name previewd uses
# (PREVIEWD_ISOLATION_GVISOR_RUNTIME, default runsc), merging into the file's other keys. The
# engine is told to reload (SIGHUP: `runtimes` is one of dockerd's reloadable options) and
# restarted only when that did not make it list the runtime and the registration changed.
# `--network=host` makes runsc use the container's own network namespace (Docker's bridge); its
# default netstack mode fails on this kind of host ("cannot run with network enabled in root
# network namespace").
set -euo pipefail

data_dir="${PREVIEWD_DATA_DIR:-./data}"
mkdir -p "$data_dir"
log="$data_dir/dockerd.log"
name="${PREVIEWD_ISOLATION_GVISOR_RUNTIME:-runsc}"
daemon_json="${PREVIEWD_DOCKER_DAEMON_JSON:-/etc/docker/daemon.json}"

say() { printf '[setup] %s\n' "$*" >&2; }

engine_lists_runtime() {
  docker info --format '{{json .Runtimes}}' 2>/dev/null |
    node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{try{process.exit(Object.hasOwn(JSON.parse(s)||{},process.argv[1])?0:1)}catch{process.exit(1)}})' "$name"
}

how() {
  say "gVisor isolation is not available: $1"
  say "Fix (Debian/Ubuntu, as root): apt-get install runsc, then add to $daemon_json"
  say "  {\"runtimes\": {\"$name\": {\"path\": \"/usr/bin/runsc\", \"runtimeArgs\": [\"--network=host\"]}}}"
  say "and reload the engine (kill -HUP \$(pidof dockerd), or restart it). Sandboxes use container isolation meanwhile."
}

if engine_lists_runtime; then
  exit 0
fi
if [ -n "${DOCKER_HOST:-}" ]; then
  how "the engine at DOCKER_HOST=$DOCKER_HOST does not list the runtime '$name' (register it on that engine's host)."
  exit 0
fi
if [ "$(id -u)" != "0" ] || ! command -v apt-get >/dev/null 2>&1; then
  how "the engine does not list the runtime '$name' and set-up is not root with apt."
  exit 0
fi

if ! command -v runsc >/dev/null 2>&1; then
  say "Installing gVisor (runsc) with apt-get..."
  export DEBIAN_FRONTEND=noninteractive
  if ! apt-get install -y -qq runsc >/dev/null 2>&1; then
    apt-get update -qq >/dev/null
    if ! apt-get install -y -qq runsc >/dev/null 2>&1; then
      how "apt-get install runsc failed (this distribution may not package it)."
      exit 0
    fi
  fi
fi
runsc_path=$(command -v runsc)

# Merge the runtime into daemon.json (JSON edited as JSON; other keys and runtimes kept).
mkdir -p "$(dirname "$daemon_json")"
changed=$(node -e '
const fs = require("node:fs");
const [file, name, path] = process.argv.slice(1);
let conf = {};
if (fs.existsSync(file)) {
  const text = fs.readFileSync(file, "utf8");
  if (text.trim() !== "") conf = JSON.parse(text);
}
const want = { path, runtimeArgs: ["--network=host"] };
conf.runtimes = conf.runtimes ?? {};
if (JSON.stringify(conf.runtimes[name]) === JSON.stringify(want)) { console.log("no"); process.exit(0); }
conf.runtimes[name] = want;
const tmp = `${file}.previewd-tmp`;
fs.writeFileSync(tmp, `${JSON.stringify(conf, null, 2)}\n`);
fs.renameSync(tmp, file);
console.log("yes");
' "$daemon_json" "$name" "$runsc_path")

pid=$(pgrep -x dockerd | head -n 1 || true)
if [ -n "$pid" ]; then
  say "Registered runtime '$name' in $daemon_json; asking dockerd to reload it (SIGHUP)..."
  kill -HUP "$pid"
  for _ in $(seq 1 20); do
    if engine_lists_runtime; then
      say "gVisor isolation is available (runtime '$name')."
      exit 0
    fi
    sleep 0.25
  done
fi

if [ "$changed" != "yes" ] && [ -n "$pid" ]; then
  how "the runtime '$name' is registered in $daemon_json but the engine does not list it (see $log)."
  exit 0
fi

# A restart stops every running container on this engine (without live-restore).
say "Restarting the Docker engine to pick up the runtime '$name' (running containers stop)..."
if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet docker 2>/dev/null; then
  systemctl restart docker
else
  if [ -n "$pid" ]; then
    kill -TERM "$pid"
    for _ in $(seq 1 60); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.5
    done
  fi
  nohup dockerd >>"$log" 2>&1 </dev/null &
fi
for _ in $(seq 1 60); do
  if engine_lists_runtime; then
    say "gVisor isolation is available (runtime '$name')."
    exit 0
  fi
  sleep 0.5
done
how "the engine did not list the runtime '$name' within 30 s of its restart (see $log)."
exit 0
