// `ipguard doctor`: what this build and machine can do, and a quick end-to-end check of
// the engine on every usable device (forward, backward to the input with frozen
// weights, compared with central finite differences; on CUDA also with the CPU).
#include <omp.h>
#include <oneapi/dnnl/dnnl.h>

#include <cmath>
#include <iostream>
#include <nlohmann/json.hpp>

#include "engine/autograd.h"
#include "engine/device.h"
#include "engine/ops/elementwise.h"
#include "engine/ops/linalg.h"
#include "engine/ops/reduce.h"
#include "engine/random.h"
#include "tools/ipguard/cli.h"

namespace ipg::cli {

namespace {

struct CheckResult {
  bool ok = false;
  double max_error = 0.0;
  std::vector<float> input_grad;
};

// loss = mean(tanh(x W1^T + b1) W2^T), smooth so finite differences are exact to
// O(h^2); gradient with respect to x only.
CheckResult engine_check(Device dev, uint64_t seed) {
  Generator gen(seed);
  Tensor x = Tensor::uniform({4, 8}, 0.f, 1.f, gen).to(dev);
  const Tensor w1 = Tensor::normal({16, 8}, 0.f, 0.5f, gen).to(dev);
  const Tensor b1 = Tensor::normal({16}, 0.f, 0.1f, gen).to(dev);
  const Tensor w2 = Tensor::normal({3, 16}, 0.f, 0.5f, gen).to(dev);
  auto loss_of = [&](const Tensor& in) {
    return ops::mean(ops::linear(ops::tanh(ops::linear(in, w1, b1)), w2));
  };
  x.set_requires_grad(true);
  loss_of(x).backward();
  CheckResult r;
  r.input_grad = x.grad().to_vector();
  // Central differences in double around each input element.
  const std::vector<float> x0 = x.to_vector();
  const float h = 1e-2f;
  NoGradGuard no_grad;
  for (size_t i = 0; i < x0.size(); ++i) {
    std::vector<float> xp = x0, xm = x0;
    xp[i] += h;
    xm[i] -= h;
    const double fp = loss_of(Tensor::from_vector(xp, x.shape(), dev)).item();
    const double fm = loss_of(Tensor::from_vector(xm, x.shape(), dev)).item();
    const double fd = (fp - fm) / (2.0 * h);
    r.max_error = std::max(r.max_error, std::fabs(fd - r.input_grad[i]));
  }
  r.ok = r.max_error < 1e-3 && !w1.grad().defined();  // frozen weights got no gradient
  return r;
}

}  // namespace

void add_doctor(CLI::App& app, const GlobalOptions& g, Runners& runners) {
  CLI::App* sub = app.add_subcommand(
      "doctor", "show the build, the devices, and check the engine end to end on each");
  runners[sub] = [&g]() {
    nlohmann::json out;
    out["version"] = IPG_VERSION;
    out["cuda_built"] = cuda_built();
    out["cuda_available"] = cuda_available();
    if (!cuda_available()) out["cuda_unavailable_reason"] = cuda_unavailable_reason();
    const dnnl_version_t* v = dnnl_version();
    out["onednn"] =
        std::to_string(v->major) + "." + std::to_string(v->minor) + "." + std::to_string(v->patch);
    out["cpu_threads"] = omp_get_max_threads();
    const Device chosen = resolve_device(g.device, g.json ? nullptr : &std::cerr);
    out["device"] = chosen.str();

    bool all_ok = true;
    const CheckResult cpu = engine_check(Device::cpu(), g.seed);
    out["checks"]["cpu"] = {{"ok", cpu.ok}, {"max_gradient_error", cpu.max_error}};
    all_ok &= cpu.ok;
    if (cuda_available()) {
      const CheckResult gpu = engine_check(Device::cuda(0), g.seed);
      double parity = 0.0;
      for (size_t i = 0; i < gpu.input_grad.size(); ++i)
        parity = std::max(parity, double(std::fabs(gpu.input_grad[i] - cpu.input_grad[i])));
      const bool ok = gpu.ok && parity < 1e-5;
      out["checks"]["cuda:0"] = {
          {"ok", ok}, {"max_gradient_error", gpu.max_error}, {"max_cpu_difference", parity}};
      all_ok &= ok;
    }
    out["ok"] = all_ok;
    if (g.json) {
      std::cout << out.dump(2) << "\n";
    } else {
      std::cout << "ipguard " << IPG_VERSION << "\n"
                << "  CUDA backend built: " << (cuda_built() ? "yes" : "no") << "\n"
                << "  CUDA available:     "
                << (cuda_available() ? "yes" : "no (" + cuda_unavailable_reason() + ")") << "\n"
                << "  oneDNN:             " << out["onednn"].get<std::string>() << "\n"
                << "  CPU threads:        " << omp_get_max_threads() << "\n"
                << "  selected device:    " << chosen.str() << "\n";
      for (auto& [dev, c] : out["checks"].items())
        std::cout << "  engine check " << dev << ": " << (c["ok"].get<bool>() ? "ok" : "FAILED")
                  << " (max |autodiff - finite difference| = "
                  << c["max_gradient_error"].get<double>() << ")\n";
    }
    return all_ok ? 0 : kExitFailure;
  };
}

}  // namespace ipg::cli
