"""The client: Previewd -> sandboxes -> Sandbox (files, exec, processes, logs, events, previews)."""

import base64
import datetime
import json
import socket
import time
import urllib.parse
from dataclasses import dataclass
from typing import Any, Dict, Iterator, List, Mapping, Optional, Sequence, Union

from ._codes import ERROR_CODES
from ._errors import PreviewdError, WaitTimeoutError
from ._http import Http, error_from_body
from ._snapshots import Snapshots
from ._webhooks import Webhooks

Command = Union[str, Sequence[str]]


@dataclass
class ExecResult:
    exit_code: int
    stdout: str
    stderr: str
    duration_ms: float
    truncated: bool = False


def _drop_none(values: Mapping[str, Any]) -> Dict[str, Any]:
    return {k: v for k, v in values.items() if v is not None}


def _cmd(cmd: Command) -> Union[str, List[str]]:
    return cmd if isinstance(cmd, str) else list(cmd)


class Files:
    """The workspace of one sandbox (paths relative to /workspace); works while stopped."""

    def __init__(self, http: Http, base: str) -> None:
        self._http = http
        self._base = base

    def write(self, path: str, content: Union[str, bytes], mode: Optional[Union[str, int]] = None) -> dict:
        if isinstance(mode, int):
            mode = format(mode, "04o")
        data = content.encode("utf-8") if isinstance(content, str) else bytes(content)
        return self._http.json(
            "PUT", f"{self._base}/files", query={"path": path, "mode": mode}, raw_body=data
        )

    def write_many(self, files: Mapping[str, str], encoding: Optional[str] = None) -> dict:
        return self._http.json(
            "POST", f"{self._base}/files/batch", json_body=_drop_none({"files": dict(files), "encoding": encoding})
        )

    def read_bytes(self, path: str) -> bytes:
        with self._http.send("GET", f"{self._base}/files", query={"path": path}) as res:
            return res.read()

    def read(self, path: str) -> str:
        return self.read_bytes(path).decode("utf-8")

    def list(
        self, path: str = "", recursive: bool = False, limit: Optional[int] = None, cursor: Optional[str] = None
    ) -> dict:
        """One page (at most ``limit``, default 1 000); pass ``cursor=page["nextCursor"]`` for the next."""
        query = _drop_none({"path": path, "recursive": recursive or None, "limit": limit, "cursor": cursor})
        return self._http.json("GET", f"{self._base}/files/list", query=query)

    def list_all(self, path: str = "", recursive: bool = False, limit: Optional[int] = None) -> Iterator[dict]:
        """Every entry of a listing, page after page."""
        cursor: Optional[str] = None
        while True:
            page = self.list(path, recursive=recursive, limit=limit, cursor=cursor)
            yield from page["entries"]
            cursor = page.get("nextCursor")
            if not cursor:
                return

    def stat(self, path: str) -> dict:
        return self._http.json("GET", f"{self._base}/files/stat", query={"path": path})

    def glob(self, pattern: str, limit: Optional[int] = None, cursor: Optional[str] = None) -> dict:
        """One page of the paths matching a glob (bounded patterns: docs/io.md); ``cursor`` as for list."""
        return self._http.json(
            "GET",
            f"{self._base}/files/glob",
            query=_drop_none({"pattern": pattern, "limit": limit, "cursor": cursor}),
        )

    def glob_all(self, pattern: str, limit: Optional[int] = None) -> Iterator[dict]:
        """Every match of a glob, page after page (walk-budget pages may be empty; they carry a cursor)."""
        cursor: Optional[str] = None
        while True:
            page = self.glob(pattern, limit=limit, cursor=cursor)
            yield from page["entries"]
            cursor = page.get("nextCursor")
            if not cursor:
                return

    def move(self, src: str, dest: str) -> dict:
        return self._http.json("POST", f"{self._base}/files/move", json_body={"from": src, "to": dest})

    def chmod(self, path: str, mode: Union[str, int]) -> dict:
        return self._http.json("POST", f"{self._base}/files/chmod", json_body={"path": path, "mode": mode})

    def mkdir(self, path: str) -> dict:
        return self._http.json("POST", f"{self._base}/files/mkdir", json_body={"path": path})

    def remove(self, path: str, recursive: bool = False) -> None:
        self._http.json(
            "DELETE", f"{self._base}/files", query={"path": path, "recursive": recursive or None}
        )


class Processes:
    """Background processes: they keep running when the client goes away."""

    def __init__(self, http: Http, base: str) -> None:
        self._http = http
        self._base = base

    def start(self, cmd: Command, cwd: Optional[str] = None, env: Optional[Dict[str, str]] = None) -> dict:
        body = _drop_none({"cmd": _cmd(cmd), "cwd": cwd, "env": env})
        return self._http.json("POST", f"{self._base}/processes", json_body=body)

    def list(self) -> List[dict]:
        return self._http.json("GET", f"{self._base}/processes")["processes"]

    def get(self, pid: int) -> dict:
        return self._http.json("GET", f"{self._base}/processes/{pid}")

    def kill(self, pid: int, signal: str = "TERM") -> dict:
        return self._http.json("POST", f"{self._base}/processes/{pid}/kill", json_body={"signal": signal})

    def logs(self, pid: int, follow: bool = False) -> Iterator[dict]:
        """Kept output ``{"stream", "data"}``; with ``follow`` until it ends, then ``{"exit_code"}``."""
        query = {"follow": True} if follow else None
        for item in self._http.ndjson("GET", f"{self._base}/processes/{pid}/logs", query=query):
            yield {"exit_code": item["exitCode"]} if "exitCode" in item else item


class PreviewTokens:
    def __init__(self, http: Http, base: str) -> None:
        self._http = http
        self._base = base

    def create(self, port: Optional[int] = None, ttl_sec: Optional[int] = None) -> dict:
        """Mints a token (private previews): ``{"token", "url", "expiresAt"}``."""
        body = _drop_none({"port": port, "ttlSec": ttl_sec})
        return self._http.json("POST", f"{self._base}/preview-tokens", json_body=body)

    def revoke_all(self) -> None:
        self._http.json("DELETE", f"{self._base}/preview-tokens")


class Sandbox:
    """A sandbox: its last known state in ``info`` (the API's JSON), and what you can do with it."""

    def __init__(self, http: Http, info: dict) -> None:
        self._http = http
        self.info = info
        self._base = f"/v1/sandboxes/{info['id']}"
        self.files = Files(http, self._base)
        self.processes = Processes(http, self._base)
        self.preview_tokens = PreviewTokens(http, self._base)

    def __repr__(self) -> str:
        return f"Sandbox(id={self.id!r}, state={self.state!r})"

    @property
    def id(self) -> str:
        return self.info["id"]

    @property
    def state(self) -> str:
        return self.info["state"]

    @property
    def previews(self) -> List[dict]:
        return self.info["previews"]

    def _update(self, info: dict) -> "Sandbox":
        self.info = info
        return self

    def refresh(self) -> "Sandbox":
        return self._update(self._http.json("GET", self._base))

    def start(self) -> "Sandbox":
        return self._update(self._http.json("POST", f"{self._base}/start"))

    def stop(self) -> "Sandbox":
        return self._update(self._http.json("POST", f"{self._base}/stop"))

    def pause(self) -> "Sandbox":
        return self._update(self._http.json("POST", f"{self._base}/pause"))

    def keepalive(self, until_sec: Optional[int] = None) -> "Sandbox":
        body = {} if until_sec is None else {"untilSec": until_sec}
        return self._update(self._http.json("POST", f"{self._base}/keepalive", json_body=body))

    def delete(self) -> None:
        self._http.json("DELETE", self._base)
        self.info = {**self.info, "state": "deleted"}

    def snapshot(self, name: Optional[str] = None, labels: Optional[Mapping[str, str]] = None) -> dict:
        """Freezes the sandbox's files as they are now (a running one is paused for the copy; process
        memory is not kept). Start sandboxes from it with ``sandboxes.create(snapshot=snap["id"])``."""
        body: Dict[str, Any] = {}
        if name is not None:
            body["name"] = name
        if labels is not None:
            body["labels"] = dict(labels)
        return self._http.json("POST", f"{self._base}/snapshots", json_body=body)

    def fork(self, **opts: Any) -> "Sandbox":
        """A new sandbox from this one's files as they are now, its app started fresh; keyword
        arguments (labels, env, runtime, resources, ...) override what it takes from this one."""
        body = {_camel(k): v for k, v in opts.items() if v is not None}
        return Sandbox(self._http, self._http.json("POST", f"{self._base}/fork", json_body=body))

    def expose_port(self, port: int) -> "Sandbox":
        return self._update(self._http.json("POST", f"{self._base}/ports", json_body={"port": port}))

    def unexpose_port(self, port: int) -> "Sandbox":
        return self._update(self._http.json("DELETE", f"{self._base}/ports/{port}"))

    def set_network(
        self, egress: str, allow: Optional[Sequence[str]] = None, deny: Optional[Sequence[str]] = None
    ) -> "Sandbox":
        """Sets the egress policy: ``"allow"``, ``"deny"`` (nothing but DNS) or ``"list"`` (only
        ``allow``: CIDRs, hosts, ``*.domain`` wildcards; minus ``deny``). In force for new
        connections when this returns."""
        body = {"egress": egress, "allow": list(allow or []), "deny": list(deny or [])}
        return self._update(self._http.json("PUT", f"{self._base}/network", json_body=body))

    def get_preview_url(self, port: int, token: bool = False, ttl_sec: Optional[int] = None) -> str:
        """The preview URL the server reports; with ``token=True`` it carries a fresh preview token."""
        if token:
            return self.preview_tokens.create(port=port, ttl_sec=ttl_sec)["url"]
        for attempt in range(2):
            for preview in self.previews:
                if preview["port"] == port:
                    return preview["url"]
            if attempt == 0:
                self.refresh()
        raise error_from_body(
            404,
            {"error": {"code": "port_not_exposed", "message": f"port {port} of sandbox {self.id} is not exposed"}},
        )

    def exec(
        self,
        cmd: Command,
        cwd: Optional[str] = None,
        env: Optional[Dict[str, str]] = None,
        timeout_sec: Optional[int] = None,
        stdin: Optional[str] = None,
    ) -> ExecResult:
        """Runs a command and waits; a non-zero exit is a result, not an error."""
        body = _drop_none({"cmd": _cmd(cmd), "cwd": cwd, "env": env, "timeoutSec": timeout_sec, "stdin": stdin})
        r = self._http.json("POST", f"{self._base}/exec", json_body=body)
        return ExecResult(r["exitCode"], r["stdout"], r["stderr"], r["durationMs"], bool(r.get("truncated")))

    def exec_stream(
        self,
        cmd: Command,
        cwd: Optional[str] = None,
        env: Optional[Dict[str, str]] = None,
        timeout_sec: Optional[int] = None,
    ) -> Iterator[dict]:
        """Yields ``{"stream", "data"}`` as output comes, then ``{"exit_code"}``. Closing it kills the command."""
        body = _drop_none({"cmd": _cmd(cmd), "cwd": cwd, "env": env, "timeoutSec": timeout_sec})
        for item in self._http.ndjson("POST", f"{self._base}/exec", json_body=body):
            yield {"exit_code": item["exitCode"]} if "exitCode" in item else item

    def logs(self, follow: bool = False, tail: Optional[int] = None, since: Optional[int] = None) -> Iterator[dict]:
        """The app's output ``{"stream", "data"}``; ``follow`` keeps streaming."""
        query = _drop_none({"follow": True if follow else None, "tail": tail, "since": since})
        return self._http.ndjson("GET", f"{self._base}/logs", query=query)

    def events(
        self,
        types: Optional[Sequence[str]] = None,
        last_event_id: Optional[int] = None,
        timeout: Optional[float] = None,
    ) -> Iterator[dict]:
        """Events of this sandbox, live; ``last_event_id`` replays stored ones first (0: all).
        ``timeout`` bounds the wait for each event (socket.timeout when it passes)."""
        query = _drop_none({"types": ",".join(types) if types else None, "lastEventId": last_event_id})
        return self._http.ndjson("GET", f"{self._base}/events", query=query, timeout=timeout)

    def wait_until(self, state: str, timeout: float = 60.0, interval: float = 0.25) -> "Sandbox":
        """Polls until the sandbox is in ``state``; reaching ``error`` or ``deleted`` raises its error."""
        deadline = time.monotonic() + timeout
        while True:
            self.refresh()
            if self.state == state:
                return self
            if self.state in ("error", "deleted") and state != self.state:
                err = self.info.get("error") or {}
                code = err.get("code") if err.get("code") in ERROR_CODES else "sandbox_error"
                message = f"sandbox {self.id} is {self.state}: {err.get('message', '')}".rstrip(": ")
                raise error_from_body(409, {"error": {"code": code, "message": message}})
            if time.monotonic() >= deadline:
                raise WaitTimeoutError(
                    f"sandbox {self.id} is {self.state}, not {state}, after {timeout} s",
                    hint="Read its logs (sandbox.logs()) and events; raise timeout for slow installs.",
                )
            time.sleep(interval)

    def wait_for_port(self, port: int, timeout: float = 60.0) -> "Sandbox":
        """Waits until something listens on ``port`` in the sandbox (port.open/port.closed events)."""
        deadline = time.monotonic() + timeout
        stream = self.events(types=["port.open", "port.closed"], last_event_id=0, timeout=timeout)
        try:
            for event in stream:
                if event.get("data", {}).get("port") == port and event.get("type") == "port.open":
                    return self
                if time.monotonic() >= deadline:
                    break
        except (socket.timeout, TimeoutError):
            pass
        finally:
            stream.close()  # type: ignore[attr-defined]
        raise WaitTimeoutError(
            f"port {port} of sandbox {self.id} did not open within {timeout} s",
            hint="Check that the app listens on 0.0.0.0 and this port; read sandbox.logs().",
        )


class Sandboxes:
    def __init__(self, http: Http) -> None:
        self._http = http

    def create(self, **opts: Any) -> Sandbox:
        """Creates a sandbox; keyword arguments are the API's fields (files, runtime, ports, env,
        visibility, labels, ...; snake_case names like idle_timeout_sec are accepted too)."""
        body = {_camel(k): v for k, v in opts.items() if v is not None}
        return Sandbox(self._http, self._http.json("POST", "/v1/sandboxes", json_body=body))

    def create_from_archive(self, archive: bytes, format: str = "tar.gz", **opts: Any) -> Sandbox:
        """Creates a sandbox from a project archive (``format``: "tar.gz", "tar" or "zip") sent as the
        body: every file, binary ones too, is in the workspace before the app starts. Keyword
        arguments are create's options, sent in the X-Previewd-Create header (base64url JSON)."""
        types = {"tar.gz": "application/gzip", "tar": "application/x-tar", "zip": "application/zip"}
        if format not in types:
            raise ValueError(f"format is one of {', '.join(types)}, not {format!r}")
        body = {_camel(k): v for k, v in opts.items() if v is not None}
        header = base64.urlsafe_b64encode(json.dumps(body).encode()).decode().rstrip("=")
        return Sandbox(
            self._http,
            self._http.json(
                "POST",
                "/v1/sandboxes",
                raw_body=bytes(archive),
                headers={"Content-Type": types[format], "X-Previewd-Create": header},
            ),
        )

    def get(self, sandbox_id: str) -> Sandbox:
        return Sandbox(self._http, self._http.json("GET", f"/v1/sandboxes/{urllib.parse.quote(sandbox_id)}"))

    def metrics(self, sandbox_id: str, since: Optional[Union[str, int, datetime.datetime]] = None) -> dict:
        """CPU, memory, disk and network samples of a sandbox: ``{"intervalSec", "retentionSec",
        "samples": [{"at", "cpuPercent", "memoryMb", "diskMb", "netRxBytes", "netTxBytes"}]}``,
        oldest first. ``since`` (exclusive; an ISO time, epoch milliseconds or a datetime) returns
        only newer ones: pass the last sample's ``at``."""
        if isinstance(since, datetime.datetime):
            since = since.isoformat()
        return self._http.json(
            "GET",
            f"/v1/sandboxes/{urllib.parse.quote(sandbox_id)}/metrics",
            query=_drop_none({"since": None if since is None else str(since)}),
        )

    def list(
        self,
        state: Optional[str] = None,
        labels: Optional[Mapping[str, str]] = None,
        limit: Optional[int] = None,
        cursor: Optional[str] = None,
    ) -> List[Sandbox]:
        """One page, newest first (``limit``, ``cursor``); see ``all`` for every page."""
        label = [f"{k}={v}" for k, v in (labels or {}).items()] or None
        page = self._http.json(
            "GET", "/v1/sandboxes", query=_drop_none({"state": state, "label": label, "limit": limit, "cursor": cursor})
        )
        return [Sandbox(self._http, s) for s in page["sandboxes"]]

    def all(self, state: Optional[str] = None, labels: Optional[Mapping[str, str]] = None) -> Iterator[Sandbox]:
        label = [f"{k}={v}" for k, v in (labels or {}).items()] or None
        cursor = None
        while True:
            page = self._http.json(
                "GET", "/v1/sandboxes", query=_drop_none({"state": state, "label": label, "limit": 500, "cursor": cursor})
            )
            for s in page["sandboxes"]:
                yield Sandbox(self._http, s)
            cursor = page.get("nextCursor")
            if not cursor:
                return


class Keys:
    """API keys (an admin key only; a tenant key gets ForbiddenError). A created key's secret
    (``key``) is in the answer to ``create`` and nowhere else: listings show its ``prefix`` only."""

    def __init__(self, http: Http) -> None:
        self._http = http

    def create(self, owner: Optional[str] = None, name: Optional[str] = None) -> dict:
        """With ``owner``, a tenant key that sees only that owner's sandboxes; without, an admin key."""
        return self._http.json("POST", "/v1/keys", json_body=_drop_none({"owner": owner, "name": name}))

    def list(self) -> List[dict]:
        """Every key: configured ones (``source: "config"``) and ones made here (``"api"``), revoked ones too."""
        return self._http.json("GET", "/v1/keys")["keys"]

    def revoke(self, key_id: str) -> dict:
        """Revokes a key made through the API (KeyNotRevocableError for a configured one); its
        dashboard sessions end with it. Answers the revoked key."""
        return self._http.json("DELETE", f"/v1/keys/{urllib.parse.quote(key_id, safe='')}")


class Nodes:
    """The cluster's nodes (an admin key only): leases, labels, budget and usage, as placement sees
    them. A single host lists one node, ``local``, or none."""

    def __init__(self, http: Http) -> None:
        self._http = http

    def list(self) -> dict:
        """``{"self": <the node that answered>, "cluster": bool, "nodes": [...]}``."""
        return self._http.json("GET", "/v1/nodes")


class Pool:
    """The warm pool of the node that answers (an admin key only): per runtime image, the
    pre-started containers waiting for a create and those being made (docs/pool.md)."""

    def __init__(self, http: Http) -> None:
        self._http = http

    def state(self) -> Dict[str, Any]:
        """``images`` (image, target, warm, filling), ``claimed`` and ``reservedMb``."""
        return self._http.json("GET", "/v1/pool")


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(w[:1].upper() + w[1:] for w in rest)


class Previewd:
    """The previewd client: ``Previewd(url=..., api_key=...)``; both default to PREVIEWD_URL /
    PREVIEWD_API_KEY. ``owner=`` acts for that end user (an admin key in a backend serving many
    users): every call carries X-Previewd-Owner, so it sees and creates only that owner's sandboxes."""

    def __init__(
        self,
        url: Optional[str] = None,
        api_key: Optional[str] = None,
        timeout: float = 300.0,
        owner: Optional[str] = None,
    ) -> None:
        import os

        url = url or os.environ.get("PREVIEWD_URL")
        if not url:
            raise PreviewdError(
                "no server url", code="invalid_request", hint="Pass url=... or set PREVIEWD_URL."
            )
        self.http = Http(url, api_key or os.environ.get("PREVIEWD_API_KEY"), timeout, owner)
        self.sandboxes = Sandboxes(self.http)
        self.keys = Keys(self.http)
        self.nodes = Nodes(self.http)
        self.pool = Pool(self.http)
        self.webhooks = Webhooks(self.http)
        self.snapshots = Snapshots(self.http)

    def health(self) -> dict:
        return self.http.json("GET", "/healthz")

    def events(
        self,
        sandbox_id: Optional[str] = None,
        types: Optional[Sequence[str]] = None,
        last_event_id: Optional[int] = None,
        timeout: Optional[float] = None,
    ) -> Iterator[dict]:
        query = _drop_none(
            {"sandboxId": sandbox_id, "types": ",".join(types) if types else None, "lastEventId": last_event_id}
        )
        return self.http.ndjson("GET", "/v1/events", query=query, timeout=timeout)
