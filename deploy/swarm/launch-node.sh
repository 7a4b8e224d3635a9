#!/bin/sh
# The previewd Swarm task (deploy/swarm/stack.yml): runs previewd on this node's own engine as a
# plain container with the privileges a Swarm service cannot have (devices, security options), and stays attached to it so the
# Swarm supervises it. SIGTERM to this task reaches previewd (docker run passes signals on); the
# container is removed when it ends. A task killed outright leaves the container: the next task
# removes it before it starts a new one.
set -eu

name=previewd-node
data="${PREVIEWD_DATA_DIR:-/var/lib/previewd}"
socket="${PREVIEWD_HOST_DOCKER_SOCKET:-/var/run/docker.sock}"
secrets="$data/.secrets"

# The cluster secret is in this task's /run/secrets (a tmpfs of this task that the node's engine
# cannot mount into another container): copy it where previewd's container can have it, readable
# by root alone.
umask 077
mkdir -p "$secrets"
cp /run/secrets/previewd_cluster "$secrets/cluster"

docker rm -f "$name" >/dev/null 2>&1 || true

# Hand every PREVIEWD_* variable of this task to previewd (but the launcher's own ones).
set --
for var in $(env | sed -n 's/^\(PREVIEWD_[A-Z0-9_]*\)=.*/\1/p'); do
  case "$var" in PREVIEWD_IMAGE | PREVIEWD_HOST_DOCKER_SOCKET) continue ;; esac
  set -- "$@" -e "$var"
done

PGPASSWORD="$(cat /run/secrets/previewd_db_password)"
PREVIEWD_API_KEYS="$(cat /run/secrets/previewd_api_key)"
export PGPASSWORD PREVIEWD_API_KEYS

# The overlays previewd mounts under the data folder must reach the host's mount namespace (the
# engine bind-mounts them into the sandboxes), hence :rshared; the engine refuses to start the
# container when the host's folder is not on a shared mount (see README.md).
# What previewd needs, and no more than that (not --privileged, which also fails where the
# engine's own capability set is short of one, as on some hosted machines):
#   root in the container (it hands each sandbox its own uid and chowns its files);
#   CAP_SYS_ADMIN: overlay mounts and loop disks (mount, LOOP_* ioctls);
#   CAP_NET_ADMIN + CAP_NET_RAW: iptables, for the sandbox network containment chains;
#   loop devices: the host's /dev (losetup finds and creates /dev/loopN there) and the device
#     cgroup rules for block major 7 and /dev/loop-control (10:237);
#   AppArmor unconfined: docker-default denies mount(2) even with CAP_SYS_ADMIN;
#   the host's network (previewd's edge, API and the sandboxes' published ports live there).
exec docker run --rm --name "$name" \
  --network host --user 0:0 \
  --cap-add SYS_ADMIN --cap-add NET_ADMIN --cap-add NET_RAW \
  --security-opt apparmor=unconfined \
  --device-cgroup-rule 'b 7:* rmw' --device-cgroup-rule 'c 10:237 rmw' \
  -v /dev:/dev \
  --label previewd.launcher=swarm \
  --stop-timeout 50 \
  -v "$socket:/var/run/docker.sock" \
  -v "$data:$data:rshared" \
  -v "$secrets/cluster:/run/secrets/previewd_cluster:ro" \
  -e PGPASSWORD -e PREVIEWD_API_KEYS \
  "$@" \
  "${PREVIEWD_IMAGE:-previewd:local}" serve
