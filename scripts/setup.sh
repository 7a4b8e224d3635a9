#!/usr/bin/env bash
# Set-up: everything `make start` and `make test` need, idempotent and quick when nothing changed.
#   1. Node >= 20.18 and npm dependencies (npm ci when package-lock.json changed)
#   2. the TypeScript build (dist/) and the dashboard (dashboard/dist, Vite)
#   3. a Docker engine that answers (installed and started when we are root with apt), HAProxy
#      for the edge's front (installed when we are root with apt; optional otherwise), and iptables
#      for the sandbox network's containment, gVisor (runsc) for `isolation: gvisor` (installed and
#      registered with the engine when we are root with apt; optional otherwise), and util-linux and
#      e2fsprogs for sandbox storage (overlay workspaces, loop-mounted disks)
#   4. the runtime images (built without a registry when missing or their inputs changed)
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '[setup] %s\n' "$*" >&2; }

# 1. Node and dependencies
if ! command -v node >/dev/null 2>&1; then
  say "Node.js is not installed. Fix: install Node.js 20.18 or newer (https://nodejs.org), then re-run."
  exit 1
fi
if ! node -e 'const [a,b]=process.versions.node.split(".").map(Number); process.exit(a>20||(a===20&&b>=18)?0:1)'; then
  say "Node.js $(node -v) is too old. Fix: install Node.js 20.18 or newer, then re-run."
  exit 1
fi
lock_hash=$(sha256sum package-lock.json | cut -d' ' -f1)
stamp=node_modules/.previewd-lock-hash
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$lock_hash" ]; then
  say "Installing npm dependencies (npm ci; better-sqlite3 compiles from source, about a minute)..."
  npm ci --no-fund --no-audit --loglevel=error
  echo "$lock_hash" >"$stamp"
fi
# The package's own bin, next to its dependencies' (npm does not link a root package's bin).
ln -sf ../../bin/previewd.js node_modules/.bin/previewd

# 2. Build: the TypeScript SDK first (the CLI uses it), then previewd
if [ ! -f packages/sdk/dist/.build-stamp ] || [ -n "$(find packages/sdk/src packages/sdk/package.json packages/sdk/tsconfig.json -newer packages/sdk/dist/.build-stamp -print -quit)" ]; then
  say "Building the TypeScript SDK (packages/sdk)..."
  (cd packages/sdk && ../../node_modules/.bin/tsc -p tsconfig.json)
  touch packages/sdk/dist/.build-stamp
fi
if [ ! -f dist/.build-stamp ] || [ -n "$(find src package.json tsconfig.json tsconfig.build.json -newer dist/.build-stamp -print -quit)" ]; then
  say "Building (tsc)..."
  npm run --silent build
  touch dist/.build-stamp
fi
# The dashboard: rebuilt when its sources, what it imports from outside dashboard/ (src/domain,
# the SDK's types) or the locked dependencies changed.
if [ -f dashboard/vite.config.ts ]; then
  dash_hash=$( (find dashboard src/domain packages/sdk/src -path dashboard/dist -prune -o -type f -print | LC_ALL=C sort | xargs sha256sum; sha256sum package-lock.json) | sha256sum | cut -d' ' -f1)
  dash_stamp=dashboard/dist/.inputs-hash
  if [ ! -f "$dash_stamp" ] || [ "$(cat "$dash_stamp")" != "$dash_hash" ]; then
    say "Building the dashboard (vite build)..."
    node_modules/.bin/vite build --config dashboard/vite.config.ts --logLevel warn
    echo "$dash_hash" >"$dash_stamp"
  fi
fi

# 3. Docker engine, and HAProxy for the edge's front
./scripts/ensure-docker.sh
./scripts/ensure-haproxy.sh
./scripts/ensure-iptables.sh
./scripts/ensure-storage.sh
./scripts/ensure-runsc.sh
./scripts/ensure-postgres.sh

# 4. Runtime images
node bin/previewd.js images build
