"""The base exception; one subclass per server error code lives in _codes.py (generated)."""

from typing import Any, Optional


class PreviewdError(Exception):
    """An error of the previewd API, keyed by the server's stable ``code``."""

    code = "unknown"

    def __init__(
        self,
        message: str,
        *,
        code: Optional[str] = None,
        status: int = 0,
        hint: Optional[str] = None,
        details: Any = None,
        retry_after_sec: Optional[int] = None,
    ) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code
        self.message = message
        self.status = status
        self.hint = hint
        self.details = details
        self.retry_after_sec = retry_after_sec

    def __str__(self) -> str:
        text = f"{self.code}: {self.message}"
        return f"{text} (hint: {self.hint})" if self.hint else text


class ConnectionFailedError(PreviewdError):
    """The server could not be reached."""

    code = "connection_failed"


class WaitTimeoutError(PreviewdError):
    """A wait (wait_until, wait_for_port) ran out of time."""

    code = "wait_timeout"


class UnexpectedResponseError(PreviewdError):
    """An answer that is not previewd's error shape (a proxy in between, a wrong URL)."""

    code = "unexpected_response"
