// The Keras weight file the fuzz input describes (tests/fuzz/fuzz_h5.h): a LeNet-5 as a
// Keras Sequential saves it (the layout of tests/golden/make_keras_golden.py: layer
// groups listed by a layer_names attribute, each listing its datasets in weight_names;
// save_weights at the root or model.save under /model_weights; fixed- or variable-length
// strings, lists split into name0, name1, ... as Keras does past 64 KiB), then the lists,
// groups and datasets mutated as the input says. The empty input builds a valid file.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "fuzz_h5.h"

namespace fuzz_keras {

// (layer, [(weight, Keras shape)]) in model.layers order; input 3x20x20.
inline const std::vector<std::pair<std::string, std::vector<std::pair<std::string, fuzz::Dims>>>>&
layers() {
  static const std::vector<std::pair<std::string, std::vector<std::pair<std::string, fuzz::Dims>>>> l = {
      {"input_1", {}},
      {"conv2d", {{"kernel:0", {5, 5, 3, 6}}, {"bias:0", {6}}}},
      {"max_pooling2d", {}},
      {"conv2d_1", {{"kernel:0", {5, 5, 6, 16}}, {"bias:0", {16}}}},
      {"max_pooling2d_1", {}},
      {"flatten", {}},
      {"dense", {{"kernel:0", {144, 120}}, {"bias:0", {120}}}},
      {"dense_1", {{"kernel:0", {120, 84}}, {"bias:0", {84}}}},
      {"dense_2", {{"kernel:0", {84, 10}}, {"bias:0", {10}}}}};
  return l;
}

// A list of strings as one attribute: fixed-length (NULLPAD) or variable-length UTF-8.
inline void put_strings(hid_t loc, const std::string& name, const std::vector<std::string>& v,
                        bool fixed) {
  fuzz::Id t(H5Tcopy(H5T_C_S1));
  if (fixed) {
    size_t width = 1;
    for (const auto& s : v) width = std::max(width, s.size());
    H5Tset_size(t.id, width);
    H5Tset_strpad(t.id, H5T_STR_NULLPAD);
    std::string buf(width * v.size(), '\0');
    for (size_t i = 0; i < v.size(); ++i) buf.replace(i * width, v[i].size(), v[i]);
    fuzz::put_attr_raw(loc, name.c_str(), t.id, t.id, 1, int64_t(v.size()), buf.data());
  } else {
    H5Tset_size(t.id, H5T_VARIABLE);
    H5Tset_cset(t.id, H5T_CSET_UTF8);
    std::vector<const char*> ptrs;
    for (const auto& s : v) ptrs.push_back(s.c_str());
    fuzz::put_attr_raw(loc, name.c_str(), t.id, t.id, 1, int64_t(v.size()), ptrs.data());
  }
}

// Writes the list `name` as Keras does (whole, or split into name0, name1 at a point the
// input picks), or a mutated list: an entry dropped, doubled, swapped or replaced, the
// list empty, or the attribute of another kind (fuzz::mutate_attr's wrong types).
inline void string_list(FuzzedDataProvider& p, hid_t loc, const std::string& name,
                        std::vector<std::string> v, bool fixed) {
  const size_t n = v.size();
  const auto pick = [&] { return n ? p.ConsumeIntegralInRange<size_t>(0, n - 1) : 0; };
  switch (fuzz::mutation(p, 7)) {
    case 1:
      if (n) v.erase(v.begin() + long(pick()));
      break;
    case 2:
      if (n) v.insert(v.begin() + long(pick()), v[pick()]);
      break;
    case 3:
      if (n) std::swap(v[pick()], v[pick()]);
      break;
    case 4:
      if (n) v[pick()] = fuzz::some_name(p);
      break;
    case 5:
      v.clear();
      break;
    case 6:
      fuzz::mutate_attr(p, loc, name.c_str(), [] {}, 1);
      return;
    case 7:
      fixed = !fixed;
      break;
    default:
      break;
  }
  const size_t split = p.ConsumeBool() ? p.ConsumeIntegralInRange<size_t>(0, v.size()) : v.size();
  if (split == v.size()) {
    put_strings(loc, name, v, fixed);
  } else {
    put_strings(loc, name + "0", {v.begin(), v.begin() + long(split)}, fixed);
    put_strings(loc, name + "1", {v.begin() + long(split), v.end()}, fixed);
  }
}

// Builds the file for one input.
inline void build(FuzzedDataProvider& p, const std::string& path) {
  fuzz::Id f = fuzz::create_file(path);
  if (!f.ok()) return;
  const bool fixed = p.ConsumeBool();
  const bool model_save = p.ConsumeBool();
  const hid_t file = f.id;
  fuzz::Id weights_group;
  std::string prefix;
  if (model_save) {
    fuzz::attr_string(p, file, "model_config", "{\"class_name\": \"Sequential\"}");
    weights_group = fuzz::Id(H5Gcreate2(file, "/model_weights", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT));
    if (!weights_group.ok()) return;
    prefix = "/model_weights";
  }
  const hid_t root = model_save ? weights_group.id : file;
  fuzz::attr_string(p, root, "backend", "tensorflow");
  fuzz::attr_string(p, root, "keras_version", "2.11.0");
  std::vector<std::string> names;
  for (const auto& l : layers()) names.push_back(l.first);
  string_list(p, root, "layer_names", names, fixed);
  for (const auto& [layer, weights] : layers()) {
    const std::string g = prefix + "/" + layer;
    switch (fuzz::mutation(p, 3)) {
      case 1:
        continue;  // the group missing
      case 2: {
        std::vector<double> v{1};
        fuzz::make_dataset(file, g, {1}, H5T_IEEE_F32LE, &v);  // a dataset where a group is
        continue;
      }
      case 3:
        H5Lcreate_soft((prefix + "/" + layers()[1].first).c_str(), file, g.c_str(),
                       fuzz::link_plist(), H5P_DEFAULT);
        continue;
      default:
        break;
    }
    fuzz::Id grp(H5Gcreate2(file, g.c_str(), fuzz::link_plist(), H5P_DEFAULT, H5P_DEFAULT));
    if (!grp.ok()) continue;
    std::vector<std::string> wnames;
    for (const auto& w : weights) wnames.push_back(layer + "/" + w.first);
    if (wnames.empty() && fixed)  // Keras 2.2 writes an empty float64 array there
      fuzz::put_attr_doubles(grp.id, "weight_names", H5T_IEEE_F64LE, {}, 1);
    else
      string_list(p, grp.id, "weight_names", wnames, fixed);
    for (const auto& [w, dims] : weights) {
      size_t n = 1;
      for (hsize_t d : dims) n *= size_t(d);
      std::vector<double> values(n);
      for (size_t i = 0; i < n; ++i) values[i] = 0.01 * double(i % 13 + 1) - 0.05;
      fuzz::dataset(p, file, g + "/" + layer + "/" + w, dims, fuzz::Kind::F32, std::move(values));
    }
  }
  fuzz::extras(p, file, prefix);
  weights_group = fuzz::Id();
  fuzz::close_file(f);
}

}  // namespace fuzz_keras
