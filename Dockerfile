# previewd itself, as a container (Traefik mode: deploy/traefik/docker-compose.yml builds this).
#
#   docker build -t previewd .
#   # another base: any Debian-based image with Node >= 20.18, npm, and Node's headers under
#   # /usr/local/include/node (better-sqlite3 compiles against them; without them node-gyp downloads
#   # them from nodejs.org). previewd/runtime-node:22 has no headers, so it builds only where
#   # nodejs.org is reachable:
#   docker build --build-arg NODE_IMAGE=previewd/runtime-node:22 -t previewd .
#
# At run time previewd drives the host's Docker engine through its socket, so:
#   - mount /var/run/docker.sock and add the socket's group:  --group-add "$(stat -c %g /var/run/docker.sock)"
#     (the group id differs between hosts: 999, 998, 133...; without it: "permission denied ... docker.sock");
#   - mount the data directory at the SAME path as on the host (the engine resolves the sandboxes'
#     workspace bind mounts on the host): -v /var/lib/previewd:/var/lib/previewd;
#   - anyone who can reach the Docker socket is root on the host: this container is as privileged.
ARG NODE_IMAGE=node:22-bookworm-slim

FROM ${NODE_IMAGE} AS build
# better-sqlite3 compiles when no prebuilt binary can be downloaded.
RUN apt-get update \
  && apt-get install -y --no-install-recommends python3 make g++ ca-certificates \
  && rm -rf /var/lib/apt/lists/*
# Extra CA certificates (a TLS-intercepting proxy in front of the npm registry): any *.crt file
# put in deploy/ca/ before building is trusted by the build (npm) and by previewd.
COPY deploy/ca/ /usr/local/share/ca-certificates/previewd/
RUN update-ca-certificates
ENV NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt
WORKDIR /src
COPY package.json package-lock.json ./
# The TypeScript SDK is an npm workspace (the CLI's client commands use it).
COPY packages/sdk/package.json ./packages/sdk/package.json
# Node's own headers, when the base image ships them (official node images do): better-sqlite3
# then compiles without downloading them from nodejs.org.
RUN if [ -f /usr/local/include/node/node.h ]; then export npm_config_nodedir=/usr/local; fi \
  && npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY packages/sdk/tsconfig.json ./packages/sdk/tsconfig.json
COPY packages/sdk/src ./packages/sdk/src
COPY src ./src
RUN (cd packages/sdk && ../../node_modules/.bin/tsc -p tsconfig.json) \
  && npx tsc -p tsconfig.build.json && npm prune --omit=dev --no-audit --no-fund

FROM ${NODE_IMAGE}
# HAProxy is the edge front (edge.front auto); in Traefik mode it stays unused. iptables writes
# the sandbox network's containment (network.containment; deploy/swarm runs it with NET_ADMIN).
# previewd runs as the sandboxes' user (docker.sandboxUser, default 1000:1000): it creates their
# workspaces and hands them to that user, which a non-root process can only do for itself.
ARG PREVIEWD_UID=1000
ARG PREVIEWD_GID=1000
RUN apt-get update \
  && apt-get install -y --no-install-recommends ca-certificates tini haproxy iptables \
  && rm -rf /var/lib/apt/lists/*
COPY deploy/ca/ /usr/local/share/ca-certificates/previewd/
RUN update-ca-certificates \
  && (getent group "${PREVIEWD_GID}" || groupadd --gid "${PREVIEWD_GID}" previewd) \
  && (getent passwd "${PREVIEWD_UID}" \
    || useradd --uid "${PREVIEWD_UID}" --gid "${PREVIEWD_GID}" --no-create-home \
      --home-dir /var/lib/previewd --shell /usr/sbin/nologin previewd) \
  && mkdir -p /var/lib/previewd && chown "${PREVIEWD_UID}:${PREVIEWD_GID}" /var/lib/previewd
WORKDIR /opt/previewd
COPY --from=build /src/package.json ./package.json
COPY --from=build /src/node_modules ./node_modules
COPY --from=build /src/dist ./dist
COPY --from=build /src/packages/sdk/package.json ./packages/sdk/package.json
COPY --from=build /src/packages/sdk/dist ./packages/sdk/dist
# The in-sandbox supervisor and static server (bind-mounted read-only into sandboxes: the engine
# resolves that mount on the host, so in a container deployment mount the same path from the host)
# and the templates.
COPY runtime ./runtime
COPY templates ./templates
COPY bin ./bin
ENV NODE_ENV=production \
  NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt \
  PREVIEWD_DATA_DIR=/var/lib/previewd \
  PREVIEWD_API_ADDR=0.0.0.0:7070 \
  PREVIEWD_EDGE_ADDR=0.0.0.0:8080 \
  PREVIEWD_LOG_FORMAT=json
USER ${PREVIEWD_UID}:${PREVIEWD_GID}
EXPOSE 7070 8080
ENTRYPOINT ["/usr/bin/tini", "--", "node", "/opt/previewd/bin/previewd.js"]
CMD ["serve"]
