#!/usr/bin/python3
# Writes the ONNX test models and their goldens for tests/models/test_onnx*.cpp into
# tests/data/onnx/ (run once; the tests never need PyTorch).
#
# Regenerate from the repository root with
#     /usr/bin/python3 tests/golden/make_onnx_golden.py
# It needs Debian's python3-torch (1.13: torch.onnx.export writes the protobuf itself, no
# onnx Python package), python3-h5py and python3-numpy. Everything is exported at opset 13
# with a symbolic batch dimension ("n").
#
# Files:
#   lenet5-fashion-mnist.onnx, resnet20-fashion-mnist.onnx: our architectures' PyTorch
#     twins (tools/torch_models.py) with the weights of the shipped files
#     weights/<arch>-fashion-mnist.h5; their forward includes the input normalization, so
#     the graphs do too. The tests compare them with the HDF5 path (labels equal, logits
#     close) and extract from one, verify the other.
#   mobilenet.onnx: a small MobileNetV2-style network not in our zoo (3x16x16 input, 10
#     classes): normalization (Sub, Div), stem conv, inverted residual blocks (1x1 expand,
#     depthwise 3x3 - one dilated, one after an asymmetric Pad with stride 2 -, ReLU6 as
#     Clip, linear 1x1 projection, residual Add), a squeeze-excitation block with Sigmoid,
#     a Hardswish (HardSigmoid * x at opset 13) block, a channel Concat, an AveragePool, a
#     BatchNormalization that follows no convolution, global average pool, the flatten as
#     torch's Shape/Gather/Unsqueeze/Concat/Reshape chain, Dropout, Gemm, and a MatMul head.
#     Weights from torch.manual_seed(3), BN statistics non-trivial.
#   mobilenet-softmax.onnx: the same network ending in Softmax (the reader drops it: same
#     labels, logits instead of probabilities).
#   tests/fuzz/corpus/onnx/*.onnx: seeds of the ONNX reader's fuzz target (each under 4 KiB):
#     tiny networks of the same operators (TinyCnn, TinyBlock).
#   mobilenet.golden.h5: x [4, 3, 16, 16] in [0, 1], r [4, 10], logits = model(x) and
#     grad_x = d sum(logits * r) / dx, computed in float64 on the float32 weights and rounded
#     once to float32; attribute min_margin: the smallest gap between a row's two largest
#     logits (the inputs are redrawn until it is at least 0.05, so the labels are stable
#     under float32 rounding, and until the rows have at least three different labels).
import os
import sys

import h5py
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
sys.path.insert(0, os.path.join(ROOT, "tools"))
import torch_models as tm  # noqa: E402

OUT = os.path.join(ROOT, "tests", "data", "onnx")
SEEDS = os.path.join(ROOT, "tests", "fuzz", "corpus", "onnx")
OPSET = 13


class InvertedResidual(nn.Module):
    """MobileNetV2 block: 1x1 expand, BN, act; depthwise 3x3, BN, act; [SE]; 1x1
    project, BN; + input when the shape allows."""

    def __init__(self, cin, cout, expand, stride=1, dilation=1, act="relu6", se=None,
                 pad_asym=False):
        super().__init__()
        mid = cin * expand
        self.pad_asym = pad_asym
        self.expand = nn.Sequential(nn.Conv2d(cin, mid, 1, bias=False), nn.BatchNorm2d(mid))
        pad = 0 if pad_asym else dilation
        self.dw = nn.Sequential(nn.Conv2d(mid, mid, 3, stride, pad, dilation=dilation,
                                          groups=mid, bias=False), nn.BatchNorm2d(mid))
        self.act = nn.ReLU6() if act == "relu6" else nn.Hardswish()
        self.se = None
        if se:
            gate = nn.Sigmoid() if se == "sigmoid" else nn.Hardsigmoid()
            self.se = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(mid, mid // 4, 1),
                                    nn.ReLU(), nn.Conv2d(mid // 4, mid, 1), gate)
        self.project = nn.Sequential(nn.Conv2d(mid, cout, 1, bias=False), nn.BatchNorm2d(cout))
        self.residual = stride == 1 and cin == cout

    def forward(self, x):
        h = self.act(self.expand(x))
        if self.pad_asym:
            h = F.pad(h, (0, 1, 0, 1))  # TensorFlow-style "same" for stride 2
        h = self.act(self.dw(h))
        if self.se is not None:
            h = h * self.se(h)
        h = self.project(h)
        return h + x if self.residual else h


class TinyMobileNet(nn.Module):
    def __init__(self, softmax=False):
        super().__init__()
        self.register_buffer("mean", torch.tensor([0.5, 0.45, 0.4]).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor([0.25, 0.24, 0.26]).view(1, 3, 1, 1))
        self.stem = nn.Sequential(nn.Conv2d(3, 8, 3, 1, 1, bias=False), nn.BatchNorm2d(8),
                                  nn.ReLU6())
        self.b1 = InvertedResidual(8, 8, 3, se="sigmoid")
        self.b2 = InvertedResidual(8, 12, 3, stride=2, pad_asym=True)
        self.b3 = InvertedResidual(12, 12, 2, dilation=2, act="hardswish", se="hard")
        self.side = nn.Conv2d(12, 4, 1)
        self.pool = nn.AvgPool2d(3, 1, 1)
        self.bn = nn.BatchNorm2d(16)
        self.gap = nn.AdaptiveAvgPool2d(1)
        self.drop = nn.Dropout(0.2)
        self.fc = nn.Linear(16, 24)
        self.w = nn.Parameter(torch.randn(24, 10) * 0.3)
        self.b = nn.Parameter(torch.randn(10) * 0.1)
        self.softmax = softmax

    def forward(self, x):
        h = (x - self.mean) / self.std
        h = self.b3(self.b2(self.b1(self.stem(h))))
        h = torch.cat([h, self.side(h)], dim=1)
        h = self.bn(self.pool(h) + h)
        h = self.gap(h)
        h = h.view(h.size(0), -1)
        h = F.relu(self.fc(self.drop(h)))
        h = torch.matmul(h, self.w) + self.b
        return F.softmax(h, dim=1) if self.softmax else h


class TinyCnn(nn.Module):
    """Fuzz seed: 1x8x8 -> conv 3x3, ReLU, max pool, flatten, linear -> 3 classes."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 2, 3, padding=1)
        self.fc = nn.Linear(2 * 4 * 4, 3)

    def forward(self, x):
        h = F.max_pool2d(F.relu(self.conv(x)), 2)
        return self.fc(torch.flatten(h, 1))


class TinyBlock(nn.Module):
    """Fuzz seed: 2x6x6 -> depthwise dilated conv, ReLU6, Hardswish, a concat, batch norm,
    average pool, the view flatten chain, a softmax."""

    def __init__(self):
        super().__init__()
        self.dw = nn.Conv2d(2, 2, 3, padding=2, dilation=2, groups=2)
        self.bn = nn.BatchNorm2d(4)
        self.fc = nn.Linear(4, 3)

    def forward(self, x):
        h = F.relu6(self.dw(F.pad(x, (0, 1, 0, 1))))
        h = self.bn(torch.cat([h, F.hardswish(h)], dim=1))
        h = F.adaptive_avg_pool2d(torch.sigmoid(h), 1)
        return F.softmax(self.fc(h.view(h.size(0), -1)), dim=1)


def randomize_bn(model, gen):
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                c = m.num_features
                m.weight.copy_(1 + 0.25 * (torch.rand(c, generator=gen) - 0.5))
                m.bias.copy_(0.1 * torch.randn(c, generator=gen))
                m.running_mean.copy_(0.1 * torch.randn(c, generator=gen))
                m.running_var.copy_(0.5 + torch.rand(c, generator=gen))


def draw_inputs(n, gen):
    """Images of different brightness and contrast per row, so the rows differ in label."""
    scale = torch.rand(n, 1, 1, 1, generator=gen)
    return (torch.rand(n, 3, 16, 16, generator=gen) * scale +
            torch.rand(n, 3, 1, 1, generator=gen) * (1 - scale)).float()


def standardize_head(model, gen):
    """Random weights give nearly the same logits for every input (the global pool averages
    the noise away); the head is rescaled so each logit has mean 0 and deviation 1 over a
    calibration batch, so the labels depend on the input."""
    with torch.no_grad():
        model.b.zero_()
        logits = model(draw_inputs(256, gen))
        mean, std = logits.mean(0), logits.std(0)
        model.w.div_(std)
        model.b.copy_(-mean / std)


def standardize_linear_head(model, fc, gen):
    """standardize_head for a network whose head is the nn.Linear `fc`."""
    with torch.no_grad():
        fc.bias.zero_()
        logits = model(draw_inputs(256, gen))
        mean, std = logits.mean(0), logits.std(0)
        fc.weight.div_(std.view(-1, 1))
        fc.bias.copy_(-mean / std)


def export(model, shape, path, do_constant_folding=True):
    model.eval()
    x = torch.rand(2, *shape)
    torch.onnx.export(model, x, path, opset_version=OPSET, input_names=["input"],
                      output_names=["logits"], dynamic_axes={"input": {0: "n"}, "logits": {0: "n"}},
                      do_constant_folding=do_constant_folding)
    print(f"{path}: {os.path.getsize(path)} bytes")


def main():
    os.makedirs(OUT, exist_ok=True)
    for arch in ("lenet5", "resnet20"):
        model, config = tm.load_ipguard(os.path.join(ROOT, "weights", f"{arch}-fashion-mnist.h5"))
        export(model, (config.in_channels, config.height, config.width),
               os.path.join(OUT, f"{arch}-fashion-mnist.onnx"))

    os.makedirs(SEEDS, exist_ok=True)
    torch.manual_seed(2)
    export(TinyCnn(), (1, 8, 8), os.path.join(SEEDS, "tiny-cnn.onnx"))
    export(TinyBlock(), (2, 6, 6), os.path.join(SEEDS, "tiny-block.onnx"))

    torch.manual_seed(3)
    model = TinyMobileNet()
    randomize_bn(model, torch.Generator().manual_seed(4))
    model.eval()
    standardize_head(model, torch.Generator().manual_seed(5))
    model.eval()
    export(model, (3, 16, 16), os.path.join(OUT, "mobilenet.onnx"))
    soft = TinyMobileNet(softmax=True)
    soft.load_state_dict(model.state_dict())
    export(soft, (3, 16, 16), os.path.join(OUT, "mobilenet-softmax.onnx"))

    ref = TinyMobileNet()
    ref.load_state_dict(model.state_dict())
    write_golden(ref, os.path.join(OUT, "mobilenet.golden.h5"), 1000)


def write_golden(ref, path, seed0):
    """The golden of network `ref` (its float32 weights, run in float64) at `path`: the first
    of the inputs drawn from seeds seed0, seed0 + 1, ... with at least three labels and a
    margin of 0.05 between each row's two largest logits."""
    ref = ref.double().eval()
    for attempt in range(100):
        gen = torch.Generator().manual_seed(seed0 + attempt)
        x = draw_inputs(4, gen)
        r = torch.randn(4, 10, generator=gen).float()
        xd = x.double().requires_grad_(True)
        logits = ref(xd)
        (logits * r.double()).sum().backward()
        top2 = logits.detach().topk(2, dim=1).values
        margin = float((top2[:, 0] - top2[:, 1]).min())
        if margin >= 0.05 and len(set(logits.argmax(1).tolist())) >= 3:
            break
    else:
        raise RuntimeError("no inputs with three labels and a margin of 0.05 in 100 draws")
    with h5py.File(path, "w") as f:
        f.attrs["min_margin"] = np.float64(margin)
        f.attrs["input_seed"] = np.int64(seed0 + attempt)
        for name, v in (("x", x), ("r", r), ("logits", logits.detach()), ("grad_x", xd.grad)):
            f.create_dataset(name, data=v.to(torch.float32).numpy(), track_times=False)
    print(f"{path}: {os.path.getsize(path)} bytes, min margin {margin:.3f}, "
          f"labels {logits.argmax(1).tolist()}")


if __name__ == "__main__":
    main()
