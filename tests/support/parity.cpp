// Element-by-element comparison with a readable failure report.
#include "tests/support/parity.h"

#include <cmath>
#include <sstream>

#include "engine/random.h"

namespace ipg::testing {

ParityResult compare_values(const std::vector<float>& ref, const std::vector<float>& got,
                            double atol, double rtol) {
  ParityResult r;
  std::ostringstream msg;
  if (ref.size() != got.size()) {
    r.ok = false;
    msg << "sizes differ: " << ref.size() << " vs " << got.size();
    r.message = msg.str();
    return r;
  }
  int shown = 0;
  size_t bad = 0;
  for (size_t i = 0; i < ref.size(); ++i) {
    const double d = std::fabs(static_cast<double>(got[i]) - ref[i]);
    const bool nan_mismatch = std::isnan(ref[i]) != std::isnan(got[i]);
    if (!std::isnan(d)) r.max_abs_diff = std::max(r.max_abs_diff, d);
    if (nan_mismatch || d > atol + rtol * std::fabs(ref[i])) {
      ++bad;
      if (shown++ < 5) msg << "  [" << i << "] ref " << ref[i] << " got " << got[i] << "\n";
    }
  }
  r.ok = bad == 0;
  if (!r.ok)
    msg << bad << " of " << ref.size() << " elements differ; max |diff| " << r.max_abs_diff
        << " (atol " << atol << ", rtol " << rtol << ")";
  r.message = msg.str();
  return r;
}

ParityResult compare_tensors(const Tensor& ref, const Tensor& got, double atol, double rtol) {
  if (ref.shape() != got.shape()) {
    ParityResult r;
    r.ok = false;
    r.message = "shapes differ: " + shape_str(ref.shape()) + " vs " + shape_str(got.shape());
    return r;
  }
  if (ref.dtype() == DType::I32) {
    const auto a = ref.to_vector_i32(), b = got.to_vector_i32();
    return compare_values(std::vector<float>(a.begin(), a.end()),
                          std::vector<float>(b.begin(), b.end()), 0.0, 0.0);
  }
  return compare_values(ref.to_vector(), got.to_vector(), atol, rtol);
}

void expect_forward_backward_parity(const std::function<Tensor(const std::vector<Tensor>&)>& f,
                                    const std::vector<Tensor>& cpu_inputs, double atol,
                                    double rtol) {
  std::vector<Tensor> gpu_inputs;
  for (const Tensor& t : cpu_inputs) {
    Tensor g = t.detach().to(Device::cuda(0));
    if (t.requires_grad()) g.set_requires_grad(true);
    gpu_inputs.push_back(g);
  }
  std::vector<Tensor> cpu_in = cpu_inputs;
  for (Tensor& t : cpu_in) t.zero_grad();
  Tensor yc = f(cpu_in), yg = f(gpu_inputs);
  EXPECT_PARITY(yc, yg, atol, rtol);
  Generator gen(77);
  Tensor r = Tensor::uniform(yc.shape(), -1, 1, gen);
  yc.backward(r);
  yg.backward(r.to(Device::cuda(0)));
  for (size_t i = 0; i < cpu_in.size(); ++i)
    if (cpu_in[i].requires_grad())
      EXPECT_PARITY(cpu_in[i].grad(), gpu_inputs[i].grad(), atol, rtol);
}

}  // namespace ipg::testing
