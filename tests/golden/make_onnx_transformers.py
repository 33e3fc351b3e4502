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
# Every file has its value names shortened and its node names dropped (shorten below).
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
#   tests/fuzz/corpus/onnx/tiny-attention.onnx: a seed of the ONNX reader's fuzz target
#     (under its 8 KiB input limit, names shortened): TinyAttention below, read per batch
#     size.
#   tests/fuzz/corpus/onnx/tiny-norm-mlp.onnx: a second seed, TinyNormMlp below: a
#     LayerNorm and a GELU as torch writes them, the patterns the reader fuses
#     (models/onnx_fuse.cpp).
#   vit.golden.h5, swin.golden.h5: as convnext.golden.h5 (x [4, 3, 16, 16], r [4, 10],
#     logits and grad_x in float64 on the float32 weights, min_margin).
import os
import warnings

import torch
import torchvision.models as tvm
from torchvision.models.swin_transformer import SwinTransformer

from make_onnx_golden import OUT, SEEDS, standardize_linear_head, write_golden


class TinyAttention(torch.nn.Module):
    """The fuzz seed: 4x4 patches of a 3x8x8 image, one nn.MultiheadAttention of 2 heads
    over them (batch_first: torch's export moves the batch and multiplies it into the
    heads), a mean over the patches and a linear head to 3 classes."""

    def __init__(self):
        super().__init__()
        self.patch = torch.nn.Conv2d(3, 4, 4, stride=4)
        self.attn = torch.nn.MultiheadAttention(4, 2, batch_first=True)
        self.head = torch.nn.Linear(4, 3)

    def forward(self, x):
        t = self.patch(x).flatten(2).transpose(1, 2)
        return self.head(self.attn(t, t, t, need_weights=False)[0].mean(1))


class TinyNormMlp(torch.nn.Module):
    """The second fuzz seed: 4x4 patches of a 3x8x8 image, a LayerNorm and an MLP with a
    GELU over them (written out at opset 13: the patterns the reader fuses), a mean over
    the patches and a linear head to 3 classes."""

    def __init__(self):
        super().__init__()
        self.patch = torch.nn.Conv2d(3, 4, 4, stride=4)
        self.norm = torch.nn.LayerNorm(4)
        self.mlp = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.GELU(), torch.nn.Linear(8, 4))
        self.head = torch.nn.Linear(4, 3)

    def forward(self, x):
        t = self.patch(x).flatten(2).transpose(1, 2)
        return self.head(self.mlp(self.norm(t)).mean(1))


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


def export(model, path, symbolic=True, size=16):
    """torch.onnx.export's file with its names shortened (shorten below): the same graph
    in a third of the bytes, which every GPU session carries to the device."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model.eval(), torch.rand(2 if symbolic else 1, 3, size, size), path,
                          opset_version=13, input_names=["input"], output_names=["logits"],
                          dynamic_axes={"input": {0: "n"}, "logits": {0: "n"}} if symbolic else None)
    with open(path, "rb") as f:
        short = shorten(f.read())
    with open(path, "wb") as f:
        f.write(short)
    print(f"{path}: {len(short)} bytes")


# A minimal protobuf walker (the onnx module is not a Debian package here): enough to
# shorten a small export's value names and drop its node names and doc strings, which
# are most of its bytes (a fuzz seed then fits the target's 8 KiB inputs).
def _varint(b, i):
    v = shift = 0
    while True:
        c = b[i]
        i += 1
        v |= (c & 0x7F) << shift
        shift += 7
        if c < 0x80:
            return v, i


def _put_varint(v):
    out = bytearray()
    while True:
        c = v & 0x7F
        v >>= 7
        out.append(c | (0x80 if v else 0))
        if not v:
            return bytes(out)


def _fields(b):
    i = 0
    while i < len(b):
        key, i = _varint(b, i)
        field, wire = key >> 3, key & 7
        start = i
        if wire == 0:
            _, i = _varint(b, i)
            yield field, wire, b[start:i]
        elif wire == 1:
            i += 8
            yield field, wire, b[start:i]
        elif wire == 5:
            i += 4
            yield field, wire, b[start:i]
        elif wire == 2:
            n, i = _varint(b, i)
            yield field, wire, b[i:i + n]
            i += n
        else:
            raise ValueError(f"wire type {wire}")


def _message(parts):
    out = bytearray()
    for field, wire, value in parts:
        out += _put_varint(field << 3 | wire)
        out += (_put_varint(len(value)) + value) if wire == 2 else value
    return bytes(out)


def shorten(model_bytes):
    names = {}

    def name(v):
        s = v.decode()
        if s in ("", "input", "logits"):
            return v
        return names.setdefault(s, f"v{len(names)}").encode()

    def rename(b, fields):  # a message whose fields `fields` are value names
        return _message([(f, w, name(v) if f in fields else v) for f, w, v in _fields(b)])

    def node(b):  # NodeProto: input 1, output 2; drop name 3 and doc_string 6
        return _message([(f, w, name(v) if f in (1, 2) else v) for f, w, v in _fields(b) if f not in (3, 6)])

    def graph(b):  # GraphProto: node 1, initializer 5 (name 8), input 11, output 12 (name 1)
        keep = []
        for f, w, v in _fields(b):
            if f == 1:
                keep.append((f, w, node(v)))
            elif f == 5:
                keep.append((f, w, rename(v, (8,))))
            elif f in (11, 12):
                keep.append((f, w, rename(v, (1,))))
            elif f not in (10, 13):  # doc_string, value_info
                keep.append((f, w, v))
        return _message(keep)

    return _message([(f, w, graph(v) if f == 7 else v) for f, w, v in _fields(model_bytes) if f != 6])


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
    torch.manual_seed(23)
    export(TinyAttention(), os.path.join(SEEDS, "tiny-attention.onnx"), size=8)
    torch.manual_seed(24)
    export(TinyNormMlp(), os.path.join(SEEDS, "tiny-norm-mlp.onnx"), size=8)


if __name__ == "__main__":
    main()
