"""ipguard.verify: models, files and Python callables as suspects; the matching rate is the
fraction of fingerprint labels the suspect gives; bad answers are refused."""
import os
import re
import subprocess
import tempfile
import unittest

import numpy as np

from common import FOREST, IPGUARD_BIN, LENET, RESNET, ipguard, main


class VerifyTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.net = ipguard.load(LENET)
        cls.fp = ipguard.extract(cls.net, n=10, iters=50, init="random", seed=2)

    def test_the_target_wrapped_in_a_lambda_matches_everything(self):
        r = ipguard.verify(self.fp, lambda points: self.net.labels(points))
        self.assertEqual(r["matching_rate"], 1.0)
        self.assertEqual(r["matches"], 10)
        self.assertEqual(r["points"], 10)
        self.assertTrue(r["copy"])
        np.testing.assert_array_equal(r["labels"], self.fp.labels)

    def test_the_target_as_model_and_as_file(self):
        self.assertEqual(ipguard.verify(self.fp, self.net)["matching_rate"], 1.0)
        r = ipguard.verify(self.fp, LENET)
        self.assertEqual(r["matching_rate"], 1.0)
        self.assertTrue(r["same_file_as_target"])
        self.assertFalse(ipguard.verify(self.fp, FOREST)["same_file_as_target"])

    def test_a_constant_labeler_matches_the_points_of_its_class(self):
        labels = self.fp.labels
        for c in (int(np.bincount(labels).argmax()), int(labels[0]), 9):
            r = ipguard.verify(self.fp, lambda p, c=c: np.full(len(p), c, np.int64),
                               threshold=0.95)
            expected = int(np.sum(labels == c))
            self.assertEqual(r["matches"], expected)
            self.assertAlmostEqual(r["matching_rate"], expected / 10)
            self.assertEqual(r["copy"], expected / 10 >= 0.95)

    def test_the_callable_gets_batches_of_the_points(self):
        seen = []

        def f(points):
            self.assertEqual(points.dtype, np.float32)
            seen.append(points.copy())
            return self.net.labels(points).tolist()  # a list of ints is accepted too

        r = ipguard.verify(self.fp, f, batch=3)
        self.assertEqual([len(p) for p in seen], [3, 3, 3, 1])
        self.assertEqual(np.concatenate(seen).tobytes(), self.fp.points.tobytes())
        self.assertEqual(r["matching_rate"], 1.0)

    def test_fingerprint_file_as_argument(self):
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "fp.h5")
            self.fp.save(path)
            self.assertEqual(ipguard.verify(path, self.net)["matching_rate"], 1.0)

    def test_bad_answers_are_refused(self):
        n = len(self.fp)
        with self.assertRaisesRegex(ValueError, r"shape \(9,\) for 10 points"):
            ipguard.verify(self.fp, lambda p: np.zeros(len(p) - 1, np.int32))
        with self.assertRaisesRegex(ValueError, "float64 labels; expected integers"):
            ipguard.verify(self.fp, lambda p: np.zeros(len(p)))
        with self.assertRaisesRegex(ValueError, r"shape \(10, 10\)"):
            ipguard.verify(self.fp, lambda p: np.zeros((len(p), 10), np.int32))
        with self.assertRaisesRegex(ValueError, "label -1"):
            ipguard.verify(self.fp, lambda p: np.full(len(p), -1, np.int32))
        with self.assertRaisesRegex(ValueError, "threshold"):
            ipguard.verify(self.fp, self.net, threshold=1.5)
        with self.assertRaisesRegex(ZeroDivisionError, ""):
            ipguard.verify(self.fp, lambda p: 1 // 0)
        with self.assertRaises(TypeError):
            ipguard.verify(self.fp, 42)
        with self.assertRaises(TypeError):
            ipguard.verify(n, self.net)

    def test_a_label_outside_the_classes_is_refused(self):
        # As the CLI's --suspect-cmd: a label that is no class of the target is an error,
        # not a silent mismatch; classes= (as --classes) gives the target's count.
        shown = int(max(self.fp.labels.max(), self.fp.source.max(), self.fp.target.max())) + 1
        with self.assertRaisesRegex(ValueError, r"labels point 0 99, not a class of 0\.\.%d "
                                                r"\(the classes the fingerprint shows" % (shown - 1)):
            ipguard.verify(self.fp, lambda x: np.full(len(x), 99))
        with self.assertRaisesRegex(ValueError, r"labels point 0 99, not a class of 0\.\.11$"):
            ipguard.verify(self.fp, lambda x: np.full(len(x), 99), classes=12)
        r = ipguard.verify(self.fp, lambda x: np.full(len(x), 99), classes=100)
        self.assertEqual(r["matching_rate"], 0.0)
        with self.assertRaisesRegex(ValueError, "classes 1: the fingerprint's target gives class"):
            ipguard.verify(self.fp, lambda x: np.zeros(len(x), np.int64), classes=1)

    def test_an_address_needs_the_label_api_client(self):
        # Nothing listens on port 1: a clear error (or, in a build without the client, a
        # NotImplementedError), not a crash or a hang.
        with self.assertRaises((NotImplementedError, RuntimeError)):
            ipguard.verify(self.fp, "http://127.0.0.1:1/v2/models/nothing")

    def test_an_address_served_by_ipguard_serve_matches_the_file(self):
        if not IPGUARD_BIN:
            self.skipTest("IPGUARD_BIN is not set (ctest sets it)")
        # A real server process on a free port (it prints its address once listening).
        server = subprocess.Popen([IPGUARD_BIN, "--device", "cpu", "--threads", "1", "serve",
                                   "--model", RESNET, "--port", "0", "--name", "suspect"],
                                  stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        try:
            line = server.stdout.readline()
            match = re.search(r"http://\S+", line)
            self.assertIsNotNone(match, "ipguard serve printed: " + line)
            by_api = ipguard.verify(self.fp, match.group(0), batch=4)
            by_file = ipguard.verify(self.fp, RESNET)
            self.assertEqual(by_api["matches"], by_file["matches"])
            np.testing.assert_array_equal(by_api["labels"], by_file["labels"])
        finally:
            server.terminate()
            server.wait(timeout=60)
            server.stdout.close()


if __name__ == "__main__":
    main()
