"""ipguard's Python API at its edges: paths given as pathlib.Path (an empty one refused), options
refused where the CLI refuses them (an option the method ignores, a seed out of range, a
device other than a loaded model's), a model file deleted or
replaced after it was loaded (the digests name what was loaded), labels a callable gives as
large unsigned integers, and the limits verify puts on a label API (timeout, retries,
max_queries, max_rate) checked and passed to the client, and Ctrl-C stopping it between
requests (an in-process HTTP server counts the requests it gets)."""
import hashlib
import http.server
import json
import os
import pathlib
import shutil
import signal
import tempfile
import threading
import unittest

import numpy as np

from common import LENET, RESNET, ZOO as ZOO_DIR, ipguard, main


def sha256(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


class PathsTest(unittest.TestCase):
    def test_pathlib_paths_are_taken_wherever_a_path_is(self):
        model = ipguard.load(pathlib.Path(LENET))
        self.assertEqual(model.path, LENET)
        fp = ipguard.extract(pathlib.Path(LENET), n=2, iters=5, init="random", seed=1)
        with tempfile.TemporaryDirectory() as tmp:
            path = pathlib.Path(tmp) / "fp.h5"
            fp.save(path)
            self.assertEqual(ipguard.load_fingerprint(path).file, str(path))
            self.assertEqual(ipguard.verify(path, pathlib.Path(LENET))["matching_rate"], 1.0)
        with self.assertRaisesRegex(TypeError, r"^path must be a file path \(str or os.PathLike\), not int$"):
            ipguard.load(3)
        with self.assertRaisesRegex(ValueError, r"^a file path is empty$"):
            ipguard.load("")

    def test_experiment_takes_pathlib_paths(self):
        small = dict(grid="random", modes="TL", n=3)
        with tempfile.TemporaryDirectory() as tmp:
            out = pathlib.Path(tmp) / "res"
            r = ipguard.experiment(pathlib.Path(ZOO_DIR), out=out, **small)
            self.assertEqual(r["out"], str(out))
            self.assertTrue((out / "results.json").is_file())

    def test_a_model_file_deleted_after_loading_still_extracts_and_verifies(self):
        with tempfile.TemporaryDirectory() as tmp:
            copy = os.path.join(tmp, "m.h5")
            shutil.copy(LENET, copy)
            model = ipguard.load(copy)
            os.remove(copy)
            fp = ipguard.extract(model, n=2, iters=5, init="random", seed=1)
            self.assertEqual(fp.model_sha256, sha256(LENET))
            self.assertEqual(model.sha256, sha256(LENET))
            r = ipguard.verify(fp, model)
            self.assertEqual(r["matching_rate"], 1.0)
            self.assertTrue(r["same_file_as_target"])

    def test_a_model_file_replaced_after_loading_keeps_the_loaded_digest(self):
        with tempfile.TemporaryDirectory() as tmp:
            copy = os.path.join(tmp, "m.h5")
            shutil.copy(LENET, copy)
            model = ipguard.load(copy)
            shutil.copy(RESNET, copy)  # someone overwrites the file
            fp = ipguard.extract(model, n=2, iters=5, init="random", seed=1)
            self.assertEqual(fp.arch, "lenet5")
            self.assertEqual(fp.model_sha256, sha256(LENET))
            self.assertFalse(ipguard.verify(fp, copy)["same_file_as_target"])


class OptionsTest(unittest.TestCase):
    """Options are refused where the CLI refuses them, with one-line messages."""

    def test_an_option_the_method_does_not_read_is_refused(self):
        with self.assertRaisesRegex(ValueError, r"^k does not apply to method random$"):
            ipguard.extract(LENET, method="random", n=2, k=5)
        with self.assertRaisesRegex(ValueError, r"^eps does not apply to method ipguard$"):
            ipguard.extract(LENET, n=2, iters=5, eps=0.1)
        # At its default it cannot be told from one left out: taken.
        self.assertEqual(len(ipguard.extract(LENET, method="random", n=2, k=1.0, init="random")), 2)

    def test_seeds_outside_the_unsigned_64_bit_range_are_value_errors(self):
        for bad in (-1, 2**64):
            with self.assertRaisesRegex(ValueError, r"^seed must be between 0 and 18446744073709551615, not "):
                ipguard.extract(LENET, n=2, iters=5, seed=bad)
        with self.assertRaisesRegex(TypeError, r"^seed must be an int, not float$"):
            ipguard.extract(LENET, n=2, iters=5, seed=1.5)
        fp = ipguard.extract(LENET, n=2, iters=5, init="random", seed=2**64 - 1)
        self.assertEqual(fp.seed, 2**64 - 1)

    def test_a_loaded_model_runs_where_it_is_and_a_bad_device_is_refused(self):
        model = ipguard.load(LENET)
        for bad in ("tpu", "cuda:x"):
            with self.assertRaisesRegex(ValueError, r"^device '%s': unknown device" % bad):
                ipguard.extract(model, n=2, iters=5, init="random", device=bad)
            with self.assertRaisesRegex(ValueError, r"^device '%s': unknown device" % bad):
                ipguard.verify(ipguard.extract(model, n=2, iters=5, init="random"), model, device=bad)
        # Another device than the model's: refused (here without a GPU: CUDA is not there).
        if ipguard.cuda_available():
            with self.assertRaisesRegex(ValueError, r"^device 'cuda': the model is loaded on cpu"):
                ipguard.extract(model, n=2, iters=5, init="random", device="cuda")
        else:
            with self.assertRaises(RuntimeError):
                ipguard.extract(model, n=2, iters=5, init="random", device="cuda")
        # The model's own device, named or left out, or auto: it runs there.
        for ok in (None, "cpu", "auto"):
            fp = ipguard.extract(model, n=2, iters=5, init="random", device=ok)
            self.assertEqual(ipguard.verify(fp, model, device=ok)["matching_rate"], 1.0)

class CallableLabelsTest(unittest.TestCase):
    def test_a_huge_unsigned_label_is_named_as_given(self):
        fp = ipguard.extract(LENET, n=2, iters=5, init="random", seed=1)
        big = 2**63 + 5
        with self.assertRaisesRegex(ValueError, r"returned label %d for point 0; labels are class" % big):
            ipguard.verify(fp, lambda p: np.full(len(p), big, np.uint64))
        ok = ipguard.verify(fp, lambda p: fp.labels.astype(np.uint64)[: len(p)])
        self.assertEqual(ok["matching_rate"], 1.0)


class Server(http.server.ThreadingHTTPServer):
    """An Open Inference Protocol server for LeNet-5 inputs whose inference always fails
    with HTTP 500; it counts the inference requests."""
    daemon_threads = True

    def __init__(self):
        self.posts = 0
        super().__init__(("127.0.0.1", 0), Handler)


class Handler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def answer(self, code, obj):
        body = json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        if self.path.endswith("/ready"):
            return self.answer(200, {})
        self.answer(200, {"name": "m",
                          "inputs": [{"name": "x", "datatype": "FP32", "shape": [-1, 1, 28, 28]}],
                          "outputs": [{"name": "y", "datatype": "FP32", "shape": [-1, 10]}]})

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.server.posts += 1
        self.answer(500, {"error": "broken"})


class AddressLimitsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.fp = ipguard.extract(LENET, n=4, iters=5, init="random", seed=1)

    def setUp(self):
        self.server = Server()
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.url = "http://127.0.0.1:%d/v2/models/m" % self.server.server_address[1]

    def tearDown(self):
        self.server.shutdown()
        self.server.server_close()

    def verify(self, **kw):
        try:
            return ipguard.verify(self.fp, self.url, **kw)
        except NotImplementedError as e:
            self.skipTest(str(e))

    def test_retries_are_the_callers(self):
        with self.assertRaisesRegex(RuntimeError, r"points 0-3: HTTP 500 \(broken\); 0 of 4 points answered$"):
            self.verify(retries=0)
        self.assertEqual(self.server.posts, 1)
        with self.assertRaisesRegex(RuntimeError, r"HTTP 500 .*after 2 attempts"):
            self.verify(retries=1)
        self.assertEqual(self.server.posts, 3)

    def test_max_queries_caps_the_points_sent(self):
        # 4 points in one batch: the first try uses the whole budget of 4, no retry is sent.
        with self.assertRaises(RuntimeError):
            self.verify(max_queries=4, retries=3)
        self.assertEqual(self.server.posts, 1)

    def test_bad_limits_are_refused_before_any_query(self):
        for kw, message in [({"timeout": 0}, "timeout must be more than 0"),
                            ({"timeout": float("nan")}, "timeout must be more than 0"),
                            ({"retries": -1}, "retries must be at least 0"),
                            ({"max_queries": -1}, "max_queries must be 0"),
                            ({"max_queries": 3}, "max_queries 3 is below the 4 points"),
                            ({"max_rate": -1.0}, "max_rate must be 0"),
                            ({"max_rate": float("inf")}, "max_rate must be 0")]:
            with self.assertRaisesRegex(ValueError, message):
                self.verify(**kw)
        self.assertEqual(self.server.posts, 0)


class InterruptingHandler(Handler):
    """Answers every inference with label 0; the first one also sends this process SIGINT,
    as Ctrl-C would while the request is in flight."""

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
        self.server.posts += 1
        if self.server.posts == 1:
            os.kill(os.getpid(), signal.SIGINT)
        n = body["inputs"][0]["shape"][0]
        self.answer(200, {"model_name": "m", "outputs": [
            {"name": "y", "datatype": "INT64", "shape": [n], "data": [0] * n}]})


class InterruptTest(AddressLimitsTest):
    def setUp(self):
        self.server = Server()
        self.server.RequestHandlerClass = InterruptingHandler
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.url = "http://127.0.0.1:%d/v2/models/m" % self.server.server_address[1]

    def test_ctrl_c_stops_before_the_next_request(self):
        # 4 points, one per request: the signal came during the first, so no second is sent.
        with self.assertRaises(KeyboardInterrupt):
            self.verify(batch=1)
        self.assertEqual(self.server.posts, 1)
        self.server.posts = 10  # no more signals: the same verify runs to its end
        self.assertEqual(self.verify(batch=1)["points"], 4)
        self.assertEqual(self.server.posts, 14)

    # The limits' tests are AddressLimitsTest's (its server fails every request).
    test_retries_are_the_callers = None
    test_max_queries_caps_the_points_sent = None
    test_bad_limits_are_refused_before_any_query = None


if __name__ == "__main__":
    main()
