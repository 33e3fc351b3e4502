"""ipguard.experiment on the shipped zoo, kept small (the Random baseline, one mode, a few
points): the tables as plain dicts, the record, the results folder and its resume."""
import json
import os
import tempfile
import unittest

from common import ZOO, ipguard, main

SMALL = dict(grid="random", modes="RL", n=8, seed=1, as_pandas=False)


class ExperimentTest(unittest.TestCase):
    def test_tables_and_record(self):
        phases = set()
        r = ipguard.experiment(ZOO, progress=lambda p: phases.add(p["phase"]), **SMALL)
        self.assertTrue({"loading", "done"} <= phases)
        t4 = r["table4"]
        self.assertEqual(set(t4), {"title", "columns", "rows", "notes"})
        self.assertIn("Table 4", t4["title"])
        self.assertTrue(t4["rows"])
        for row in t4["rows"]:
            self.assertEqual(len(row), len(t4["columns"]))
        self.assertTrue(any("random" in " ".join(row).lower() for row in t4["rows"]))
        self.assertEqual(len(r["table5"]), 1)
        self.assertIn("Table 8", r["table8"]["title"])
        results = r["results"]["settings"]
        self.assertEqual(len(results), 1)
        self.assertTrue(0 <= results[0]["aruc"] <= 1)
        self.assertEqual(r["results"]["parameters"]["n"], 8)
        self.assertIsNone(r["out"])

    def test_share_batch(self):
        # Random under two modes: one batch group of 2, each setting its own result.
        small = dict(SMALL, modes="RL,RR")
        alone = ipguard.experiment(ZOO, **small)["results"]
        shared = ipguard.experiment(ZOO, share_batch=True, **small)["results"]
        self.assertFalse(alone["parameters"]["share_batch"])
        self.assertTrue(shared["parameters"]["share_batch"])
        self.assertEqual([s["shared_batch_with"] for s in shared["settings"]], [2, 2])
        for a, b in zip(alone["settings"], shared["settings"]):
            self.assertEqual(a["rates"], b["rates"])
            self.assertEqual(a["mode"], b["mode"])

    def test_results_folder_and_resume(self):
        with tempfile.TemporaryDirectory() as tmp:
            out = os.path.join(tmp, "results")
            first = ipguard.experiment(ZOO, out=out, **SMALL)
            self.assertTrue(os.path.isfile(os.path.join(out, "report.html")))
            with open(os.path.join(out, "results.json")) as f:
                self.assertEqual(json.load(f)["settings"][0]["aruc"],
                                 first["results"]["settings"][0]["aruc"])
            with self.assertRaisesRegex(ValueError, "resume"):
                ipguard.experiment(ZOO, out=out, **SMALL)
            again = ipguard.experiment(ZOO, out=out, resume=True, **SMALL)
            # Resumed, not run again: marked so, and otherwise the first run's record (its
            # timings included, which a new run would not reproduce).
            old, new = first["results"]["settings"][0], again["results"]["settings"][0]
            self.assertFalse(old["timed_in_earlier_run"])
            self.assertTrue(new.pop("timed_in_earlier_run"))
            old.pop("timed_in_earlier_run")
            self.assertEqual(new, old)
            self.assertEqual(again["table4"]["rows"], first["table4"]["rows"])

    def test_refusals(self):
        with self.assertRaisesRegex(ValueError, "nonsense"):
            ipguard.experiment(ZOO, grid="nonsense", as_pandas=False)
        with self.assertRaisesRegex(ValueError, "no-such-zoo"):
            ipguard.experiment("no-such-zoo", as_pandas=False)
        with self.assertRaisesRegex(ValueError, "resume needs out"):
            ipguard.experiment(ZOO, resume=True, as_pandas=False)
        with self.assertRaisesRegex(ValueError, "preset"):
            ipguard.experiment(ZOO, preset="huge", as_pandas=False)


if __name__ == "__main__":
    main()
