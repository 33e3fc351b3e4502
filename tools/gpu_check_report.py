#!/usr/bin/env python3
"""Helpers of tools/gpu-check (standard library only, any Python 3.8+):
  probe         the environment as JSON: GPU, driver, CUDA toolkit, the cudart / cuBLAS /
                cuDNN our binaries resolve (path and version, read through ctypes), PyTorch
  show-env      prints a probe's JSON as a short table
  test-summary  one line from a gtest JSON (and its console log): passed / failed /
                skipped, overall and for the CUDA tests
  write         report.json and report.md from everything a run left in its work folder,
                plus the raw files (at most 8 files in all, as the device call returns)
"""
import argparse
import fnmatch
import glob
import json
import os
import platform
import re
import shutil
import socket
import subprocess
import sys
import time

CUDA_LIBS = ["libcudart.so.13", "libcublas.so.13", "libcublasLt.so.13", "libcudnn.so.9"]

# Run in a child with the binaries' LD_LIBRARY_PATH, so that cuBLAS finds its cuBLASLt and
# the versions are those of the very files our binaries load.
VERSION_PROBE = r"""
import ctypes, json, sys
out = {}
for name, path in json.loads(sys.argv[1]).items():
    try:
        lib = ctypes.CDLL(path)
        v = ctypes.c_int(0)
        if name.startswith("libcudart"):
            lib.cudaRuntimeGetVersion(ctypes.byref(v)); rt = v.value
            lib.cudaDriverGetVersion(ctypes.byref(v))
            out[name] = "runtime %d, driver supports %d" % (rt, v.value)
        elif name.startswith("libcublas.so"):
            parts = []
            for t in range(3):
                lib.cublasGetProperty(t, ctypes.byref(v)); parts.append(str(v.value))
            out[name] = ".".join(parts)
        elif name.startswith("libcublasLt"):
            lib.cublasLtGetVersion.restype = ctypes.c_size_t
            out[name] = str(lib.cublasLtGetVersion())
        elif name.startswith("libcudnn.so"):
            lib.cudnnGetVersion.restype = ctypes.c_size_t
            out[name] = str(lib.cudnnGetVersion())
    except Exception as e:
        out[name] = "unreadable: %s" % e
print(json.dumps(out))
"""


def sh(cmd, env=None, timeout=60):
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout)
        return (r.stdout + r.stderr).strip() if r.returncode == 0 else ""
    except (OSError, subprocess.SubprocessError):
        return ""


def which(name, *fallbacks):
    return shutil.which(name) or next((f for f in fallbacks if os.access(f, os.X_OK)), None)


def probe(a):
    env = dict(os.environ, LD_LIBRARY_PATH=a.ld_path)
    info = {"date_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "host": socket.gethostname(), "kernel": platform.release(),
            "cpu": "", "cpu_count": os.cpu_count(), "ld_library_path": a.ld_path}
    for line in open("/proc/cpuinfo", errors="replace"):
        if line.startswith("model name"):
            info["cpu"] = line.split(":", 1)[1].strip()
            break
    smi = sh(["nvidia-smi", "--query-gpu=name,driver_version,memory.total,compute_cap",
              "--format=csv,noheader"])
    info["gpu"] = smi.splitlines()[0] if smi else None
    nvcc = which("nvcc", "/usr/local/cuda/bin/nvcc")
    info["nvcc"] = (re.findall(r"release [\d.]+, V[\d.]+", sh([nvcc, "--version"])) or [None])[0] \
        if nvcc else None
    san = which("compute-sanitizer", "/usr/local/cuda/bin/compute-sanitizer")
    info["compute_sanitizer"] = (sh([san, "--version"]).splitlines() or [None])[-1] if san else None
    if a.torch_python:
        code = ("import json, torch; print(json.dumps({'torch': torch.__version__,"
                " 'cuda': torch.version.cuda, 'cudnn': torch.backends.cudnn.version(),"
                " 'gpu': torch.cuda.get_device_name(0) if torch.cuda.is_available() else None}))")
        t = sh([a.torch_python, "-c", code], timeout=120)
        info["python"] = sh([a.torch_python, "--version"])
        info["pytorch"] = json.loads(t.splitlines()[-1]) if t else None
        # Whether our Python module could be built there (issue: the module is built for
        # the development machine's Python and cannot load in another): its headers and
        # pybind11's.
        code = ("import json, os, sysconfig\n"
                "inc = sysconfig.get_paths()['include']\n"
                "try:\n import pybind11; pb = pybind11.get_include()\n"
                "except Exception as e:\n pb = None\n"
                "print(json.dumps({'include': inc,"
                " 'python_h': os.path.exists(os.path.join(inc, 'Python.h')),"
                " 'pybind11': pb, 'numpy_ok': __import__('importlib').util.find_spec('numpy')"
                " is not None}))")
        t = sh([a.torch_python, "-c", code], timeout=60)
        try:
            info["python_build"] = json.loads(t.splitlines()[-1]) if t else None
        except ValueError:
            info["python_build"] = None
    # Which CUDA libraries our binary loads: ldd for those it needs, else the first on the path.
    libs, needed = {}, {}
    if a.binary and os.path.exists(a.binary):
        for line in sh(["ldd", a.binary], env=env).splitlines():
            m = re.match(r"\s*(\S+) => (.*?)(?: \(0x[0-9a-f]+\))?$", line)
            if m:
                needed[m.group(1)] = m.group(2)
        info["binary_needs_not_found"] = sorted(k for k, v in needed.items() if "not found" in v)
    for name in CUDA_LIBS:
        path = needed.get(name)
        used = path is not None
        if not path:
            for d in a.ld_path.split(":"):
                if d and os.path.exists(os.path.join(d, name)):
                    path = os.path.join(d, name)
                    break
        if path and "not found" not in path:
            libs[name] = {"path": os.path.realpath(path), "loaded_by_binary": used}
    versions = {}
    if libs:
        out = sh([sys.executable, "-c", VERSION_PROBE,
                  json.dumps({k: v["path"] for k, v in libs.items()})], env=env)
        versions = json.loads(out) if out else {}
    for k in libs:
        libs[k]["version"] = versions.get(k, "unreadable")
    info["cuda_libraries"] = libs
    if a.manifest and os.path.exists(a.manifest):
        info["pack"] = json.load(open(a.manifest))
    # The code that ran is the binaries': a pack names the commit it was built at (the
    # device's copy of the repository may carry an older HEAD, with later work as
    # uncommitted files), so that commit is the report's; the tree's own is kept apart.
    commit = sh(["git", "-C", a.repo, "rev-parse", "HEAD"])
    pack = info.get("pack") or {}
    if pack.get("commit") and pack["commit"] != "unknown":
        info["commit"] = pack["commit"]
        info["uncommitted_files"] = pack.get("uncommitted_files", 0)
        info["commit_source"] = "pack"
        info["tree_commit"] = commit
    else:
        info["commit"] = commit
        info["commit_source"] = "tree"
        if commit:
            status = sh(["git", "-C", a.repo, "status", "--porcelain"])
            info["uncommitted_files"] = len(status.splitlines())
    print(json.dumps(info, indent=1))


def show_env(a):
    info = json.load(open(a.env))
    for k in ["date_utc", "host", "cpu", "cpu_count", "gpu", "nvcc", "compute_sanitizer", "python",
              "pytorch", "python_build", "commit"]:
        print("  %-18s %s" % (k, info.get(k)))
    for k, v in info.get("cuda_libraries", {}).items():
        print("  %-18s %s (%s%s)" % (k, v["version"], v["path"],
                                     "" if v["loaded_by_binary"] else "; not loaded by ipg_tests"))
    if info.get("binary_needs_not_found"):
        print("  NOT FOUND:         %s" % ", ".join(info["binary_needs_not_found"]))


# ---------------------------------------------------------------- tests


def is_cuda_test(name, patterns):
    return any(fnmatch.fnmatchcase(name, p) for p in patterns)


def parse_tests(path, log, cuda_filter):
    """Every test with its result, from the gtest JSON; skip reasons from the console log."""
    patterns = cuda_filter.split(":")
    reasons, started = {}, []
    if log and os.path.exists(log):
        current, skipped_at = None, False
        for line in open(log, errors="replace"):
            m = re.match(r"\[ RUN      \] (\S+)", line)
            if m:
                current, skipped_at = m.group(1), False
                started.append(current)
            elif current and line.rstrip().endswith(": Skipped"):
                skipped_at = True
            elif current and skipped_at and not line.startswith("["):
                reasons[current] = (reasons.get(current, "") + " " + line.strip()).strip()
    tests = []
    if os.path.exists(path):
        for suite in json.load(open(path)).get("testsuites", []):
            for t in suite.get("testsuite", []):
                name = "%s.%s" % (suite["name"], t["name"])
                if t.get("status") == "NOTRUN":
                    continue
                fails = [f.get("failure", "") for f in t.get("failures", [])]
                skipped = t.get("result") == "SKIPPED"
                result = "failed" if fails else ("skipped" if skipped else "passed")
                cuda = is_cuda_test(name, patterns) or "CUDA" in reasons.get(name, "")
                tests.append({"name": name, "result": result, "time": t.get("time"), "cuda": cuda,
                              "message": (fails[0] if fails else reasons.get(name, ""))[:400]})
    return tests, started


def counts(tests):
    c = {"passed": 0, "failed": 0, "skipped": 0}
    for t in tests:
        c[t["result"]] += 1
    return c


def test_summary(a):
    tests, started = parse_tests(a.json, a.log, a.cuda_filter)
    if not tests:
        last = started[-1] if started else "none"
        print("no test results (crashed or timed out?); last test started: %s" % last)
        return 1
    c, cc = counts(tests), counts([t for t in tests if t["cuda"]])
    line = ("%d tests: %d passed, %d failed, %d skipped; "
            "CUDA tests: %d passed, %d failed, %d skipped") % (
        len(tests), c["passed"], c["failed"], c["skipped"],
        cc["passed"], cc["failed"], cc["skipped"])
    if a.exit_code not in (0, 1) and len(tests) < len(started):
        line += "; binary died in %s" % started[-1]
    print(line)
    if a.expect_gpu and cc["skipped"]:
        print("%d CUDA tests SKIPPED although a GPU is present" % cc["skipped"])
        return 3
    return 0


# ---------------------------------------------------------------- report


def load(path):
    try:
        return json.load(open(path))
    except (OSError, ValueError):
        return None


def si(v, unit):
    if v is None:
        return ""
    for f, p in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(v) >= f:
            return "%.3g %s%s" % (v / f, p, unit)
    return "%.3g %s" % (v, unit)


def bench_rows(doc):
    rows = []
    for b in doc.get("benchmarks", []):
        if b.get("run_type") == "aggregate" and b.get("aggregate_name") != "median":
            continue
        name = re.sub(r"/(real|manual)_time$", "", b.get("run_name", b["name"]))
        scale = {"ns": 1e-3, "us": 1.0, "ms": 1e3, "s": 1e6}[b.get("time_unit", "ns")]
        rows.append({"case": name, "time_us": b.get("real_time", 0) * scale,
                     "flops": b.get("FLOP/s"), "bytes": b.get("bytes_per_second"),
                     "images": b.get("images/s"), "roofline": b.get("roofline"),
                     "label": b.get("label", ""), "error": b.get("error_message")})
    return rows


def write(a):
    work, out = a.work, a.out
    env = load(os.path.join(work, "env.json")) or {}
    steps = []
    for line in open(a.steps):
        name, status, secs, note = (line.rstrip("\n").split("\t") + ["", "", "", ""])[:4]
        steps.append({"step": name, "status": status, "seconds": int(secs or 0), "note": note})
    tests, _ = parse_tests(os.path.join(work, "tests.json"), os.path.join(work, "tests.out"),
                           a.cuda_filter)
    benches = {os.path.basename(p)[:-5]: load(p)
               for p in sorted(glob.glob(os.path.join(work, "bench_*.json")))}
    torch_runs = {os.path.basename(p)[len("compare_torch_"):-5]: load(p)
                  for p in sorted(glob.glob(os.path.join(work, "compare_torch_*.json")))}
    doctor = load(os.path.join(work, "doctor.json"))
    report = {"format": "ipguard-gpu-check", "version": 1, "mode": a.mode, "quick": a.quick == "1",
              "environment": env, "steps": steps, "doctor": doctor,
              "tests": {"summary": counts(tests), "cuda": counts([t for t in tests if t["cuda"]]),
                        "cuda_filter": a.cuda_filter, "cases": tests},
              "benchmarks": {k: {"context": (v or {}).get("context"),
                                 "results": bench_rows(v or {})} for k, v in benches.items()},
              "compare_torch": torch_runs,
              "ok": all(s["status"] != "failed" for s in steps)}
    json.dump(report, open(os.path.join(out, "report.json"), "w"), indent=1)

    # Raw files next to the report: 3 + these 4 stay within the device call's 8 files.
    if os.path.exists(os.path.join(work, "tests.json")):
        shutil.copy(os.path.join(work, "tests.json"), out)
    if benches:
        json.dump(benches, open(os.path.join(out, "benchmarks.json"), "w"), indent=1)
    if torch_runs:
        json.dump(torch_runs, open(os.path.join(out, "compare_torch.json"), "w"), indent=1)
    if os.path.exists(os.path.join(work, "sanitizer.txt")):
        shutil.copy(os.path.join(work, "sanitizer.txt"), out)

    md = []
    title = env.get("gpu") or "no GPU (CPU rehearsal)"
    md += ["# ipguard GPU check: %s" % title, "",
           "%s, mode **%s**%s, commit `%s`%s%s." % (
               env.get("date_utc", "?"), a.mode, " (quick)" if a.quick == "1" else "",
               env.get("commit"), " + %s uncommitted files" % env["uncommitted_files"]
               if env.get("uncommitted_files") else "",
               " (the pack's build)" if env.get("commit_source") == "pack" else ""),
           "Overall: **%s**." % ("passed" if report["ok"] else "FAILED"), "", "## Environment", "",
           "| | |", "|---|---|"]
    for k in ["host", "cpu", "cpu_count", "gpu", "nvcc", "compute_sanitizer", "python", "pytorch",
              "python_build"]:
        v = env.get(k)
        if isinstance(v, dict):
            v = ", ".join("%s %s" % kv for kv in v.items())
        md.append("| %s | %s |" % (k, v))
    for k, v in env.get("cuda_libraries", {}).items():
        note = "" if v["loaded_by_binary"] else " (not linked by ipg_tests)"
        md.append("| %s | %s, `%s`%s |" % (k, v["version"], v["path"], note))
    pack = env.get("pack")
    if pack:
        b = pack["build"]
        md.append("| pack | built %s on %s, nvcc %s, sm_%s, cuDNN headers %s |" % (
            pack["created"], pack["host"], b["nvcc"], b["cuda_architectures"], b["cudnn_headers"]))
    md += ["", "## Steps", "", "| step | status | s | note |", "|---|---|---|---|"]
    md += ["| %s | %s | %d | %s |" % (s["step"], s["status"], s["seconds"], s["note"])
           for s in steps]
    c, cc = report["tests"]["summary"], report["tests"]["cuda"]
    md += ["", "## Tests", "",
           "All: %d passed, %d failed, %d skipped. "
           "CUDA tests (`%s`): %d passed, %d failed, %d skipped." % (
               c["passed"], c["failed"], c["skipped"], a.cuda_filter, cc["passed"], cc["failed"],
               cc["skipped"]), "", "| CUDA test | result | time | message |", "|---|---|---|---|"]
    md += ["| %s | %s | %s | %s |" % (t["name"], t["result"], t["time"],
                                      t["message"].replace("|", "/").replace("\n", " ")[:160])
           for t in tests if t["cuda"]]
    failed = [t for t in tests if t["result"] == "failed" and not t["cuda"]]
    if failed:
        md += ["", "Other failed tests:", ""]
        md += ["- %s: %s" % (t["name"], t["message"][:200].replace("\n", " ")) for t in failed]
    for name, doc in report["benchmarks"].items():
        ctx = doc["context"] or {}
        md += ["", "## %s" % name, ""]
        for dev in ("cpu", "cuda"):
            if ctx.get("roofline_%s_flops_per_s" % dev):
                md.append("- roofline %s: %s (%s), %s (%s)" % (
                    dev, si(float(ctx["roofline_%s_flops_per_s" % dev]), "FLOP/s"),
                    ctx.get("roofline_%s_flops_source" % dev),
                    si(float(ctx["roofline_%s_bytes_per_s" % dev]), "B/s"),
                    ctx.get("roofline_%s_bytes_source" % dev)))
        # label: e.g. whether a frozen-network case ran the fused graph ("fused") or why not.
        md += ["", "| case | time (us) | FLOP/s | bytes/s | images/s | roofline | label |",
               "|---|---|---|---|---|---|---|"]
        for r in doc["results"]:
            md.append("| %s | %s | %s | %s | %s | %s | %s |" % (
                r["case"], "%.1f" % r["time_us"] if not r["error"] else "error: " + r["error"],
                si(r["flops"], ""), si(r["bytes"], "B"), si(r["images"], ""),
                "%.3f" % r["roofline"] if r["roofline"] is not None else "",
                (r.get("label") or "").replace("|", "/")[:120]))
    for dev, doc in torch_runs.items():
        if not doc:
            continue
        md += ["", "## PyTorch side by side (%s, torch %s, %s threads)" % (
                   dev, doc.get("torch"), doc.get("threads")), "",
               "Medians of %s runs; ours/pytorch below 1 means ours is faster." % (
                   doc.get("repetitions")), "",
               "| case | ours (us) | pytorch eager (us) | ours/eager | pytorch CUDA graph (us) "
               "| ours/graph | labels |",
               "|---|---|---|---|---|---|---|"]
        for r in doc["cases"]:
            md.append("| %s | %s | %s | %s | %s | %s | %s |" % (
                r["case"], "%.1f" % (r["ours_s"] * 1e6) if r["ours_s"] else "-",
                "%.1f" % (r["torch_s"] * 1e6) if r["torch_s"] else "-",
                "%.2f" % r["ratio"] if r["ratio"] else "-",
                "%.1f" % (r["torch_graph_s"] * 1e6) if r.get("torch_graph_s") else
                (r.get("torch_graph_error", "-")[:60] if r.get("torch_graph_error") else "-"),
                "%.2f" % r["ratio_graph"] if r.get("ratio_graph") else "-", r["labels"] or ""))
    san = os.path.join(work, "sanitizer.txt")
    if os.path.exists(san):
        lines = [line.rstrip() for line in open(san, errors="replace")
                 if "ERROR SUMMARY" in line or "=========" in line]
        md += ["", "## compute-sanitizer (memcheck)", "", "```"] + lines[-15:] + ["```"]
    open(os.path.join(out, "report.md"), "w").write("\n".join(md) + "\n")


def experiment_compare(a):
    """Two `experiment --json` records of one grid, settings alone (a) and sharing batches
    (b): their extraction times, and how far the results agree (on a GPU a different batch
    may change last bits, and so a point or two). Fails when a setting's matching rates
    differ by more than --max-rate-diff or its converged count by more than 5% of n."""
    docs = []
    for path in (a.alone, a.shared):
        text = open(path).read()
        start = text.index("{") if text.startswith("{") else text.index("\n{") + 1
        docs.append(json.loads(text[start:]))
    alone, shared = docs[0]["settings"], docs[1]["settings"]
    if len(alone) != len(shared) or not alone:
        print("settings: %d alone, %d shared" % (len(alone), len(shared)))
        return 1
    worst, bad = 0.0, []
    for x, y in zip(alone, shared):
        rx = [r["rate"] for g in ("positive", "negative") for r in x["rates"][g]]
        ry = [r["rate"] for g in ("positive", "negative") for r in y["rates"][g]]
        d = max(abs(u - v) for u, v in zip(rx, ry))
        worst = max(worst, d)
        if d > a.max_rate_diff or abs(x["converged"] - y["converged"]) > 0.05 * x["points"]:
            bad.append("%s %s=%s %s" % (x["method"], "k", x.get("param"), x["mode"]))
    # Per method (each method's settings share their own batch): its extraction seconds
    # alone and shared, and the batches' sizes.
    parts = []
    for method in dict.fromkeys(s["method"] for s in alone):
        ta = sum(s["extract_seconds"] for s in alone if s["method"] == method)
        ts = sum(s["extract_seconds"] for s in shared if s["method"] == method)
        groups = sorted({s["shared_batch_with"] for s in shared if s["method"] == method})
        parts.append("%s %.2f s alone, %.2f s shared (of %s; %.2fx)" % (
            method, ta, ts, "/".join(map(str, groups)), ta / ts if ts > 0 else float("nan")))
    print("%d settings: extraction %s; matching rates differ by at most %.3f%s" % (
        len(alone), ", ".join(parts), worst, "; differ: " + ", ".join(bad) if bad else ""))
    return 1 if bad else 0


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("probe")
    p.add_argument("--ld-path", default="")
    p.add_argument("--torch-python")
    p.add_argument("--binary")
    p.add_argument("--manifest")
    p.add_argument("--repo", default=".")
    p = sub.add_parser("show-env")
    p.add_argument("env")
    p = sub.add_parser("test-summary")
    p.add_argument("json")
    p.add_argument("--log")
    p.add_argument("--cuda-filter", default="*Cuda*:*CUDA*:*Gpu*:*GPU*")
    p.add_argument("--exit-code", type=int, default=0)
    p.add_argument("--expect-gpu", action="store_true")
    p = sub.add_parser("write")
    for k in ("--work", "--steps", "--out", "--mode", "--quick", "--cuda-filter"):
        p.add_argument(k, required=True)
    p = sub.add_parser("experiment-compare")
    p.add_argument("alone")
    p.add_argument("shared")
    p.add_argument("--max-rate-diff", type=float, default=0.05)
    a = ap.parse_args()
    commands = {"probe": probe, "show-env": show_env, "test-summary": test_summary, "write": write,
                "experiment-compare": experiment_compare}
    return commands[a.cmd](a) or 0


if __name__ == "__main__":
    sys.exit(main())
