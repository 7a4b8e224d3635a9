"""Any source at create with the Python SDK against a real previewd (docs/sources.md).

Needs PREVIEWD_URL and PREVIEWD_API_KEY; test/integration/sdk-python.test.ts starts a server and
runs this.
"""

import base64
import io
import os
import tarfile
import unittest

from previewd import Previewd, PreviewdError

LABEL = {"suite": "sdk-python-sources"}
BINARY = bytes(range(256)) * 4  # not UTF-8


def tar_gz(files: dict) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as tar:
        for name, content in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(content)
            tar.addfile(info, io.BytesIO(content))
    return out.getvalue()


class SourcesTest(unittest.TestCase):
    client: Previewd

    @classmethod
    def setUpClass(cls) -> None:
        cls.client = Previewd(url=os.environ["PREVIEWD_URL"], api_key=os.environ["PREVIEWD_API_KEY"])

    def tearDown(self) -> None:
        for sandbox in self.client.sandboxes.list(labels=LABEL):
            sandbox.delete()

    def test_base64_files_and_archive_bodies(self) -> None:
        encoded = base64.b64encode(BINARY).decode()
        from_json = self.client.sandboxes.create(
            files={"logo.bin": {"base64": encoded}}, runtime={"start": "sleep infinity"}, labels=LABEL
        )
        self.assertEqual(from_json.files.read_bytes("logo.bin"), BINARY)
        from_tar = self.client.sandboxes.create_from_archive(
            tar_gz({"logo.bin": BINARY, "app/readme.txt": b"hi"}),
            runtime={"start": "sleep infinity"},
            labels=LABEL,
        )
        self.assertEqual(from_tar.info["labels"], LABEL)
        self.assertEqual(from_tar.files.read_bytes("logo.bin"), BINARY)
        self.assertEqual(from_tar.files.read("app/readme.txt"), "hi")

    def test_refusals_carry_their_codes(self) -> None:
        with self.assertRaises(PreviewdError) as bad:
            self.client.sandboxes.create(files={"a.bin": {"base64": "%%%"}}, labels=LABEL)
        self.assertEqual(bad.exception.code, "invalid_base64")
        with self.assertRaises(PreviewdError) as escape:
            self.client.sandboxes.create_from_archive(tar_gz({"../out.txt": b"x"}), labels=LABEL)
        self.assertEqual(escape.exception.code, "invalid_path")
        with self.assertRaises(PreviewdError) as refused:
            self.client.sandboxes.create(source={"git": {"url": "file:///etc"}}, labels=LABEL)
        self.assertEqual(refused.exception.code, "git_source_refused")


if __name__ == "__main__":
    unittest.main()
