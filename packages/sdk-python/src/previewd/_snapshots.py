"""Snapshots of the Python SDK (docs/snapshots.md): list, get, delete. Take one with
``sandbox.snapshot()``; start a sandbox from one with ``sandboxes.create(snapshot=snap["id"])``."""

import urllib.parse
from typing import Any, Dict, Iterator, Optional

from ._http import Http


class Snapshots:
    """The caller's snapshots; another owner's answers SnapshotNotFoundError, like a missing one."""

    def __init__(self, http: Http) -> None:
        self._http = http

    def list(
        self, sandbox_id: Optional[str] = None, limit: Optional[int] = None, cursor: Optional[str] = None
    ) -> dict:
        """One page, newest first: ``{"snapshots": [...], "nextCursor": ...}``."""
        query: Dict[str, Any] = {}
        if sandbox_id is not None:
            query["sandboxId"] = sandbox_id
        if limit is not None:
            query["limit"] = limit
        if cursor is not None:
            query["cursor"] = cursor
        return self._http.json("GET", "/v1/snapshots", query=query)

    def all(self, sandbox_id: Optional[str] = None) -> Iterator[dict]:
        cursor: Optional[str] = None
        while True:
            page = self.list(sandbox_id=sandbox_id, limit=500, cursor=cursor)
            yield from page["snapshots"]
            cursor = page.get("nextCursor")
            if not cursor:
                return

    def get(self, snapshot_id: str) -> dict:
        return self._http.json("GET", f"/v1/snapshots/{urllib.parse.quote(snapshot_id)}")

    def delete(self, snapshot_id: str) -> dict:
        """Removes it at once; its layer is freed once no sandbox made from it remains."""
        return self._http.json("DELETE", f"/v1/snapshots/{urllib.parse.quote(snapshot_id)}")
