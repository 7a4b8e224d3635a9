/**
 * The one error-code table. Server, CLI and SDKs read it; every code maps once to an HTTP
 * status and carries a hint that names the fix.
 */
export const errorCodes = {
  unauthorized: {
    status: 401,
    hint: 'Send "Authorization: Bearer <api key>"; keys are in PREVIEWD_API_KEYS or <dataDir>/api-key.',
  },
  forbidden: {
    status: 403,
    hint: 'This needs an admin key (a plain entry of PREVIEWD_API_KEYS, or one made with "previewd keys create --admin").',
  },
  host_not_allowed: {
    status: 421,
    hint: 'Call the API by a name it answers to: a loopback name, its listen address, or one listed in api.hosts (PREVIEWD_API_HOSTS).',
  },
  rate_limited: {
    status: 429,
    hint: 'Too many requests of this kind; wait for the Retry-After delay, then try again.',
  },
  key_not_found: { status: 404, hint: 'List the keys with GET /v1/keys (or "previewd keys ls").' },
  key_not_revocable: {
    status: 409,
    hint: 'This key comes from the configuration (PREVIEWD_API_KEYS or <dataDir>/api-key): remove it there and restart.',
  },
  origin_refused: {
    status: 403,
    hint: 'A request signed in with the dashboard cookie must come from the dashboard page itself; scripts send "Authorization: Bearer <api key>" instead.',
  },
  invalid_request: {
    status: 400,
    hint: 'Check the request against /openapi.json; the message names the field.',
  },
  invalid_json: { status: 400, hint: 'The body must be valid JSON with Content-Type: application/json.' },
  json_too_deep: {
    status: 400,
    hint: 'JSON bodies may nest objects and arrays at most 64 levels deep; send a flatter document.',
  },
  invalid_archive: {
    status: 400,
    hint: 'Send a complete tar stream (optionally gzip-compressed), e.g. made by "tar -czf - -C dir .".',
  },
  invalid_base64: {
    status: 400,
    hint: 'A files entry { "base64": "…" } holds standard base64 (A-Z a-z 0-9 + /, "=" padding, no spaces); the message names the path.',
  },
  git_source_refused: {
    status: 400,
    hint: 'source.git.url must be an https://, http:// or git:// URL without credentials (pass a token in source.git.token) whose host is on the internet (sources.allowPrivateGit allows private hosts).',
  },
  git_clone_failed: {
    status: 422,
    hint: "previewd could not clone the repository: check the URL, the ref (a branch, tag or commit) and the token; the message has git's own words.",
  },
  headers_too_large: {
    status: 431,
    hint: 'The request line and headers together must stay under 16 KiB; send long values in the body.',
  },
  request_timeout: {
    status: 408,
    hint: 'Send the request line, headers and body without long pauses.',
  },
  bad_request: {
    status: 400,
    hint: 'The request is not well-formed HTTP/1.1 (request line, header names and values, framing).',
  },
  invalid_id: {
    status: 400,
    hint: 'Sandbox ids are 26-character lowercase ULIDs, as returned by POST /v1/sandboxes.',
  },
  invalid_path: { status: 400, hint: 'Paths are relative to /workspace and must stay inside it.' },
  invalid_state: {
    status: 409,
    hint: 'Read the sandbox state first; the message says which transitions are allowed.',
  },
  sandbox_not_found: {
    status: 404,
    hint: 'The sandbox does not exist or was deleted; list sandboxes with GET /v1/sandboxes.',
  },
  sandbox_not_running: { status: 409, hint: 'Start it first: POST /v1/sandboxes/{id}/start.' },
  usage_sampling_off: {
    status: 409,
    hint: 'Usage sampling is off on the node running this sandbox: set usage.enabled: true (PREVIEWD_USAGE=true) there and restart it.',
  },
  file_not_found: { status: 404, hint: 'List the directory with GET /v1/sandboxes/{id}/files/list.' },
  not_a_regular_file: {
    status: 409,
    hint: 'previewd reads and writes only regular files there; the message names the path and what it is (FIFO, socket, link, directory): replace it with a regular file.',
  },
  file_too_large: {
    status: 409,
    hint: 'previewd reads this file only up to a size limit (the message gives it); make the file smaller.',
  },
  invalid_pattern: {
    status: 400,
    hint: 'Glob patterns are bounded (docs/io.md): at most 512 characters and 32 segments; 2 "*" per segment and 4 in all, 8 "**"; one {…} group (of up to 8 alternatives) per segment and 4 in all. Split a bigger search into several patterns.',
  },
  port_not_exposed: { status: 404, hint: 'Expose the port with POST /v1/sandboxes/{id}/ports.' },
  unsupported_media_type: {
    status: 415,
    hint: 'Send JSON with Content-Type: application/json (file uploads take the raw body).',
  },
  payload_too_large: {
    status: 413,
    hint: 'Send less per request, or raise maxBodyMb (PREVIEWD_MAX_BODY_MB).',
  },
  resource_limit: {
    status: 400,
    hint: 'Ask for resources within the configured maxima (resources.max in previewd.yaml).',
  },
  not_found: { status: 404, hint: 'See /openapi.json for the routes this server has.' },
  method_not_allowed: { status: 405, hint: 'See /openapi.json for the methods of this route.' },
  image_not_allowed: {
    status: 400,
    hint: 'Name one of the runtime images (images.node, images.python), or ask the operator to add the image (or a pattern such as "ghcr.io/acme/*") to images.allowed in previewd.yaml (PREVIEWD_IMAGES_ALLOWED).',
  },
  isolation_unavailable: {
    status: 409,
    hint: 'Install gVisor and register it with the engine (as root: scripts/ensure-runsc.sh, or "previewd doctor" for the steps), or set isolation.gvisorRuntime to the runtime name `docker info` lists; or create the sandbox with isolation "container".',
  },
  image_not_found: {
    status: 422,
    hint: 'Build the runtime images with "previewd images build", or pass an image the engine has.',
  },
  runtime_unknown: {
    status: 422,
    hint: 'previewd could not tell how to run these files; pass runtime.start (and runtime.port), e.g. {"runtime":{"start":"node server.js","port":3000}}.',
  },
  engine_unavailable: {
    status: 503,
    hint: 'The Docker engine does not answer; run "make setup" or check DOCKER_HOST.',
  },
  engine_error: { status: 502, hint: 'The Docker engine refused the operation; the message has its words.' },
  exec_timeout: { status: 408, hint: 'Raise timeoutSec, or run long work as a background process.' },
  process_not_found: {
    status: 404,
    hint: 'List the background processes with GET /v1/sandboxes/{id}/processes.',
  },
  capacity_exhausted: {
    status: 503,
    hint: 'The host is at its running budget; retry after the Retry-After delay.',
  },
  node_fenced: {
    status: 503,
    hint: 'This node lost its lease (another node took over its sandboxes); it registers again on its next heartbeat. Retry on another node.',
  },
  node_unavailable: {
    status: 503,
    hint: 'The node that holds this sandbox does not answer; its sandboxes are marked lost once its lease ends. Retry after the Retry-After delay.',
  },
  placement_unsatisfiable: {
    status: 409,
    hint: 'No node matches placement.node / placement.labels; list the nodes with GET /v1/nodes.',
  },
  quota_exceeded: { status: 429, hint: 'Stop or delete some of your sandboxes.' },
  app_crashed: {
    status: 502,
    hint: 'The app exited; read its logs (GET /v1/sandboxes/{id}/logs), fix it and reload to restart it.',
  },
  app_not_ready: {
    status: 503,
    hint: 'The app did not open its port in time; check that it listens on 0.0.0.0 and the exposed port.',
  },
  wake_failed: { status: 503, hint: 'The sandbox could not be started; retry after the Retry-After delay.' },
  sandbox_error: {
    status: 503,
    hint: 'The sandbox is in state error; start it again with POST /v1/sandboxes/{id}/start.',
  },
  upstream_error: { status: 502, hint: 'The app closed the connection or answered badly; see its logs.' },
  preview_token_required: {
    status: 401,
    hint: 'This preview is private: mint a token with POST /v1/sandboxes/{id}/preview-tokens.',
  },
  preview_token_invalid: {
    status: 401,
    hint: 'The preview token is expired, revoked, or for another sandbox or port; mint a new one.',
  },
  not_a_preview_host: {
    status: 404,
    hint: "Preview hosts look like {port}-{id}.<previewDomain>; use the url from the sandbox's previews.",
  },
  traefik_mode_off: {
    status: 404,
    hint: 'Traefik endpoints answer only with edgeMode: traefik (PREVIEWD_EDGE_MODE=traefik).',
  },
  data_dir_permission: {
    status: 500,
    hint: 'Run previewd as root, or as the sandbox user (docker.sandboxUser), so it can hand workspaces to that user; or fix the ownership of dataDir.',
  },
  file_changed: {
    status: 409,
    hint: 'Code in the sandbox changed the file while it was read; read it again.',
  },
  uid_range_exhausted: {
    status: 503,
    hint: 'Every uid of docker.uidRange is held by a sandbox: delete sandboxes, or widen docker.uidRange.size.',
  },
  webhook_not_found: {
    status: 404,
    hint: 'List your webhooks with GET /v1/webhooks; a webhook of another owner is not yours to see.',
  },
  webhook_delivery_not_found: {
    status: 404,
    hint: 'List the deliveries with GET /v1/webhooks/{id}/deliveries.',
  },
  webhook_target_not_allowed: {
    status: 400,
    hint: 'Webhook URLs must be http(s) to a public address; to allow loopback or private targets set webhooks.allowPrivateTargets (PREVIEWD_WEBHOOKS_ALLOW_PRIVATE=true).',
  },
  webhook_limit_reached: {
    status: 409,
    hint: 'Delete a webhook (DELETE /v1/webhooks/{id}), or raise webhooks.maxPerOwner (PREVIEWD_WEBHOOKS_MAX_PER_OWNER).',
  },
  snapshot_not_found: {
    status: 404,
    hint: 'List your snapshots with GET /v1/snapshots (or "previewd snapshots ls"); a snapshot of another owner is not yours to see.',
  },
  snapshot_quota_exceeded: {
    status: 429,
    hint: 'Delete snapshots you no longer need (DELETE /v1/snapshots/{id}, "previewd snapshots rm <id>"), or ask the operator to raise quotas.maxSnapshotsPerOwner (PREVIEWD_QUOTA_MAX_SNAPSHOTS).',
  },
  snapshot_unavailable: {
    status: 409,
    hint: "The message says why (the sandbox has no files to freeze yet, or the snapshot's layer is not on this node); wait until the sandbox is running, stopped or paused, or take a new snapshot.",
  },
  internal: { status: 500, hint: 'This is a previewd bug; the server log has the details.' },
} as const satisfies Record<string, { status: number; hint: string }>;

export type ErrorCode = keyof typeof errorCodes;

export interface ErrorBody {
  error: { code: ErrorCode; message: string; hint?: string; details?: unknown };
}

export class PreviewdError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly hint: string;
  readonly details?: unknown;
  /** Extra response headers, such as Retry-After. */
  readonly headers?: Record<string, string>;

  constructor(
    code: ErrorCode,
    message: string,
    opts: { hint?: string; details?: unknown; cause?: unknown; headers?: Record<string, string> } = {},
  ) {
    super(message, { cause: opts.cause });
    this.name = 'PreviewdError';
    this.code = code;
    this.status = errorCodes[code].status;
    this.hint = opts.hint ?? errorCodes[code].hint;
    this.details = opts.details;
    this.headers = opts.headers;
  }

  toBody(): ErrorBody {
    const error: ErrorBody['error'] = { code: this.code, message: this.message, hint: this.hint };
    if (this.details !== undefined) error.details = this.details;
    return { error };
  }
}

export function isPreviewdError(err: unknown): err is PreviewdError {
  return err instanceof PreviewdError;
}
