"""Signed webhooks (Standard Webhooks) of the Python SDK: the API calls and a verifier."""

import base64
import hashlib
import hmac
import json
import time
import urllib.parse
from typing import Any, List, Mapping, Optional, Sequence, Union

from ._http import Http


class WebhookVerificationError(ValueError):
    """A delivery whose signature, id or timestamp does not check out: do not trust its body."""


def verify_webhook(
    payload: Union[bytes, str],
    headers: Mapping[str, str],
    secret: str,
    tolerance_sec: int = 300,
    now: Optional[float] = None,
) -> Any:
    """Checks a delivery as the Standard Webhooks spec says (what ``standardwebhooks.Webhook.verify``
    does): HMAC-SHA256 of ``{webhook-id}.{webhook-timestamp}.{body}`` with the secret's key, one of
    the ``v1,<base64>`` signatures must match, the timestamp within ``tolerance_sec``. Pass the raw
    body bytes as received. Returns the parsed body; raises WebhookVerificationError otherwise."""
    lower = {k.lower(): v for k, v in headers.items()}
    msg_id = lower.get("webhook-id")
    timestamp = lower.get("webhook-timestamp")
    signatures = lower.get("webhook-signature")
    if not msg_id or not timestamp or not signatures:
        raise WebhookVerificationError("missing webhook-id, webhook-timestamp or webhook-signature")
    try:
        sent = int(timestamp)
    except ValueError:
        raise WebhookVerificationError("webhook-timestamp is not a number") from None
    if abs((time.time() if now is None else now) - sent) > tolerance_sec:
        raise WebhookVerificationError("webhook-timestamp is too old or too new")
    body = payload.encode("utf-8") if isinstance(payload, str) else payload
    key = base64.b64decode(secret[len("whsec_"):] if secret.startswith("whsec_") else secret)
    signed = msg_id.encode("utf-8") + b"." + timestamp.encode("utf-8") + b"." + body
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode("ascii")
    for candidate in signatures.split(" "):
        version, _, value = candidate.partition(",")
        if version == "v1" and hmac.compare_digest(value, expected):
            return json.loads(body)
    raise WebhookVerificationError("no signature matches")


class Webhooks:
    """Signed webhooks of the caller's owner (a tenant key's, or ``owner=``); an admin key without an
    owner makes admin-wide hooks that receive every owner's events. ``create`` answers the signing
    secret (``whsec_…``) once; verify deliveries with ``verify_webhook`` or ``standardwebhooks``."""

    def __init__(self, http: Http) -> None:
        self._http = http

    @staticmethod
    def _path(webhook_id: str) -> str:
        return f"/v1/webhooks/{urllib.parse.quote(webhook_id, safe='')}"

    def create(self, url: str, events: Optional[Sequence[str]] = None, description: Optional[str] = None) -> dict:
        body: dict = {"url": url}
        if events is not None:
            body["events"] = list(events)
        if description is not None:
            body["description"] = description
        return self._http.json("POST", "/v1/webhooks", json_body=body)

    def list(self) -> List[dict]:
        return self._http.json("GET", "/v1/webhooks")["webhooks"]

    def get(self, webhook_id: str) -> dict:
        return self._http.json("GET", self._path(webhook_id))

    def delete(self, webhook_id: str) -> dict:
        """Deletes the hook and its delivery log; answers the deleted hook."""
        return self._http.json("DELETE", self._path(webhook_id))

    def deliveries(
        self, webhook_id: str, status: Optional[str] = None, limit: Optional[int] = None, cursor: Optional[str] = None
    ) -> dict:
        """One page, newest first: ``{"deliveries": [...], "nextCursor": ...}``."""
        query = {k: v for k, v in {"status": status, "limit": limit, "cursor": cursor}.items() if v is not None}
        return self._http.json("GET", f"{self._path(webhook_id)}/deliveries", query=query)

    def redeliver(self, webhook_id: str, delivery_id: str) -> dict:
        """Sends a delivery again (pending, due now, retried for another window), same webhook-id."""
        return self._http.json(
            "POST", f"{self._path(webhook_id)}/deliveries/{urllib.parse.quote(delivery_id, safe='')}/redeliver"
        )

    def test(self, webhook_id: str) -> dict:
        """Sends a ``webhook.ping`` delivery; follow it with ``deliveries``."""
        return self._http.json("POST", f"{self._path(webhook_id)}/test")
