#!/usr/bin/python3
# Writes the ONNX activations test model and its golden for tests/models/test_onnx.cpp into
# tests/data/onnx/ (run once; the tests never need PyTorch).
#
# Regenerate from the repository root with
#     /usr/bin/python3 tests/golden/make_onnx_activations.py
# It needs Debian's python3-torch (1.13), python3-h5py and python3-numpy, and reuses
# make_onnx_golden.py's helpers (inputs, head standardization, export at opset 13 with a
# symbolic batch).
#
# Files:
#   activations.onnx: a small CNN (3x16x16 input, 10 classes) with the activations other
#     classifiers use besides ReLU, one after each convolution: LeakyReLU (alpha 0.1),
#     PReLU (a slope per channel, exported as [C, 1, 1]), ELU (alpha 0.7), GELU (its exact
#     form, exported as Erf with Mul/Add/Div around it), SELU and Tanh; then global
#     average pool and a linear head. Weights from torch.manual_seed(7), BN statistics
#     non-trivial, the PReLU slopes drawn per channel.
#   activations-logsoftmax.onnx: the same network ending in LogSoftmax (the reader drops
#     it: the same labels, logits).
#   activations.golden.h5: x [4, 3, 16, 16] in [0, 1], r [4, 10], logits = model(x) and
#     grad_x = d sum(logits * r) / dx in float64 on the float32 weights, rounded once to
#     float32; attribute min_margin as in mobilenet.golden.h5 (at least 0.05, with at least
#     three labels among the rows).
import os

import torch
import torch.nn as nn
import torch.nn.functional as F

from make_onnx_golden import OUT, export, randomize_bn, standardize_linear_head, write_golden


class ActivationsNet(nn.Module):
    def __init__(self, log_softmax=False):
        super().__init__()
        self.register_buffer("mean", torch.tensor([0.5, 0.45, 0.4]).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor([0.25, 0.24, 0.26]).view(1, 3, 1, 1))

        def conv(cin, cout, stride=1):
            return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1, bias=False),
                                 nn.BatchNorm2d(cout))

        self.c1, self.a1 = conv(3, 8), nn.LeakyReLU(0.1)
        self.c2, self.a2 = conv(8, 8), nn.PReLU(8)
        self.c3, self.a3 = conv(8, 12, 2), nn.ELU(0.7)
        self.c4, self.a4 = conv(12, 12), nn.GELU()
        self.c5, self.a5 = conv(12, 12), nn.SELU()
        self.c6, self.a6 = conv(12, 16, 2), nn.Tanh()
        self.fc = nn.Linear(16, 10)
        self.log_softmax = log_softmax

    def forward(self, x):
        h = (x - self.mean) / self.std
        for c, a in ((self.c1, self.a1), (self.c2, self.a2), (self.c3, self.a3),
                     (self.c4, self.a4), (self.c5, self.a5), (self.c6, self.a6)):
            h = a(c(h))
        h = F.adaptive_avg_pool2d(h, 1).flatten(1)
        h = self.fc(h)
        return F.log_softmax(h, dim=1) if self.log_softmax else h


def main():
    torch.manual_seed(7)
    model = ActivationsNet()
    randomize_bn(model, torch.Generator().manual_seed(8))
    with torch.no_grad():
        model.a2.weight.copy_(0.05 + 0.4 * torch.rand(8, generator=torch.Generator().manual_seed(9)))
    model.eval()
    standardize_linear_head(model, model.fc, torch.Generator().manual_seed(10))
    model.eval()
    export(model, (3, 16, 16), os.path.join(OUT, "activations.onnx"))
    logsoft = ActivationsNet(log_softmax=True)
    logsoft.load_state_dict(model.state_dict())
    export(logsoft, (3, 16, 16), os.path.join(OUT, "activations-logsoftmax.onnx"))

    ref = ActivationsNet()
    ref.load_state_dict(model.state_dict())
    write_golden(ref, os.path.join(OUT, "activations.golden.h5"), 2000)


if __name__ == "__main__":
    main()
