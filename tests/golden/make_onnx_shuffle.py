#!/usr/bin/python3
# Writes the ONNX data-movement test model and its golden for tests/models/test_onnx.cpp
# into tests/data/onnx/ (run once; the tests never need PyTorch).
#
# Regenerate from the repository root with
#     /usr/bin/python3 tests/golden/make_onnx_shuffle.py
# It needs Debian's python3-torch (1.13), python3-h5py and python3-numpy, and reuses
# make_onnx_golden.py's helpers (inputs, BN statistics, export at opset 13 with a symbolic
# batch, golden).
#
# Files (3x16x16 input, 10 classes, weights from torch.manual_seed(13)):
#   shuffle.onnx: the operators that move values computed from the input, as torchvision's
#     ShuffleNetV2 and test-time augmentation export them: a stem conv; two ShuffleNetV2
#     units, each splitting the channels in two (x.chunk(2, dim=1): Slice), running one half
#     through 1x1 / depthwise 3x3 / 1x1 convolutions, joining them (Concat) and shuffling
#     the channels (Reshape to [n, 2, c/2, h, w], Transpose perm [0, 2, 1, 3, 4], Reshape
#     back); a wrap-around pad of the columns (torch.cat of the last column, x and the
#     first column: Slice and Concat along axis 3); and the average of the features of the
#     image and of its mirror image (x.flip(3): Slice with step -1), then global average
#     pool and a linear head.
#   shuffle.golden.h5: as activations.golden.h5 (x [4, 3, 16, 16], r [4, 10], logits and
#     grad_x in float64 on the float32 weights, min_margin).
import os

import torch
import torch.nn as nn
import torch.nn.functional as F

from make_onnx_golden import OUT, export, randomize_bn, standardize_linear_head, write_golden


def channel_shuffle(x, groups=2):
    n, c, h, w = x.shape
    return x.view(n, groups, c // groups, h, w).transpose(1, 2).reshape(n, c, h, w)


class Unit(nn.Module):
    def __init__(self, c):
        super().__init__()
        h = c // 2
        self.branch = nn.Sequential(
            nn.Conv2d(h, h, 1, bias=False), nn.BatchNorm2d(h), nn.ReLU(),
            nn.Conv2d(h, h, 3, padding=1, groups=h, bias=False), nn.BatchNorm2d(h),
            nn.Conv2d(h, h, 1, bias=False), nn.BatchNorm2d(h), nn.ReLU())

    def forward(self, x):
        a, b = x.chunk(2, dim=1)
        return channel_shuffle(torch.cat((a, self.branch(b)), dim=1))


class ShuffleNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 8, 3, stride=2, padding=1, bias=False),
                                  nn.BatchNorm2d(8), nn.ReLU())
        self.units = nn.Sequential(Unit(8), Unit(8))
        self.mix = nn.Conv2d(8, 12, 3)  # after the wrap pad of the columns: 8 wide again
        self.fc = nn.Linear(12, 10)

    def features(self, x):
        h = self.units(self.stem(x))
        h = torch.cat((h[..., -1:], h, h[..., :1]), dim=3)
        return F.relu(self.mix(h))

    def forward(self, x):
        f = 0.5 * (self.features(x) + self.features(x.flip(3)))
        return self.fc(F.adaptive_avg_pool2d(f, 1).flatten(1))


def main():
    torch.manual_seed(13)
    model = ShuffleNet()
    randomize_bn(model, torch.Generator().manual_seed(14))
    model.eval()
    standardize_linear_head(model, model.fc, torch.Generator().manual_seed(15))
    model.eval()
    export(model, (3, 16, 16), os.path.join(OUT, "shuffle.onnx"))
    ref = ShuffleNet()
    ref.load_state_dict(model.state_dict())
    write_golden(ref, os.path.join(OUT, "shuffle.golden.h5"), 4000)


if __name__ == "__main__":
    main()
