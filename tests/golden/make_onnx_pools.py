#!/usr/bin/python3
# Writes the ONNX ceil-mode pooling test models and their goldens for
# tests/models/test_onnx.cpp into tests/data/onnx/ (run once; the tests never need PyTorch).
#
# Regenerate from the repository root with
#     /usr/bin/python3 tests/golden/make_onnx_pools.py
# It needs Debian's python3-torch (1.13), python3-h5py and python3-numpy, and reuses
# make_onnx_golden.py's helpers (inputs, export at opset 13 with a symbolic batch, golden).
#
# Files (3x16x16 input, 10 classes, weights from torch.manual_seed(11) and (12)):
#   pools-max.onnx: max pooling with ceil_mode as SqueezeNet and GoogLeNet have it, each
#     on a size where ceil and floor differ: conv 3x3 -> 14x14, MaxPool 3/2 ceil -> 7x7
#     (floor: 6x6), conv, MaxPool 2/2 ceil -> 4x4 (floor: 3x3), conv + BN, flatten, linear.
#     Every step has a fused lowering: the frozen network plans it whole.
#   pools-avg.onnx: average pooling with ceil_mode: conv -> 14x14, AvgPool 3/2 pad 1 ceil
#     count_include_pad -> 8x8 (floor: 7x7; the last window's overhang past the padding is
#     not counted), conv, AvgPool 3/2 ceil without count_include_pad -> 4x4 (floor: 3x3),
#     conv, global average pool, linear.
#   pools-max.golden.h5, pools-avg.golden.h5: as activations.golden.h5 (x [4, 3, 16, 16],
#     r [4, 10], logits and grad_x in float64 on the float32 weights, min_margin).
import os

import torch
import torch.nn as nn

from make_onnx_golden import OUT, export, randomize_bn, standardize_linear_head, write_golden


class MaxPoolsNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.f = nn.Sequential(
            nn.Conv2d(3, 8, 3), nn.ReLU(), nn.MaxPool2d(3, 2, ceil_mode=True),
            nn.Conv2d(8, 12, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2, 2, ceil_mode=True),
            nn.Conv2d(12, 12, 3, padding=1, bias=False), nn.BatchNorm2d(12), nn.ReLU(),
            nn.Flatten(), nn.Linear(12 * 4 * 4, 10))

    def forward(self, x):
        return self.f(x)


class AvgPoolsNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.f = nn.Sequential(
            nn.Conv2d(3, 8, 3), nn.ReLU(), nn.AvgPool2d(3, 2, padding=1, ceil_mode=True),
            nn.Conv2d(8, 12, 3, padding=1), nn.ReLU(),
            nn.AvgPool2d(3, 2, ceil_mode=True, count_include_pad=False),
            nn.Conv2d(12, 16, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
            nn.Linear(16, 10))

    def forward(self, x):
        return self.f(x)


def make(cls, name, seed, sizes):
    torch.manual_seed(seed)
    model = cls()
    randomize_bn(model, torch.Generator().manual_seed(seed + 100))
    model.eval()
    # The pooled sizes are the ceil mode's, not the floor mode's.
    with torch.no_grad():
        h, got = torch.zeros(1, 3, 16, 16), []
        for m in model.f:
            h = m(h)
            if isinstance(m, (nn.MaxPool2d, nn.AvgPool2d)):
                got.append(h.shape[-1])
    assert got == sizes, (name, got)
    standardize_linear_head(model, model.f[-1], torch.Generator().manual_seed(seed + 200))
    model.eval()
    export(model, (3, 16, 16), os.path.join(OUT, name + ".onnx"))
    ref = cls()
    ref.load_state_dict(model.state_dict())
    write_golden(ref, os.path.join(OUT, name + ".golden.h5"), 3000 + seed)


def main():
    make(MaxPoolsNet, "pools-max", 11, [7, 4])
    make(AvgPoolsNet, "pools-avg", 12, [8, 4])


if __name__ == "__main__":
    main()
