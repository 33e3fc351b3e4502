"""Shared setup of the Python module's tests (tests/python): where the repository, the
shipped weights and the ipguard binary are (ctest sets IPG_REPO and IPGUARD_BIN, and
PYTHONPATH to the built module), and small inputs."""
import os
import sys
import unittest

import numpy as np

REPO = os.environ.get("IPG_REPO", os.path.join(os.path.dirname(__file__), "..", ".."))
IPGUARD_BIN = os.environ.get("IPGUARD_BIN", "")
LENET = os.path.join(REPO, "weights", "lenet5-fashion-mnist.h5")
RESNET = os.path.join(REPO, "weights", "resnet20-fashion-mnist.h5")
ZOO = os.path.join(REPO, "weights", "zoo-lenet5-fashion-mnist")
FOREST = os.path.join(ZOO, "negative", "rf-seed1.h5")
FASHION_MNIST = "/usr/share/datasets/fashion-mnist"

import ipguard  # noqa: E402  (after the paths: a failed import is a failed test)


def images(n, seed=0, shape=(1, 28, 28)):
    """n float32 images of uniform [0, 1] pixels, C-contiguous."""
    return np.random.default_rng(seed).random((n,) + shape, dtype=np.float32)


def main():
    unittest.main(verbosity=2)
