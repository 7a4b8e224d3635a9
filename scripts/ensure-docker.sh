#!/usr/bin/env bash
# Makes sure a Docker engine answers. When none does and we are root with apt,
# installs docker.io and starts dockerd in the background (log under the data dir).
set -euo pipefail

data_dir="${PREVIEWD_DATA_DIR:-./data}"
mkdir -p "$data_dir"
log="$data_dir/dockerd.log"

say() { printf '[setup] %s\n' "$*" >&2; }

if docker info >/dev/null 2>&1; then
  exit 0
fi

if [ -n "${DOCKER_HOST:-}" ]; then
  say "DOCKER_HOST=$DOCKER_HOST is set but the engine there does not answer (docker info failed)."
  say "Fix: start that engine, or unset DOCKER_HOST to use the local one."
  exit 1
fi

if [ "$(id -u)" != "0" ]; then
  say "No Docker engine answers and we are not root, so set-up cannot start one."
  say "Fix: install Docker (https://docs.docker.com/engine/install/) and start it, or add your user"
  say "to the 'docker' group (sudo usermod -aG docker \$USER, then log in again)."
  exit 1
fi

if ! command -v dockerd >/dev/null 2>&1; then
  if ! command -v apt-get >/dev/null 2>&1; then
    say "No Docker engine is installed and this machine has no apt-get."
    say "Fix: install Docker Engine with your distribution's package manager, then re-run."
    exit 1
  fi
  say "Installing docker.io with apt-get (about 20 s)..."
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq docker.io >/dev/null
fi

if ! pgrep -x dockerd >/dev/null 2>&1; then
  say "Starting dockerd in the background (log: $log)..."
  nohup dockerd >"$log" 2>&1 </dev/null &
fi

for _ in $(seq 1 60); do
  if docker info >/dev/null 2>&1; then
    say "Docker engine is up."
    exit 0
  fi
  sleep 0.5
done
say "dockerd did not answer within 30 s. Its log ($log) ends with:"
tail -n 20 "$log" >&2 || true
say "Fix: read the log above; a common cause is another dockerd or containerd already running."
exit 1
