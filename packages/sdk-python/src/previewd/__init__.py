"""previewd: sandboxes with live preview URLs. Standard library only, Python >= 3.9.

    from previewd import Previewd
    client = Previewd(url="http://127.0.0.1:7070", api_key="...")
    sandbox = client.sandboxes.create(files={"server.js": "..."}, runtime={"start": "node server.js", "port": 3000})
    sandbox.wait_until("running").wait_for_port(3000)
    print(sandbox.get_preview_url(3000))
"""

from ._client import ExecResult, Files, Keys, PreviewTokens, Previewd, Processes, Sandbox, Sandboxes
from ._codes import *  # noqa: F401,F403  (one exception class per server error code)
from ._codes import ERROR_CLASSES, ERROR_CODES
from ._errors import ConnectionFailedError, PreviewdError, UnexpectedResponseError, WaitTimeoutError
from ._snapshots import Snapshots
from ._webhooks import WebhookVerificationError, Webhooks, verify_webhook

__version__ = "0.1.0"
__all__ = [
    "Previewd",
    "Sandboxes",
    "Sandbox",
    "Keys",
    "Webhooks",
    "Snapshots",
    "verify_webhook",
    "WebhookVerificationError",
    "Files",
    "Processes",
    "PreviewTokens",
    "ExecResult",
    "PreviewdError",
    "ConnectionFailedError",
    "WaitTimeoutError",
    "UnexpectedResponseError",
    "ERROR_CODES",
    "ERROR_CLASSES",
] + [cls.__name__ for cls in ERROR_CLASSES.values()]
