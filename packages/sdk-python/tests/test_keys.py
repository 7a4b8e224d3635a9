"""API keys and the owner option of the Python SDK against a real previewd.

Needs PREVIEWD_URL and PREVIEWD_API_KEY (a configured admin key); test/integration/sdk-python.test.ts
starts a server and runs this.
"""

import hashlib
import json
import os
import unittest

import previewd
from previewd import Previewd, PreviewdError, SandboxNotFoundError

SITE = {"index.html": "<p>keys</p>"}
LABEL = {"suite": "sdk-python-keys"}


def failure(call) -> PreviewdError:
    """The PreviewdError a call raises (fails the test when it does not raise)."""
    try:
        call()
    except PreviewdError as err:
        return err
    raise AssertionError("expected the call to fail, it succeeded")


class KeysTest(unittest.TestCase):
    url: str
    admin: Previewd

    @classmethod
    def setUpClass(cls) -> None:
        cls.url = os.environ["PREVIEWD_URL"]
        cls.admin = Previewd(url=cls.url, api_key=os.environ["PREVIEWD_API_KEY"])

    def tearDown(self) -> None:
        for sandbox in self.admin.sandboxes.list(labels=LABEL):
            sandbox.delete()

    def test_keys_create_list_revoke_and_the_owner_option(self) -> None:
        created = self.admin.keys.create(owner="py-dana", name="python suite")
        self.assertEqual(
            (created["role"], created["owner"], created["name"], created["source"], created["revokedAt"]),
            ("tenant", "py-dana", "python suite", "api", None),
        )
        secret = created["key"]
        self.assertTrue(secret.startswith(created["prefix"]) and len(secret) > 2 * len(created["prefix"]))

        # The listing shows the key, never its secret nor the secret's hash.
        listing = self.admin.keys.list()
        self.assertIn({k: v for k, v in created.items() if k != "key"}, listing)
        text = json.dumps(listing)
        self.assertNotIn(secret, text)
        self.assertNotIn(hashlib.sha256(secret.encode()).hexdigest(), text)

        # The secret is a tenant key: it sees its owner's sandboxes only, and no key routes.
        dana = Previewd(url=self.url, api_key=secret)
        box = dana.sandboxes.create(files=SITE, labels=LABEL)
        self.assertEqual(box.info["owner"], "py-dana")
        other = self.admin.sandboxes.create(files=SITE, labels=LABEL)
        self.assertEqual([s.id for s in dana.sandboxes.list(labels=LABEL)], [box.id])
        with self.assertRaises(SandboxNotFoundError):
            dana.sandboxes.get(other.id)
        for call in (dana.keys.list, lambda: dana.keys.create(owner="mallory"), lambda: dana.keys.revoke(created["id"])):
            err = failure(call)
            self.assertIsInstance(err, previewd.ForbiddenError)
            self.assertEqual((err.code, err.status), ("forbidden", 403))

        # owner=: an admin acting for py-dana sees and makes only py-dana's sandboxes.
        for_dana = Previewd(url=self.url, api_key=os.environ["PREVIEWD_API_KEY"], owner="py-dana")
        self.assertEqual(for_dana.http.owner, "py-dana")
        self.assertEqual([s.id for s in for_dana.sandboxes.list(labels=LABEL)], [box.id])
        with self.assertRaises(SandboxNotFoundError):
            for_dana.sandboxes.get(other.id)
        made = for_dana.sandboxes.create(files=SITE, labels=LABEL)
        self.assertEqual(made.info["owner"], "py-dana")
        self.assertEqual(sorted(s.id for s in dana.sandboxes.list(labels=LABEL)), sorted([box.id, made.id]))
        everyone = sorted(s.id for s in self.admin.sandboxes.list(labels=LABEL))
        self.assertEqual(everyone, sorted([box.id, made.id, other.id]))

        # Revoked: the secret is refused; revoking again keeps the first time.
        revoked = self.admin.keys.revoke(created["id"])
        self.assertEqual(revoked["id"], created["id"])
        self.assertIsNotNone(revoked["revokedAt"])
        err = failure(lambda: dana.sandboxes.list())
        self.assertIsInstance(err, previewd.UnauthorizedError)
        self.assertEqual(err.status, 401)
        self.assertEqual(self.admin.keys.revoke(created["id"])["revokedAt"], revoked["revokedAt"])

    def test_keys_configured_keys_cannot_be_revoked(self) -> None:
        configured = [k for k in self.admin.keys.list() if k["source"] == "config"]
        self.assertEqual([(k["role"], k["owner"]) for k in configured], [("admin", None)])
        err = failure(lambda: self.admin.keys.revoke(configured[0]["id"]))
        self.assertIsInstance(err, previewd.KeyNotRevocableError)
        self.assertEqual((err.code, err.status), ("key_not_revocable", 409))
        self.assertIsNotNone(err.hint)
        self.assertIsNone([k for k in self.admin.keys.list() if k["id"] == configured[0]["id"]][0]["revokedAt"])

    def test_keys_unknown_id_and_bad_input(self) -> None:
        err = failure(lambda: self.admin.keys.revoke("key_01arz3ndektsv4rrffq69g5fav"))
        self.assertIsInstance(err, previewd.KeyNotFoundError)
        self.assertEqual((err.code, err.status), ("key_not_found", 404))
        before = len(self.admin.keys.list())
        for kwargs in ({"owner": "has spaces"}, {"name": "n" * 200}, {"owner": ""}):
            err = failure(lambda: self.admin.keys.create(**kwargs))
            self.assertIsInstance(err, previewd.InvalidRequestError, kwargs)
            self.assertEqual(err.status, 400)
        admin_key = self.admin.keys.create(name="py admin")
        self.assertEqual((admin_key["role"], admin_key["owner"]), ("admin", None))
        self.assertEqual(len(self.admin.keys.list()), before + 1)
        self.admin.keys.revoke(admin_key["id"])


if __name__ == "__main__":
    unittest.main()
