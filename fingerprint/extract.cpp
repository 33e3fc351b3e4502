// Fingerprint extraction: initial points and labels on the host, then each chunk of
// candidates as one batch on the network's device (extract.h).
#include "fingerprint/extract.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <memory>
#include <numeric>
#include <stdexcept>
#include <string>
#include <vector>

#include "engine/ops/boundary.h"
#include "engine/random.h"
#include "engine/replay.h"
#include "models/frozen_network.h"

namespace ipg {

namespace {

using kernels::BoundaryLoss;

int argmax_row(const float* z, int64_t c) {
  return static_cast<int>(std::max_element(z, z + c) - z);
}
int argmin_row(const float* z, int64_t c) {
  return static_cast<int>(std::min_element(z, z + c) - z);
}

// n initial points [n, C, H, W] on the CPU: distinct random training images (the n
// smallest of one uniform key per image) or uniform pixels.
Tensor initial_points(const ExtractOptions& o, const Shape& image, const Tensor* train,
                      Generator& gen) {
  Shape shape{o.n, image[0], image[1], image[2]};
  if (o.init == "random") return Tensor::uniform(shape, 0.f, 1.f, gen);
  const int64_t pool = train->dim(0), per = shape_numel(image);
  const Tensor keys = Tensor::uniform({pool}, 0.f, 1.f, gen);
  std::vector<int64_t> order(static_cast<size_t>(pool));
  std::iota(order.begin(), order.end(), 0);
  const float* k = keys.data();
  std::partial_sort(order.begin(), order.begin() + o.n, order.end(),
                    [k](int64_t a, int64_t b) { return k[a] < k[b] || (k[a] == k[b] && a < b); });
  Tensor x = Tensor::empty(shape);
  for (int64_t r = 0; r < o.n; ++r)
    std::copy_n(train->data() + order[static_cast<size_t>(r)] * per, per, x.data() + r * per);
  return x;
}

// The candidates of a chunk still searching, as one batch on the device. When few rows
// are left (a quarter of the batch), the batch is compacted to them: the finished ones
// would otherwise ride along through every remaining iteration.
struct Search {
  const ExtractOptions* o = nullptr;
  Network* net = nullptr;
  Device dev;
  Shape image;
  int64_t classes = 0;
  // Host side, per chunk row.
  Tensor x0_h, x_h;  // [rows, C, H, W]: initial and current points
  std::vector<int32_t> src_h, dst_h, iterations, active_h;
  std::vector<float> distance;  // cwl2: squared L2 of the point from its start
  // Device side, per row of the batch (`rows`: their chunk rows).
  std::vector<int64_t> rows;
  std::unique_ptr<FrozenNetwork> f;
  std::string replay_note;  // why a recording was refused (the loop then ran directly)
  Tensor x0, x, m, v, src, dst, active, loss, dz;

  Tensor gather(const Tensor& host) const {
    const int64_t per = shape_numel(image);
    Tensor t = Tensor::empty({static_cast<int64_t>(rows.size()), image[0], image[1], image[2]});
    for (size_t w = 0; w < rows.size(); ++w)
      std::copy_n(host.data() + rows[w] * per, per, t.data() + static_cast<int64_t>(w) * per);
    return t.to(dev);
  }
  Tensor gather_i32(const std::vector<int32_t>& host) const {
    std::vector<int32_t> v;
    for (int64_t r : rows) v.push_back(host[static_cast<size_t>(r)]);
    return Tensor::from_vector_i32(v, {static_cast<int64_t>(v.size())}, dev);
  }
  // Loads the batch for `keep` (chunk rows), saving the current points first; the Adam
  // moments follow their rows.
  void load(const std::vector<int64_t>& keep) {
    const int64_t per = shape_numel(image);
    save();
    std::vector<int64_t> old = rows;
    Tensor m_old = m.defined() ? m.cpu().clone() : Tensor(),
           v_old = v.defined() ? v.cpu().clone() : Tensor();
    rows = keep;
    const int64_t n = static_cast<int64_t>(rows.size());
    const Shape in{n, image[0], image[1], image[2]};
    f = std::make_unique<FrozenNetwork>(*net, in);
    x0 = gather(x0_h);
    x = gather(x_h);
    m = Tensor::zeros(in);
    v = Tensor::zeros(in);
    if (m_old.defined()) {  // carry the moments of the rows that stay
      for (size_t w = 0; w < rows.size(); ++w) {
        const auto it = std::find(old.begin(), old.end(), rows[w]);
        if (it == old.end()) continue;  // a row coming back (the final pass): no moments
        const int64_t from = it - old.begin();
        std::copy_n(m_old.data() + from * per, per, m.data() + static_cast<int64_t>(w) * per);
        std::copy_n(v_old.data() + from * per, per, v.data() + static_cast<int64_t>(w) * per);
      }
    }
    m = m.to(dev);
    v = v.to(dev);
    src = gather_i32(src_h);
    dst = gather_i32(dst_h);
    active = gather_i32(active_h);
    loss = dz = Tensor();
  }
  // Takes the batch's flags `a` (one per batch row); rows that stopped since the last
  // call ran `updates` updates. Returns how many are still searching.
  int64_t record(const std::vector<int32_t>& a, int64_t updates) {
    int64_t live = 0;
    for (size_t w = 0; w < rows.size(); ++w) {
      int32_t& h = active_h[static_cast<size_t>(rows[w])];
      if (h && !a[w]) iterations[static_cast<size_t>(rows[w])] = static_cast<int32_t>(updates);
      h = a[w];
      live += a[w] != 0;
    }
    return live;
  }
  // Reads the flags back from the device (the loop's one synchronization).
  int64_t sync(int64_t updates) { return record(active.cpu().to_vector_i32(), updates); }
  // Compacts to the rows still searching when they are o->compact_at of the batch or
  // fewer (not below 8 rows: a smaller batch saves too little to pay for the new plan).
  void maybe_compact(int64_t live) {
    const int64_t n = static_cast<int64_t>(rows.size());
    if (live == 0 || live == n || n < 8 || static_cast<double>(live) > o->compact_at * n) return;
    std::vector<int64_t> keep;
    for (int64_t r : rows)
      if (active_h[static_cast<size_t>(r)]) keep.push_back(r);
    load(keep);
  }
  // Copies the batch's current points into x_h.
  void save() {
    if (!x.defined()) return;
    const int64_t per = shape_numel(image);
    const Tensor xh = x.cpu();
    for (size_t w = 0; w < rows.size(); ++w)
      std::copy_n(xh.data() + static_cast<int64_t>(w) * per, per, x_h.data() + rows[w] * per);
  }
};

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

}  // namespace

int64_t auto_batch(Network& net, int64_t n) {
  const Device dev = net.device();
  if (!dev.is_cuda()) return std::min<int64_t>(n, 100);
  // The frozen graph's bytes per row, measured at a batch of two, plus the loop's own
  // per-row tensors: points, starts, two Adam moments, the gradient, CW-L2's variables
  // and best points (at most 9 images), the logits and their gradient.
  const ModelConfig& cfg = net.config();
  const Shape two{2, cfg.in_channels, cfg.height, cfg.width};
  const size_t graph_row = FrozenNetwork(net, two).memory_bytes() / 2;
  if (graph_row == 0) return std::min<int64_t>(n, 100);  // autodiff: nothing to measure
  const size_t image = size_t(shape_numel(two) / 2) * sizeof(float);
  const size_t per_row = graph_row + 9 * image + size_t(cfg.classes) * 2 * sizeof(float);
  // Half of what is free: cuDNN workspaces, the caching allocator's rounding and whatever
  // else shares the device keep the rest.
  const int64_t fit = int64_t(device_free_bytes(dev) / 2 / per_row);
  return std::max<int64_t>(1, std::min(n, fit));
}

int64_t default_check_every(Device device) {
  // Reading the flags back costs a synchronization: nothing on the CPU, a stall of the
  // whole GPU pipeline (and the end of a replayed stretch) on CUDA.
  return device.is_cuda() ? 10 : 1;
}

void validate(const ExtractOptions& o) {
  auto bad = [](const std::string& what) { throw std::invalid_argument(what); };
  if (o.method != "ipguard" && o.method != "cwl2" && o.method != "fgsm" && o.method != "igsm" &&
      o.method != "random")
    bad("unknown method '" + o.method + "' (ipguard, cwl2, fgsm, igsm, random)");
  if (o.binary_steps < 1) bad("binary_steps must be at least 1");
  if (!(o.c0 > 0) || !std::isfinite(o.c0)) bad("c0 must be positive");
  if (o.init != "train" && o.init != "random") bad("init must be train or random");
  if (o.target != "least-likely" && o.target != "random")
    bad("target must be least-likely or random");
  if (o.n < 1) bad("n must be at least 1");
  if (o.batch < 0) bad("batch must be 0 (automatic) or more");
  if (o.iters < 1) bad("iters must be at least 1");
  if (o.check_every < 0) bad("check_every must be 0 (the device's default) or more");
  if (!(o.compact_at >= 0 && o.compact_at <= 1)) bad("compact_at must be between 0 and 1");
  if (!(o.k >= 0) || !std::isfinite(o.k)) bad("k must be a finite number >= 0");
  if (!(o.lr > 0) || !std::isfinite(o.lr)) bad("lr must be positive");
  if (!(o.eps > 0) || !(o.eps <= 1)) bad("eps must be in (0, 1]");
  if (!(o.alpha > 0) || !(o.alpha <= 1)) bad("alpha must be in (0, 1]");
}

Fingerprint extract_fingerprint(Network& net, const ExtractOptions& options,
                                const Tensor* train_images,
                                const std::function<void(const ExtractProgress&)>& progress) {
  return extract_fingerprint(net, options, train_images, progress, {});
}

Fingerprint extract_fingerprint(Network& net, const ExtractOptions& options,
                                const Tensor* train_images,
                                const std::function<void(const ExtractProgress&)>& progress,
                                const std::function<bool(int64_t, int64_t)>& run_chunk) {
  ExtractOptions o = options;
  if (o.check_every == 0) o.check_every = default_check_every(net.device());
  if (o.batch == 0 && o.n > 0) o.batch = auto_batch(net, o.n);
  validate(o);
  const ModelConfig& cfg = net.config();
  const Shape image{cfg.in_channels, cfg.height, cfg.width};
  if (o.init == "train") {
    if (!train_images || train_images->ndim() != 4 ||
        Shape(train_images->shape().begin() + 1, train_images->shape().end()) != image)
      throw std::invalid_argument("init 'train' needs training images of the model's input shape " +
                                  shape_str(image));
    if (train_images->dim(0) < o.n)
      throw std::invalid_argument("init 'train': " + std::to_string(o.n) + " points from " +
                                  std::to_string(train_images->dim(0)) + " training images");
  }
  const int64_t classes = cfg.classes;
  if (classes < 2) throw std::invalid_argument("a fingerprint needs at least 2 classes");
  Generator gen(o.seed);
  const Tensor start = initial_points(o, image, train_images, gen);
  const Tensor pick = Tensor::uniform({o.n}, 0.f, 1.f, gen);  // random targets

  Fingerprint fp;
  fp.method = o.method;
  const bool adam = o.method == "ipguard" || o.method == "cwl2";
  fp.params.k = adam ? o.k : 0;
  fp.params.lr = adam ? o.lr : (o.method == "igsm" ? o.alpha : 0);
  fp.params.iters = (adam || o.method == "igsm") ? o.iters : 0;
  fp.params.eps = (o.method == "fgsm" || o.method == "igsm") ? o.eps : 0;
  fp.params.init = o.init;
  fp.params.target = o.target;
  fp.seed = o.seed;
  fp.arch = cfg.arch;
  fp.created = utc_timestamp();
  fp.points = Tensor::zeros(start.shape());
  std::vector<int32_t> labels;

  const Device dev = net.device();
  const int64_t per = shape_numel(image);
  for (int64_t first = 0; first < o.n; first += o.batch) {
    const int64_t rows = std::min(o.batch, o.n - first);
    if (run_chunk && !run_chunk(first, rows)) {  // another process's share: zeros
      labels.insert(labels.end(), rows, 0);
      fp.source.insert(fp.source.end(), rows, 0);
      fp.target.insert(fp.target.end(), rows, 0);
      fp.iterations.insert(fp.iterations.end(), rows, 0);
      fp.final_loss.insert(fp.final_loss.end(), rows, 0.f);
      fp.converged.insert(fp.converged.end(), rows, 0);
      continue;
    }
    Search s;
    s.o = &o;
    s.net = &net;
    s.dev = dev;
    s.image = image;
    s.classes = classes;
    s.x0_h = start.narrow0(first, rows).clone();
    s.x_h = s.x0_h.clone();
    std::vector<int64_t> all(static_cast<size_t>(rows));
    std::iota(all.begin(), all.end(), 0);
    s.src_h.assign(rows, 0);
    s.dst_h.assign(rows, 0);
    s.active_h.assign(rows, 1);
    s.iterations.assign(rows, 0);
    s.distance.assign(rows, 0.f);
    s.load(all);
    const Tensor z0 = s.f->logits(s.x0).cpu().clone();
    for (int64_t r = 0; r < rows; ++r) {
      const float* z = z0.data() + r * classes;
      const int i = argmax_row(z, classes);
      int j = o.target == "least-likely"
                  ? argmin_row(z, classes)
                  : (i + 1 + static_cast<int>(pick.data()[first + r] * (classes - 1))) %
                        static_cast<int>(classes);
      if (j == i) j = (i + 1) % static_cast<int>(classes);  // all logits equal
      s.src_h[r] = i;
      s.dst_h[r] = j;
    }
    s.src = s.gather_i32(s.src_h);
    s.dst = s.gather_i32(s.dst_h);
    ExtractProgress pr;
    pr.done = first;
    pr.chunk_rows = rows;

    if (o.method == "ipguard") {
      run_ipguard(s, pr, progress);
    } else if (o.method == "cwl2") {
      run_cwl2(s, pr, progress);
    } else if (o.method == "igsm") {
      run_igsm(s, pr, progress);
    } else if (o.method == "fgsm") {
      ops::boundary_loss(BoundaryLoss::CrossEntropy, s.f->logits(s.x0), s.src, s.dst, 0.f, Tensor(),
                         s.loss, s.dz, nullptr);
      const Tensor g = s.f->input_grad(s.dz);
      ops::boundary_sign_step(s.x, s.x0, g, Tensor(), static_cast<float>(o.eps),
                              static_cast<float>(o.eps), 0.f, 1.f);
      std::fill(s.iterations.begin(), s.iterations.end(), 1);
    }
    s.save();

    // Labels and losses at the final points, the whole chunk on the host's copy.
    s.load(all);
    const Tensor z = s.f->logits(s.x).cpu().clone();
    Tensor loss, dz;
    const bool ipguard = o.method == "ipguard";
    ops::boundary_loss(ipguard ? BoundaryLoss::IPGuard : BoundaryLoss::CrossEntropy, z,
                       Tensor::from_vector_i32(s.src_h, {rows}),
                       Tensor::from_vector_i32(s.dst_h, {rows}),
                       ipguard ? static_cast<float>(o.k) : 0.f, Tensor(), loss, dz, nullptr);
    std::copy_n(s.x_h.data(), rows * per, fp.points.data() + first * per);
    for (int64_t r = 0; r < rows; ++r) {
      const int label = argmax_row(z.data() + r * classes, classes);
      labels.push_back(label);
      fp.source.push_back(s.src_h[r]);
      fp.target.push_back(s.dst_h[r]);
      const bool searched = ipguard || o.method == "igsm";
      if (searched && s.active_h[r]) s.iterations[r] = static_cast<int32_t>(o.iters);
      fp.iterations.push_back(s.iterations[r]);
      if (o.method == "random")
        fp.final_loss.push_back(std::numeric_limits<float>::quiet_NaN());
      else if (o.method == "cwl2")
        fp.final_loss.push_back(s.distance[r]);
      else
        fp.final_loss.push_back(loss.data()[r]);
      if (ipguard || o.method == "cwl2")
        fp.converged.push_back(s.active_h[r] ? 0 : 1);
      else
        fp.converged.push_back(o.method == "random" ? 1 : label == s.dst_h[r]);
    }
    pr.done = first + rows;
    pr.active = 0;
    if (progress) progress(pr);
  }
  fp.labels = Tensor::from_vector_i32(labels, {o.n});
  return fp;
}

}  // namespace ipg
