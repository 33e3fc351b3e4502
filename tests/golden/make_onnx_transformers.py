#!/usr/bin/python3
# Writes the ONNX vision-transformer test models and their golden for
# tests/models/test_onnx_transformers.cpp into tests/data/onnx/ (run once; the tests never
# need PyTorch).
#
# Regenerate from the repository root with
#     /usr/bin/python3 tests/golden/make_onnx_transformers.py
# It needs Debian's python3-torch (1.13), python3-torchvision (0.14), python3-h5py and
# python3-numpy, and reuses make_onnx_golden.py's helpers.
#
# Files (3x16x16 input, 10 classes, symbolic batch, opset 13):
#   vit.onnx: torchvision's VisionTransformer at a small size (4x4 patches, 2 layers of
#     2 heads, width 16): the class token expanded to the batch (Shape, Equal, Where,
#     Expand) and joined before the patches, nn.MultiheadAttention as torch exports it
#     (the input moved to [T, n, C], reshaped to [T, n * heads, d] by shape arithmetic on
#     the batch size, Q K^T and P V as MatMuls of two computed values), GELU (Erf), the
#     class token's row taken by Gather; weights from torch.manual_seed(21).
#   swin.onnx: torchvision's SwinTransformer at a small size (2x2 patches, width 8, two
#     stages of two blocks, 1 and 2 heads, 3x3 windows): windows padded to whole ones (Pad
#     of [n, h, w, c], amounts from Mod of the map's size), shifted windows (torch.roll as
#     Slice and Concat) and their attention mask (Range, ScatterND, Equal, Not, Where on
#     constants), the relative position bias (Gather of a constant table), the patch
#     merging (strided Slices, Concat), attention dropout exported with training on and
#     p = 0; weights from torch.manual_seed(22).
#   vit-batch1.onnx: the same ViT exported without dynamic axes, as torch.onnx.export does
#     by default: every shape holds the batch of 1 as a number.
#   vit.golden.h5, swin.golden.h5: as convnext.golden.h5 (x [4, 3, 16, 16], r [4, 10],
#     logits and grad_x in float64 on the float32 weights, min_margin).
import os
import warnings

import torch
import torchvision.models as tvm
from torchvision.models.swin_transformer import SwinTransformer

from make_onnx_golden import OUT, standardize_linear_head, write_golden


def vit():
    return tvm.VisionTransformer(image_size=16, patch_size=4, num_layers=2, num_heads=2,
                                 hidden_dim=16, mlp_dim=32, num_classes=10)


def swin():
    return SwinTransformer(patch_size=[2, 2], embed_dim=8, depths=[2, 2], num_heads=[1, 2],
                           window_size=[3, 3], num_classes=10)


def randomize(model, gen):
    """Drawn norms, biases, tokens, position tables and the head: a fresh init leaves
    several at zero or one (the ViT's head weight at zero: every input the same logits),
    which would hide an operand read in the wrong order."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() == 2 and "head" in name:
                p.copy_(torch.randn(p.shape, generator=gen) / p.shape[1] ** 0.5)
            elif p.dim() == 1 and name.endswith("weight"):
                p.copy_(1 + 0.25 * (torch.rand(p.shape, generator=gen) - 0.5))
            elif p.dim() == 1 or "token" in name or "pos_embedding" in name or "bias_table" in name:
                p.copy_(0.1 * torch.randn(p.shape, generator=gen))


def export(model, path, symbolic=True):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model.eval(), torch.rand(2 if symbolic else 1, 3, 16, 16), path,
                          opset_version=13, input_names=["input"], output_names=["logits"],
                          dynamic_axes={"input": {0: "n"}, "logits": {0: "n"}} if symbolic else None)
    print(f"{path}: {os.path.getsize(path)} bytes")


def main():
    for name, make, seed, head in (("vit", vit, 21, lambda m: m.heads.head),
                                   ("swin", swin, 22, lambda m: m.head)):
        torch.manual_seed(seed)
        model = make().eval()
        randomize(model, torch.Generator().manual_seed(seed + 100))
        standardize_linear_head(model, head(model), torch.Generator().manual_seed(seed + 200))
        export(model, os.path.join(OUT, f"{name}.onnx"))
        if name == "vit":
            export(model, os.path.join(OUT, "vit-batch1.onnx"), symbolic=False)
        ref = make()
        ref.load_state_dict(model.state_dict())
        write_golden(ref, os.path.join(OUT, f"{name}.golden.h5"), 7000 + 100 * seed)


if __name__ == "__main__":
    main()
