"""The Python SDK against a real previewd and engine.

Needs PREVIEWD_URL, PREVIEWD_API_KEY and PREVIEWD_EDGE_URL (the edge's listener; preview hosts are
sent as the Host header). test/integration/sdk-python.test.ts starts a server and runs this.
"""

import os
import unittest
import urllib.parse
import urllib.request

import previewd
from previewd import FileNotFoundError as PvdFileNotFound
from previewd import InvalidPathError, Previewd, PreviewdError, SandboxNotFoundError

APP = """
const http = require('node:http');
http.createServer((req, res) => {
  console.log('request ' + req.url);
  res.end('hello from python ' + req.url);
}).listen(3000, '0.0.0.0', () => console.log('listening on 3000'));
"""


def fetch_preview(url: str) -> "tuple[int, str]":
    """GET a preview URL through the edge (its host as the Host header)."""
    parsed = urllib.parse.urlsplit(url)
    edge = os.environ["PREVIEWD_EDGE_URL"].rstrip("/")
    path = parsed.path or "/"
    request = urllib.request.Request(f"{edge}{path}", headers={"Host": parsed.netloc})
    with urllib.request.urlopen(request, timeout=30) as res:
        return res.status, res.read().decode()


class SandboxTest(unittest.TestCase):
    """One sandbox shared by the tests below (they run in name order)."""

    client: Previewd
    sandbox: previewd.Sandbox

    @classmethod
    def setUpClass(cls) -> None:
        cls.client = Previewd(url=os.environ["PREVIEWD_URL"], api_key=os.environ["PREVIEWD_API_KEY"])
        cls.sandbox = cls.client.sandboxes.create(
            files={"server.js": APP},
            runtime={"start": "node server.js", "port": 3000},
            labels={"suite": "sdk-python"},
        )

    @classmethod
    def tearDownClass(cls) -> None:
        try:
            cls.sandbox.delete()
        except SandboxNotFoundError:
            pass

    def test_1_waits_and_fetches_the_preview_through_the_edge(self) -> None:
        sb = self.sandbox
        sb.wait_until("running", timeout=60).wait_for_port(3000, timeout=30)
        url = sb.get_preview_url(3000)
        self.assertIn(f"3000-{sb.id}.", url)
        self.assertEqual(fetch_preview(url + "/py"), (200, "hello from python /py"))

    def test_2_get_and_list(self) -> None:
        again = self.client.sandboxes.get(self.sandbox.id)
        self.assertEqual(again.info["runtime"]["start"], "node server.js")
        ids = [s.id for s in self.client.sandboxes.list(labels={"suite": "sdk-python"})]
        self.assertEqual(ids, [self.sandbox.id])

    def test_3_files(self) -> None:
        files = self.sandbox.files
        entry = files.write("src/hello.txt", "hello\n", mode="0640")
        self.assertEqual((entry["path"], entry["size"], entry["mode"]), ("src/hello.txt", 6, "0640"))
        self.assertEqual(files.read("src/hello.txt"), "hello\n")
        files.write("bin.dat", bytes([0, 1, 255]))
        self.assertEqual(files.read_bytes("bin.dat"), bytes([0, 1, 255]))
        written = files.write_many({"a/one.txt": "1", "a/two.txt": "2"})["written"]
        self.assertEqual(sorted(w["path"] for w in written), ["a/one.txt", "a/two.txt"])
        self.assertEqual(sorted(e["name"] for e in files.list("a")["entries"]), ["one.txt", "two.txt"])
        self.assertIn("a/one.txt", [e["path"] for e in files.glob("**/*.txt")["entries"]])
        # One entry per page: the iterators follow nextCursor to the end.
        self.assertEqual([e["path"] for e in files.list_all("a", limit=1)], ["a/one.txt", "a/two.txt"])
        self.assertEqual([e["path"] for e in files.glob_all("a/*.txt", limit=1)], ["a/one.txt", "a/two.txt"])
        files.move("a/two.txt", "b/two.txt")
        self.assertEqual(files.stat("b/two.txt")["type"], "file")
        self.assertEqual(files.chmod("b/two.txt", "0755")["mode"], "0755")
        files.remove("a", recursive=True)
        self.assertEqual(self.sandbox.exec("cat src/hello.txt; ls a 2>/dev/null || echo gone").stdout, "hello\ngone\n")

    def test_4_typed_errors(self) -> None:
        with self.assertRaises(PvdFileNotFound) as missing:
            self.sandbox.files.read("nope.txt")
        self.assertEqual((missing.exception.code, missing.exception.status), ("file_not_found", 404))
        self.assertIn("files/list", missing.exception.hint)
        self.assertIsInstance(missing.exception, PreviewdError)
        with self.assertRaises(InvalidPathError):
            self.sandbox.files.write("../etc/passwd", "x")
        with self.assertRaises(SandboxNotFoundError):
            self.client.sandboxes.get("01arz3ndektsv4rrffq69g5fav")
        with self.assertRaises(previewd.UnauthorizedError):
            Previewd(url=os.environ["PREVIEWD_URL"], api_key="wrong-key-0123456789").sandboxes.list()
        with self.assertRaises(previewd.ConnectionFailedError):
            Previewd(url="http://127.0.0.1:9", api_key="k").health()
        self.assertEqual(set(previewd.ERROR_CODES), set(previewd.ERROR_CLASSES))

    def test_5_exec_and_exec_stream(self) -> None:
        result = self.sandbox.exec(["sh", "-c", "echo out; echo err >&2; exit 3"])
        self.assertEqual((result.exit_code, result.stdout, result.stderr), (3, "out\n", "err\n"))
        items = list(self.sandbox.exec_stream("for i in 1 2 3; do echo line $i; done; echo done >&2"))
        stdout = "".join(i["data"] for i in items if i.get("stream") == "stdout")
        self.assertEqual(stdout, "line 1\nline 2\nline 3\n")
        self.assertIn({"stream": "stderr", "data": "done\n"}, items)
        self.assertEqual(items[-1], {"exit_code": 0})

    def test_6_processes(self) -> None:
        proc = self.sandbox.processes.start("echo from-process; sleep 0.2; echo bye")
        out = list(self.sandbox.processes.logs(proc["pid"], follow=True))
        self.assertEqual(out[-1], {"exit_code": 0})
        self.assertEqual("".join(i.get("data", "") for i in out), "from-process\nbye\n")
        self.assertFalse(self.sandbox.processes.get(proc["pid"])["running"])

    def test_7_logs_follow(self) -> None:
        stream = self.sandbox.logs(follow=True)
        seen = next(stream)["data"]  # the stream is open (kept output comes first)
        # A request made after following started shows up in the followed stream.
        fetch_preview(self.sandbox.get_preview_url(3000) + "/followed")
        for chunk in stream:
            seen += chunk["data"]
            if "request /followed" in seen:
                break
        stream.close()
        self.assertIn("listening on 3000", seen)
        self.assertIn("request /followed", seen)

    def test_8_events_ports_tokens(self) -> None:
        sb = self.sandbox
        types = []
        stream = sb.events(last_event_id=0, timeout=30)
        for event in stream:
            types.append(event["type"])
            self.assertEqual(event["sandboxId"], sb.id)
            if event["type"] == "port.open":
                break
        stream.close()
        self.assertIn("sandbox.created", types)
        sb.expose_port(4000)
        self.assertEqual(sb.info["ports"], [3000, 4000])
        self.assertIn(f"4000-{sb.id}.", sb.get_preview_url(4000))
        sb.unexpose_port(4000)
        with self.assertRaises(previewd.PortNotExposedError):
            sb.get_preview_url(4000)
        token = sb.preview_tokens.create(port=3000, ttl_sec=60)
        self.assertTrue(token["token"].startswith("pvt1."))
        self.assertIn("previewd_token=", sb.get_preview_url(3000, token=True))
        sb.preview_tokens.revoke_all()
        self.assertIn("keepAliveUntil", sb.keepalive(60).info)
        self.assertEqual(sb.info["network"], {"egress": "allow", "allow": [], "deny": []})
        sb.set_network("list", allow=["*.NPMJS.org", "203.0.113.0/24"], deny=["bad.npmjs.org"])
        self.assertEqual(
            sb.info["network"], {"egress": "list", "allow": ["*.npmjs.org", "203.0.113.0/24"], "deny": ["bad.npmjs.org"]}
        )
        with self.assertRaises(previewd.InvalidRequestError):
            sb.set_network("list", allow=["not a host!"])
        self.assertEqual(sb.set_network("allow").info["network"]["egress"], "allow")

    def test_9_stop_start_delete(self) -> None:
        sb = self.sandbox
        sb.stop().wait_until("stopped", timeout=30)
        self.assertEqual(sb.files.read("src/hello.txt"), "hello\n")
        sb.start().wait_until("running", timeout=30)
        sb.delete()
        with self.assertRaises(SandboxNotFoundError):
            self.client.sandboxes.get(sb.id)


if __name__ == "__main__":
    unittest.main()
