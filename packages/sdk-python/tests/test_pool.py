"""The warm pool's state through the Python SDK against a real previewd (an admin key).

Needs PREVIEWD_URL and PREVIEWD_API_KEY; test/integration/sdk-python.test.ts starts a server with
a pool of one Python container and runs this.
"""

import os
import time
import unittest

from previewd import Previewd


class PoolTest(unittest.TestCase):
    def test_state_names_the_pooled_image(self) -> None:
        client = Previewd(url=os.environ["PREVIEWD_URL"], api_key=os.environ["PREVIEWD_API_KEY"])
        image = os.environ["PREVIEWD_TEST_POOL_IMAGE"]
        deadline = time.monotonic() + 60
        while True:
            state = client.pool.state()
            entry = next((i for i in state["images"] if i["image"] == image), None)
            self.assertIsNotNone(entry, state)
            if entry["warm"] >= 1 or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        self.assertEqual((entry["target"], entry["warm"]), (1, 1))
        self.assertGreaterEqual(state["reservedMb"], 0)
