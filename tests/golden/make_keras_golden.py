#!/usr/bin/python3
# Writes small Keras-layout HDF5 files into tests/data/keras/ for the Keras import tests
# (tests/models/test_keras_import.cpp). No TensorFlow here: the files reproduce, with
# h5py, what Keras 2's `model.save_weights("x.h5")` and `model.save("x.h5")` write, and
# the expected logits come from an independent NHWC forward pass written in torch.
#
# Regenerate from the repository root with
#     /usr/bin/python3 tests/golden/make_keras_golden.py
# (Debian's python3-torch and python3-h5py). Deterministic: fixed seed, no timestamps.
#
# The model is a LeNet-5 as a Keras Sequential would be: Conv2D(6, 5, 'same', relu),
# MaxPool 2, Conv2D(16, 5, 'valid', relu), MaxPool 2, Flatten, Dense 120 relu, Dense 84
# relu, Dense 10 (softmax in Keras; the logits stored are its pre-softmax values). Input
# 3x20x20 RGB with keras.applications 'caffe' preprocessing, so the tests exercise the
# BGR/255/mean fold, the HWIO and [in, out] transposes, and the NHWC Flatten (a 3x3x16
# map) all at once. Layer names are generic (conv2d, dense_1, ...), so layers are matched
# by position.
#
# lenet5_save_weights_fixed.h5: save_weights layout, fixed-length byte strings (Keras
#   2.2), layer_names split into layer_names0/layer_names1 and one weight_names split
#   into weight_names0/weight_names1 (as Keras does for attributes over 64 KiB).
# lenet5_model_save_vlen.h5: model.save layout (weights under /model_weights, a
#   model_config attribute at the root, an optimizer_weights group), variable-length
#   UTF-8 strings (tf.keras 2.x).
# lenet5_expected.h5: x [2, 3, 20, 20] float32 in [0,1] (NCHW RGB) and logits [2, 10].
import json
import os

import h5py
import numpy as np
import torch
import torch.nn.functional as F

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "data", "keras")
CAFFE_MEAN_BGR = np.array([103.939, 116.779, 123.68])


def layers():
    """(name, [(weight name, value)]) in model.layers order, Keras layouts."""
    rng = np.random.RandomState(20240611)

    def w(*shape, fan_in):
        return (rng.standard_normal(shape) / np.sqrt(fan_in)).astype(np.float32)

    # The first kernel is scaled down for inputs of magnitude ~128 (caffe preprocessing).
    return [
        ("input_1", []),
        ("conv2d", [("kernel:0", w(5, 5, 3, 6, fan_in=75 * 128 ** 2)), ("bias:0", w(6, fan_in=4))]),
        ("max_pooling2d", []),
        ("conv2d_1", [("kernel:0", w(5, 5, 6, 16, fan_in=150)), ("bias:0", w(16, fan_in=4))]),
        ("max_pooling2d_1", []),
        ("flatten", []),
        ("dense", [("kernel:0", w(144, 120, fan_in=144)), ("bias:0", w(120, fan_in=4))]),
        ("dense_1", [("kernel:0", w(120, 84, fan_in=120)), ("bias:0", w(84, fan_in=4))]),
        ("dense_2", [("kernel:0", w(84, 10, fan_in=84)), ("bias:0", w(10, fan_in=4))]),
    ]


def keras_logits(x_rgb01):
    """What Keras computes for [0,1] RGB NCHW images, in float64, pre-softmax."""
    weights = {name: [torch.from_numpy(v).double() for _, v in ws] for name, ws in layers()}
    x = torch.from_numpy(x_rgb01).double().permute(0, 2, 3, 1)  # NHWC, RGB
    x = x.flip(-1) * 255.0 - torch.from_numpy(CAFFE_MEAN_BGR)  # preprocess_input 'caffe'

    def conv(h, name, padding):  # h NHWC; Keras kernel HWIO
        k, b = weights[name]
        y = F.conv2d(h.permute(0, 3, 1, 2), k.permute(3, 2, 0, 1), b, padding=padding)
        return y.permute(0, 2, 3, 1)

    def pool(h):
        return F.max_pool2d(h.permute(0, 3, 1, 2), 2).permute(0, 2, 3, 1)

    h = pool(torch.relu(conv(x, "conv2d", 2)))
    h = pool(torch.relu(conv(h, "conv2d_1", 0)))
    h = h.reshape(h.shape[0], -1)  # Keras Flatten over NHWC: (h, w, c) order
    for name in ("dense", "dense_1"):
        k, b = weights[name]
        h = torch.relu(h @ k + b)
    k, b = weights["dense_2"]
    return (h @ k + b).numpy()


def fixed(names):
    return np.asarray([n.encode("utf8") for n in names])


def write_layers(root, variable_length):
    vlen = h5py.string_dtype("utf-8")
    names = [n for n, _ in layers()]
    if variable_length:
        root.attrs["backend"] = "tensorflow"
        root.attrs["keras_version"] = "2.11.0"
        root.attrs.create("layer_names", names, dtype=vlen)
    else:
        root.attrs["backend"] = np.bytes_(b"tensorflow")
        root.attrs["keras_version"] = np.bytes_(b"2.2.4")
        root.attrs["layer_names0"] = fixed(names[:4])
        root.attrs["layer_names1"] = fixed(names[4:])
    for name, ws in layers():
        g = root.create_group(name)
        weight_names = [f"{name}/{w}" for w, _ in ws]
        for wname, (_, value) in zip(weight_names, ws):
            g.create_dataset(wname, data=value, track_times=False)
        if variable_length:
            g.attrs.create("weight_names", weight_names, dtype=vlen)
        elif name == "dense":
            g.attrs["weight_names0"] = fixed(weight_names[:1])
            g.attrs["weight_names1"] = fixed(weight_names[1:])
        else:
            # Weightless layers get np.asarray([]): an empty float64 array.
            g.attrs["weight_names"] = fixed(weight_names) if weight_names else np.asarray([])


def main():
    os.makedirs(OUT, exist_ok=True)
    with h5py.File(os.path.join(OUT, "lenet5_save_weights_fixed.h5"), "w") as f:
        write_layers(f, variable_length=False)
    with h5py.File(os.path.join(OUT, "lenet5_model_save_vlen.h5"), "w") as f:
        config = {"class_name": "Sequential", "config": {"name": "lenet5", "layers": []}}
        f.attrs["keras_version"] = "2.11.0"
        f.attrs["backend"] = "tensorflow"
        f.attrs["model_config"] = json.dumps(config)
        write_layers(f.create_group("model_weights"), variable_length=True)
        # Not weights: must be ignored (only what layer_names / weight_names list is read).
        f.create_group("optimizer_weights").create_dataset(
            "iterations:0", data=np.int64(7), track_times=False)
    rng = np.random.RandomState(5)
    x = rng.uniform(0, 1, size=(2, 3, 20, 20)).astype(np.float32)
    with h5py.File(os.path.join(OUT, "lenet5_expected.h5"), "w") as f:
        f.attrs["generator"] = "tests/golden/make_keras_golden.py"
        f.create_dataset("x", data=x, track_times=False)
        f.create_dataset("logits", data=keras_logits(x).astype(np.float32), track_times=False)
    for name in sorted(os.listdir(OUT)):
        print(name, os.path.getsize(os.path.join(OUT, name)), "bytes")


if __name__ == "__main__":
    main()
