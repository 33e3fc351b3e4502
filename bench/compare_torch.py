#!/usr/bin/env python3
"""Side by side with PyTorch: the cases of our benchmark binary, run again in PyTorch eager
mode on the same device with the same shapes (and, for the MLP, the same weights and
inputs: hashed_uniform below reproduces bench/common.cpp bit for bit), timed the same way.

Our side is read from `bench_kernels --benchmark_format=json` (medians of repetitions);
the PyTorch side is timed here: wall clock per iteration on the CPU, CUDA events around
each iteration on a GPU, as our harness does; the median of --repetitions runs. The table
gives both times and ours/PyTorch (below 1: we are faster). For classifying cases the two
must agree on every label (exit status 1 otherwise).

Cases are taken from the binary's own list (--benchmark_list_tests), so a case added there
is compared here as soon as a PyTorch twin exists in TWINS below.

Whole models (--arch lenet5,resnet20,...|all): bench_models (model_forward,
model_input_grad at batch 1/100/256) and bench_train (model_train_step, batch 128) run
with IPG_BENCH_MODELS_DIR set, so they write the seeded weights they use as native model
files; the twins of tools/torch_models.py load those files (load_ipguard), so both sides
run the same weights on the same hashed_uniform inputs, and model_forward's labels are
checked. --weights m.h5 makes both sides use that file instead (for its architecture).
"""
import argparse
import json
import math
import os
import re
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)

# Families per suite; `--suite` picks among them.
SUITES = {
    "ops": ["roofline_sgemm", "roofline_copy", "roofline_triad", "add", "relu", "sum", "matmul",
            "linear"],
    "mlp": ["mlp_forward", "mlp_input_grad", "mlp_train_step"],
    "conv": ["conv2d_forward", "conv2d_input_grad"],
}
# Whole-model families (--arch), each in its own binary.
MODEL_FAMILIES = {"bench_models": ["model_forward", "model_input_grad", "model_boundary_step",
                                    "model_boundary_step_graph"],
                  "bench_train": ["model_train_step"]}
ARCHS = ["lenet5", "resnet20", "wrn-22-4", "vgg16", "resnet50"]
MODEL_FILES = {}  # arch -> native model file both sides use (set in main)

try:
    import numpy as np
    import torch
    import torch.nn.functional as F
    TORCH_ERROR = None
except ImportError as e:  # degrade: our numbers alone, with the reason
    torch = None
    TORCH_ERROR = str(e)


def hashed_uniform(shape, seed, lo, hi):
    """bench/common.cpp hashed_uniform: MurmurHash3's finalizer of i + seed * 0x9E3779B9,
    its top 24 bits as u in [0, 1), then lo + (hi - lo) * u, all in float32."""
    n = math.prod(shape)
    h = np.arange(n, dtype=np.uint32) + np.uint32((seed * 0x9E3779B9) & 0xFFFFFFFF)
    h ^= h >> np.uint32(16)
    h *= np.uint32(0x85EBCA6B)
    h ^= h >> np.uint32(13)
    h *= np.uint32(0xC2B2AE35)
    h ^= h >> np.uint32(16)
    u = (h >> np.uint32(8)).astype(np.float32) * np.float32(1.0 / 16777216.0)
    lo, hi = np.float32(lo), np.float32(hi)
    return (lo + (hi - lo) * u).reshape(shape)


def tensor(shape, seed, lo, hi, dev):
    return torch.from_numpy(hashed_uniform(shape, seed, lo, hi)).to(dev)


# ---------------------------------------------------------------- PyTorch twins
# Each twin takes the case's parameters and the context of our run, and returns
# (one_iteration, labels) where labels is a callable giving the predicted classes or None.

MLP_DIMS = [784, 512, 256, 10]


def mlp(dev, trainable):
    layers = []
    for i in range(3):
        fan_in, out = MLP_DIMS[i], MLP_DIMS[i + 1]
        s = float(np.float32(1.0 / math.sqrt(fan_in)))
        w = tensor([out, fan_in], 100 + i, -s, s, dev).requires_grad_(trainable)
        b = tensor([out], 200 + i, -s, s, dev).requires_grad_(trainable)
        layers.append((w, b))

    def logits(x):
        for i, (w, b) in enumerate(layers):
            x = F.linear(x, w, b)
            if i < 2:
                x = torch.relu(x)
        return x
    return layers, logits


def mlp_loss(ctx):
    if ctx.get("mlp_loss", "mean") == "cross_entropy":
        return F.cross_entropy
    return lambda logits, y: logits.mean()


def twin_mlp_forward(p, dev, ctx):
    _, logits = mlp(dev, False)
    x = tensor([p["b"], 784], 1, 0.0, 1.0, dev)

    def run():
        with torch.no_grad():
            return logits(x)
    return run, lambda: run().argmax(dim=1).tolist()


def twin_mlp_input_grad(p, dev, ctx):
    _, logits = mlp(dev, False)
    x = tensor([p["b"], 784], 1, 0.0, 1.0, dev).requires_grad_(True)
    y = torch.arange(p["b"], device=dev) % 10
    loss = mlp_loss(ctx)

    def run():
        x.grad = None
        loss(logits(x), y).backward()
        return x.grad
    return run, None


def twin_mlp_train_step(p, dev, ctx):
    layers, logits = mlp(dev, True)
    x = tensor([p["b"], 784], 1, 0.0, 1.0, dev)
    y = torch.arange(p["b"], device=dev) % 10
    loss = mlp_loss(ctx)
    opt = torch.optim.SGD([t for layer in layers for t in layer], lr=1e-3)

    def run():
        loss(logits(x), y).backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
    return run, None


def conv_operands(p, dev):
    cin, cout = (int(v) for v in p["c"].split("x"))
    k, hw, b = p["k"], p["hw"], p["b"]
    s = float(np.float32(1.0 / math.sqrt(cin * k * k)))
    x = tensor([b, cin, hw, hw], 1, 0.0, 1.0, dev)
    w = tensor([cout, cin, k, k], 100, -s, s, dev)
    bias = tensor([cout], 200, -s, s, dev)
    return x, w, bias, p["s"], k // 2


def twin_conv2d_forward(p, dev, ctx):
    x, w, bias, stride, pad = conv_operands(p, dev)

    def run():
        with torch.no_grad():
            return F.conv2d(x, w, bias, stride, pad)
    return run, None


def twin_conv2d_input_grad(p, dev, ctx):
    x, w, bias, stride, pad = conv_operands(p, dev)
    x.requires_grad_(True)

    def run():
        x.grad = None
        F.conv2d(x, w, bias, stride, pad).mean().backward()
        return x.grad
    return run, None


def torch_models():
    sys.path.insert(0, os.path.join(REPO, "tools"))
    import torch_models as tm  # tools/torch_models.py: twins of models/*.cpp
    return tm


def twin_model(p, dev):
    model, cfg = torch_models().load_ipguard(MODEL_FILES[p["arch"]])
    if (cfg.in_channels, cfg.height, cfg.width) != (p["c"], p["hw"], p["hw"]):
        raise ValueError("%s: model file is %dx%dx%d, the case %dx%dx%d" % (
            p["arch"], cfg.in_channels, cfg.height, cfg.width, p["c"], p["hw"], p["hw"]))
    x = tensor([p["b"], p["c"], p["hw"], p["hw"]], 1, 0.0, 1.0, dev)
    y = torch.arange(p["b"], device=dev) % cfg.classes
    return model.to(dev), x, y


def twin_model_forward(p, dev, ctx):
    model, x, _ = twin_model(p, dev)
    model.eval()

    def run():
        with torch.no_grad():
            return model(x)
    return run, lambda: run().argmax(dim=1).tolist()


def twin_model_input_grad(p, dev, ctx):
    model, x, y = twin_model(p, dev)
    model.eval()
    for t in model.parameters():
        t.requires_grad_(False)
    x.requires_grad_(True)

    def run():
        x.grad = None
        F.cross_entropy(model(x), y).backward()
        return x.grad
    return run, None


def twin_model_boundary_step(p, dev, ctx):
    """One iteration of IPGuard's search as a PyTorch script writes it: Eq. 5 from torch
    ops, autograd to the images, torch.optim.Adam on them, clamp to [0,1]; every row
    updated (bench_models' case freezes none either)."""
    model, x, y = twin_model(p, dev)
    model.eval()
    for t in model.parameters():
        t.requires_grad_(False)
    src, dst = y, (y + 1) % 10  # bench_models' 10 classes
    x.requires_grad_(True)
    # capturable: Adam's step count stays on the GPU, as a CUDA-graph capture needs.
    opt = torch.optim.Adam([x], lr=0.01, capturable=bool(ctx.get("capturable")))
    k = 0.01

    def run():
        opt.zero_grad(set_to_none=True)
        z = model(x)
        zi, zj = z.gather(1, src[:, None])[:, 0], z.gather(1, dst[:, None])[:, 0]
        others = z.scatter(1, src[:, None], float("-inf")).scatter(1, dst[:, None], float("-inf"))
        loss = F.relu(zi - zj + k) + F.relu(others.max(dim=1).values - zi)
        loss.sum().backward()
        opt.step()
        with torch.no_grad():
            x.clamp_(0.0, 1.0)
    return run, None


def twin_model_train_step(p, dev, ctx):
    model, x, y = twin_model(p, dev)
    model.train()
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)

    def run():
        F.cross_entropy(model(x), y).backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
    return run, None


# Families that also run as a captured CUDA graph on a GPU (torch.cuda.graphs): the
# fingerprint loop's fixed-shape iteration, whose strongest PyTorch peer is the graphed one.
GRAPHED = {"model_input_grad", "model_boundary_step", "model_boundary_step_graph"}


def graphed(run):
    """run() captured once as a CUDA graph after a warm-up on a side stream (the recipe of
    PyTorch's CUDA-graphs notes); returns the replay."""
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        for _ in range(3):
            run()
    torch.cuda.current_stream().wait_stream(side)
    g = torch.cuda.CUDAGraph()
    with torch.cuda.graph(g):
        run()
    return g.replay


def simple(make):
    return lambda p, dev, ctx: (make(p, dev), None)


def randn(*shape, dev):
    return torch.randn(*shape, device=dev)


def mm_case(p, dev):
    a, b = randn(p["m"], p["k"], dev=dev), randn(p["k"], p["n"], dev=dev)
    return lambda: a @ b


def sgemm_case(p, dev):
    n = p["n"]
    a, b, c = randn(n, n, dev=dev), randn(n, n, dev=dev), torch.empty(n, n, device=dev)
    return lambda: torch.mm(a, b, out=c)


def copy_case(p, dev):
    src, dst = randn(p["n"], dev=dev), torch.empty(p["n"], device=dev)
    return lambda: dst.copy_(src)


def triad_case(p, dev):
    a, b, c = torch.empty(p["n"], device=dev), randn(p["n"], dev=dev), randn(p["n"], dev=dev)
    return lambda: torch.add(b, c, alpha=3.0, out=a)


def add_case(p, dev):
    a, b = randn(p["n"], dev=dev), randn(p["n"], dev=dev)
    return lambda: a + b


def relu_case(p, dev):
    x = randn(p["n"], dev=dev)
    return lambda: torch.relu(x)


def sum_case(p, dev):
    x = randn(p["n"], dev=dev)
    return lambda: x.sum()


def linear_case(p, dev):
    x, w, b = randn(p["b"], p["in"], dev=dev), randn(p["out"], p["in"], dev=dev), randn(
        p["out"], dev=dev)
    return lambda: F.linear(x, w, b)


TWINS = {
    "roofline_sgemm": simple(sgemm_case),
    "roofline_copy": simple(copy_case),
    "roofline_triad": simple(triad_case),
    "add": simple(add_case),
    "relu": simple(relu_case),
    "sum": simple(sum_case),
    "matmul": simple(mm_case),
    "linear": simple(linear_case),
    "mlp_forward": twin_mlp_forward,
    "mlp_input_grad": twin_mlp_input_grad,
    "mlp_train_step": twin_mlp_train_step,
    "conv2d_forward": twin_conv2d_forward,
    "conv2d_input_grad": twin_conv2d_input_grad,
    "model_forward": twin_model_forward,
    "model_input_grad": twin_model_input_grad,
    "model_boundary_step": twin_model_boundary_step,
    # Ours replayed as a CUDA graph; PyTorch's side is the same step (eager, and graphed).
    "model_boundary_step_graph": twin_model_boundary_step,
    "model_train_step": twin_model_train_step,
}


def full_fp32():
    """No TF32 in GEMMs or convolutions: ours computes in full FP32 (PyTorch's cuDNN
    convolutions default to TF32). PyTorch 2.9 added fp32_precision and deprecated
    allow_tf32; older versions know only allow_tf32 (1.13 raises AssertionError on unknown
    names), so each setting tries the new name first."""
    errors = (AttributeError, AssertionError, RuntimeError)
    try:
        torch.backends.cuda.matmul.fp32_precision = "ieee"
    except errors:
        torch.backends.cuda.matmul.allow_tf32 = False
    try:
        torch.backends.cudnn.conv.fp32_precision = "ieee"
    except errors:
        torch.backends.cudnn.allow_tf32 = False


def parse_params(text):
    """'b=100,c=3x16,k=3' -> {'b': 100, 'c': '3x16', 'k': 3}; a bare word is the 'tag'."""
    out = {}
    for item in text.split(","):
        if "=" not in item:
            out["tag"] = item
            continue
        k, v = item.split("=", 1)
        out[k] = int(v) if re.fullmatch(r"-?\d+", v) else v
    return out


# ---------------------------------------------------------------- timing


def time_torch(fn, dev, repetitions, min_time):
    """Median seconds per iteration over `repetitions` runs of at least min_time each."""
    cuda = dev.startswith("cuda")
    for _ in range(3):  # warm-up: allocator, cuBLAS/cuDNN handles and algorithm choice
        fn()
    if cuda:
        torch.cuda.synchronize()
        start, stop = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)

    def one():
        if not cuda:
            t0 = time.perf_counter()
            fn()
            return time.perf_counter() - t0
        start.record()
        fn()
        stop.record()
        stop.synchronize()
        return start.elapsed_time(stop) * 1e-3

    per_rep = []
    for _ in range(repetitions):
        total, n = 0.0, 0
        while total < min_time or n < 1:
            total += one()
            n += 1
        per_rep.append(total / n)
    return statistics.median(per_rep)


# ---------------------------------------------------------------- our side


def run_ours(args, families, dev, binary=None, extra_filter="", extra_env=None):
    binary = binary or args.ours
    env = dict(os.environ)
    env.update(extra_env or {})
    if args.ours_ld_library_path:
        env["LD_LIBRARY_PATH"] = args.ours_ld_library_path + ":" + env.get("LD_LIBRARY_PATH", "")
    ours_dev = "cuda" if dev.startswith("cuda") else "cpu"
    base = [binary, "--ipg_device=" + ours_dev] + (["--ipg_quick"] if args.quick else [])
    filt = "^(%s)/%s/%s" % ("|".join(families), ours_dev, extra_filter)
    listing = subprocess.run(base + ["--benchmark_list_tests=true", "--benchmark_filter=" + filt],
                             env=env, capture_output=True, text=True, check=True)
    names = [n for n in listing.stdout.split() if n]
    cmd = base + ["--ipg_labels", "--benchmark_filter=" + filt, "--benchmark_format=json",
                  "--benchmark_repetitions=%d" % args.repetitions,
                  "--benchmark_report_aggregates_only=true",
                  "--benchmark_min_time=%g" % args.min_time]
    print("ours: " + " ".join(cmd), file=sys.stderr, flush=True)
    res = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if res.returncode != 0:
        sys.exit("compare_torch: %s failed (exit %d):\n%s" % (binary, res.returncode,
                                                                res.stderr[-2000:]))
    try:
        doc = json.loads(res.stdout)
    except ValueError:
        sys.exit("compare_torch: %s printed no JSON (filter %s):\n%s" % (binary, filt,
                                                                        res.stderr[-2000:]))
    results = {}
    for b in doc.get("benchmarks", []):
        if b.get("aggregate_name") != "median":
            continue
        name = re.sub(r"/(real|manual)_time$", "", b["run_name"])
        scale = {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1.0}[b["time_unit"]]
        results[name] = {"seconds": b["real_time"] * scale, "roofline": b.get("roofline"),
                         "label": b.get("label", ""), "error": b.get("error_message")}
    cases = [re.sub(r"/(real|manual)_time$", "", n) for n in names]
    return cases, results, doc.get("context", {})


# ---------------------------------------------------------------- main


def fmt_time(s):
    if s is None:
        return "-"
    return "%.1f us" % (s * 1e6) if s < 1e-3 else "%.2f ms" % (s * 1e3)


def main():
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="auto",
                    help="cpu, cuda or auto (cuda when PyTorch sees a GPU)")
    ap.add_argument("--suite", default=None,
                    help="comma-separated: " + ", ".join(SUITES) +
                    " (default all; none when --arch is given)")
    ap.add_argument("--arch", default="",
                    help="whole models, comma-separated or 'all': " + "|".join(ARCHS) +
                    " (bench_models and bench_train next to --ours)")
    ap.add_argument("--families", default="model_forward,model_input_grad,model_train_step",
                    help="whole-model families for --arch")
    ap.add_argument("--weights", help="HDF5 model file for --arch (its architecture uses it on "
                    "both sides instead of the seeded weights)")
    ap.add_argument("--batches", default="1,100,256", help="batch sizes of the MLP/model cases")
    ap.add_argument("--ours", default=os.path.join(REPO, "build", "bench", "bench_kernels"),
                    help="our benchmark binary (default build/bench/bench_kernels)")
    ap.add_argument("--ours-ld-library-path", default="",
                    help="LD_LIBRARY_PATH prefix for our binary only (gpu-check's unpacked build)")
    ap.add_argument("--repetitions", type=int, default=5, help="runs per case; medians reported")
    ap.add_argument("--min-time", type=float, default=0.2, help="seconds per run, at least")
    ap.add_argument("--threads", type=int, default=0,
                    help="PyTorch CPU threads (default: the OpenMP threads our binary used)")
    ap.add_argument("--quick", action="store_true",
                    help="our small smoke-test sizes, 2 repetitions, short runs")
    ap.add_argument("--json", help="write the results here")
    args = ap.parse_args()

    archs = ARCHS if args.arch == "all" else [a for a in args.arch.split(",") if a]
    for a in archs:
        if a not in ARCHS:
            sys.exit("compare_torch: --arch: unknown '%s' (expected %s or all)" % (a, "|".join(ARCHS)))
    if args.suite is None:
        args.suite = "" if archs else "ops,mlp,conv"
    if args.quick:
        args.repetitions, args.min_time = min(args.repetitions, 2), min(args.min_time, 0.02)
    families = []
    for s in [s for s in args.suite.split(",") if s]:
        if s not in SUITES:
            sys.exit("compare_torch: unknown suite '%s' (expected %s)" % (s, ", ".join(SUITES)))
        families += SUITES[s]
    batches = {int(b) for b in args.batches.split(",")}

    dev = args.device
    if dev == "auto":
        dev = "cuda" if torch is not None and torch.cuda.is_available() else "cpu"
    if torch is None:
        print("compare_torch: PyTorch is not importable by %s (%s); showing our times only. "
              "On Debian: apt install python3-torch and run /usr/bin/python3." %
              (sys.executable, TORCH_ERROR), file=sys.stderr)
    elif dev.startswith("cuda") and not torch.cuda.is_available():
        sys.exit("compare_torch: --device %s but PyTorch sees no GPU" % dev)

    if not os.access(args.ours, os.X_OK):
        sys.exit("compare_torch: our benchmark binary %s is missing (build bench_kernels or pass "
                 "--ours)" % args.ours)
    cases, ours, ctx = [], {}, {}
    if families:
        cases, ours, ctx = run_ours(args, families, dev)
    if archs:
        import tempfile
        tmp = tempfile.mkdtemp(prefix="ipg_models_")
        env = {"IPG_BENCH_MODELS_DIR": tmp}
        if args.weights:
            env["IPG_BENCH_WEIGHTS"] = os.path.abspath(args.weights)
        want = args.families.split(",")
        arch_filter = "arch=(%s)," % "|".join(archs)  # names are [a-z0-9-]
        for binary, fams in MODEL_FAMILIES.items():
            fams = [f for f in fams if f in want]
            path = os.path.join(os.path.dirname(args.ours), binary)
            if not fams:
                continue
            if not os.access(path, os.X_OK):
                sys.exit("compare_torch: %s is missing (build it)" % path)
            c, o, x = run_ours(args, fams, dev, path, arch_filter, env)
            cases += c
            ours.update(o)
            ctx = ctx or x
        for a in archs:
            MODEL_FILES[a] = os.path.join(tmp, a + ".h5")
        if args.weights:
            import h5py
            with h5py.File(args.weights, "r") as f:
                a = f.attrs["arch"]
                MODEL_FILES[a.decode() if isinstance(a, bytes) else str(a)] = args.weights
    threads = args.threads or int(ctx.get("omp_threads", os.cpu_count() or 1))
    if torch is not None:
        torch.set_num_threads(threads)
        full_fp32()

    rows, mismatches = [], 0
    for case in cases:
        family, _, params_text = case.split("/", 2)
        params = parse_params(params_text)
        if ("b" in params and family not in SUITES["conv"] + ["model_train_step"]
                and params["b"] not in batches):
            continue
        mine = ours.get(case, {})
        row = {"case": case, "ours_s": mine.get("seconds"), "roofline": mine.get("roofline"),
               "torch_s": None, "ratio": None, "labels": None, "torch_graph_s": None,
               "ratio_graph": None}
        if mine.get("error"):
            row["ours_error"] = mine["error"]
        if torch is not None and family in TWINS:
            try:
                run, labels = TWINS[family](params, dev, ctx)
                row["torch_s"] = time_torch(run, dev, args.repetitions, args.min_time)
            except Exception as e:  # one failing twin (a PyTorch API change, memory) is one row
                row["torch_error"] = "%s: %s" % (type(e).__name__, e)
                print("compare_torch: %s: PyTorch side failed: %s" % (case, row["torch_error"]),
                      file=sys.stderr)
                rows.append(row)
                continue
            if row["ours_s"]:
                row["ratio"] = row["ours_s"] / row["torch_s"]
            if dev.startswith("cuda") and family in GRAPHED:
                try:
                    run_g, _ = TWINS[family](params, dev, dict(ctx, capturable=True))
                    row["torch_graph_s"] = time_torch(graphed(run_g), dev, args.repetitions,
                                                      args.min_time)
                    if row["ours_s"]:
                        row["ratio_graph"] = row["ours_s"] / row["torch_graph_s"]
                except Exception as e:
                    row["torch_graph_error"] = "%s: %s" % (type(e).__name__, e)
                    print("compare_torch: %s: PyTorch CUDA-graph side failed: %s" %
                          (case, row["torch_graph_error"]), file=sys.stderr)
            ours_labels = mine.get("label", "")
            if labels is not None and ours_labels.startswith("labels="):
                theirs = labels()
                mine_l = [int(c) for c in ours_labels[len("labels="):]]
                agree = sum(int(a == b) for a, b in zip(mine_l, theirs))
                row["labels"] = "%d/%d" % (agree, len(theirs))
                mismatches += len(theirs) - agree
        rows.append(row)

    name_w = max([len(r["case"]) for r in rows] + [4])
    print("%-*s %12s %12s %8s %12s %8s %9s %8s" % (
        name_w, "case", "ours", "pytorch", "ours/pt", "pt graph", "ours/ptg", "roofline",
        "labels"))
    for r in rows:
        ratio = "%.2f" % r["ratio"] if r["ratio"] else "-"
        ratio_g = "%.2f" % r["ratio_graph"] if r["ratio_graph"] else "-"
        roof = "%.3f" % r["roofline"] if r["roofline"] is not None else "-"
        print("%-*s %12s %12s %8s %12s %8s %9s %8s" % (
            name_w, r["case"], fmt_time(r["ours_s"]), fmt_time(r["torch_s"]), ratio,
            fmt_time(r["torch_graph_s"]), ratio_g, roof, r["labels"] or "-"))
    ratios = [r["ratio"] for r in rows if r["ratio"]]
    if ratios:
        geo = math.exp(sum(math.log(x) for x in ratios) / len(ratios))
        print("geometric mean of ours/pytorch over %d cases: %.2f (below 1: ours faster)"
              % (len(ratios), geo))
    if mismatches:
        print("LABELS DIFFER on %d rows" % mismatches)

    if args.json:
        out = {"device": dev, "threads": threads, "ours_binary": args.ours,
               "torch": torch.__version__ if torch is not None else None,
               "torch_missing_reason": TORCH_ERROR, "repetitions": args.repetitions,
               "min_time": args.min_time, "ours_context": ctx, "cases": rows,
               "label_mismatches": mismatches}
        with open(args.json, "w") as f:
            json.dump(out, f, indent=1)
    return 1 if mismatches else 0


if __name__ == "__main__":
    sys.exit(main())
