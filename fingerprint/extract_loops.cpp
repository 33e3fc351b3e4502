// The methods' search loops over a chunk's batch (extract_search.h): IPGuard's Adam on
// Eq. 5, IGSM's signed steps and CW-L2's binary search over c; the stretches between two
// reads of the flags run recorded (engine/replay.h) where the options ask for it.
#include <cmath>
#include <limits>

#include "engine/ops/boundary.h"
#include "engine/replay.h"
#include "fingerprint/extract_search.h"

namespace ipg::extract_detail {

using kernels::BoundaryLoss;

// IPGuard: Adam on Eq. 5 until every row's loss is 0 or the budget is spent. Iteration t:
// update with the gradient of loss(t), then loss(t + 1) (loss(1) comes first); the flags
// are read after loss(t) for t = 1, 1 + check_every, ..., and the batch may be compacted
// right after that iteration's update. With replay, the check_every - 1 iterations
// between those points run as one recorded stretch (a CUDA graph on CUDA); Adam's step
// count then lives on the device, the same coefficients read from a table.
void run_ipguard(Search& s, ExtractProgress& pr,
                 const std::function<void(const ExtractProgress&)>& progress) {
  const ExtractOptions& o = *s.o;
  const int64_t every = o.check_every;
  const bool replay = o.replay == ReplayMode::On ||
                      (o.replay == ReplayMode::Auto && s.dev.is_cuda() && every > 1);
  const float lr = static_cast<float>(o.lr);
  Tensor table, step;  // replay: every iteration's Adam coefficients, the next one's index
  if (replay) {
    table = ops::adam_table(lr, 0.9f, 0.999f, 1e-8f, 0.f, 1, o.iters, s.dev);
    step = Tensor::from_vector_i32({0}, {1}, s.dev);
  }
  auto loss = [&] {
    ops::boundary_loss(BoundaryLoss::IPGuard, s.f->logits(s.x), s.src, s.dst,
                       static_cast<float>(o.k), Tensor(), s.loss, s.dz, &s.active);
  };
  auto update = [&](int64_t t) {
    const Tensor g = s.f->input_grad(s.dz);
    if (replay) {
      ops::boundary_adam_step_at(s.x, g, s.m, s.v, s.active, table, step, 0.f, 1.f);
      ops::boundary_step_advance(step);
    } else {
      ops::boundary_adam_step(s.x, g, s.m, s.v, s.active,
                              kernels::adam_coeffs(lr, 0.9f, 0.999f, 1e-8f, 0.f, t), 0.f, 1.f);
    }
  };
  std::unique_ptr<Replay> recording;
  const FrozenNetwork* recorded_for = nullptr;  // the batch the recording's buffers belong to
  bool can_record = replay;
  loss();
  for (int64_t t = 1; t <= o.iters;) {
    pr.active = s.sync(t - 1);
    pr.iteration = t - 1;
    pr.batch_rows = static_cast<int64_t>(s.rows.size());
    if (progress) progress(pr);
    if (pr.active == 0) return;
    update(t);
    s.maybe_compact(pr.active);
    loss();
    ++t;
    const int64_t stretch = std::min(every - 1, o.iters - t + 1);
    // Only whole stretches are recorded (the last, shorter one runs directly).
    if (can_record && stretch == every - 1 && stretch > 0 && s.f->fused()) {
      if (!recording || recorded_for != s.f.get()) {
        recording = std::make_unique<Replay>(s.dev);
        recorded_for = s.f.get();
        std::string why;
        if (!recording->record(
                [&update, &loss, stretch] {
                  for (int64_t i = 0; i < stretch; ++i) {
                    update(0);
                    loss();
                  }
                },
                &why)) {
          recording.reset();
          can_record = false;  // the same work would fail again: run it directly
          s.replay_note = why;
        }
      }
      if (recording) {
        recording->replay();
        t += stretch;
        continue;
      }
    }
    for (int64_t i = 0; i < stretch; ++i, ++t) {
      update(t);
      loss();
    }
  }
  s.sync(o.iters);
}

// IGSM: signed steps of the cross-entropy to j until the row is labeled j.
void run_igsm(Search& s, ExtractProgress& pr,
              const std::function<void(const ExtractProgress&)>& progress) {
  const ExtractOptions& o = *s.o;
  for (int64_t t = 1; t <= o.iters; ++t) {
    const Tensor z = s.f->logits(s.x);
    if ((t - 1) % o.check_every == 0) {  // success: labeled j; those rows stop here
      const Tensor zh = z.cpu();
      std::vector<int32_t> a = s.active.cpu().to_vector_i32();
      for (size_t w = 0; w < s.rows.size(); ++w)
        if (a[w] && argmax_row(zh.data() + static_cast<int64_t>(w) * s.classes, s.classes) ==
                        s.dst_h[static_cast<size_t>(s.rows[w])])
          a[w] = 0;
      s.active.copy_from(Tensor::from_vector_i32(a, {static_cast<int64_t>(a.size())}));
      pr.active = s.record(a, t - 1);
      pr.iteration = t - 1;
      pr.batch_rows = static_cast<int64_t>(s.rows.size());
      if (progress) progress(pr);
      if (pr.active == 0) return;
    }
    ops::boundary_loss(BoundaryLoss::CrossEntropy, z, s.src, s.dst, 0.f, Tensor(), s.loss, s.dz,
                       nullptr);
    const Tensor g = s.f->input_grad(s.dz);
    ops::boundary_sign_step(s.x, s.x0, g, s.active, static_cast<float>(o.alpha),
                            static_cast<float>(o.eps), 0.f, 1.f);
    if ((t - 1) % o.check_every == 0) s.maybe_compact(pr.active);
  }
}

// CW-L2 (algorithms.md, "CW-L2"): the whole chunk searches every step; per row, the
// closest success over all steps is kept in best_x / best_l2 (found: best_l2 < 1e10).
void run_cwl2(Search& s, ExtractProgress& pr,
              const std::function<void(const ExtractProgress&)>& progress) {
  const ExtractOptions& o = *s.o;
  const int64_t n = static_cast<int64_t>(s.rows.size()), per = shape_numel(s.image);
  const Shape in{n, s.image[0], s.image[1], s.image[2]};
  const Device dev = s.dev;
  // Carlini's start: u0 = atanh((x0 - 1/2) * 2 * 0.999999); the L2 term is measured from
  // its image x0s = tanh(u0)/2 + 1/2, not from x0.
  const Tensor x0h = s.x0.cpu();
  Tensor u0 = Tensor::empty(in), x0s = Tensor::empty(in);
  for (int64_t e = 0; e < n * per; ++e) {
    u0.data()[e] = std::atanh((x0h.data()[e] - 0.5f) * 2.f * 0.999999f);
    x0s.data()[e] = kernels::boundary_cw_pixel(u0.data()[e]);
  }
  u0 = u0.to(dev);
  x0s = x0s.to(dev);
  constexpr float kNone = 1e10f;
  std::vector<float> best_l2(static_cast<size_t>(n), kNone);
  Tensor best_x = x0s.cpu().clone();  // rows never successful keep their start
  std::vector<double> c(static_cast<size_t>(n), o.c0), lo(c.size(), 0.0), hi(c.size(), 1e10);
  Tensor l2, success;
  int64_t iterations = 0;
  for (int64_t step = 0; step < o.binary_steps; ++step) {
    if (o.binary_steps >= 10 && step == o.binary_steps - 1) c = hi;  // the reference's repeat
    std::vector<float> cf(c.begin(), c.end());
    const Tensor weight = Tensor::from_vector(cf, {n}, dev);
    Tensor u = u0.clone(), x = x0s.clone(), m = Tensor::zeros(in, dev), v = Tensor::zeros(in, dev);
    Tensor step_l2 = Tensor::full({n}, kNone, dev), step_x = x0s.clone();
    double prev = 1e6;
    const int64_t every = std::max<int64_t>(1, o.iters / 10);
    for (int64_t it = 0; it < o.iters; ++it) {
      const Tensor z = s.f->logits(x);
      ops::boundary_loss(BoundaryLoss::CarliniWagner, z, s.src, s.dst, static_cast<float>(o.k),
                         weight, s.loss, s.dz, nullptr);
      ops::boundary_cw_track(x, x0s, z, s.dst, static_cast<float>(o.k), l2, success, step_l2,
                             step_x);
      const Tensor g = s.f->input_grad(s.dz);
      ops::boundary_cw_step(
          u, x, x0s, g, m, v,
          kernels::adam_coeffs(static_cast<float>(o.lr), 0.9f, 0.999f, 1e-8f, 0.f, it + 1));
      ++iterations;
      if (o.abort_early && it % every == 0) {  // the batch's loss stalled: next step
        const std::vector<float> a = l2.cpu().to_vector(), b = s.loss.cpu().to_vector();
        double total = 0;
        for (int64_t r = 0; r < n; ++r) total += double(a[r]) + double(b[r]);
        if (total > prev * 0.9999) break;
        prev = total;
      }
    }
    // Merge the step's successes and move each row's bounds on c.
    const std::vector<float> sl2 = step_l2.cpu().to_vector();
    const Tensor sx = step_x.cpu();
    int64_t found = 0;
    for (int64_t r = 0; r < n; ++r) {
      const bool ok = sl2[r] < kNone;
      if (ok && sl2[r] < best_l2[r]) {
        best_l2[r] = sl2[r];
        std::copy_n(sx.data() + r * per, per, best_x.data() + r * per);
      }
      if (ok) {
        hi[r] = std::min(hi[r], c[r]);
        if (hi[r] < 1e9) c[r] = (lo[r] + hi[r]) / 2;
      } else {
        lo[r] = std::max(lo[r], c[r]);
        c[r] = hi[r] < 1e9 ? (lo[r] + hi[r]) / 2 : c[r] * 10;
      }
      found += best_l2[r] < kNone;
    }
    pr.iteration = iterations;
    pr.active = n - found;
    if (progress) progress(pr);
  }
  s.x = best_x.to(dev);
  for (int64_t r = 0; r < n; ++r) {
    const size_t row = static_cast<size_t>(s.rows[static_cast<size_t>(r)]);
    s.iterations[row] = static_cast<int32_t>(iterations);
    s.active_h[row] = best_l2[r] < kNone ? 0 : 1;
    s.distance[row] = best_l2[r] < kNone ? best_l2[r] : std::numeric_limits<float>::quiet_NaN();
  }
}

}  // namespace ipg::extract_detail
