#!/usr/bin/env bash
# PostgreSQL 15, the shared store of a cluster (databaseUrl) and what the PostgreSQL store's tests
# start privately (test/helpers/postgres.ts). Debian's postgresql-15, installed with apt when
# missing and we are root; the package's own cluster and service are not used.
set -euo pipefail

say() { printf '[setup] %s\n' "$*" >&2; }

bindir="${PREVIEWD_TEST_PG_BIN:-/usr/lib/postgresql/15/bin}"
if [ -x "$bindir/initdb" ] && [ -x "$bindir/pg_ctl" ]; then
  exit 0
fi
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  say "Installing PostgreSQL 15 (postgresql-15) with apt-get..."
  export DEBIAN_FRONTEND=noninteractive
  if ! apt-get install -y -qq postgresql-15 >/dev/null 2>&1; then
    apt-get update -qq >/dev/null
    apt-get install -y -qq postgresql-15 >/dev/null
  fi
  # previewd's tests run their own servers; the package's system service is not needed.
  if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet postgresql 2>/dev/null; then
    systemctl disable --now postgresql >/dev/null 2>&1 || true
  fi
  exit 0
fi
say "PostgreSQL 15 is not installed: the PostgreSQL store's tests cannot run (previewd itself needs"
say "it only with databaseUrl). Fix: install it (Debian: apt-get install postgresql-15), then re-run."
exit 0
