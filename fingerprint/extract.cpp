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
#include "fingerprint/extract_search.h"
#include "models/frozen_network.h"

namespace ipg {

namespace {

using kernels::BoundaryLoss;
using namespace extract_detail;

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

// One setting of a group sharing the batch (extract_fingerprints): its options, initial
// points and target draws, and its fingerprint as the chunks fill it.
struct Member {
  ExtractOptions o;
  Tensor start, pick;  // all n initial points; the random targets' draws
  Fingerprint fp;
  std::vector<int32_t> labels;
};

// A setting's fingerprint before any chunk: everything but the searched rows.
Fingerprint skeleton(const ExtractOptions& o, const ModelConfig& cfg, const Shape& points) {
  Fingerprint fp;
  fp.method = o.method;
  const bool adam = reads_option(o.method, MethodOption::Lr);
  fp.params.k = reads_option(o.method, MethodOption::K) ? o.k : 0;
  // The file's one step-size field: Adam's rate, or igsm's alpha.
  fp.params.lr = adam ? o.lr : (reads_option(o.method, MethodOption::Alpha) ? o.alpha : 0);
  fp.params.iters = reads_option(o.method, MethodOption::Iters) ? o.iters : 0;
  fp.params.eps = reads_option(o.method, MethodOption::Eps) ? o.eps : 0;
  fp.params.init = o.init;
  fp.params.target = o.target;
  fp.seed = o.seed;
  fp.arch = cfg.arch;
  fp.created = utc_timestamp();
  fp.points = Tensor::zeros(points);
  return fp;
}

// Every member's chunk at `first` (`rows` candidates each) as one batch: their initial
// points side by side, each row with its setting's target rule and (IPGuard) k.
void search_chunk(Network& net, std::vector<Member>& group, const Shape& image, int64_t first,
                  int64_t rows, PlanCache& plans,
                  const std::function<void(const ExtractProgress&)>& progress) {
  const ExtractOptions& o = group.front().o;  // what all members share
  const int64_t classes = net.config().classes, per = shape_numel(image);
  const int64_t members = static_cast<int64_t>(group.size()), total = rows * members;
  Search s;
  s.plans = &plans;
  s.o = &o;
  s.net = &net;
  s.dev = net.device();
  // A shared batch on the CPU compacts sooner: a member whose rows have all finished is
  // 1/members of the batch, rows its setting alone would already have dropped (IPGuard at
  // 16 settings: 1.36x the CPU time of the settings alone at 0.25, 1.05x at this rule). On
  // CUDA finished rows cost little until the device is full, and every new batch size
  // costs a cuDNN algorithm search: the setting's own threshold. Points do not change.
  const double own = o.compact_at ? *o.compact_at : default_compact_at(s.dev);
  s.compact_at = members > 1 && !s.dev.is_cuda() && own > 0
                     ? 1 - (1 - own) / static_cast<double>(members)
                     : own;
  s.image = image;
  s.classes = classes;
  s.x0_h = Tensor::empty({total, image[0], image[1], image[2]});
  for (int64_t g = 0; g < members; ++g)
    std::copy_n(group[g].start.data() + first * per, rows * per, s.x0_h.data() + g * rows * per);
  s.x_h = s.x0_h.clone();
  std::vector<int64_t> all(static_cast<size_t>(total));
  std::iota(all.begin(), all.end(), 0);
  s.src_h.assign(total, 0);
  s.dst_h.assign(total, 0);
  s.active_h.assign(total, 1);
  s.iterations.assign(total, 0);
  s.distance.assign(total, 0.f);
  s.member_rows = rows;
  if (members > 1 && (o.method == "ipguard" || o.method == "cwl2"))
    for (int64_t r = 0; r < total; ++r) s.k_h.push_back(static_cast<float>(group[r / rows].o.k));
  s.load(all);
  const Tensor z0 = s.f->logits(s.x0).cpu().clone();
  for (int64_t r = 0; r < total; ++r) {
    const ExtractOptions& m = group[r / rows].o;
    const float* z = z0.data() + r * classes;
    const int i = argmax_row(z, classes);
    int j = m.target == "least-likely"
                ? argmin_row(z, classes)
                : (i + 1 + static_cast<int>(group[r / rows].pick.data()[first + r % rows] *
                                            (classes - 1))) %
                      static_cast<int>(classes);
    if (j == i) j = (i + 1) % static_cast<int>(classes);  // all logits equal
    s.src_h[r] = i;
    s.dst_h[r] = j;
  }
  s.src = s.gather_i32(s.src_h);
  s.dst = s.gather_i32(s.dst_h);
  ExtractProgress pr;
  pr.done = first * members;
  pr.chunk_rows = total;

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
  const Tensor src = Tensor::from_vector_i32(s.src_h, {total});
  const Tensor dst = Tensor::from_vector_i32(s.dst_h, {total});
  if (ipguard && !s.k_h.empty())
    ops::boundary_loss(BoundaryLoss::IPGuard, z, src, dst, Tensor::from_vector(s.k_h, {total}),
                       Tensor(), loss, dz, nullptr);
  else
    ops::boundary_loss(ipguard ? BoundaryLoss::IPGuard : BoundaryLoss::CrossEntropy, z, src, dst,
                       ipguard ? static_cast<float>(o.k) : 0.f, Tensor(), loss, dz, nullptr);
  for (int64_t g = 0; g < members; ++g) {
    Fingerprint& fp = group[g].fp;
    std::copy_n(s.x_h.data() + g * rows * per, rows * per, fp.points.data() + first * per);
    for (int64_t r = g * rows; r < (g + 1) * rows; ++r) {
      const int label = argmax_row(z.data() + r * classes, classes);
      group[g].labels.push_back(label);
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
  }
  pr.done = (first + rows) * members;
  pr.active = 0;
  pr.plans = plans.built;
  pr.plan_seconds = plans.seconds;
  if (progress) progress(pr);
}

// extract_fingerprint and extract_fingerprints: the group's options resolved and checked,
// its members' initial points drawn (each from its own seed, as alone), then every chunk.
std::vector<Fingerprint> extract_group(Network& net, const std::vector<ExtractOptions>& options,
                                       const Tensor* train_images,
                                       const std::function<void(const ExtractProgress&)>& progress,
                                       const std::function<bool(int64_t, int64_t)>& run_chunk) {
  const ModelConfig& cfg = net.config();
  const Shape image{cfg.in_channels, cfg.height, cfg.width};
  if (cfg.classes < 2) throw std::invalid_argument("a fingerprint needs at least 2 classes");
  std::vector<Member> group(options.size());
  const int64_t members = static_cast<int64_t>(group.size());
  // The automatic batch is measured once for the group: on CUDA it depends on the free
  // device memory, which the first measurement itself lowers (cuDNN and cuBLAS handles,
  // kernels loaded on first use), so a second one could give the next member another
  // batch and the group would be refused as not sharing one.
  int64_t auto_rows = 0;
  for (int64_t g = 0; g < members; ++g) {
    ExtractOptions& o = group[g].o;
    o = options[g];
    if (o.check_every == 0) o.check_every = default_check_every(net.device());
    if (o.batch == 0 && o.n > 0) {
      // One batch of every member's chunk: the device's rows shared out among them.
      if (auto_rows == 0)
        auto_rows = members == 1 ? auto_batch(net, o.n)
                    : net.device().is_cuda()
                        ? std::max<int64_t>(1, auto_batch(net, o.n * members) / members)
                        : auto_batch(net, o.n);
      o.batch = auto_rows;
    }
    validate(o);
    const std::string why = batch_share_mismatch(group.front().o, o);
    if (g > 0 && !why.empty())
      throw std::invalid_argument("settings cannot share a batch: " + why);
    if (o.init == "train") {
      if (!train_images || train_images->ndim() != 4 ||
          Shape(train_images->shape().begin() + 1, train_images->shape().end()) != image)
        throw std::invalid_argument("init 'train' needs training images of the model's input "
                                    "shape " + shape_str(image));
      if (train_images->dim(0) < o.n)
        throw std::invalid_argument(
            "init 'train' starts each point from its own training image: " +
            std::to_string(o.n) + " points, but there are " +
            std::to_string(train_images->dim(0)) + " images (ask for at most that many, or "
            "start from noise: init random)");
    }
    Generator gen(o.seed);
    group[g].start = initial_points(o, image, train_images, gen);
    group[g].pick = Tensor::uniform({o.n}, 0.f, 1.f, gen);  // random targets
    group[g].fp = skeleton(o, cfg, group[g].start.shape());
  }
  const ExtractOptions& o = group.front().o;
  PlanCache plans;
  for (int64_t first = 0; first < o.n; first += o.batch) {
    const int64_t rows = std::min(o.batch, o.n - first);
    if (run_chunk && !run_chunk(first, rows)) {  // another process's share: zeros
      for (Member& m : group) {
        m.labels.insert(m.labels.end(), rows, 0);
        m.fp.source.insert(m.fp.source.end(), rows, 0);
        m.fp.target.insert(m.fp.target.end(), rows, 0);
        m.fp.iterations.insert(m.fp.iterations.end(), rows, 0);
        m.fp.final_loss.insert(m.fp.final_loss.end(), rows, 0.f);
        m.fp.converged.insert(m.fp.converged.end(), rows, 0);
      }
      continue;
    }
    search_chunk(net, group, image, first, rows, plans, progress);
  }
  std::vector<Fingerprint> out;
  for (Member& m : group) {
    m.fp.labels = Tensor::from_vector_i32(m.labels, {o.n});
    out.push_back(std::move(m.fp));
  }
  return out;
}

}  // namespace

int64_t auto_batch(Network& net, int64_t n) {
  const Device dev = net.device();
  if (!dev.is_cuda()) return std::min<int64_t>(n, 100);
  // The frozen graph's bytes per row, measured at a batch of two, three times over (the
  // extraction keeps its plans: the full chunk's, the last chunk's and the compaction
  // buckets', which at compact_at 0.25 add up to less than one full chunk), plus the
  // loop's own per-row tensors: points, starts, two Adam moments, the gradient, CW-L2's
  // variables and best points (at most 9 images), the logits and their gradient.
  const ModelConfig& cfg = net.config();
  const Shape two{2, cfg.in_channels, cfg.height, cfg.width};
  const size_t graph_row = FrozenNetwork(net, two).memory_bytes() / 2;
  if (graph_row == 0) return std::min<int64_t>(n, 100);  // autodiff: nothing to measure
  const size_t image = size_t(shape_numel(two) / 2) * sizeof(float);
  const size_t per_row = 3 * graph_row + 9 * image + size_t(cfg.classes) * 2 * sizeof(float);
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

double default_compact_at(Device device) { return device.is_cuda() ? 0.25 : 0.75; }

bool reads_option(const std::string& m, MethodOption option) {
  const bool adam = m == "ipguard" || m == "cwl2";
  switch (option) {
    case MethodOption::K:
    case MethodOption::Lr:
      return adam;
    case MethodOption::Iters:
      return adam || m == "igsm";
    case MethodOption::Eps:
      return m == "fgsm" || m == "igsm";
    case MethodOption::Alpha:
      return m == "igsm";
    case MethodOption::BinarySteps:
    case MethodOption::C0:
      return m == "cwl2";
    case MethodOption::Target:
      return m != "random";
  }
  return false;
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
  if (o.compact_at && !(*o.compact_at >= 0 && *o.compact_at <= 1))
    bad("compact_at must be between 0 and 1");
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
  return std::move(extract_group(net, {options}, train_images, progress, run_chunk).front());
}

std::string batch_share_mismatch(const ExtractOptions& a, const ExtractOptions& b) {
  if (a.method != b.method) return "methods differ";
  if (a.method == "cwl2" &&
      (a.binary_steps != b.binary_steps || a.c0 != b.c0 || a.abort_early != b.abort_early))
    return "binary_steps, c0 or abort_early differs";
  if (a.lr != b.lr) return "lr differs";
  if (a.n != b.n || a.batch != b.batch) return "n or batch differs";
  if (a.iters != b.iters) return "iters differs";
  if (a.eps != b.eps || a.alpha != b.alpha) return "eps or alpha differs";
  if (a.stop_cycles != b.stop_cycles) return "stop_cycles differs";
  if (a.check_every != b.check_every || a.compact_at != b.compact_at || a.replay != b.replay)
    return "check_every, compact_at or replay differs";
  return "";
}

std::vector<Fingerprint> extract_fingerprints(
    Network& net, const std::vector<ExtractOptions>& group, const Tensor* train_images,
    const std::function<void(const ExtractProgress&)>& progress) {
  if (group.empty()) return {};
  return extract_group(net, group, train_images, progress, {});
}

}  // namespace ipg
