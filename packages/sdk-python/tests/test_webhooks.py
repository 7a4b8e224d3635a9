"""Webhooks of the Python SDK against a real previewd, with a receiver on loopback.

Needs PREVIEWD_URL and PREVIEWD_API_KEY (an admin key), and a server that allows loopback webhook
targets (webhooks.allowPrivateTargets); test/integration/sdk-python.test.ts starts one and runs this.
"""

import http.server
import os
import threading
import time
import unittest

from previewd import PreviewdError, Previewd, WebhookVerificationError, verify_webhook


class _Receiver(http.server.BaseHTTPRequestHandler):
    received: list = []

    def do_POST(self) -> None:  # noqa: N802 (http.server's name)
        length = int(self.headers.get("content-length", "0"))
        body = self.rfile.read(length)
        _Receiver.received.append(({k.lower(): v for k, v in self.headers.items()}, body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args) -> None:
        pass


def until(check, timeout: float = 20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError("timed out")


class WebhooksTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls) -> None:
        cls.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
        cls.thread = threading.Thread(target=cls.server.serve_forever, daemon=True)
        cls.thread.start()
        cls.url = f"http://127.0.0.1:{cls.server.server_address[1]}/hook"
        cls.admin = Previewd(url=os.environ["PREVIEWD_URL"], api_key=os.environ["PREVIEWD_API_KEY"])

    @classmethod
    def tearDownClass(cls) -> None:
        cls.server.shutdown()
        cls.server.server_close()

    def test_create_ping_verify_redeliver_delete(self) -> None:
        erin = Previewd(url=os.environ["PREVIEWD_URL"], api_key=os.environ["PREVIEWD_API_KEY"], owner="py-erin")
        hook = erin.webhooks.create(self.url, events=["sandbox.created"], description="python suite")
        self.assertTrue(hook["secret"].startswith("whsec_"))
        self.assertEqual((hook["owner"], hook["events"]), ("py-erin", ["sandbox.created"]))
        self.assertEqual([h["id"] for h in erin.webhooks.list()], [hook["id"]])
        self.assertNotIn("secret", erin.webhooks.get(hook["id"]))

        # Another owner (and the admin-wide scope) cannot see it.
        frank = Previewd(url=os.environ["PREVIEWD_URL"], api_key=os.environ["PREVIEWD_API_KEY"], owner="py-frank")
        with self.assertRaises(PreviewdError) as err:
            frank.webhooks.get(hook["id"])
        self.assertEqual((err.exception.code, err.exception.status), ("webhook_not_found", 404))
        self.assertNotIn(hook["id"], [h["id"] for h in self.admin.webhooks.list()])

        _Receiver.received.clear()
        ping = erin.webhooks.test(hook["id"])
        self.assertEqual((ping["type"], ping["status"]), ("webhook.ping", "pending"))
        headers, body = until(lambda: _Receiver.received[:1])[0]
        self.assertEqual(headers["webhook-id"], ping["id"])
        parsed = verify_webhook(body, headers, hook["secret"])
        self.assertEqual(parsed["type"], "webhook.ping")
        self.assertEqual(parsed["data"]["webhookId"], hook["id"])
        with self.assertRaises(WebhookVerificationError):
            verify_webhook(body + b" ", headers, hook["secret"])
        with self.assertRaises(WebhookVerificationError):
            verify_webhook(body, headers, hook["secret"], now=time.time() + 3600)

        page = until(lambda: (lambda p: p if p["deliveries"][0]["status"] == "delivered" else None)(
            erin.webhooks.deliveries(hook["id"], status="delivered")
        ))
        self.assertEqual(page["deliveries"][0]["attempts"], 1)
        again = erin.webhooks.redeliver(hook["id"], ping["id"])
        self.assertEqual((again["id"], again["status"]), (ping["id"], "pending"))
        until(lambda: len(_Receiver.received) >= 2)
        self.assertEqual(_Receiver.received[1][0]["webhook-id"], ping["id"])

        self.assertEqual(erin.webhooks.delete(hook["id"])["id"], hook["id"])
        self.assertEqual(erin.webhooks.list(), [])


if __name__ == "__main__":
    unittest.main()
