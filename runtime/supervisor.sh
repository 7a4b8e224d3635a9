#!/bin/sh
# previewd app supervisor (POSIX sh: runs in the node and the python images alike).
#
# Mounted read-only at /opt/previewd/supervisor.sh and run as the container's main process:
#   PREVIEWD_INSTALL  install command (optional); skipped when the lockfiles and the install
#                     command hash to the stamp the last successful install left
#   PREVIEWD_START    start command (run through sh)
#   PREVIEWD_APP_RESTARTS  restarts after a crash before giving up (default 3), backoff 1, 2, 4… s
#   PREVIEWD_RUN_DIR  where the status file lives (default /run/previewd, a host directory)
# `supervisor.sh restart` asks the running supervisor to restart the app now (SIGHUP).
#
# The status file ($PREVIEWD_RUN_DIR/status, key=value lines, replaced atomically) is what the
# control plane reads: state=installing|running|crashed|failed|stopped, exitCode, restarts,
# crashes (a counter: one more per exit the supervisor did not ask for), updatedAt.

RUN_DIR=${PREVIEWD_RUN_DIR:-/run/previewd}
SAY='[previewd]'

if [ "${1-}" = restart ]; then
  pid=$(cat "$RUN_DIR/supervisor.pid" 2>/dev/null)
  if [ -z "$pid" ] || ! kill -HUP "$pid" 2>/dev/null; then
    echo "$SAY no app supervisor is running" >&2
    exit 1
  fi
  exit 0
fi

MAX=${PREVIEWD_APP_RESTARTS:-3}
STABLE_SEC=30
restarts=0
crashes=0
child=
stopping=
restart_asked=

status() {
  printf 'state=%s\nexitCode=%s\nrestarts=%s\ncrashes=%s\nmaxRestarts=%s\nupdatedAt=%s\n' \
    "$1" "${2-}" "$restarts" "$crashes" "$MAX" "$(date +%s)" >"$RUN_DIR/status.tmp" &&
    mv -f "$RUN_DIR/status.tmp" "$RUN_DIR/status"
}

kill_child() {
  [ -n "$child" ] && kill -TERM "-$child" 2>/dev/null
  return 0
}
trap 'stopping=1; kill_child' TERM INT
trap 'restart_asked=1; kill_child' HUP

# Runs "$1" through sh in its own session (so the whole tree can be signalled) and waits for it,
# across the signals the traps handle. Returns its exit code.
run() {
  setsid sh -c "$1" &
  child=$!
  while :; do
    wait "$child"
    rc=$?
    kill -0 "$child" 2>/dev/null || break
  done
  child=
  return "$rc"
}

install_hash() {
  {
    printf '%s\n' "$PREVIEWD_INSTALL"
    for f in package.json package-lock.json npm-shrinkwrap.json pnpm-lock.yaml yarn.lock \
      requirements.txt pyproject.toml poetry.lock; do
      if [ -f "$f" ]; then
        echo "== $f"
        cat "$f"
      fi
    done
  } | sha256sum | cut -d' ' -f1
}

stamp_file() {
  if [ -f package.json ]; then echo node_modules/.previewd-install-hash; else echo "$HOME/.previewd-install-hash"; fi
}

install() {
  [ -n "${PREVIEWD_INSTALL-}" ] || return 0
  hash=$(install_hash)
  stamp=$(stamp_file)
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$hash" ]; then
    echo "$SAY dependencies unchanged: install skipped"
    return 0
  fi
  status installing
  echo "$SAY install: $PREVIEWD_INSTALL"
  run "$PREVIEWD_INSTALL" || return $?
  # A new file, not a write through: node_modules may be hardlinked from the host's template cache.
  mkdir -p "$(dirname "$stamp")" && printf '%s\n' "$hash" >"$stamp.tmp" && mv -f "$stamp.tmp" "$stamp"
}

mkdir -p "$RUN_DIR"
echo $$ >"$RUN_DIR/supervisor.pid"
while :; do
  restart_asked=
  began=$(date +%s)
  install
  rc=$?
  if [ "$rc" -eq 0 ] && [ -z "$stopping" ] && [ -z "$restart_asked" ]; then
    status running
    run "$PREVIEWD_START"
    rc=$?
  fi
  if [ -n "$stopping" ]; then
    status stopped "$rc"
    exit 0
  fi
  if [ -n "$restart_asked" ]; then
    restarts=0
    echo "$SAY restarting the app"
    continue
  fi
  crashes=$((crashes + 1))
  [ $(($(date +%s) - began)) -ge "$STABLE_SEC" ] && restarts=0
  if [ "$restarts" -ge "$MAX" ]; then
    status failed "$rc"
    echo "$SAY the app exited with code $rc; gave up after $restarts restarts (POST /v1/sandboxes/{id}/restart-app restarts it)" >&2
    while [ -z "$stopping" ] && [ -z "$restart_asked" ]; do
      sleep 3600 &
      wait $!
      kill $! 2>/dev/null
    done
  else
    delay=$((1 << restarts))
    status crashed "$rc"
    echo "$SAY the app exited with code $rc; restart $((restarts + 1))/$MAX in ${delay}s" >&2
    sleep "$delay" &
    wait $!
    kill $! 2>/dev/null
    restarts=$((restarts + 1))
  fi
  if [ -n "$stopping" ]; then
    status stopped "$rc"
    exit 0
  fi
  [ -n "$restart_asked" ] && restarts=0 && echo "$SAY restarting the app"
done
