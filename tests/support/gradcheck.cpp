// Central-difference gradient checking (see gradcheck.h).
#include "tests/support/gradcheck.h"

#include <cmath>
#include <sstream>

#include "engine/autograd.h"
#include "engine/random.h"

namespace ipg::testing {

namespace {

double project(const Tensor& out, const std::vector<float>& r) {
  const std::vector<float> v = out.to_vector();
  double s = 0.0;
  for (size_t i = 0; i < v.size(); ++i) s += static_cast<double>(v[i]) * r[i];
  return s;
}

}  // namespace

GradCheckResult check_gradients(const std::function<Tensor(const std::vector<Tensor>&)>& f,
                                std::vector<Tensor> inputs, GradCheckOptions opt) {
  GradCheckResult res;
  for (Tensor& t : inputs) t.zero_grad();
  const Tensor out = f(inputs);
  Generator gen(opt.seed);
  const Tensor r = Tensor::uniform(out.shape(), -1.f, 1.f, gen, out.device());
  const std::vector<float> rv = r.to_vector();
  out.backward(r);

  std::ostringstream msg;
  int reported = 0;
  NoGradGuard no_grad;
  for (size_t k = 0; k < inputs.size(); ++k) {
    Tensor& x = inputs[k];
    if (!x.requires_grad()) continue;
    const Tensor g = x.grad();
    const std::vector<float> analytic =
        g.defined() ? g.to_vector() : std::vector<float>(x.numel(), 0.f);
    float* p = x.data();
    for (int64_t i = 0; i < x.numel(); ++i) {
      const float x0 = p[i];
      const double f0 = project(f(inputs), rv);
      p[i] = x0 + opt.eps;
      const double fp = project(f(inputs), rv);
      p[i] = x0 - opt.eps;
      const double fm = project(f(inputs), rv);
      p[i] = x0;
      const double forward = (fp - f0) / opt.eps, backward = (f0 - fm) / opt.eps;
      if (std::fabs(forward - backward) >
          opt.kink_tol * std::max({1.0, std::fabs(forward), std::fabs(backward)})) {
        ++res.skipped_kinks;
        continue;
      }
      const double numeric = (fp - fm) / (2.0 * opt.eps);
      const double err = std::fabs(numeric - analytic[i]);
      res.max_abs_error = std::max(res.max_abs_error, err);
      ++res.checked;
      if (err > opt.atol + opt.rtol * std::fabs(numeric)) {
        res.ok = false;
        if (reported++ < 5)
          msg << "input " << k << " element " << i << ": autodiff " << analytic[i]
              << " vs finite difference " << numeric << "\n";
      }
    }
  }
  msg << "checked " << res.checked << " elements, skipped " << res.skipped_kinks
      << " kinks, max |error| " << res.max_abs_error;
  res.message = msg.str();
  return res;
}

}  // namespace ipg::testing
