"""The one place the SDK talks HTTP (urllib; responses are read as streams where asked)."""

import json
import socket
import urllib.error
import urllib.parse
import urllib.request
from typing import Any, Dict, Iterator, Mapping, Optional

from ._codes import ERROR_CLASSES, ERROR_CODES
from ._errors import ConnectionFailedError, PreviewdError, UnexpectedResponseError


def error_from_body(status: int, body: Any, retry_after: Optional[str] = None) -> PreviewdError:
    """The typed exception for ``{"error": {"code", "message", "hint", "details"}}``."""
    retry = int(retry_after) if retry_after and retry_after.isdigit() else None
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict) or not isinstance(error.get("code"), str):
        return UnexpectedResponseError(
            f"unexpected answer (HTTP {status})", status=status, details=body, retry_after_sec=retry
        )
    code = error["code"]
    cls = ERROR_CLASSES.get(code, PreviewdError)
    hint = error.get("hint") or ERROR_CODES.get(code, {}).get("hint")
    return cls(
        error.get("message") or code,
        code=code,
        status=status,
        hint=hint,
        details=error.get("details"),
        retry_after_sec=retry,
    )


OWNER_HEADER = "X-Previewd-Owner"


class Http:
    def __init__(
        self, url: str, api_key: Optional[str] = None, timeout: float = 300.0, owner: Optional[str] = None
    ) -> None:
        self.base_url = url.rstrip("/")
        self.api_key = api_key
        self.timeout = timeout
        #: The end user every request acts for (sent as X-Previewd-Owner), if any.
        self.owner = owner

    def url(self, path: str, query: Optional[Mapping[str, Any]] = None) -> str:
        pairs = []
        for key, value in (query or {}).items():
            if value is None:
                continue
            if isinstance(value, (list, tuple)):
                pairs.extend((key, str(v)) for v in value)
            elif isinstance(value, bool):
                pairs.append((key, "true" if value else "false"))
            else:
                pairs.append((key, str(value)))
        qs = urllib.parse.urlencode(pairs)
        return f"{self.base_url}{path}{'?' + qs if qs else ''}"

    def send(
        self,
        method: str,
        path: str,
        *,
        query: Optional[Mapping[str, Any]] = None,
        json_body: Any = None,
        raw_body: Optional[bytes] = None,
        headers: Optional[Dict[str, str]] = None,
        timeout: Optional[float] = None,
    ):
        """Sends a request and answers the open response; a non-2xx answer raises its typed error."""
        all_headers = dict(headers or {})
        if self.api_key:
            all_headers["Authorization"] = f"Bearer {self.api_key}"
        if self.owner:
            all_headers[OWNER_HEADER] = self.owner
        data = None
        if raw_body is not None:
            data = raw_body
            all_headers.setdefault("Content-Type", "application/octet-stream")
        elif json_body is not None:
            data = json.dumps(json_body).encode()
            all_headers["Content-Type"] = "application/json"
        request = urllib.request.Request(
            self.url(path, query), data=data, method=method, headers=all_headers
        )
        try:
            return urllib.request.urlopen(request, timeout=timeout or self.timeout)
        except urllib.error.HTTPError as err:
            text = err.read().decode("utf-8", "replace")
            try:
                parsed: Any = json.loads(text)
            except ValueError:
                parsed = text
            raise error_from_body(err.code, parsed, err.headers.get("Retry-After")) from None
        except (urllib.error.URLError, socket.timeout, ConnectionError) as err:
            reason = getattr(err, "reason", err)
            raise ConnectionFailedError(
                f"cannot reach previewd at {self.base_url}: {reason}",
                hint="Is the server running (previewd serve)? Check the url (PREVIEWD_URL).",
            ) from err

    def json(self, method: str, path: str, **kwargs: Any) -> Any:
        with self.send(method, path, **kwargs) as res:
            if res.status == 204:
                return None
            text = res.read().decode("utf-8")
            return json.loads(text) if text else None

    def ndjson(self, method: str, path: str, **kwargs: Any) -> Iterator[Any]:
        """One JSON value per line of a streamed answer; an ``{"error"}`` line raises it."""
        headers = dict(kwargs.pop("headers", None) or {})
        headers["Accept"] = "application/x-ndjson"
        res = self.send(method, path, headers=headers, **kwargs)
        try:
            for line in res:
                line = line.strip()
                if not line:
                    continue
                item = json.loads(line)
                if isinstance(item, dict) and item.get("error"):
                    raise error_from_body(200, item)
                yield item
        finally:
            res.close()
