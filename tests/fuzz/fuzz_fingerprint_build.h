// The fingerprint file the fuzz input describes (tests/fuzz/fuzz_h5.h): a valid
// fingerprint of a few small points, then attributes, datasets and groups mutated as the
// input says. Shared by fuzz_fingerprint_file and the seed generator
// (make_fuzz_seeds.cpp).
#pragma once

#include <string>
#include <vector>

#include "fuzz_h5.h"

namespace fuzz_fingerprint {

// Builds the file for one input (everything but finish()).
inline void build(FuzzedDataProvider& p, const std::string& path) {
  const hsize_t n = p.ConsumeIntegralInRange<hsize_t>(1, 4);
  const hsize_t c = p.ConsumeBool() ? 3 : 1;
  const hsize_t h = p.ConsumeIntegralInRange<hsize_t>(1, 6);
  const hsize_t w = p.ConsumeIntegralInRange<hsize_t>(1, 6);
  fuzz::Id f = fuzz::create_file(path);
  if (!f.ok()) return;
  const hid_t root = f.id;
  fuzz::attr_string(p, root, "format", "ipguard-fingerprint");
  fuzz::attr_int(p, root, "version", 1);
  fuzz::attr_string(p, root, "method", "ipguard");
  fuzz::attr_int(p, root, "seed", 42);
  fuzz::attr_string(p, root, "model_sha256",
                    "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  fuzz::attr_string(p, root, "arch", "lenet5");
  fuzz::attr_string(p, root, "created", "2026-11-28T19:30:00Z");
  fuzz::attr_double(p, root, "param_k", 10);
  fuzz::attr_double(p, root, "param_lr", 0.01);
  fuzz::attr_int(p, root, "param_iters", 1000);
  fuzz::attr_double(p, root, "param_eps", 0);
  fuzz::attr_string(p, root, "param_init", "train");
  fuzz::attr_string(p, root, "param_target", "random");

  std::vector<double> points(n * c * h * w);
  for (size_t i = 0; i < points.size(); ++i) points[i] = static_cast<double>(i % 11) / 10.0;
  fuzz::dataset(p, root, "/points", {n, c, h, w}, fuzz::Kind::F32, std::move(points));
  std::vector<double> labels(n), source(n), target(n), iters(n), loss(n), conv(n);
  for (hsize_t i = 0; i < n; ++i) {
    labels[i] = static_cast<double>(i % 10);
    source[i] = static_cast<double>((i + 1) % 10);
    target[i] = static_cast<double>((i + 2) % 10);
    iters[i] = static_cast<double>(10 * i);
    loss[i] = 0.5 - static_cast<double>(i);
    conv[i] = static_cast<double>(i % 2);
  }
  fuzz::dataset(p, root, "/labels", {n}, fuzz::Kind::I32, std::move(labels));
  if (fuzz::mutation(p, 1)) {  // /candidates as a dataset
    std::vector<double> v{1};
    fuzz::make_dataset(root, "/candidates", {1}, H5T_STD_I32LE, &v);
  }
  fuzz::dataset(p, root, "/candidates/source", {n}, fuzz::Kind::I32, std::move(source));
  fuzz::dataset(p, root, "/candidates/target", {n}, fuzz::Kind::I32, std::move(target));
  fuzz::dataset(p, root, "/candidates/iterations", {n}, fuzz::Kind::I32, std::move(iters));
  fuzz::dataset(p, root, "/candidates/final_loss", {n}, fuzz::Kind::F32, std::move(loss));
  fuzz::dataset(p, root, "/candidates/converged", {n}, fuzz::Kind::I32, std::move(conv));
  fuzz::extras(p, root, "");
  fuzz::extras(p, root, "/candidates");
  fuzz::close_file(f);
}

}  // namespace fuzz_fingerprint
