// HDF5 array datasets (design.md "Data"): x/y arrays in one file, for sets no other loader
// reads (ImageNet crops, exported tensors). Shapes, types, layout and label ranges are
// checked before the pixels are read; HDF5 errors become DataError naming the file.
#include <algorithm>
#include <cmath>
#include <cstdio>

#include "engine/hdf5.h"
#include "models/data/dataset.h"

namespace ipg {

namespace {

constexpr int64_t kMaxImages = int64_t{1} << 26;
constexpr int64_t kMaxSide = 4096;

struct Pair {
  h5::Dataset x, y;
  std::string where;  // for messages and the dataset name
};

Pair find_pair(const h5::File& f, const std::string& path, Split split) {
  const std::string part = split == Split::Train ? "train" : "test";
  if (f.is_group(part)) {
    const h5::Group g = f.group(part);
    if (!g.is_dataset("x") || !g.is_dataset("y"))
      throw DataError(path + ": group /" + part + " needs datasets x and y");
    return {g.dataset("x"), g.dataset("y"), part};
  }
  if (f.is_dataset("x_" + part) && f.is_dataset("y_" + part))
    return {f.dataset("x_" + part), f.dataset("y_" + part), part};
  if (f.is_dataset("x") && f.is_dataset("y")) return {f.dataset("x"), f.dataset("y"), "all"};
  throw DataError(path + ": no " + part + " data (expected group /" + part + " with x and y, " +
                  "datasets x_" + part + " and y_" + part + ", or x and y at the root)");
}

bool is_channel_count(int64_t d) { return d == 1 || d == 3; }

}  // namespace

Dataset load_h5_arrays(const std::string& path, Split split) {
  try {
    const h5::File f(path);
    const Pair p = find_pair(f, path, split);
    const std::string xname = path + ": " + p.x.path(), yname = path + ": " + p.y.path();
    const Shape xs = p.x.shape(), ys = p.y.shape();
    const std::string xtype = p.x.type_name();
    if (xtype != "uint8" && xtype != "float32")
      throw DataError(xname + ": expected uint8 or float32 pixels, found " + xtype);
    if (xs.size() != 3 && xs.size() != 4)
      throw DataError(xname + ": expected [n, c, h, w], [n, h, w, c] or [n, h, w], found " +
                      shape_str(xs));
    // Layout: the attribute wins; otherwise the axis that can be a channel count.
    bool nhwc = false;
    if (xs.size() == 4) {
      if (p.x.has_attr("layout")) {
        const std::string layout = p.x.attr_string("layout");
        if (layout != "NCHW" && layout != "NHWC")
          throw DataError(xname + ": layout attribute is '" + layout + "' (NCHW or NHWC)");
        nhwc = layout == "NHWC";
      } else if (is_channel_count(xs[1]) != is_channel_count(xs[3])) {
        nhwc = is_channel_count(xs[3]);
      } else {
        throw DataError(xname + ": cannot tell NCHW from NHWC in " + shape_str(xs) +
                        "; add an attribute layout=\"NCHW\" or \"NHWC\" to x");
      }
    }
    const int64_t n = xs[0];
    const int64_t c = xs.size() == 3 ? 1 : (nhwc ? xs[3] : xs[1]);
    const int64_t h = xs.size() == 3 ? xs[1] : (nhwc ? xs[1] : xs[2]);
    const int64_t w = xs.size() == 3 ? xs[2] : (nhwc ? xs[2] : xs[3]);
    if (n <= 0 || n > kMaxImages || c < 1 || c > 64 || h < 1 || h > kMaxSide || w < 1 ||
        w > kMaxSide)
      throw DataError(xname + ": implausible image array " + shape_str(xs));
    if (ys.size() != 1 || ys[0] != n)
      throw DataError(yname + ": expected " + std::to_string(n) + " labels [n], found " +
                      shape_str(ys));

    // Labels first (small): any integer type, range checked.
    const std::string ytype = p.y.type_name();
    if (ytype.rfind("int", 0) != 0 && ytype.rfind("uint", 0) != 0)
      throw DataError(yname + ": expected integer labels, found " + ytype);
    const std::vector<float> yv = p.y.read_floats();
    int64_t max_label = -1;
    for (size_t i = 0; i < yv.size(); ++i) {
      if (!(yv[i] >= 0.f) || yv[i] != std::floor(yv[i]) || yv[i] > 1e6f) {
        // Integer labels, said as integers (the float read back holds them, or their order).
        char v[32];
        std::snprintf(v, sizeof v, "%.0f", static_cast<double>(yv[i]));
        throw DataError(yname + ": label " + std::to_string(i) + " is " + v +
                        ", not a class (labels are 0 to at most 1,000,000)");
      }
      max_label = std::max<int64_t>(max_label, static_cast<int64_t>(yv[i]));
    }
    int64_t classes = max_label + 1;
    for (const h5::Object* o : {static_cast<const h5::Object*>(&p.y),
                                static_cast<const h5::Object*>(&f)})
      if (o->has_attr("classes")) {
        classes = o->attr_int("classes");
        break;
      }
    if (classes < 2)  // from the labels alone: every label is 0
      throw DataError(yname + ": every label is " + std::to_string(max_label) +
                      "; a dataset has at least 2 classes (give the count in a 'classes' "
                      "attribute when a split holds fewer)");
    if (classes > 100000)
      throw DataError(yname + ": " + std::to_string(classes) +
                      " classes; at most 100,000 are supported");
    if (max_label >= classes)
      throw DataError(yname + ": label " + std::to_string(max_label) + " is not one of the " +
                      std::to_string(classes) + " classes the 'classes' attribute gives");

    Shape stored;
    const std::vector<float> xv = p.x.read_floats(&stored);
    const float scale = xtype == "uint8" ? 1.f / 255.f : 1.f;
    Dataset ds;
    ds.name = path + "/" + p.where;
    ds.num_classes = static_cast<int>(classes);
    ds.images = Tensor::empty({n, c, h, w});
    float* dst = ds.images.data();
    const int64_t plane = h * w;
    for (int64_t i = 0; i < n; ++i)
      for (int64_t ch = 0; ch < c; ++ch)
        for (int64_t k = 0; k < plane; ++k) {
          const float v = scale * xv[static_cast<size_t>(
              nhwc ? (i * plane + k) * c + ch : (i * c + ch) * plane + k)];
          if (!(v >= 0.f && v <= 1.f))
            throw DataError(xname + ": float32 pixels must be in [0, 1]; image " +
                            std::to_string(i) + " has " + std::to_string(v));
          dst[(i * c + ch) * plane + k] = v;
        }
    ds.labels = Tensor::empty({n}, Device::cpu(), DType::I32);
    for (int64_t i = 0; i < n; ++i) ds.labels.data_i32()[i] = static_cast<int32_t>(yv[i]);
    return ds;
  } catch (const FileError& e) {
    throw DataError(e.what());
  }
}

}  // namespace ipg
