#!/usr/bin/env python3
"""Whole extractions side by side: `ipguard extract` against a PyTorch script doing the
same work on the same weights, the strongest such script we know how to write (all
candidates as one batch, converged rows dropped from it, Adam written out per row; the
public IPGuard copies run one image at a time).

    /usr/bin/python3 bench/compare_extract.py --ours build/release/tools/ipguard \\
        --model weights/lenet5-fashion-mnist.h5 --method ipguard --k 10 --repeats 5

Methods: ipguard (Eq. 5, Adam in pixel space, a row stops at loss 0 or after --iters) and
cwl2 (Carlini's L2 attack as his reference runs it: tanh variables, Adam, binary search
over c with Adam and the variables reset every step, the batch's early abort every
iters/10 iterations, the closest success kept; box [0, 1]). Both sides draw their own
start points (same mode: --init train|random, --target least-likely|random) with their
own generators, so the points differ; what is compared is the time of the extraction
itself (ours: the `seconds` of `extract --json`, the model loaded and the start points
drawn before it; PyTorch: the same span) and how much of the work converged (converged
count, median iterations). Medians over --repeats runs, taken in turn (ours, PyTorch,
ours, ...), with the same thread count on both sides. Needs Debian's python3-torch and
python3-h5py (comparison only: not in tools/install-deps.sh).
"""
import argparse
import gzip
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools"))
from torch_models import load_ipguard  # noqa: E402

FASHION = "/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz"


def train_images(count, gen):
    """`count` Fashion-MNIST training images drawn without replacement, [count,1,28,28]."""
    with gzip.open(FASHION, "rb") as f:
        raw = f.read()
    images = np.frombuffer(raw, dtype=np.uint8, offset=16).reshape(-1, 1, 28, 28)
    pick = torch.randperm(images.shape[0], generator=gen)[:count].numpy()
    return torch.from_numpy(images[pick].astype(np.float32) / 255.0)


def start(model, config, args, gen, dev):
    """Start points x0, the labels i the model gives them, target labels j."""
    if args.init == "train":
        x0 = train_images(args.n, gen)
    else:
        x0 = torch.rand(args.n, config.in_channels, config.height, config.width, generator=gen)
    x0 = x0.to(dev)
    with torch.no_grad():
        z = model(x0)
    i = z.argmax(1)
    if args.target == "least-likely":
        j = z.argmin(1)
    else:  # uniform among the other labels
        r = torch.randint(0, config.classes - 1, (args.n,), generator=gen).to(dev)
        j = r + (r >= i).long()
    return x0, i, j


class Adam:
    """torch.optim.Adam's update for a batch of rows that all start at step 1 together."""

    def __init__(self, x, lr, b1=0.9, b2=0.999, eps=1e-8):
        self.m = torch.zeros_like(x)
        self.v = torch.zeros_like(x)
        self.lr, self.b1, self.b2, self.eps, self.t = lr, b1, b2, eps, 0

    def step(self, x, g):
        self.t += 1
        self.m.lerp_(g, 1 - self.b1)
        self.v.mul_(self.b2).addcmul_(g, g, value=1 - self.b2)
        bc1, bc2 = 1 - self.b1 ** self.t, 1 - self.b2 ** self.t
        denom = (self.v.sqrt() / bc2 ** 0.5).add_(self.eps)
        x.addcdiv_(self.m, denom, value=-self.lr / bc1)

    def keep(self, rows):
        self.m, self.v = self.m[rows], self.v[rows]


def others_max(z, a, b=None):
    """max over t != a (and != b) of z[:, t]."""
    masked = z.clone()
    masked.scatter_(1, a[:, None], float("-inf"))
    if b is not None:
        masked.scatter_(1, b[:, None], float("-inf"))
    return masked.max(1).values


def ipguard(model, x0, i, j, args):
    """Eq. 5 by Adam on the pixels, clamped to [0, 1]; a row leaves the batch at loss 0."""
    n = x0.shape[0]
    x = x0.clone()
    rows = torch.arange(n, device=x0.device)
    iters = torch.full((n,), args.iters, dtype=torch.long)
    converged = torch.zeros(n, dtype=torch.bool)
    xa, ia, ja = x0.clone(), i, j
    opt = Adam(xa, args.lr)
    for t in range(args.iters):
        xg = xa.detach().requires_grad_(True)
        z = model(xg)
        zi = z.gather(1, ia[:, None])[:, 0]
        zj = z.gather(1, ja[:, None])[:, 0]
        loss = F.relu(zi - zj + args.k) + F.relu(others_max(z, ia, ja) - zi)
        (g,) = torch.autograd.grad(loss.sum(), xg)
        done = loss.detach() == 0
        if bool(done.any()):  # these rows keep the point that reached loss 0
            idx = rows[done].cpu()
            converged[idx] = True
            iters[idx] = t
            x[rows[done]] = xa[done]
            keep = ~done
            rows, xa, ia, ja, g = rows[keep], xa[keep], ia[keep], ja[keep], g[keep]
            opt.keep(keep)
            if rows.numel() == 0:
                break
        with torch.no_grad():
            opt.step(xa, g)
            xa.clamp_(0, 1)
    x[rows] = xa
    return x, converged, iters


def cwl2(model, x0, i, j, args):
    """Carlini's targeted L2 attack (algorithms.md): kappa = --k, box [0, 1]."""
    n, dev = x0.shape[0], x0.device
    w0 = torch.atanh((x0 - 0.5) * 2 * 0.999999)
    x0s = torch.tanh(w0) / 2 + 0.5
    lo = torch.zeros(n, device=dev)
    hi = torch.full((n,), 1e10, device=dev)
    c = torch.full((n,), args.c0, device=dev)
    best_l2 = torch.full((n,), float("inf"), device=dev)
    best_x = x0.clone()
    onehot = F.one_hot(j, model.config.classes).float()
    iters_run = 0
    every = max(args.iters // 10, 1)
    for step in range(args.binary_steps):
        if args.binary_steps >= 10 and step == args.binary_steps - 1:
            c = hi.clone()
        u = w0.clone()
        opt = Adam(u, args.lr)
        prev = float("inf")
        success = torch.zeros(n, dtype=torch.bool, device=dev)
        for it in range(args.iters):
            ug = u.detach().requires_grad_(True)
            x = torch.tanh(ug) / 2 + 0.5
            z = model(x)
            real = (z * onehot).sum(1)
            other = (z - 10000 * onehot).max(1).values
            term = torch.clamp(other - real + args.k, min=0)
            l2 = ((x - x0s) ** 2).flatten(1).sum(1)
            loss = (l2 + c * term).sum()
            (g,) = torch.autograd.grad(loss, ug)
            with torch.no_grad():
                opt.step(u, g)
            iters_run += 1
            if it % every == 0:  # the batch's early abort, before this iterate counts
                value = float(loss)
                if value > prev * 0.9999:
                    break
                prev = value
            with torch.no_grad():
                shifted = z.detach() - args.k * onehot
                ok = shifted.argmax(1) == j
                better = ok & (l2.detach() < best_l2)
                best_l2 = torch.where(better, l2.detach(), best_l2)
                best_x[better] = x.detach()[better]
                success |= ok
        # The binary search over c, per row.
        hi = torch.where(success, torch.minimum(hi, c), hi)
        lo = torch.where(success, lo, torch.maximum(lo, c))
        mid = (lo + hi) / 2
        c = torch.where(hi < 1e9, mid, torch.where(success, c, c * 10))
    converged = torch.isfinite(best_l2).cpu()
    return best_x, converged, torch.full((n,), iters_run, dtype=torch.long)


def run_torch(args, dev):
    """One PyTorch extraction: seconds, converged count, median iterations, label check."""
    model, config = load_ipguard(args.model)
    model = model.to(dev).eval()
    for p in model.parameters():
        p.requires_grad_(False)
    gen = torch.Generator().manual_seed(args.seed)
    x0, i, j = start(model, config, args, gen, dev)
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    sync()
    t0 = time.perf_counter()
    method = ipguard if args.method == "ipguard" else cwl2
    points, converged, iters = method(model, x0, i, j, args)
    with torch.no_grad():
        labels = model(points).argmax(1)
    sync()
    seconds = time.perf_counter() - t0
    if args.method == "cwl2":  # a success is labeled j
        assert bool((labels[converged.to(dev)] == j[converged.to(dev)]).all())
    return {"seconds": seconds, "converged": int(converged.sum()),
            "median_iterations": float(iters.double().median())}


def run_ours(args, out_dir, run):
    out = os.path.join(out_dir, f"fp{run}.h5")
    cmd = [args.ours, "--device", args.device, "--threads", str(args.threads), "--seed",
           str(args.seed + run), "--json", "extract", "--model", args.model, "--method",
           args.method, "--n", str(args.n), "--init", args.init, "--target", args.target,
           "--k", str(args.k), "--lr", str(args.lr), "--iters", str(args.iters), "--out", out]
    if args.method == "cwl2":
        cmd += ["--binary-steps", str(args.binary_steps), "--c0", str(args.c0)]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"compare_extract: ours failed ({r.returncode}): {' '.join(cmd)}\n{r.stderr}")
    j = json.loads(r.stdout)
    return {"seconds": j["seconds"], "converged": j["converged"],
            "median_iterations": j["median_iterations"]}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ours", required=True, help="the ipguard binary")
    ap.add_argument("--model", required=True, help="a native model file (HDF5)")
    ap.add_argument("--method", choices=["ipguard", "cwl2"], default="ipguard")
    ap.add_argument("--n", type=int, default=100)
    ap.add_argument("--init", choices=["train", "random"], default="train")
    ap.add_argument("--target", choices=["least-likely", "random"], default="least-likely")
    ap.add_argument("--k", type=float, default=10.0, help="IPGuard margin / CW-L2 kappa")
    ap.add_argument("--lr", type=float, default=0.01)
    ap.add_argument("--iters", type=int, default=1000, help="per binary step for cwl2")
    ap.add_argument("--binary-steps", type=int, default=9)
    ap.add_argument("--c0", type=float, default=1e-3)
    ap.add_argument("--device", default="cpu", help="cpu | cuda (both sides)")
    ap.add_argument("--threads", type=int, default=os.cpu_count(), help="both sides")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--json", help="write the runs and medians here")
    args = ap.parse_args()
    # Bad input is one line and exit status 2, before any run.
    if not (os.path.isfile(args.ours) and os.access(args.ours, os.X_OK)):
        ap.error(f"--ours {args.ours}: not an executable file")
    if not os.path.isfile(args.model):
        ap.error(f"--model {args.model}: no such file")
    if args.n < 1 or args.iters < 1 or args.repeats < 1 or args.binary_steps < 1:
        ap.error("--n, --iters, --repeats and --binary-steps must be at least 1")
    torch.set_num_threads(args.threads)
    dev = torch.device(args.device)
    ours, theirs = [], []
    with tempfile.TemporaryDirectory(prefix="ipg-compare-extract-") as tmp:
        for run in range(args.repeats):
            ours.append(run_ours(args, tmp, run))
            a = argparse.Namespace(**vars(args))
            a.seed = args.seed + run
            theirs.append(run_torch(a, dev))
            print(f"run {run + 1}/{args.repeats}: ours {ours[-1]['seconds']:.3f} s "
                  f"({ours[-1]['converged']} converged), PyTorch {theirs[-1]['seconds']:.3f} s "
                  f"({theirs[-1]['converged']} converged)", file=sys.stderr)

    def med(rs, key):
        return statistics.median(r[key] for r in rs)

    what = (f"{args.method} on {os.path.basename(args.model)}, n {args.n}, init {args.init}, "
            f"target {args.target}, k {args.k}, lr {args.lr}, iters {args.iters}"
            + (f" x {args.binary_steps} binary steps" if args.method == "cwl2" else "")
            + f", {args.device}, {args.threads} threads, medians of {args.repeats}")
    print(what)
    print(f"  {'':8} {'seconds':>9} {'converged':>10} {'median iters':>13}")
    for name, rs in (("ours", ours), ("PyTorch", theirs)):
        print(f"  {name:8} {med(rs, 'seconds'):9.3f} {med(rs, 'converged'):10.0f} "
              f"{med(rs, 'median_iterations'):13.0f}")
    ratio = statistics.median(o["seconds"] / t["seconds"] for o, t in zip(ours, theirs))
    print(f"  ours/PyTorch seconds (median of the pairs' ratios): {ratio:.3f}")
    if args.json:
        with open(args.json + ".tmp", "w") as f:
            json.dump({"setting": what, "ours": ours, "pytorch": theirs,
                       "ratio_seconds": ratio}, f, indent=2)
        os.replace(args.json + ".tmp", args.json)


if __name__ == "__main__":
    main()
