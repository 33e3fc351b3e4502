// The search state of extract_fingerprint (extract.cpp) and the methods' loops over it
// (extract_loops.cpp): internal to the fingerprint library.
#pragma once

#include <algorithm>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "engine/allocator.h"
#include "fingerprint/extract.h"
#include "models/frozen_network.h"

namespace ipg::extract_detail {

inline int argmax_row(const float* z, int64_t c) {
  return static_cast<int>(std::max_element(z, z + c) - z);
}
inline int argmin_row(const float* z, int64_t c) {
  return static_cast<int>(std::min_element(z, z + c) - z);
}

// The frozen networks of one extraction by batch rows: built once per batch size and
// reused by every chunk and compaction of that size (building one traces, plans and
// checks the network, and on CUDA searches cuDNN's algorithms: too slow to repeat). On
// the CPU a compaction drops the plan it leaves (Search::maybe_compact).
struct PlanCache {
  std::map<int64_t, std::unique_ptr<FrozenNetwork>> by_rows;
  double seconds = 0;  // spent building them (ExtractProgress::plan_seconds)
  int64_t built = 0;   // (ExtractProgress::plans)
  // The frozen network for batch shape `in`, built on first use.
  FrozenNetwork& get(Network& net, const Shape& in) {
    std::unique_ptr<FrozenNetwork>& plan = by_rows[in[0]];
    if (!plan) {
      const auto t0 = std::chrono::steady_clock::now();
      plan = std::make_unique<FrozenNetwork>(net, in);
      seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      ++built;
    }
    return *plan;
  }
  void drop(int64_t rows) { by_rows.erase(rows); }
};

// The candidates of a chunk still searching, as one batch on the device. When few rows
// are left (a quarter of the batch), the batch is compacted to them: the finished ones
// would otherwise ride along through every remaining iteration.
struct Search {
  const ExtractOptions* o = nullptr;
  double compact_at = 0.25;  // o->compact_at, or a shared batch's own (search_chunk)
  Network* net = nullptr;
  Device dev;
  Shape image;
  int64_t classes = 0;
  // Host side, per chunk row.
  Tensor x0_h, x_h;  // [rows, C, H, W]: initial and current points
  std::vector<int32_t> src_h, dst_h, iterations, active_h;
  std::vector<float> distance;  // cwl2: squared L2 of the point from its start
  std::vector<float> k_h;  // ipguard, cwl2: each row's k, when settings share the batch (else o->k)
  // Rows per setting: the batch holds its settings' chunks side by side (extract_fingerprints;
  // CW-L2's early abort is each setting's own). 0: one setting.
  int64_t member_rows = 0;
  // Device side, per row of the batch (`rows`: their chunk rows).
  std::vector<int64_t> rows;
  PlanCache* plans = nullptr;
  FrozenNetwork* f = nullptr;  // plans' network for the batch's rows
  int64_t loads = 0;  // batches loaded so far: a recording made for an earlier one is stale
  std::string replay_note;  // why a recording was refused (the loop then ran directly)
  int64_t replays = 0;      // stretches run as replays
  Tensor x0, x, m, v, src, dst, active, loss, dz;
  Tensor k_rows;  // float [batch rows] from k_h; undefined when k_h is empty

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
    f = &plans->get(*net, in);
    ++loads;
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
    k_rows = Tensor();
    if (!k_h.empty()) {
      std::vector<float> k;
      for (int64_t r : rows) k.push_back(k_h[static_cast<size_t>(r)]);
      k_rows = Tensor::from_vector(k, {static_cast<int64_t>(k.size())}, dev);
    }
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
  // Compacts when the rows still searching are compact_at of the batch or fewer: to
  // compact_rows(live) rows, the searching ones and, to fill the bucket, finished ones
  // (inactive rows ride along unchanged). On CUDA the few bucket sizes and their plans are
  // shared by the compactions of every chunk. On the CPU the plan left behind is dropped
  // unless it is the whole chunk's (a chunk's batch only shrinks until the final pass,
  // which takes the chunk's plan): the plans held stay within the chunk's, the current
  // one and the last chunk's last, and a later chunk builds its own, cheap there.
  void maybe_compact(int64_t live) {
    const int64_t n = static_cast<int64_t>(rows.size());
    if (live == 0 || live == n || static_cast<double>(live) > compact_at * n) return;
    const int64_t bucket = compact_rows(live, dev);
    if (bucket >= n) return;
    std::vector<int64_t> keep, ballast;
    for (int64_t r : rows)
      (active_h[static_cast<size_t>(r)] ? keep : ballast).push_back(r);
    for (size_t b = 0; static_cast<int64_t>(keep.size()) < bucket; ++b) keep.push_back(ballast[b]);
    std::sort(keep.begin(), keep.end());  // chunk order, as the rows were
    if (dev.is_cuda() || n == x0_h.dim(0)) return load(keep);
    // CPU, a compaction's plan: dropped before the next is built (load reads none of its
    // buffers), and the blocks it freed given back to the system, not cached: the next
    // plans are smaller and would not reuse them.
    f = nullptr;
    plans->drop(n);
    load(keep);
    CachingAllocator::for_device(dev).empty_cache();
  }
  // The batch size a compaction to `live` searching rows takes. CUDA: the next power of
  // two, at least 8 (a smaller batch saves too little to pay for an algorithm search).
  // CPU: `live` rounded up to a multiple of 4 (an iteration's cost follows its rows).
  static int64_t compact_rows(int64_t live, Device dev) {
    if (!dev.is_cuda()) return (live + 3) / 4 * 4;
    int64_t b = 8;
    while (b < live) b *= 2;
    return b;
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

// IGSM's cycles. An IGSM iteration is a fixed function of the row's point: its start,
// labels, eps and alpha do not change, and at a given batch size a row's values do not
// depend on the batch's other rows. So a row whose point at a check equals its point at an
// earlier check repeats those states forever. The states between were checked (the period
// is a multiple of check_every, so every later check falls on one of them) and none was
// labeled j: the row cannot succeed, and its point after the budget is the one the cycle
// holds then. It stops searching at the first check where its point is that one (within a
// period), recorded as having run the budget: the fingerprint the whole budget gives, bit
// for bit while the batch keeps its size (a compaction, which stopped rows make come
// sooner, changes the rounding of a batch size's kernels, as compaction itself does). A
// point is compared by a 64-bit hash of its bits (ops::row_hash, made on the points' device;
// a false match: about 2^-64 per pair) with its last kWindow checks' points: cycles of up
// to kWindow checks are found.
class CycleWatch {
 public:
  static constexpr int kWindow = 64;
  // rows: the chunk's rows; enabled when the budget ends on a check (iters a multiple of
  // check_every: the point after the budget is then a checked one).
  CycleWatch(int64_t rows, const ExtractOptions& o);
  // At the check of update count u: for each row of the batch still searching (a[w] set),
  // records its point and clears a[w] when that point is the one the budget ends on.
  // Returns the chunk rows it stopped.
  std::vector<int64_t> check(const Search& s, std::vector<int32_t>& a, int64_t u);
  int64_t stopped() const { return stopped_; }

 private:
  struct Row {
    uint64_t hash[kWindow];
    int64_t at[kWindow];
    int count = 0;        // entries filled (the ring's next slot: count % kWindow)
    int64_t stop_at = -1;  // the update count whose point is the budget's; -1: none found
  };
  std::vector<Row> rows_;
  int64_t iters_ = 0;
  bool enabled_ = false;
  int64_t stopped_ = 0;
};

// Each method's search of a loaded chunk (extract_loops.cpp): rows' points in s.x, their
// flags in s.active_h, their iteration counts in s.iterations (CW-L2: s.distance too).
void run_ipguard(Search& s, ExtractProgress& pr,
                 const std::function<void(const ExtractProgress&)>& progress);
void run_igsm(Search& s, ExtractProgress& pr,
              const std::function<void(const ExtractProgress&)>& progress);
void run_cwl2(Search& s, ExtractProgress& pr,
              const std::function<void(const ExtractProgress&)>& progress);

}  // namespace ipg::extract_detail
