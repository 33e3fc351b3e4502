// extract over the ranks (mpi_run.h): chunks are the unit (a chunk's rows depend on the
// seed and the chunk alone, extract.h), handed out by the work queue; rank 0 puts the rows
// back where one process would have them.
#include <string>

#include "tools/ipguard/mpi_codec.h"
#include "tools/ipguard/mpi_queue.h"
#include "tools/ipguard/mpi_run.h"

namespace ipg::cli {

Fingerprint extract_on_ranks(Communicator& comm, Network& net, const ExtractOptions& options,
                             const Tensor* train_images,
                             const std::function<void(const ExtractProgress&)>& progress) {
  if (!comm.distributed()) return extract_fingerprint(net, options, train_images, progress);
  ExtractOptions o = options;
  // One chunk size for all (auto_batch reads each device's free memory): rank 0's.
  if (o.batch == 0) o.batch = auto_batch(net, o.n);
  ByteWriter w;
  w.put(o.batch);
  o.batch = ByteReader(comm.broadcast(w.bytes(), kTagBroadcast)).get<int64_t>();
  std::vector<int64_t> firsts;
  for (int64_t first = 0; first < o.n; first += o.batch) firsts.push_back(first);
  std::vector<int64_t> items;
  for (size_t i = 0; i < firsts.size(); ++i) items.push_back(static_cast<int64_t>(i));

  // Rank 0's skeleton: every field but the searched rows (no chunk runs).
  Fingerprint whole;
  if (comm.rank() == 0)
    whole = extract_fingerprint(net, o, train_images, {}, [](int64_t, int64_t) { return false; });
  QueueCallbacks cb;
  cb.work = [&](int64_t item) {
    const int64_t first = firsts[static_cast<size_t>(item)];
    const int64_t rows = std::min(o.batch, o.n - first);
    const Fingerprint part = extract_fingerprint(
        net, o, train_images, progress, [first](int64_t f, int64_t) { return f == first; });
    return encode_rows(part, first, rows);
  };
  cb.done = [&](int64_t, int, const std::string& rows) { decode_rows_into(rows, whole); };
  cb.describe = [&](int64_t item) {
    const int64_t first = firsts[static_cast<size_t>(item)];
    return "candidates " + std::to_string(first) + "-" +
           std::to_string(std::min(o.n, first + o.batch) - 1);
  };
  run_queue(comm, items, cb);
  return whole;
}

}  // namespace ipg::cli
