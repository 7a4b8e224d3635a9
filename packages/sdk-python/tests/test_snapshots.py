"""Snapshots and fork of the Python SDK against a real previewd.

Needs PREVIEWD_URL and PREVIEWD_API_KEY (a configured admin key); test/integration/sdk-python.test.ts
(and test/integration/snapshots.test.ts) start a server and run this.
"""

import os
import unittest

from previewd import Previewd, PreviewdError

LABEL = {"suite": "sdk-python-snapshots"}


class SnapshotsTest(unittest.TestCase):
    client: Previewd

    @classmethod
    def setUpClass(cls) -> None:
        cls.client = Previewd(url=os.environ["PREVIEWD_URL"], api_key=os.environ["PREVIEWD_API_KEY"], owner="py-snap")

    def tearDown(self) -> None:
        for sandbox in self.client.sandboxes.list(labels=LABEL):
            sandbox.delete()
        for snap in self.client.snapshots.all():
            self.client.snapshots.delete(snap["id"])

    def test_snapshot_create_from_it_fork_and_delete(self) -> None:
        sandbox = self.client.sandboxes.create(
            files={"hello.txt": "from python"}, runtime={"start": "sleep infinity"}, labels=LABEL
        )
        sandbox.wait_until("running")
        snap = sandbox.snapshot(name="py", labels={"lang": "python"})
        self.assertEqual((snap["sandboxId"], snap["name"], snap["owner"]), (sandbox.id, "py", "py-snap"))
        self.assertEqual([s["id"] for s in self.client.snapshots.all(sandbox_id=sandbox.id)], [snap["id"]])
        self.assertEqual(self.client.snapshots.get(snap["id"])["labels"], {"lang": "python"})

        made = self.client.sandboxes.create(snapshot=snap["id"], labels=LABEL).wait_until("running")
        self.assertEqual(made.files.read("hello.txt"), "from python")
        fork = sandbox.fork(labels=LABEL).wait_until("running")
        self.assertEqual(fork.files.read("hello.txt"), "from python")

        self.assertEqual(self.client.snapshots.delete(snap["id"])["id"], snap["id"])
        with self.assertRaises(PreviewdError) as caught:
            self.client.snapshots.get(snap["id"])
        self.assertEqual(caught.exception.code, "snapshot_not_found")
        # Made from it before the delete: still has its files.
        self.assertEqual(made.files.read("hello.txt"), "from python")


if __name__ == "__main__":
    unittest.main()
