#!/usr/bin/python3
# Writes the ONNX ConvNeXt-style test models and their golden for tests/models/test_onnx.cpp
# into tests/data/onnx/ (run once; the tests never need PyTorch).
#
# Regenerate from the repository root with
#     /usr/bin/python3 tests/golden/make_onnx_convnext.py
# It needs Debian's python3-torch (1.13), python3-h5py and python3-numpy, and reuses
# make_onnx_golden.py's helpers (inputs, golden).
#
# Files (3x16x16 input, 10 classes, weights from torch.manual_seed(16)):
#   convnext.onnx: torchvision's ConvNeXt block at a small size, exported at opset 13: a
#     4x4 stride-4 stem and its LayerNorm over the channels (torchvision's LayerNorm2d:
#     Transpose to [n, h, w, c], the norm written out as ReduceMean over the last axis,
#     Sub, Pow 2, Add eps, Sqrt, Div, Mul, Add, Transpose back); two blocks of depthwise
#     7x7 conv, Transpose, LayerNorm, a linear layer to 4c and back with GELU (MatMul of the
#     rank-4 value with constant weights, Erf), the layer scale (Mul), Transpose, and the
#     residual Add; then the other normalizations: an InstanceNorm2d with affine weights
#     and a GroupNorm of 4 groups (exported as Reshape to [n, 4, -1],
#     InstanceNormalization, Reshape back, Mul, Add); a global average pool, LayerNorm and a
#     linear head.
#   convnext-opset17.onnx: the same weights exported at opset 17, where each LayerNorm is
#     one LayerNormalization node.
#   convnext.golden.h5: as activations.golden.h5 (x [4, 3, 16, 16], r [4, 10], logits and
#     grad_x in float64 on the float32 weights, min_margin), for both files.
import os

import torch
import torch.nn as nn
import torch.nn.functional as F

from make_onnx_golden import OUT, standardize_linear_head, write_golden


class LayerNorm2d(nn.LayerNorm):
    """torchvision's: a LayerNorm over the channels of [n, c, h, w]."""

    def forward(self, x):
        x = x.permute(0, 2, 3, 1)
        x = F.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)
        return x.permute(0, 3, 1, 2)


class Block(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.dw = nn.Conv2d(c, c, 7, padding=3, groups=c)
        self.norm = nn.LayerNorm(c, eps=1e-6)
        self.up = nn.Linear(c, 4 * c)
        self.down = nn.Linear(4 * c, c)
        self.scale = nn.Parameter(torch.full((c, 1, 1), 0.5))

    def forward(self, x):
        h = self.dw(x).permute(0, 2, 3, 1)
        h = self.down(F.gelu(self.up(self.norm(h)))).permute(0, 3, 1, 2)
        return x + self.scale * h


class ConvNeXt(nn.Module):
    def __init__(self, c=16):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, c, 4, stride=4), LayerNorm2d(c, eps=1e-6))
        self.blocks = nn.Sequential(Block(c), Block(c))
        self.inorm = nn.InstanceNorm2d(c, affine=True)
        self.gnorm = nn.GroupNorm(4, c)
        self.norm = LayerNorm2d(c, eps=1e-6)
        self.fc = nn.Linear(c, 10)

    def forward(self, x):
        h = self.norm(self.gnorm(self.inorm(self.blocks(self.stem(x)))))
        return self.fc(F.adaptive_avg_pool2d(h, 1).flatten(1))


def randomize_norms(model, gen):
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (nn.LayerNorm, nn.GroupNorm, nn.InstanceNorm2d)):
                c = m.weight.numel()
                m.weight.copy_(1 + 0.25 * (torch.rand(c, generator=gen) - 0.5))
                m.bias.copy_(0.1 * torch.randn(c, generator=gen))


def export(model, path, opset):
    torch.onnx.export(model.eval(), torch.rand(2, 3, 16, 16), path, opset_version=opset,
                      input_names=["input"], output_names=["logits"],
                      dynamic_axes={"input": {0: "n"}, "logits": {0: "n"}})
    print(f"{path}: {os.path.getsize(path)} bytes")


def main():
    torch.manual_seed(16)
    model = ConvNeXt()
    randomize_norms(model, torch.Generator().manual_seed(17))
    standardize_linear_head(model, model.fc, torch.Generator().manual_seed(18))
    export(model, os.path.join(OUT, "convnext.onnx"), 13)
    export(model, os.path.join(OUT, "convnext-opset17.onnx"), 17)
    ref = ConvNeXt()
    ref.load_state_dict(model.state_dict())
    write_golden(ref, os.path.join(OUT, "convnext.golden.h5"), 5000)


if __name__ == "__main__":
    main()
