#!/usr/bin/python3
"""Converts a PyTorch checkpoint of a supported architecture into ipguard's native model
file (HDF5, design.md "Files"), which `ipguard verify --suspect`, `eval` etc. load.

    /usr/bin/python3 tools/torch2h5.py --arch resnet20 --in resnet20.th --out m.h5 \\
        --input 3x32x32 --mean 0.4914,0.4822,0.4465 --std 0.2470,0.2435,0.2616

Needs Debian's python3-torch and python3-h5py (the pyenv `python3` on PATH has no torch).

The checkpoint may be a state_dict, a dict holding one (under state_dict, model_state_dict,
model, net, state or weights), or, with --unsafe-pickle, a pickled nn.Module. Keys are
matched to our module paths (tools/torch_models.py twins), after these normalizations:
  - a prefix shared by every key ("module." from DataParallel, "model.") is dropped;
  - num_batches_tracked is dropped (our BN layers do not store it);
  - common layouts are renamed: resnet20 "fc." -> "linear.", "downsample." -> "shortcut.";
    wrn-22-4 "blockN.layer.I." -> "blockN.I.", "convShortcut" -> "shortcut", top-level
    "bn1." -> "bn.", "linear." -> "fc."; vgg16 "fc." / "classifier." -> "linear.".
Every tensor must then match by name and shape: missing, unexpected and mis-shaped tensors
are all listed and the exit status is 1 (nothing is written). Bad arguments exit with 2.
The input normalization is a required choice: --mean and --std (per channel, the values the
network was trained with on [0, 1] pixels), stored in the file and applied by ipguard inside
the model; or --no-normalize for a network trained on raw [0, 1] pixels. (A silent default
of mean 0, std 1 gave a model that disagreed with its checkpoint on most labels.)
Arguments are checked before torch is imported, so --help and usage errors work without it.
"""
import argparse
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

# The architectures of tools/torch_models.py (ARCHS there; checked equal in convert()).
DEFAULT_INPUT = {"lenet5": "1x28x28", "resnet20": "3x32x32", "wrn-22-4": "3x32x32",
                 "vgg16": "3x32x32", "resnet50": "3x224x224", "vgg16-imagenet": "3x224x224"}
HEADS = {"lenet5": "fc3", "resnet20": "linear", "wrn-22-4": "fc", "vgg16": "linear",
         "resnet50": "predictions", "vgg16-imagenet": "predictions"}
RENAMES = {
    "resnet20": [(r"^fc\.", "linear."), (r"\.downsample\.", ".shortcut.")],
    "wrn-22-4": [(r"^(block\d+)\.layer\.(\d+)\.", r"\1.\2."), (r"\.convShortcut\.", ".shortcut."),
                 (r"^bn1\.", "bn."), (r"^linear\.", "fc.")],
    "vgg16": [(r"^(fc|classifier)\.", "linear.")],
}
STATE_KEYS = ("state_dict", "model_state_dict", "model", "net", "state", "weights")


class ConversionError(Exception):
    """A checkpoint that cannot be converted (exit status 1)."""


def parse_input(text, parser):
    m = re.fullmatch(r"(\d+)x(\d+)x(\d+)", text or "")
    if not m:
        parser.error(f"--input must look like CxHxW (e.g. 3x32x32), got '{text}'")
    c, h, w = (int(v) for v in m.groups())
    if not (0 < c <= 64 and 0 < h <= 4096 and 0 < w <= 4096):
        parser.error(f"--input {text}: implausible size")
    return c, h, w


def parse_floats(text, name, channels, default, parser):
    if text is None:
        return [default] * channels
    try:
        values = [float(v) for v in text.split(",")]
    except ValueError:
        parser.error(f"{name} must be comma-separated numbers, got '{text}'")
    if len(values) == 1:
        values = values * channels
    if len(values) != channels:
        parser.error(f"{name} has {len(values)} values; the input has {channels} channel(s)")
    return values


def extract_state_dict(obj, torch):
    """The tensor dict inside whatever torch.load returned."""
    if isinstance(obj, torch.nn.Module):
        return obj.state_dict()
    if isinstance(obj, dict):
        if obj and all(isinstance(v, torch.Tensor) for v in obj.values()):
            return obj
        for k in STATE_KEYS:
            if k in obj and isinstance(obj[k], (dict, torch.nn.Module)):
                return extract_state_dict(obj[k], torch)
        raise ConversionError("no state_dict found: the checkpoint is a dict with keys "
                              + ", ".join(map(str, list(obj)[:10]))
                              + f" (looked for a tensor dict or one of: {', '.join(STATE_KEYS)})")
    raise ConversionError(f"unsupported checkpoint content: {type(obj).__name__}")


def normalize_keys(state, arch):
    """Applies the prefix stripping and renames described at the top."""
    state = {k: v for k, v in state.items() if not k.endswith("num_batches_tracked")}
    for prefix in ("module.", "model."):
        while state and all(k.startswith(prefix) for k in state):
            state = {k[len(prefix):]: v for k, v in state.items()}
    out = {}
    for k, v in state.items():
        for pattern, repl in RENAMES.get(arch, []):
            k = re.sub(pattern, repl, k)
        if k in out:
            raise ConversionError(f"two checkpoint tensors map to '{k}' after renaming")
        out[k] = v
    return out


def check_args(args, parser):
    """Every usage error (exit 2), before torch loads: returns (c, h, w, mean, std)."""
    if args.no_normalize and (args.mean is not None or args.std is not None):
        parser.error("--no-normalize and --mean/--std exclude each other")
    if not args.no_normalize and (args.mean is None or args.std is None):
        parser.error("give the normalization the network was trained with: --mean M --std S "
                     "(per channel, on [0, 1] pixels), or --no-normalize")
    c, h, w = parse_input(args.input or DEFAULT_INPUT[args.arch], parser)
    mean = parse_floats(args.mean, "--mean", c, 0.0, parser)
    std = parse_floats(args.std, "--std", c, 1.0, parser)
    if not all(s > 0 for s in std):
        parser.error("--std values must be positive")
    if args.classes is not None and args.classes < 2:
        parser.error("--classes must be at least 2")
    if os.path.exists(args.out) and os.path.exists(args.inp) and os.path.samefile(args.out,
                                                                                 args.inp):
        parser.error(f"--out {args.out} would overwrite the checkpoint --in {args.inp}")
    if os.path.isdir(args.out):
        parser.error(f"--out {args.out} is a folder; give a file name")
    return c, h, w, mean, std


def convert(args, parser, shape):
    try:
        import torch
        import torch_models as tm
    except ImportError as e:
        raise ConversionError(f"needs PyTorch (Debian's python3-torch, run with /usr/bin/python3): "
                              f"{e}") from None
    assert set(tm.ARCHS) == set(DEFAULT_INPUT), "torch2h5's architectures differ from tm.ARCHS"
    c, h, w, mean, std = shape
    if not os.path.isfile(args.inp):
        raise ConversionError(f"{args.inp}: no such file")

    try:
        if args.unsafe_pickle:
            obj = torch.load(args.inp, map_location="cpu")
        else:
            obj = torch.load(args.inp, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises many types for unreadable / pickled files
        hint = ("" if args.unsafe_pickle else
                " (a checkpoint that pickles whole objects needs --unsafe-pickle; only use it "
                "on files you trust)")
        raise ConversionError(f"{args.inp}: cannot be read by torch.load: {e}{hint}") from None
    state = normalize_keys(extract_state_dict(obj, torch), args.arch)

    head = HEADS[args.arch] + ".weight"
    classes = args.classes
    if classes is None:
        if head not in state or state[head].dim() != 2:
            raise ConversionError(f"{args.inp}: cannot infer the class count: no 2-D '{head}' "
                                  "(pass --classes)")
        classes = int(state[head].shape[0])

    config = tm.ModelConfig(args.arch, c, h, w, classes, mean, std)
    try:
        model = tm.make_model(config)
    except ValueError as e:
        parser.error(str(e))
    expected = {key: t for _, (key, t) in tm.native_tensors(model).items()}

    problems = []
    for k in sorted(set(expected) - set(state)):
        problems.append(f"missing {k} {list(expected[k].shape)}")
    for k in sorted(set(state) - set(expected)):
        problems.append(f"unexpected {k} {list(getattr(state[k], 'shape', []))}")
    for k in sorted(set(state) & set(expected)):
        v = state[k]
        if not isinstance(v, torch.Tensor) or not v.is_floating_point():
            problems.append(f"{k}: not a floating-point tensor")
        elif tuple(v.shape) != tuple(expected[k].shape):
            problems.append(f"{k}: checkpoint has {list(v.shape)}, {args.arch} with input "
                            f"{c}x{h}x{w} and {classes} classes needs {list(expected[k].shape)}")
        elif not torch.isfinite(v).all():
            problems.append(f"{k}: contains NaN or Inf")
    if problems:
        hints = []
        if args.arch == "resnet20" and any("shortcut" in p and p.startswith("missing")
                                           for p in problems):
            hints.append("ipguard's resnet20 uses 1x1-conv + BN projection shortcuts; "
                         "checkpoints with option-A (zero-padding identity) shortcuts do not fit")
        if any("fc1.weight" in p for p in problems) and args.arch in ("lenet5", "vgg16-imagenet"):
            hints.append("fc1's input size depends on --input: check CxHxW")
        shown = problems[:40]
        more = [f"... and {len(problems) - 40} more"] if len(problems) > 40 else []
        raise ConversionError(f"{args.inp}: {len(problems)} tensor(s) do not fit {args.arch}:\n  "
                              + "\n  ".join(shown + more + [f"hint: {x}" for x in hints]))

    with torch.no_grad():
        for k, t in expected.items():
            t.copy_(state[k].to(torch.float32))
    provenance = {"recipe": f"converted from {os.path.basename(args.inp)} by tools/torch2h5.py"}
    if args.data:
        provenance["data"] = args.data
    out_dir = os.path.dirname(os.path.abspath(args.out))
    if not os.path.isdir(out_dir):
        raise ConversionError(f"{args.out}: directory {out_dir} does not exist")
    tm.save_ipguard(model, config, args.out, provenance=provenance)
    n = sum(p.numel() for p in model.parameters())
    print(f"{args.out}: {args.arch}, input {c}x{h}x{w}, {classes} classes, {n} parameters, "
          f"{len(expected)} tensors")


def main(argv=None):
    parser = argparse.ArgumentParser(
        description="Convert a PyTorch checkpoint into an ipguard native model file. The input "
        "normalization the network was trained with is required: --mean and --std, or "
        "--no-normalize.")
    parser.add_argument("--arch", required=True, choices=list(DEFAULT_INPUT))
    parser.add_argument("--in", dest="inp", required=True, metavar="CKPT",
                        help="PyTorch checkpoint (.pt/.pth/.th)")
    parser.add_argument("--out", required=True, help="native model file to write (.h5)")
    parser.add_argument("--input", metavar="CxHxW",
                        help="input shape (default: " + ", ".join(
                            f"{a} {s}" for a, s in DEFAULT_INPUT.items()) + ")")
    parser.add_argument("--classes", type=int,
                        help="number of classes (default: from the last layer's weight)")
    parser.add_argument("--mean", help="per-channel mean of [0,1] pixels the network was "
                        "trained with, comma-separated (one value applies to every channel); "
                        "required with --std unless --no-normalize")
    parser.add_argument("--std", help="per-channel std, comma-separated; required with --mean "
                        "unless --no-normalize")
    parser.add_argument("--no-normalize", action="store_true",
                        help="the network takes raw [0,1] pixels (mean 0, std 1); the explicit "
                        "alternative to --mean/--std")
    parser.add_argument("--data", help="provenance: the training data set's name")
    parser.add_argument("--unsafe-pickle", action="store_true",
                        help="allow checkpoints that pickle Python objects (trusted files only)")
    args = parser.parse_args(argv)
    shape = check_args(args, parser)
    try:
        convert(args, parser, shape)
    except ConversionError as e:
        print(f"torch2h5: error: {e}", file=sys.stderr)
        return 1
    except OSError as e:
        print(f"torch2h5: error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
