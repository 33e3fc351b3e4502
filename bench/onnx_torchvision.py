#!/usr/bin/env python3
"""Which of torchvision's classifiers ipguard reads as ONNX targets and suspects, and how
close its logits are to PyTorch's.

Each architecture is built with 10 classes and weights drawn here (no download: every
parameter and batch-norm statistic random, so the logits are not near zero as a fresh
torchvision init leaves several), exported with torch.onnx.export (opset 13, symbolic
batch), loaded with ipguard's Python module (ipguard.load), and run on 8 uniform images
at batches 8, 3 and 1. One line per architecture: LOADS with the largest logit gap
relative to the largest logit, the labels that agree, and the batch consistency; or the
loader's one-line refusal. --json writes the rows.

Needs Debian's python3-torch and python3-torchvision (tools/install-deps.sh --torch) and
the module built by CMake: PYTHONPATH=build/release/tools/python.

    PYTHONPATH=build/release/tools/python /usr/bin/python3 bench/onnx_torchvision.py
"""
import argparse
import json
import os
import sys
import tempfile
import warnings

import numpy as np
import torch
import torchvision.models as tvm

import ipguard

# name: (constructor, input size); sizes small enough for 2 cores, large enough for each
# network's downsampling (AlexNet and VGG need 224 for their adaptive pools to export).
ARCHS = {
    "alexnet": (lambda: tvm.alexnet(num_classes=10), 224),
    "convnext_tiny": (lambda: tvm.convnext_tiny(num_classes=10), 64),
    "densenet121": (lambda: tvm.densenet121(num_classes=10), 64),
    "efficientnet_b0": (lambda: tvm.efficientnet_b0(num_classes=10), 64),
    "googlenet": (lambda: tvm.googlenet(num_classes=10, aux_logits=False, init_weights=True), 96),
    "inception_v3": (lambda: tvm.inception_v3(num_classes=10, aux_logits=False, init_weights=True), 96),
    "mnasnet0_5": (lambda: tvm.mnasnet0_5(num_classes=10), 64),
    "mobilenet_v2": (lambda: tvm.mobilenet_v2(num_classes=10), 64),
    "mobilenet_v3_small": (lambda: tvm.mobilenet_v3_small(num_classes=10), 64),
    "regnet_y_400mf": (lambda: tvm.regnet_y_400mf(num_classes=10), 64),
    "resnet18": (lambda: tvm.resnet18(num_classes=10), 64),
    "resnext50_32x4d": (lambda: tvm.resnext50_32x4d(num_classes=10), 64),
    "shufflenet_v2_x0_5": (lambda: tvm.shufflenet_v2_x0_5(num_classes=10), 64),
    "squeezenet1_0": (lambda: tvm.squeezenet1_0(num_classes=10), 96),
    "squeezenet1_1": (lambda: tvm.squeezenet1_1(num_classes=10), 96),
    "swin_t": (lambda: tvm.swin_t(num_classes=10), 64),
    "vgg11_bn": (lambda: tvm.vgg11_bn(num_classes=10), 224),
    "vit (2 layers)": (lambda: tvm.VisionTransformer(image_size=32, patch_size=16, num_layers=2, num_heads=2,
                                                      hidden_dim=32, mlp_dim=64, num_classes=10), 32),
    "wide_resnet50_2": (lambda: tvm.wide_resnet50_2(num_classes=10), 64),
}


def draw_weights(model, seed):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for mod in model.modules():
            for name, p in list(mod.named_parameters(recurse=False)) + list(mod.named_buffers(recurse=False)):
                if p.dtype != torch.float32:
                    continue
                if name == "running_var":
                    p.copy_(0.5 + torch.rand(p.shape, generator=g))
                elif name == "weight" and p.dim() == 1:
                    p.copy_(0.8 + 0.4 * torch.rand(p.shape, generator=g))
                elif p.dim() >= 2:
                    p.copy_(torch.randn(p.shape, generator=g) / max(1, p[0].numel()) ** 0.5)
                else:
                    p.copy_(0.1 * torch.randn(p.shape, generator=g))
    return model.eval()


def probe(name, ctor, size, folder):
    row = {"arch": name, "input": [3, size, size]}
    model = draw_weights(ctor(), 1)
    x = torch.rand(8, 3, size, size, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        ref = model(x).numpy()
    path = os.path.join(folder, name.split()[0] + ".onnx")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(model, x[:1], path, opset_version=13, input_names=["input"],
                              output_names=["logits"], dynamic_axes={"input": {0: "n"}, "logits": {0: "n"}})
    except Exception as e:  # PyTorch's exporter refusing is not ours
        row.update(status="export fails", error=f"{type(e).__name__}: {str(e)[:120]}")
        return row
    try:
        m = ipguard.load(path)
    except Exception as e:
        row.update(status="refused", error=str(e).split(": ", 1)[-1].split(" (supported:")[0])
        return row
    xs = np.ascontiguousarray(x.numpy())
    out = {b: m.logits(xs, batch=b) for b in (8, 3, 1)}
    y = out[8]
    row.update(status="loads", rel_gap=float(np.abs(y - ref).max() / np.abs(ref).max()),
               labels_agree=int((y.argmax(1) == ref.argmax(1)).sum()),
               batch_gap=float(max(np.abs(out[b] - y).max() for b in (3, 1))))
    return row


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--arch", help="comma-separated names (default: all)")
    ap.add_argument("--json", help="write the rows to this file")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    ipguard.set_threads(args.threads)
    names = args.arch.split(",") if args.arch else list(ARCHS)
    unknown = [n for n in names if n not in ARCHS]
    if unknown:
        sys.exit(f"onnx_torchvision.py: unknown architecture {unknown[0]!r} (known: {', '.join(ARCHS)})")
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for name in names:
            ctor, size = ARCHS[name]
            r = probe(name, ctor, size, folder)
            rows.append(r)
            if r["status"] == "loads":
                print(f"{name:20s} loads    {size:3d}px  logits within {r['rel_gap']:.1e} (relative), "
                      f"labels {r['labels_agree']}/8, batches within {r['batch_gap']:.1e}", flush=True)
            else:
                print(f"{name:20s} {r['status']:8s} {r['error']}", flush=True)
    loaded = sum(r["status"] == "loads" for r in rows)
    print(f"{loaded} of {len(rows)} load")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)
    bad = [r for r in rows if r["status"] == "loads" and (r["labels_agree"] < 8 or r["rel_gap"] > 1e-4)]
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
