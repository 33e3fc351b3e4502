// The methods' search loops over a chunk's batch (extract_search.h): IPGuard's Adam on
// Eq. 5, IGSM's signed steps and CW-L2's binary search over c; the stretches between two
// reads of the flags run recorded (engine/replay.h) where the options ask for it.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <numeric>
#include <stdexcept>

#include "engine/ops/boundary.h"
#include "engine/ops/index.h"
#include "engine/replay.h"
#include "fingerprint/extract_search.h"
#include "kernels/common/tanh_math.h"

namespace ipg::extract_detail {

using kernels::BoundaryLoss;

namespace {

// Whether the options ask for recorded stretches on this device (ExtractOptions::replay).
bool wants_replay(const ExtractOptions& o, Device dev) {
  return o.replay == ReplayMode::On ||
         (o.replay == ReplayMode::Auto && dev.is_cuda() && o.check_every > 1);
}

// The iterations between two reads of the flags, `length` of them, run as one recorded
// stretch (engine/replay.h: a CUDA graph on CUDA) when enabled and the network runs fused;
// recorded again when the batch was compacted (a new frozen network and buffers); run
// directly when shorter (the last one) or when recording failed (then never tried again:
// the same work would fail again; Search::replay_note says why).
class Stretches {
 public:
  Stretches(Search& s, bool enabled, int64_t length) : s_(s), enabled_(enabled), length_(length) {}

  // Runs iterations first, ..., first + count - 1 of `iteration` (which must not depend on
  // its argument when recorded: replayed, it gets 0).
  void run(int64_t first, int64_t count, const std::function<void(int64_t)>& iteration) {
    if (enabled_ && !s_.f->fused() && s_.replay_note.empty())
      s_.replay_note = "the network runs unfused: " + s_.f->why_unfused();
    if (enabled_ && count == length_ && count > 0 && s_.f->fused()) {
      if (!recording_ || recorded_for_ != s_.loads) {
        recording_ = std::make_unique<Replay>(s_.dev);
        recorded_for_ = s_.loads;
        std::string why;
        // The body keeps its own copy of `iteration`: it runs again at every replay.
        if (!recording_->record([iteration, count] {
              for (int64_t i = 0; i < count; ++i) iteration(0);
            }, &why)) {
          recording_.reset();
          enabled_ = false;
          s_.replay_note = why;
        }
      }
      if (recording_) {
        recording_->replay();
        ++s_.replays;
        return;
      }
    }
    for (int64_t i = 0; i < count; ++i) iteration(first + i);
  }

 private:
  Search& s_;
  bool enabled_;
  int64_t length_;
  std::unique_ptr<Replay> recording_;
  int64_t recorded_for_ = -1;  // Search::loads when recorded: the batch its buffers belong to
};

// Fills pr from the search (active rows, iteration) and calls progress; returns active.
int64_t report(const Search& s, ExtractProgress& pr,
               const std::function<void(const ExtractProgress&)>& progress, int64_t active,
               int64_t iteration) {
  pr.active = active;
  pr.iteration = iteration;
  pr.batch_rows = static_cast<int64_t>(s.rows.size());
  pr.replays = s.replays;
  pr.plans = s.plans->built;
  pr.plan_seconds = s.plans->seconds;
  pr.replay_note = s.replay_note;
  if (progress) progress(pr);
  return active;
}

// The loss buffers a recorded stretch writes, allocated before it is recorded (a recording
// may not allocate): boundary_loss keeps buffers of the right shape.
void ensure_loss_buffers(Search& s) {
  const int64_t n = static_cast<int64_t>(s.rows.size());
  if (!s.loss.defined()) s.loss = Tensor::empty({n}, s.dev);
  if (!s.dz.defined()) s.dz = Tensor::empty({n, s.classes}, s.dev);
}

}  // namespace

// IPGuard: Adam on Eq. 5 until every row's loss is 0 or the budget is spent. Iteration t:
// update with the gradient of loss(t), then loss(t + 1) (loss(1) comes first); the flags
// are read after loss(t) for t = 1, 1 + check_every, ..., and the batch may be compacted
// right after that iteration's update. With replay, the check_every - 1 iterations
// between those points run as one recorded stretch; Adam's step count then lives on the
// device, the same coefficients read from a table.
void run_ipguard(Search& s, ExtractProgress& pr,
                 const std::function<void(const ExtractProgress&)>& progress) {
  const ExtractOptions& o = *s.o;
  const int64_t every = o.check_every;
  const bool replay = wants_replay(o, s.dev);
  const float lr = static_cast<float>(o.lr);
  Tensor table, step;  // replay: every iteration's Adam coefficients, the next one's index
  if (replay) {
    table = ops::adam_table(lr, 0.9f, 0.999f, 1e-8f, 0.f, 1, o.iters, s.dev);
    step = Tensor::from_vector_i32({0}, {1}, s.dev);
  }
  auto loss = [&] {
    if (s.k_rows.defined())  // several settings' rows, each with its own k
      ops::boundary_loss(BoundaryLoss::IPGuard, s.f->logits(s.x), s.src, s.dst, s.k_rows,
                         Tensor(), s.loss, s.dz, &s.active);
    else
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
  Stretches stretches(s, replay, every - 1);
  loss();
  for (int64_t t = 1; t <= o.iters;) {
    if (report(s, pr, progress, s.sync(t - 1), t - 1) == 0) return;
    update(t);
    s.maybe_compact(pr.active);
    loss();
    ++t;
    const int64_t stretch = std::min(every - 1, o.iters - t + 1);
    stretches.run(t, stretch, [&update, &loss](int64_t i) {
      update(i);
      loss();
    });
    t += stretch;
  }
  s.sync(o.iters);
}

CycleWatch::CycleWatch(int64_t rows, const ExtractOptions& o)
    : iters_(o.iters),
      enabled_(o.stop_cycles && o.check_every > 0 && o.iters % o.check_every == 0) {
  if (enabled_) rows_.resize(static_cast<size_t>(rows));
}

std::vector<int64_t> CycleWatch::check(const Search& s, std::vector<int32_t>& a, int64_t u) {
  std::vector<int64_t> stopped;
  if (!enabled_) return stopped;
  // One hash per row, made where the points are: on CUDA 8 bytes a row come back, not the
  // batch's points.
  const std::vector<int32_t> hw = ops::row_hash(s.x).to_vector_i32();
  for (size_t w = 0; w < s.rows.size(); ++w) {
    if (!a[w]) continue;
    Row& r = rows_[static_cast<size_t>(s.rows[w])];
    if (r.stop_at < 0) {
      const uint64_t h = static_cast<uint64_t>(static_cast<uint32_t>(hw[2 * w])) |
                         static_cast<uint64_t>(static_cast<uint32_t>(hw[2 * w + 1])) << 32;
      const int filled = std::min(r.count, kWindow);
      for (int e = 0; e < filled && r.stop_at < 0; ++e)
        if (r.hash[e] == h) {
          // States repeat with period u - at from `at` on: the budget's point is the one
          // (iters - u) mod period updates from now.
          const int64_t period = u - r.at[e];
          r.stop_at = u + (iters_ - u) % period;
        }
      if (r.stop_at < 0) {
        r.hash[r.count % kWindow] = h;
        r.at[r.count % kWindow] = u;
        ++r.count;
        continue;
      }
    }
    if (u == r.stop_at) {  // later ones (stop_at == iters) end with the budget anyway
      a[w] = 0;
      stopped.push_back(s.rows[w]);
      ++stopped_;
    }
  }
  return stopped;
}

// IGSM: signed steps of the cross-entropy to j until the row is labeled j. The flags are
// read at iterations 1, 1 + check_every, ... (from that iteration's logits, before its
// step), the batch compacted after that step; the check_every - 1 iterations between run
// as one recorded stretch with replay.
void run_igsm(Search& s, ExtractProgress& pr,
              const std::function<void(const ExtractProgress&)>& progress) {
  const ExtractOptions& o = *s.o;
  const int64_t every = o.check_every;
  auto step = [&](const Tensor& z) {
    ops::boundary_loss(BoundaryLoss::CrossEntropy, z, s.src, s.dst, 0.f, Tensor(), s.loss, s.dz,
                       nullptr);
    const Tensor g = s.f->input_grad(s.dz);
    ops::boundary_sign_step(s.x, s.x0, g, s.active, static_cast<float>(o.alpha),
                            static_cast<float>(o.eps), 0.f, 1.f);
  };
  auto iteration = [&](int64_t) { step(s.f->logits(s.x)); };
  Stretches stretches(s, wants_replay(o, s.dev), every - 1);
  CycleWatch cycles(static_cast<int64_t>(s.active_h.size()), o);
  for (int64_t t = 1; t <= o.iters;) {
    const Tensor z = s.f->logits(s.x);
    // Success: labeled j; those rows stop here.
    const Tensor zh = z.cpu();
    std::vector<int32_t> a = s.active.cpu().to_vector_i32();
    for (size_t w = 0; w < s.rows.size(); ++w)
      if (a[w] && argmax_row(zh.data() + static_cast<int64_t>(w) * s.classes, s.classes) ==
                      s.dst_h[static_cast<size_t>(s.rows[w])])
        a[w] = 0;
    // Rows in a cycle, at the point the budget would end on: they stop as if they had run it.
    const std::vector<int64_t> cycled = cycles.check(s, a, t - 1);
    s.active.copy_from(Tensor::from_vector_i32(a, {static_cast<int64_t>(a.size())}));
    const int64_t live = s.record(a, t - 1);
    for (int64_t r : cycled) s.iterations[static_cast<size_t>(r)] = static_cast<int32_t>(o.iters);
    pr.cycled = cycles.stopped();
    if (report(s, pr, progress, live, t - 1) == 0) return;
    step(z);
    s.maybe_compact(pr.active);
    ++t;
    const int64_t stretch = std::min(every - 1, o.iters - t + 1);
    ensure_loss_buffers(s);  // after a compaction the batch has none yet
    stretches.run(t, stretch, iteration);
    t += stretch;
  }
}

namespace {

// Rows `keep` of t [n, ...] (on any device), as a new tensor on t's device.
Tensor take_rows(const Tensor& t, const std::vector<int64_t>& keep) {
  const Tensor h = t.cpu();
  const size_t row = h.nbytes() / static_cast<size_t>(h.dim(0));
  Shape shape = h.shape();
  shape[0] = static_cast<int64_t>(keep.size());
  Tensor out = Tensor::empty(shape, Device::cpu(), h.dtype());
  for (size_t w = 0; w < keep.size(); ++w)
    std::memcpy(static_cast<char*>(out.raw()) + w * row,
                static_cast<const char*>(h.raw()) + static_cast<size_t>(keep[w]) * row, row);
  return out.to(t.device());
}

}  // namespace

// CW-L2 (algorithms.md, "CW-L2"): the whole chunk searches every step; per row, the
// closest success over all steps is kept in best_x / best_l2 (found: best_l2 < 1e10).
// Several settings sharing the batch (s.member_rows rows each: extract_fingerprints) each
// keep their own early abort, decided on their own rows' loss summed in their order, as
// alone: a setting that stops a step keeps its rows' step results as they are then (saved
// on the host; the rows ride along unchanged in effect), and on the CPU the batch is
// compacted to the settings still searching when compaction's rule says so (an iteration
// costs in proportion to its rows there; on CUDA a new batch size costs an algorithm
// search). Every step starts every row again.
void run_cwl2(Search& s, ExtractProgress& pr,
              const std::function<void(const ExtractProgress&)>& progress) {
  const ExtractOptions& o = *s.o;
  const std::vector<int64_t> chunk_rows = s.rows;
  const int64_t n = static_cast<int64_t>(chunk_rows.size()), per = shape_numel(s.image);
  const int64_t span = s.member_rows > 0 ? s.member_rows : n, groups = n / span;
  if (groups * span != n) throw std::logic_error("run_cwl2: the batch is not whole settings");
  const Shape in{n, s.image[0], s.image[1], s.image[2]};
  const Device dev = s.dev;
  // Carlini's start: u0 = atanh((x0 - 1/2) * 2 * 0.999999); the L2 term is measured from
  // its image x0s = tanh(u0)/2 + 1/2, not from x0.
  const Tensor x0h = s.x0.cpu();
  Tensor u0 = Tensor::empty(in), t0 = Tensor::empty(in), x0s = Tensor::empty(in);
  for (int64_t e = 0; e < n * per; ++e) {
    u0.data()[e] = std::atanh((x0h.data()[e] - 0.5f) * 2.f * 0.999999f);
    t0.data()[e] = kernels::tanhf_hd(u0.data()[e]);  // tanh(u), which the step keeps beside u
    x0s.data()[e] = kernels::boundary_cw_pixel_of_tanh(t0.data()[e]);
  }
  u0 = u0.to(dev);
  t0 = t0.to(dev);
  x0s = x0s.to(dev);
  constexpr float kNone = 1e10f;
  std::vector<float> best_l2(static_cast<size_t>(n), kNone);
  Tensor best_x = x0s.cpu().clone();  // rows never successful keep their start
  std::vector<double> c(static_cast<size_t>(n), o.c0), lo(c.size(), 0.0), hi(c.size(), 1e10);
  Tensor l2, success;
  int64_t iterations = 0;  // of the batch, for progress
  std::vector<int64_t> ran(static_cast<size_t>(groups), 0);  // per setting
  // The search's buffers live across the binary steps, each step starting them afresh in
  // place (unless compacted): a recorded stretch keeps pointing at them. With replay the
  // Adam coefficients come from a table, the step's iteration count from the device.
  const bool replay = wants_replay(o, dev);
  const float lr = static_cast<float>(o.lr);
  Tensor table, counter;
  if (replay) {
    table = ops::adam_table(lr, 0.9f, 0.999f, 1e-8f, 0.f, 1, o.iters, dev);
    counter = Tensor::from_vector_i32({0}, {1}, dev);
  }
  // The batch: `batch` holds its rows' indices in the chunk's n; xs, weight and kappa are
  // x0s, c and the confidences of those rows.
  std::vector<int64_t> batch(static_cast<size_t>(n));
  std::iota(batch.begin(), batch.end(), 0);
  const Tensor zeros = Tensor::zeros(in, dev), none = Tensor::full({n}, kNone, dev);
  const Tensor kappa_all = s.k_rows;
  Tensor weight = Tensor::empty({n}, dev), u = u0.clone(), th = t0.clone(), x = x0s.clone(),
         xs = x0s, kappa = kappa_all, m = zeros.clone(), v = zeros.clone(),
         step_l2 = none.clone(), step_x = x0s.clone();
  // Iteration `it` (0-based) of a binary step: the forward pass at x, its loss and
  // bookkeeping, then the Adam step of u.
  auto iteration = [&](int64_t it) {
    const Tensor z = s.f->logits(x);
    if (kappa.defined()) {
      ops::boundary_loss(BoundaryLoss::CarliniWagner, z, s.src, s.dst, kappa, weight, s.loss, s.dz,
                         nullptr);
      ops::boundary_cw_track(x, xs, z, s.dst, kappa, l2, success, step_l2, step_x);
    } else {
      ops::boundary_loss(BoundaryLoss::CarliniWagner, z, s.src, s.dst, static_cast<float>(o.k),
                         weight, s.loss, s.dz, nullptr);
      ops::boundary_cw_track(x, xs, z, s.dst, static_cast<float>(o.k), l2, success, step_l2,
                             step_x);
    }
    const Tensor g = s.f->input_grad(s.dz);
    if (replay) {
      ops::boundary_cw_step_at(u, th, x, xs, g, m, v, table, counter);
      ops::boundary_step_advance(counter);
    } else {
      ops::boundary_cw_step(u, th, x, xs, g, m, v,
                            kernels::adam_coeffs(lr, 0.9f, 0.999f, 1e-8f, 0.f, it + 1));
    }
  };
  // The per-row outputs at the batch's size, allocated before a stretch records them.
  auto fresh_outputs = [&] {
    const int64_t rows = static_cast<int64_t>(batch.size());
    s.loss = s.dz = Tensor();
    ensure_loss_buffers(s);
    l2 = Tensor::empty({rows}, dev);
    success = Tensor::empty({rows}, dev, DType::I32);
  };
  // The batch cut to `keep` (positions in it), every row's state carried (CPU only); the
  // plan left behind is dropped unless it is the chunk's own (Search::maybe_compact).
  auto shrink = [&](const std::vector<int64_t>& keep) {
    std::vector<int64_t> rows, kept;
    for (int64_t w : keep) {
      rows.push_back(chunk_rows[static_cast<size_t>(batch[static_cast<size_t>(w)])]);
      kept.push_back(batch[static_cast<size_t>(w)]);
    }
    for (Tensor* t : {&u, &th, &x, &xs, &m, &v, &step_l2, &step_x, &weight, &s.src, &s.dst})
      *t = take_rows(*t, keep);
    if (kappa.defined()) kappa = take_rows(kappa, keep);
    const int64_t old = static_cast<int64_t>(batch.size());
    batch = kept;
    s.rows = rows;
    s.f = nullptr;
    if (old != n) s.plans->drop(old);
    s.f = &s.plans->get(*s.net, {static_cast<int64_t>(batch.size()), in[1], in[2], in[3]});
    ++s.loads;
    fresh_outputs();
    if (old != n) CachingAllocator::for_device(dev).empty_cache();
  };
  // Every row back in the batch and the chunk's plan (after a compaction, CPU only).
  auto whole_chunk = [&] {
    const int64_t old = static_cast<int64_t>(batch.size());
    batch.resize(static_cast<size_t>(n));
    std::iota(batch.begin(), batch.end(), 0);
    s.rows = chunk_rows;
    s.f = nullptr;
    s.plans->drop(old);
    s.f = &s.plans->get(*s.net, in);
    ++s.loads;
    s.src = s.gather_i32(s.src_h);
    s.dst = s.gather_i32(s.dst_h);
    CachingAllocator::for_device(dev).empty_cache();
  };
  // The step results of settings that stopped early, by chunk batch index (one setting:
  // none, its stop ends the step with its results in place).
  std::vector<float> saved_l2(static_cast<size_t>(n), kNone);
  Tensor saved_x = groups > 1 ? Tensor::empty(in) : Tensor();
  // The loss is read back every `every` iterations (abort early); the ones between run as
  // one recorded stretch with replay.
  const int64_t every = std::max<int64_t>(1, o.iters / 10);
  Stretches stretches(s, replay, every - 1);
  for (int64_t step = 0; step < o.binary_steps; ++step) {
    if (o.binary_steps >= 10 && step == o.binary_steps - 1) c = hi;  // the reference's repeat
    if (static_cast<int64_t>(batch.size()) != n) {  // full-size buffers, filled below
      whole_chunk();
      for (Tensor* t : {&u, &th, &x, &m, &v, &step_x}) *t = Tensor::empty(in, dev);
      step_l2 = Tensor::empty({n}, dev);
      weight = Tensor::empty({n}, dev);
      xs = x0s;
      kappa = kappa_all;
      fresh_outputs();
    }
    u.copy_from(u0);
    th.copy_from(t0);
    x.copy_from(x0s);
    m.copy_from(zeros);
    v.copy_from(zeros);
    step_l2.copy_from(none);
    step_x.copy_from(x0s);
    std::vector<float> cf(c.begin(), c.end());
    weight.copy_from(Tensor::from_vector(cf, {n}));
    if (replay) counter.copy_from(Tensor::from_vector_i32({0}, {1}));
    std::vector<double> prev(static_cast<size_t>(groups), 1e6);
    std::vector<char> searching(static_cast<size_t>(groups), 1);
    int64_t live_groups = groups, done = 0;  // done: iterations of this step so far
    for (int64_t it = 0; it < o.iters;) {
      iteration(it);
      ++iterations;
      ++done;
      if (o.abort_early && it % every == 0) {  // a setting's loss stalled: its next step
        const std::vector<float> a = l2.cpu().to_vector(), b = s.loss.cpu().to_vector();
        std::vector<double> total(static_cast<size_t>(groups), 0.0);
        for (size_t w = 0; w < batch.size(); ++w)
          total[static_cast<size_t>(batch[w] / span)] += double(a[w]) + double(b[w]);
        std::vector<int64_t> stopped;
        for (int64_t g = 0; g < groups; ++g) {
          if (!searching[g]) continue;
          if (total[g] > prev[g] * 0.9999)
            stopped.push_back(g);
          else
            prev[g] = total[g];
        }
        if (static_cast<int64_t>(stopped.size()) == live_groups) break;  // results in place
        if (!stopped.empty()) {
          const std::vector<float> sl2 = step_l2.cpu().to_vector();
          const Tensor sx = step_x.cpu();
          for (int64_t g : stopped) {
            searching[g] = 0;
            ran[g] += done;
          }
          live_groups -= static_cast<int64_t>(stopped.size());
          std::vector<int64_t> keep;
          for (size_t w = 0; w < batch.size(); ++w) {
            const int64_t r = batch[w];
            if (searching[r / span]) {
              keep.push_back(static_cast<int64_t>(w));
            } else if (std::find(stopped.begin(), stopped.end(), r / span) != stopped.end()) {
              saved_l2[r] = sl2[w];
              std::copy_n(sx.data() + w * per, per, saved_x.data() + r * per);
            }
          }
          if (!dev.is_cuda() &&
              static_cast<double>(keep.size()) <= s.compact_at * static_cast<double>(batch.size()))
            shrink(keep);
        }
      }
      ++it;
      const int64_t stretch = std::min(every - 1, o.iters - it);
      stretches.run(it, stretch, iteration);
      it += stretch;
      iterations += stretch;
      done += stretch;
    }
    // Merge the step's successes and move each row's bounds on c.
    const std::vector<float> sl2 = step_l2.cpu().to_vector();
    const Tensor sx = step_x.cpu();
    std::vector<int64_t> at(static_cast<size_t>(n), -1);  // batch position of each row
    for (size_t w = 0; w < batch.size(); ++w)
      at[static_cast<size_t>(batch[w])] = static_cast<int64_t>(w);
    int64_t found = 0;
    for (int64_t r = 0; r < n; ++r) {
      const int64_t g = r / span, w = at[static_cast<size_t>(r)];
      const bool live = searching[g] != 0;
      const float l = live ? sl2[w] : saved_l2[r];
      const float* px = live ? sx.data() + w * per : saved_x.data() + r * per;
      const bool ok = l < kNone;
      if (ok && l < best_l2[r]) {
        best_l2[r] = l;
        std::copy_n(px, per, best_x.data() + r * per);
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
    for (int64_t g = 0; g < groups; ++g)
      if (searching[g]) ran[g] += done;
    report(s, pr, progress, n - found, iterations);
  }
  if (static_cast<int64_t>(batch.size()) != n) whole_chunk();  // the chunk's plan for what follows
  s.x = best_x.to(dev);
  for (int64_t r = 0; r < n; ++r) {
    const size_t row = static_cast<size_t>(chunk_rows[static_cast<size_t>(r)]);
    s.iterations[row] = static_cast<int32_t>(ran[static_cast<size_t>(r / span)]);
    s.active_h[row] = best_l2[r] < kNone ? 0 : 1;
    s.distance[row] = best_l2[r] < kNone ? best_l2[r] : std::numeric_limits<float>::quiet_NaN();
  }
}

}  // namespace ipg::extract_detail
