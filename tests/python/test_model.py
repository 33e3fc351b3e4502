"""ipguard.load and Model: logits and labels on numpy batches, and the refusals of bad
arrays and files (every one a ValueError or OSError with the reason, never a crash)."""
import os
import tempfile
import unittest

import numpy as np

from common import FOREST, LENET, images, ipguard, main


class ModelTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.net = ipguard.load(LENET)

    def test_attributes(self):
        self.assertEqual(self.net.arch, "lenet5")
        self.assertEqual(self.net.classes, 10)
        self.assertEqual(self.net.input_shape, (1, 28, 28))
        self.assertEqual(self.net.device, "cpu")
        self.assertTrue(self.net.has_logits)

    def test_labels_are_the_argmax_of_the_logits(self):
        x = images(7)
        z = self.net.logits(x)
        self.assertEqual(z.dtype, np.float32)
        self.assertEqual(z.shape, (7, 10))
        self.assertTrue(np.all(np.isfinite(z)))
        np.testing.assert_array_equal(self.net.labels(x), np.argmax(z, axis=1))

    def test_batches_do_not_change_results(self):
        x = images(7, seed=1)
        np.testing.assert_array_equal(self.net.labels(x, batch=3), self.net.labels(x))
        # The same rows in other batch sizes: oneDNN may pick another kernel per batch size
        # (another summation order), so equal to float rounding, not bit for bit.
        z = self.net.logits(x)
        np.testing.assert_allclose(self.net.logits(x, batch=2), z, rtol=1e-5, atol=1e-5)
        # Rows are independent: a row's logits do not depend on its neighbours.
        np.testing.assert_allclose(self.net.logits(x[2:3].copy())[0], z[2], rtol=1e-5, atol=1e-5)
        # A batch's bits do not change from call to call.
        np.testing.assert_array_equal(self.net.logits(x, batch=2), self.net.logits(x, batch=2))

    def test_forest_gives_labels_only(self):
        rf = ipguard.load(FOREST)
        self.assertEqual(rf.arch, "rf")
        self.assertEqual(rf.input_shape, (1, 28, 28))
        self.assertFalse(rf.has_logits)
        y = rf.labels(images(5))
        self.assertEqual(y.shape, (5,))
        self.assertTrue(np.all((y >= 0) & (y < rf.classes)))
        with self.assertRaisesRegex(ValueError, "labels only"):
            rf.logits(images(2))

    def check_refused(self, x, pattern):
        with self.assertRaisesRegex(ValueError, pattern):
            self.net.labels(x)
        with self.assertRaisesRegex(ValueError, pattern):
            self.net.logits(x)

    def test_bad_arrays(self):
        x = images(4)
        self.check_refused(x.astype(np.float64), "expected dtype float32, got float64")
        self.check_refused(x.astype(np.int32), "expected dtype float32")
        self.check_refused(x[:, 0], r"expected shape \(n, 1, 28, 28\).*got \(4, 28, 28\)")
        self.check_refused(images(4, shape=(3, 28, 28)), r"got \(4, 3, 28, 28\)")
        self.check_refused(images(4, shape=(1, 32, 32)), r"got \(4, 1, 32, 32\)")
        self.check_refused(np.zeros((0, 1, 28, 28), np.float32), "empty")
        wide = images(4, shape=(1, 28, 56))
        strided = wide[:, :, :, ::2]
        self.assertEqual(strided.shape, (4, 1, 28, 28))
        self.check_refused(strided, "not C-contiguous")
        self.check_refused(np.asfortranarray(x), "not C-contiguous")
        bad = x.copy()
        bad[1, 0, 3, 4] = np.nan
        self.check_refused(bad, "NaN")
        bad[1, 0, 3, 4] = np.inf
        self.check_refused(bad, "infinite")
        bad[1, 0, 3, 4] = 255.0  # 0-255 images: a clear refusal, not labels of garbage
        self.check_refused(bad, r"holds 255.0 \(flat index 872\); pixels are in \[0, 1\]")
        bad[1, 0, 3, 4] = -0.5
        self.check_refused(bad, "holds -0.5")
        self.check_refused(x.tolist(), "expected a numpy array, got list")
        with self.assertRaisesRegex(ValueError, "batch must be at least 1"):
            self.net.labels(x, batch=0)

    def test_bad_files_and_devices(self):
        with self.assertRaisesRegex(OSError, "no-such-model.h5"):
            ipguard.load("no-such-model.h5")
        with tempfile.TemporaryDirectory() as tmp:
            junk = os.path.join(tmp, "junk.h5")
            with open(junk, "wb") as f:
                f.write(b"not an HDF5 file at all")
            with self.assertRaises(OSError):
                ipguard.load(junk)
        with self.assertRaisesRegex(ValueError, "unknown device"):
            ipguard.load(LENET, device="tpu")
        if not ipguard.cuda_available():
            with self.assertRaises(RuntimeError):
                ipguard.load(LENET, device="cuda")

    def test_cuda_labels_agree_with_the_cpu(self):
        if not ipguard.cuda_available():
            self.skipTest("no CUDA device here")
        gpu = ipguard.load(LENET, device="cuda")
        self.assertEqual(gpu.device, "cuda:0")
        x = images(64, seed=2)
        agree = np.mean(gpu.labels(x) == self.net.labels(x))
        self.assertGreaterEqual(agree, 0.98)
        np.testing.assert_allclose(gpu.logits(x), self.net.logits(x), rtol=1e-3, atol=1e-3)

    def test_cuda_extract_agrees_with_the_cpu(self):
        # The fingerprint loop on the GPU from Python: the CPU's converged rows and labels,
        # as the CLI's CPU-against-CUDA check asks (two libraries' sums differ in rounding:
        # a row may converge a few iterations apart, not elsewhere).
        if not ipguard.cuda_available():
            self.skipTest("no CUDA device here")
        gpu = ipguard.load(LENET, device="cuda")
        args = dict(method="ipguard", n=40, k=1.0, iters=300, init="random", seed=4)
        on_gpu, on_cpu = ipguard.extract(gpu, **args), ipguard.extract(self.net, **args)
        both = on_gpu.converged & on_cpu.converged
        self.assertGreaterEqual(int(both.sum()), 36)
        np.testing.assert_array_equal(on_gpu.labels[both], on_cpu.labels[both])
        np.testing.assert_array_equal(on_gpu.labels, gpu.labels(on_gpu.points))


if __name__ == "__main__":
    main()
