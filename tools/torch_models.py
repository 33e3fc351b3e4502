"""PyTorch twins of ipguard's built-in architectures, and the native model file.

Importing this module has no side effects (no seeding, no thread settings, no I/O).

Twins: lenet5, resnet20, wrn-22-4, resnet50, vgg16, vgg16-imagenet, built by
``make_model(config)``. Each twin computes exactly what models/*.cpp computes, including
the input normalization (x - mean[c]) / std[c] (so the twin takes [0, 1] pixels), and its
state_dict keys are our module paths with '/' written as '.':
``layer1/0/conv1/weight`` <-> ``layer1.0.conv1.weight``. BatchNorm layers carry no
``num_batches_tracked`` (our files have none), and the normalization constants are
non-persistent buffers, so the state_dict holds exactly the tensors of a native file.

Native file (design.md "Files"): root attributes format="ipguard-model", version, arch,
in_channels, height, width, classes, mean[], std[] (+ optional provenance: data, seed,
epochs, accuracy, recipe); float32 datasets /params/<path> and /buffers/<path>
(BN running_mean / running_var). The reader takes versions 1 and 2 (version 2, what the
ipguard binaries write, adds an integrity digest: root attribute content_sha256 and an
HDF5 user block, docs/file-integrity.md; it is not checked here). The writer writes
version 1 (no digest: ipguard loads it with a notice; `ipguard convert --upgrade` seals it).

    config = ModelConfig("resnet20", 3, 32, 32, 10, [0.49, 0.48, 0.45], [0.25, 0.24, 0.26])
    model = make_model(config)
    save_ipguard(model, config, "m.h5")
    model, config = load_ipguard("m.h5")      # eval mode, float32
"""
import dataclasses
import os
from typing import Dict, List, Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F

FORMAT = "ipguard-model"
VERSION = 1  # what save_ipguard writes
READ_VERSIONS = (1, 2)  # what read_config / load_ipguard accept
ARCHS = ("lenet5", "resnet20", "wrn-22-4", "resnet50", "vgg16", "vgg16-imagenet")


class IpgFormatError(ValueError):
    """A native file (or a state_dict) that does not fit the architecture it claims."""


@dataclasses.dataclass
class ModelConfig:
    """Mirror of ipg::ModelConfig (models/network.h); empty mean/std mean 0 / 1."""
    arch: str
    in_channels: int = 1
    height: int = 28
    width: int = 28
    classes: int = 10
    mean: List[float] = dataclasses.field(default_factory=list)
    std: List[float] = dataclasses.field(default_factory=list)

    def resolved_mean(self) -> List[float]:
        return list(self.mean) if self.mean else [0.0] * self.in_channels

    def resolved_std(self) -> List[float]:
        return list(self.std) if self.std else [1.0] * self.in_channels


class BatchNorm2d(nn.BatchNorm2d):
    """nn.BatchNorm2d without the num_batches_tracked buffer (momentum is fixed, as in
    engine/nn/layers.h, so the counter would never be used; our files do not store it)."""

    def __init__(self, channels: int, eps: float = 1e-5, momentum: float = 0.1):
        super().__init__(channels, eps=eps, momentum=momentum)
        # A None buffer is skipped by state_dict and tolerated by BatchNorm's forward.
        self.register_buffer("num_batches_tracked", None)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # _NormBase injects num_batches_tracked for old checkpoints; drop it again.
        state_dict.pop(prefix + "num_batches_tracked", None)
        nn.Module._load_from_state_dict(self, state_dict, prefix, *args, **kwargs)


class Network(nn.Module):
    """Base: holds the config and normalizes [0, 1] pixels before forward_normalized."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        c = config.in_channels
        mean, std = config.resolved_mean(), config.resolved_std()
        if len(mean) != c or len(std) != c:
            raise ValueError(f"{config.arch}: mean/std need one value per input channel ({c})")
        if not all(s > 0 for s in std):
            raise ValueError(f"{config.arch}: std must be positive")
        # float32 values, as the native file stores them; non-persistent: not in state_dict.
        self.register_buffer("input_mean", torch.tensor(mean, dtype=torch.float32)
                             .view(1, c, 1, 1), persistent=False)
        self.register_buffer("input_std", torch.tensor(std, dtype=torch.float32)
                             .view(1, c, 1, 1), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        cfg = self.config
        if x.dim() != 4 or tuple(x.shape[1:]) != (cfg.in_channels, cfg.height, cfg.width):
            raise ValueError(f"{cfg.arch}: input {tuple(x.shape)} does not match "
                             f"[n, {cfg.in_channels}, {cfg.height}, {cfg.width}]")
        return self.forward_normalized((x - self.input_mean) / self.input_std)

    def forward_normalized(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError


# ---------------------------------------------------------------------------- LeNet-5
class LeNet5(Network):
    """conv5 (pad 2)-relu-pool2-conv5-relu-pool2-fc120-fc84-fc (models/lenet5.cpp)."""

    def __init__(self, config: ModelConfig):
        super().__init__(config)

        def out_size(s):
            if s // 2 - 4 < 2:
                raise ValueError("lenet5: input side must be at least 12")
            return (s // 2 - 4) // 2

        flat = 16 * out_size(config.height) * out_size(config.width)
        self.conv1 = nn.Conv2d(config.in_channels, 6, 5, padding=2)
        self.conv2 = nn.Conv2d(6, 16, 5)
        self.fc1 = nn.Linear(flat, 120)
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, config.classes)

    def forward_normalized(self, x):
        h = F.max_pool2d(F.relu(self.conv1(x)), 2, 2)
        h = F.max_pool2d(F.relu(self.conv2(h)), 2, 2)
        h = F.relu(self.fc1(torch.flatten(h, 1)))
        h = F.relu(self.fc2(h))
        return self.fc3(h)


# --------------------------------------------------------------------------- ResNet20
class BasicBlock(nn.Module):
    """conv3x3-BN-ReLU-conv3x3-BN + shortcut, ReLU; 1x1 conv + BN projection
    ("shortcut.0", "shortcut.1") when the shape changes."""

    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = BatchNorm2d(cout)
        self.shortcut = None
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, 0, bias=False),
                                          BatchNorm2d(cout))

    def forward(self, x):
        h = F.relu(self.bn1(self.conv1(x)))
        h = self.bn2(self.conv2(h))
        return F.relu(h + (self.shortcut(x) if self.shortcut is not None else x))


class ResNet20(Network):
    def __init__(self, config: ModelConfig):
        super().__init__(config)
        self.conv1 = nn.Conv2d(config.in_channels, 16, 3, 1, 1, bias=False)
        self.bn1 = BatchNorm2d(16)
        cin = 16
        for s, width in enumerate((16, 32, 64)):
            blocks = []
            for b in range(3):
                blocks.append(BasicBlock(cin, width, 2 if (s > 0 and b == 0) else 1))
                cin = width
            self.add_module(f"layer{s + 1}", nn.Sequential(*blocks))
        self.linear = nn.Linear(64, config.classes)

    def forward_normalized(self, x):
        h = F.relu(self.bn1(self.conv1(x)))
        h = self.layer3(self.layer2(self.layer1(h)))
        return self.linear(h.mean(dim=(2, 3)))


# --------------------------------------------------------------------------- WRN-22-4
class WideBlock(nn.Module):
    """Pre-activation: BN-ReLU-conv3x3-BN-ReLU-conv3x3 + input, or + a 1x1 conv of the
    pre-activated input relu(bn1(x)) when the shape changes."""

    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.bn1 = BatchNorm2d(cin)
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn2 = BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.shortcut = None
        if stride != 1 or cin != cout:
            self.shortcut = nn.Conv2d(cin, cout, 1, stride, 0, bias=False)

    def forward(self, x):
        o = F.relu(self.bn1(x))
        h = self.conv2(F.relu(self.bn2(self.conv1(o))))
        return h + (self.shortcut(o) if self.shortcut is not None else x)


class WideResNet(Network):
    def __init__(self, config: ModelConfig, depth: int = 22, k: int = 4):
        super().__init__(config)
        n = (depth - 4) // 6
        self.conv1 = nn.Conv2d(config.in_channels, 16, 3, 1, 1, bias=False)
        cin = 16
        for s in range(3):
            width = (16 << s) * k
            blocks = []
            for b in range(n):
                blocks.append(WideBlock(cin, width, 2 if (s > 0 and b == 0) else 1))
                cin = width
            self.add_module(f"block{s + 1}", nn.Sequential(*blocks))
        self.bn = BatchNorm2d(cin)
        self.fc = nn.Linear(cin, config.classes)

    def forward_normalized(self, x):
        h = self.block3(self.block2(self.block1(self.conv1(x))))
        return self.fc(F.relu(self.bn(h)).mean(dim=(2, 3)))


# --------------------------------------------------------------------------- ResNet50
KERAS_BN_EPS = 1.001e-5


class Bottleneck(nn.Module):
    """Keras applications v1 block: 1x1 (stride s) - 3x3 - 1x1 (x4), all convs biased,
    BN eps 1.001e-5; projection "0_conv"/"0_bn" in the first block of a stage."""

    def __init__(self, cin: int, filters: int, stride: int, project: bool):
        super().__init__()
        mods = {
            "1_conv": nn.Conv2d(cin, filters, 1, stride, 0),
            "1_bn": BatchNorm2d(filters, KERAS_BN_EPS),
            "2_conv": nn.Conv2d(filters, filters, 3, 1, 1),
            "2_bn": BatchNorm2d(filters, KERAS_BN_EPS),
            "3_conv": nn.Conv2d(filters, 4 * filters, 1, 1, 0),
            "3_bn": BatchNorm2d(4 * filters, KERAS_BN_EPS),
        }
        if project:
            mods["0_conv"] = nn.Conv2d(cin, 4 * filters, 1, stride, 0)
            mods["0_bn"] = BatchNorm2d(4 * filters, KERAS_BN_EPS)
        # Names start with a digit: not Python identifiers, so register them explicitly.
        for name, m in mods.items():
            self.add_module(name, m)
        self.project = project

    def forward(self, x):
        m = self._modules
        sc = m["0_bn"](m["0_conv"](x)) if self.project else x
        h = F.relu(m["1_bn"](m["1_conv"](x)))
        h = F.relu(m["2_bn"](m["2_conv"](h)))
        h = m["3_bn"](m["3_conv"](h))
        return F.relu(sc + h)


class ResNet50Stem(nn.Module):
    """conv1_pad (3) - 7x7/2 valid conv - BN - ReLU - pool1_pad (1, zeros) - 3x3/2 max."""

    def __init__(self, cin: int):
        super().__init__()
        self.conv = nn.Conv2d(cin, 64, 7, 2, 0)
        self.bn = BatchNorm2d(64, KERAS_BN_EPS)

    def forward(self, x):
        h = F.relu(self.bn(self.conv(F.pad(x, (3, 3, 3, 3)))))
        return F.max_pool2d(F.pad(h, (1, 1, 1, 1)), 3, 2)


class ResNet50(Network):
    def __init__(self, config: ModelConfig):
        super().__init__(config)
        self.conv1 = ResNet50Stem(config.in_channels)
        cin = 64
        for s, nblocks in enumerate((3, 4, 6, 3)):
            filters = 64 << s
            stage = nn.Module()
            for b in range(nblocks):
                stage.add_module(f"block{b + 1}",
                                 Bottleneck(cin, filters, 2 if (s > 0 and b == 0) else 1, b == 0))
                cin = 4 * filters
            self.add_module(f"conv{s + 2}", stage)
        self.predictions = nn.Linear(cin, config.classes)

    def forward_normalized(self, x):
        h = self.conv1(x)
        for s in range(2, 6):
            for block in getattr(self, f"conv{s}").children():
                h = block(h)
        return self.predictions(h.mean(dim=(2, 3)))


# ------------------------------------------------------------------------------ VGG16
VGG_BLOCKS = (2, 2, 3, 3, 3)
VGG_WIDTHS = (64, 128, 256, 512, 512)


class Vgg16(Network):
    """"vgg16": conv3x3+bias, BN ("convI_bn"), ReLU, 2x2 max pool after each block unless
    the map is already 1 pixel wide, global average pool, "linear".
    "vgg16-imagenet": Keras layout without BN, flatten, fc1/fc2 4096 + ReLU (+ dropout
    0.5, identity in eval), "predictions"."""

    def __init__(self, config: ModelConfig, imagenet: bool):
        super().__init__(config)
        self.imagenet = imagenet
        cin, h, w = config.in_channels, config.height, config.width
        self.layer_names = []
        for b, (n, width) in enumerate(zip(VGG_BLOCKS, VGG_WIDTHS)):
            block = nn.Module()
            for i in range(n):
                block.add_module(f"conv{i + 1}", nn.Conv2d(cin, width, 3, 1, 1))
                if not imagenet:
                    block.add_module(f"conv{i + 1}_bn", BatchNorm2d(width))
                self.layer_names.append((f"block{b + 1}", f"conv{i + 1}", i == n - 1))
                cin = width
            self.add_module(f"block{b + 1}", block)
            if h >= 2 and w >= 2:
                h, w = h // 2, w // 2
        if imagenet:
            self.fc1 = nn.Linear(cin * h * w, 4096)
            self.fc2 = nn.Linear(4096, 4096)
            self.predictions = nn.Linear(4096, config.classes)
        else:
            self.linear = nn.Linear(cin, config.classes)

    def forward_normalized(self, x):
        h = x
        for block_name, conv_name, pool_after in self.layer_names:
            block = getattr(self, block_name)
            h = getattr(block, conv_name)(h)
            if not self.imagenet:
                h = getattr(block, conv_name + "_bn")(h)
            h = F.relu(h)
            if pool_after and h.shape[2] >= 2 and h.shape[3] >= 2:
                h = F.max_pool2d(h, 2, 2)
        if not self.imagenet:
            return self.linear(h.mean(dim=(2, 3)))
        h = F.dropout(F.relu(self.fc1(torch.flatten(h, 1))), 0.5, self.training)
        h = F.dropout(F.relu(self.fc2(h)), 0.5, self.training)
        return self.predictions(h)


# ----------------------------------------------------------------------------- registry
def make_model(config: ModelConfig) -> Network:
    """The twin of `config.arch` (PyTorch default initialization, training mode)."""
    factories = {
        "lenet5": LeNet5,
        "resnet20": ResNet20,
        "wrn-22-4": WideResNet,
        "resnet50": ResNet50,
        "vgg16": lambda c: Vgg16(c, imagenet=False),
        "vgg16-imagenet": lambda c: Vgg16(c, imagenet=True),
    }
    if config.arch not in factories:
        raise ValueError(f"unknown architecture '{config.arch}' (known: {', '.join(ARCHS)})")
    if (config.in_channels <= 0 or config.height <= 0 or config.width <= 0
            or config.classes < 2):
        raise ValueError(f"{config.arch}: implausible input {config.in_channels}x"
                         f"{config.height}x{config.width} or class count {config.classes}")
    return factories[config.arch](config)


def native_tensors(model: nn.Module) -> Dict[str, Tuple[str, torch.Tensor]]:
    """Our dataset path ("params/layer1/0/conv1/weight") -> (state_dict key, tensor) for
    every parameter and persistent buffer of `model`."""
    out = {}
    for key, t in model.named_parameters():
        out["params/" + key.replace(".", "/")] = (key, t)
    persistent = set(model.state_dict().keys())
    for key, t in model.named_buffers():
        if key in persistent:
            out["buffers/" + key.replace(".", "/")] = (key, t)
    return out


def _list_datasets(group, prefix, out):
    import h5py  # local: keeps `import torch_models` light for callers that only build twins
    for name, obj in group.items():
        if isinstance(obj, h5py.Group):
            _list_datasets(obj, prefix + name + "/", out)
        else:
            out.append(prefix + name)


def _attr_str(v) -> str:
    return v.decode("utf-8") if isinstance(v, bytes) else str(v)


def read_config(path: str) -> ModelConfig:
    """The root attributes of a native file as a ModelConfig (IpgFormatError if not one)."""
    import h5py
    with h5py.File(path, "r") as f:
        a = f.attrs
        if _attr_str(a.get("format", "")) != FORMAT:
            raise IpgFormatError(f"{path}: not an ipguard model file (attribute format is not "
                                 f"'{FORMAT}')")
        if "version" not in a:
            raise IpgFormatError(f"{path}: no attribute version")
        if int(a["version"]) not in READ_VERSIONS:
            raise IpgFormatError(f"{path}: model file version {int(a['version'])} is not "
                                 f"supported (this reads versions "
                                 f"{', '.join(map(str, READ_VERSIONS))})")
        return ModelConfig(arch=_attr_str(a["arch"]), in_channels=int(a["in_channels"]),
                           height=int(a["height"]), width=int(a["width"]),
                           classes=int(a["classes"]),
                           mean=[float(v) for v in a["mean"]], std=[float(v) for v in a["std"]])


def load_ipguard(path: str) -> Tuple[Network, ModelConfig]:
    """Reads a native file into its twin (float32, eval mode). Every tensor's name and
    shape is checked; all problems are reported in one IpgFormatError."""
    import h5py
    import numpy as np
    config = read_config(path)
    model = make_model(config)
    expected = native_tensors(model)
    problems = []
    with h5py.File(path, "r") as f:
        found = []
        for root in ("params", "buffers"):
            if root in f:
                _list_datasets(f[root], root + "/", found)
        for name in found:
            if name not in expected:
                problems.append(f"unexpected {name} (not part of {config.arch})")
        with torch.no_grad():
            for name, (_, t) in expected.items():
                if name not in f:
                    problems.append(f"missing {name} {list(t.shape)}")
                    continue
                d = f[name]
                if tuple(d.shape) != tuple(t.shape) or d.dtype != np.float32:
                    problems.append(f"{name}: file has {d.dtype} {list(d.shape)}, "
                                    f"{config.arch} needs float32 {list(t.shape)}")
                    continue
                v = torch.from_numpy(np.asarray(d[()], dtype=np.float32))
                if not torch.isfinite(v).all():
                    problems.append(f"{name}: NaN/Inf weights refused")
                    continue
                t.copy_(v)
    if problems:
        raise IpgFormatError(f"{path}: {len(problems)} tensor(s) do not fit {config.arch}:\n  "
                             + "\n  ".join(problems[:20]))
    model.eval()
    return model, config


def save_ipguard(model: nn.Module, config: ModelConfig, path: str,
                 provenance: Optional[dict] = None, compression: Optional[str] = None) -> None:
    """Writes `model` (a twin, or any module with the same state_dict keys) as a native
    file. Tensors are stored as float32; `compression="gzip"` adds gzip+shuffle (our C++
    reader decompresses through HDF5). provenance: optional data (str), seed, epochs
    (int), accuracy (float), recipe (str). Written to a temp name and renamed, so a
    failure never leaves a half-written file at `path`."""
    import h5py
    import numpy as np
    mean, std = config.resolved_mean(), config.resolved_std()
    if len(mean) != config.in_channels or len(std) != config.in_channels:
        raise ValueError(f"{config.arch}: mean/std need one value per input channel")
    tmp = f"{path}.tmp-{os.getpid()}"
    try:
        with h5py.File(tmp, "w") as f:
            a = f.attrs
            a["format"] = FORMAT
            a["version"] = np.int64(VERSION)
            a["arch"] = config.arch
            for k in ("in_channels", "height", "width", "classes"):
                a[k] = np.int64(getattr(config, k))
            a["mean"] = np.asarray(mean, dtype=np.float32)
            a["std"] = np.asarray(std, dtype=np.float32)
            for k, v in (provenance or {}).items():
                if k in ("data", "recipe"):
                    a[k] = str(v)
                elif k in ("seed", "epochs"):
                    a[k] = np.int64(v)
                elif k == "accuracy":
                    a[k] = np.float64(v)
                else:
                    raise ValueError(f"unknown provenance field '{k}'")
            kw = dict(compression="gzip", compression_opts=9, shuffle=True) if compression else {}
            for name, (_, t) in sorted(native_tensors(model).items()):
                data = t.detach().to(torch.float32).cpu().numpy()
                # Plain datasets and no timestamps: reruns give byte-identical files.
                f.create_dataset(name, data=data, track_times=False,
                                 **(kw if data.size >= 1024 else {}))
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
