"""ipguard.extract and Fingerprint: the CLI's fingerprint bit for bit, sealed files read
back, progress callbacks, refusals."""
import hashlib
import os
import subprocess
import tempfile
import unittest

import numpy as np

from common import FASHION_MNIST, FOREST, IPGUARD_BIN, LENET, ipguard, main

SMALL = dict(n=6, iters=40, init="random", seed=5)


class ExtractTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        ipguard.set_threads(1)  # the CLI runs are given --threads 1: same bits
        cls.net = ipguard.load(LENET)
        cls.fp = ipguard.extract(cls.net, **SMALL)

    def test_points_are_labeled_by_the_target(self):
        fp = self.fp
        self.assertEqual(len(fp), 6)
        self.assertEqual(fp.points.shape, (6, 1, 28, 28))
        self.assertEqual(fp.points.dtype, np.float32)
        self.assertTrue(np.all((fp.points >= 0) & (fp.points <= 1)))
        np.testing.assert_array_equal(fp.labels, self.net.labels(fp.points))
        self.assertEqual(fp.method, "ipguard")
        self.assertEqual(fp.arch, "lenet5")
        self.assertEqual(fp.seed, 5)
        self.assertEqual(fp.params["iters"], 40)
        self.assertEqual(fp.params["init"], "random")
        for a in (fp.source, fp.target, fp.iterations, fp.final_loss, fp.converged):
            self.assertEqual(a.shape, (6,))
        self.assertEqual(fp.converged.dtype, np.bool_)
        self.assertTrue(np.all((fp.iterations >= 0) & (fp.iterations <= 40)))
        self.assertTrue(np.all(fp.source != fp.target))
        with open(LENET, "rb") as f:
            self.assertEqual(fp.model_sha256, hashlib.sha256(f.read()).hexdigest())

    def test_same_seed_same_bits_other_seed_other_points(self):
        again = ipguard.extract(LENET, **SMALL)
        self.assertEqual(again.points.tobytes(), self.fp.points.tobytes())
        np.testing.assert_array_equal(again.labels, self.fp.labels)
        other = ipguard.extract(self.net, **dict(SMALL, seed=6))
        self.assertNotEqual(other.points.tobytes(), self.fp.points.tobytes())

    def check_same_as_cli(self, cli_args, **kwargs):
        if not IPGUARD_BIN:
            self.skipTest("IPGUARD_BIN is not set (ctest sets it)")
        with tempfile.TemporaryDirectory() as tmp:
            out = os.path.join(tmp, "cli.h5")
            subprocess.run([IPGUARD_BIN, "--device", "cpu", "--threads", "1", "--seed",
                            str(kwargs["seed"]), "extract", "--model", LENET, "--out", out]
                           + cli_args, check=True, stdout=subprocess.DEVNULL)
            cli = ipguard.load_fingerprint(out)
        mine = ipguard.extract(self.net, **kwargs)
        self.assertEqual(mine.points.tobytes(), cli.points.tobytes())
        for field in ("labels", "source", "target", "iterations", "converged"):
            np.testing.assert_array_equal(getattr(mine, field), getattr(cli, field), field)
        self.assertEqual(mine.params, cli.params)
        self.assertEqual(mine.model_sha256, cli.model_sha256)

    def test_same_fingerprint_as_the_cli(self):
        self.check_same_as_cli(["--n", "6", "--iters", "40", "--init", "random"], **SMALL)

    def test_same_fingerprint_as_the_cli_from_training_images(self):
        if not os.path.isdir(FASHION_MNIST):
            self.skipTest("no Fashion-MNIST in " + FASHION_MNIST)
        self.check_same_as_cli(["--method", "igsm", "--n", "5", "--iters", "20", "--target",
                                "random", "--eps", "0.1"],
                               method="igsm", n=5, iters=20, target="random", eps=0.1, seed=9)

    def test_save_and_load_round_trip(self):
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "fp.h5")
            self.fp.save(path)
            self.assertEqual(self.fp.file, path)
            back = ipguard.load_fingerprint(path)
            self.assertEqual(back.points.tobytes(), self.fp.points.tobytes())
            for field in ("labels", "source", "target", "iterations", "converged"):
                np.testing.assert_array_equal(getattr(back, field), getattr(self.fp, field))
            np.testing.assert_array_equal(back.final_loss, self.fp.final_loss)
            for field in ("method", "params", "seed", "arch", "model_sha256", "created"):
                self.assertEqual(getattr(back, field), getattr(self.fp, field), field)
            # Never over an input: its own file, the target model.
            before = open(path, "rb").read()
            with self.assertRaisesRegex(ValueError, "fingerprint's own file"):
                back.save(path)
            self.assertEqual(open(path, "rb").read(), before)
            with self.assertRaisesRegex(ValueError, "target model"):
                self.fp.save(LENET)
            # A changed byte is found when read back.
            data = bytearray(before)
            data[len(data) // 2] ^= 0xFF
            broken = os.path.join(tmp, "broken.h5")
            with open(broken, "wb") as f:
                f.write(data)
            with self.assertRaises(OSError):
                ipguard.load_fingerprint(broken)

    def test_progress_callback(self):
        calls = []
        fp = ipguard.extract(self.net, progress=calls.append, **SMALL)
        self.assertGreater(len(calls), 0)
        self.assertTrue(all(c["n"] == 6 and 0 <= c["active"] <= c["chunk_rows"] for c in calls))
        iterations = [c["iteration"] for c in calls]
        self.assertEqual(iterations, sorted(iterations))
        self.assertEqual(fp.points.tobytes(), self.fp.points.tobytes())  # watching changes nothing

    def test_an_exception_in_the_callback_stops_the_work(self):
        class Stop(Exception):
            pass

        def stop(_):
            raise Stop()

        with self.assertRaises(Stop):
            ipguard.extract(self.net, progress=stop, **SMALL)

    def test_refusals(self):
        with self.assertRaisesRegex(ValueError, "unknown method 'foo'"):
            ipguard.extract(self.net, method="foo", **SMALL)
        with self.assertRaisesRegex(ValueError, "n must be at least 1"):
            ipguard.extract(self.net, **dict(SMALL, n=0))
        with self.assertRaisesRegex(ValueError, "init must be"):
            ipguard.extract(self.net, **dict(SMALL, init="zeros"))
        with self.assertRaisesRegex(ValueError, "no gradient"):
            ipguard.extract(FOREST, **SMALL)
        with self.assertRaisesRegex(ValueError, "progress must be a callable"):
            ipguard.extract(self.net, progress=3, **SMALL)
        with self.assertRaises(TypeError):
            ipguard.extract(42, **SMALL)
        with self.assertRaises(OSError):
            ipguard.load_fingerprint("no-such-fingerprint.h5")


if __name__ == "__main__":
    main()
