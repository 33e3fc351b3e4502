#!/usr/bin/python3
# Writes the golden HDF5 files the C++ tests read from tests/data/.
#
# Regenerate from the repository root with
#     /usr/bin/python3 tests/golden/make_golden.py
# It needs Debian's python3-torch and python3-h5py (the pyenv `python3` on PATH has no
# torch). Output is deterministic (reruns are byte-identical): every case draws from its
# own fixed seed, so adding a case does not change the others.
#
# golden_ops.h5: one group per case; attribute `op` names the op family, the other
#   attributes its parameters. Inputs are float32; the reference is computed in float64
#   from those same float32 values and rounded once to float32, so it is the exact answer
#   rather than one float32 algorithm's rounding, and the C++ tolerances measure only our
#   own error.
# keras_style.h5, keras_style_vlen.h5: weights laid out as Keras save_weights does, with
#   fixed-length byte-string and variable-length string attributes respectively.
import os

import h5py
import numpy as np
import torch
import torch.nn.functional as F

DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "data")


def f32(t):
    return t.detach().to(torch.float32).numpy()


def leaf(t):
    """A float64 copy of a float32 input that collects its gradient."""
    return t.to(torch.float64).requires_grad_(True)


def write(group, **arrays):
    for name, value in arrays.items():
        # Plain datasets: no chunking, no compression, no timestamps (byte-stable files).
        group.create_dataset(name, data=value, track_times=False)


def conv2d_case(f, name, seed, n, c_in, c_out, h, w, k, stride, padding, bias):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, c_in, h, w, generator=g)
    weight = torch.randn(c_out, c_in, k, k, generator=g) / (c_in * k * k) ** 0.5
    b = torch.randn(c_out, generator=g) if bias else None
    xd, wd = leaf(x), leaf(weight)
    bd = leaf(b) if bias else None
    out = F.conv2d(xd, wd, bd, stride=stride, padding=padding)
    grad_out = torch.randn(out.shape, generator=g)
    out.backward(grad_out.to(torch.float64))

    grp = f.create_group(name)
    grp.attrs.update(op="conv2d", stride=stride, padding=padding, has_bias=int(bias))
    write(grp, x=f32(x), weight=f32(weight), out=f32(out), grad_out=f32(grad_out),
          grad_x=f32(xd.grad), grad_weight=f32(wd.grad))
    if bias:
        write(grp, bias=f32(b), grad_bias=f32(bd.grad))


def batch_norm_case(f, name, seed, training, momentum, eps, shape=(4, 3, 5, 6)):
    g = torch.Generator().manual_seed(seed)
    c = shape[1]
    x = torch.randn(*shape, generator=g) * 2.0 + 0.5
    gamma = 1.0 + 0.3 * torch.randn(c, generator=g)
    beta = 0.3 * torch.randn(c, generator=g)
    running_mean = 0.2 * torch.randn(c, generator=g)
    running_var = 0.5 + torch.rand(c, generator=g)
    xd, gd, bd = leaf(x), leaf(gamma), leaf(beta)
    rm, rv = running_mean.to(torch.float64), running_var.to(torch.float64)
    # Updates rm and rv in place in training mode (unbiased batch variance, as PyTorch).
    out = F.batch_norm(xd, rm, rv, gd, bd, training=training, momentum=momentum, eps=eps)
    grad_out = torch.randn(out.shape, generator=g)
    out.backward(grad_out.to(torch.float64))

    grp = f.create_group(name)
    grp.attrs.update(op="batch_norm", training=int(training), momentum=momentum, eps=eps)
    write(grp, x=f32(x), gamma=f32(gamma), beta=f32(beta), running_mean=f32(running_mean),
          running_var=f32(running_var), out=f32(out), running_mean_out=f32(rm),
          running_var_out=f32(rv), grad_out=f32(grad_out), grad_x=f32(xd.grad),
          grad_gamma=f32(gd.grad), grad_beta=f32(bd.grad))


def pool_case(f, name, seed, op, shape, kernel=0, stride=0, padding=0,
              count_include_pad=True):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(*shape, generator=g)
    xd = leaf(x)
    if op == "max_pool2d":
        out = F.max_pool2d(xd, kernel, stride, padding)
    elif op == "avg_pool2d":
        out = F.avg_pool2d(xd, kernel, stride, padding, count_include_pad=count_include_pad)
    else:
        out = xd.mean(dim=(2, 3))  # global average pool: [N, C]
    grad_out = torch.randn(out.shape, generator=g)
    out.backward(grad_out.to(torch.float64))

    grp = f.create_group(name)
    grp.attrs.update(op=op)
    if op != "global_avg_pool2d":
        grp.attrs.update(kernel=kernel, stride=stride, padding=padding)
    if op == "avg_pool2d":
        grp.attrs.update(count_include_pad=int(count_include_pad))
    write(grp, x=f32(x), out=f32(out), grad_out=f32(grad_out), grad_x=f32(xd.grad))


def cross_entropy_case(f, name, seed):
    g = torch.Generator().manual_seed(seed)
    n, classes = 5, 7
    logits = 3.0 * torch.randn(n, classes, generator=g)
    # Rows a naive exp() overflows on: all logits near 1e3, and a +-1e3 spread whose
    # label is not the largest (a loss of order 1e3).
    logits[1] = 1000.0 + 5.0 * torch.randn(classes, generator=g)
    logits[3] = torch.tensor([1000.0, -1000.0, 3.0, 998.5, -2.0, 0.0, 999.0])
    labels = torch.randint(0, classes, (n,), generator=g, dtype=torch.int64)
    labels[3] = 1
    ld = leaf(logits)
    loss = F.cross_entropy(ld, labels, reduction="mean")
    loss.backward()

    grp = f.create_group(name)
    grp.attrs.update(op="cross_entropy")
    write(grp, logits=f32(logits), labels=labels.to(torch.int32).numpy(),
          loss=np.float32(loss.item()), grad_logits=f32(ld.grad))


def make_golden_ops(path):
    torch.set_grad_enabled(True)
    with h5py.File(path, "w", track_order=False) as f:
        f.attrs["generator"] = "tests/golden/make_golden.py"
        f.attrs["torch_version"] = str(torch.__version__)
        conv2d_case(f, "conv2d_3x3_s1_p1_bias", 101, 2, 3, 4, 8, 9, 3, 1, 1, True)
        conv2d_case(f, "conv2d_3x3_s2_p1", 102, 2, 3, 5, 9, 8, 3, 2, 1, False)
        conv2d_case(f, "conv2d_1x1_s2", 103, 2, 4, 6, 8, 7, 1, 2, 0, False)
        conv2d_case(f, "conv2d_7x7_s2_p3_bias", 104, 2, 3, 4, 15, 16, 7, 2, 3, True)
        conv2d_case(f, "conv2d_5x5_p0_bias", 105, 2, 2, 3, 9, 10, 5, 1, 0, True)
        conv2d_case(f, "conv2d_3x3_s1_p1_cin1", 106, 1, 1, 2, 5, 5, 3, 1, 1, True)
        batch_norm_case(f, "batch_norm_train", 201, True, 0.1, 1e-5)
        batch_norm_case(f, "batch_norm_train_m0.01_eps1e-3", 202, True, 0.01, 1e-3)
        batch_norm_case(f, "batch_norm_eval", 203, False, 0.1, 1e-5)
        batch_norm_case(f, "batch_norm_eval_eps1.001e-5", 204, False, 0.1, 1.001e-5,
                        shape=(2, 5, 3, 4))
        pool_case(f, "max_pool_3x3_s2_p1", 301, "max_pool2d", (2, 3, 9, 10), 3, 2, 1)
        pool_case(f, "max_pool_2x2_s2", 302, "max_pool2d", (2, 3, 8, 7), 2, 2, 0)
        pool_case(f, "avg_pool_2x2_s2", 303, "avg_pool2d", (2, 3, 8, 9), 2, 2, 0)
        pool_case(f, "avg_pool_3x3_s1_p1", 304, "avg_pool2d", (2, 3, 6, 7), 3, 1, 1, True)
        pool_case(f, "avg_pool_3x3_s2_p1_exclude_pad", 305, "avg_pool2d", (2, 2, 7, 6), 3, 2,
                  1, False)
        pool_case(f, "global_avg_pool", 306, "global_avg_pool2d", (2, 4, 5, 6))
        cross_entropy_case(f, "cross_entropy", 401)


def keras_layers():
    """A tiny conv -> BN -> flatten -> dense model's weights, in Keras (HWIO) layout."""
    rng = np.random.RandomState(7)
    w = lambda *s: rng.standard_normal(s).astype(np.float32)  # noqa: E731
    return [
        ("conv2d_1", [("kernel:0", w(3, 3, 1, 2)), ("bias:0", w(2))]),
        ("batch_normalization_1", [("gamma:0", w(2)), ("beta:0", w(2)),
                                   ("moving_mean:0", w(2)),
                                   ("moving_variance:0", np.abs(w(2)) + 0.5)]),
        ("flatten_1", []),
        ("dense_1", [("kernel:0", w(8, 3)), ("bias:0", w(3))]),
    ]


def fixed_strings(names):
    return np.asarray([n.encode("utf8") for n in names])


def make_keras(path, variable_length):
    vlen = h5py.string_dtype("utf-8")
    with h5py.File(path, "w") as f:
        names = [name for name, _ in keras_layers()]
        if variable_length:
            # What newer tf.keras writes: str attributes, variable-length UTF-8.
            f.attrs["backend"] = "tensorflow"
            f.attrs["keras_version"] = "2.11.0"
            f.attrs.create("layer_names", names, dtype=vlen)
        else:
            # Keras 2 writes encoded bytes, which reach h5py as numpy 'S' arrays:
            # fixed-length, null-padded byte strings.
            f.attrs["backend"] = np.bytes_(b"tensorflow")
            f.attrs["keras_version"] = np.bytes_(b"2.2.4")
            f.attrs["layer_names"] = fixed_strings(names)
        for layer, weights in keras_layers():
            g = f.create_group(layer)
            weight_names = [f"{layer}/{w}" for w, _ in weights]
            for wname, value in zip(weight_names, [v for _, v in weights]):
                g.create_dataset(wname, data=value, track_times=False)
            if variable_length:
                g.attrs.create("weight_names", weight_names, dtype=vlen)
            elif layer == "dense_1":
                # Keras splits a list too large for one object header into name0, name1...
                g.attrs["weight_names0"] = fixed_strings(weight_names[:1])
                g.attrs["weight_names1"] = fixed_strings(weight_names[1:])
            else:
                # flatten_1 gets np.asarray([]) as Keras would: an empty float64 array.
                g.attrs["weight_names"] = fixed_strings(weight_names)


def main():
    os.makedirs(DATA, exist_ok=True)
    make_golden_ops(os.path.join(DATA, "golden_ops.h5"))
    make_keras(os.path.join(DATA, "keras_style.h5"), variable_length=False)
    make_keras(os.path.join(DATA, "keras_style_vlen.h5"), variable_length=True)
    for name in ("golden_ops.h5", "keras_style.h5", "keras_style_vlen.h5"):
        print(name, os.path.getsize(os.path.join(DATA, name)), "bytes")


if __name__ == "__main__":
    main()
