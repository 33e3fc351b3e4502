// experiment over the ranks (mpi_run.h): the unit is one batch group of settings (one setting
// unless --share-batch groups them: batch_groups), its extraction and every suspect's
// matching rate (labeling the suspects costs far less than the extraction, so a finer split
// would only add messages); rank 0 keeps the record in planned order.
#include <omp.h>

#include <mutex>
#include <optional>

#include "fingerprint/experiment_results.h"
#include "tools/ipguard/mpi_codec.h"
#include "tools/ipguard/mpi_queue.h"
#include "tools/ipguard/mpi_run.h"

namespace ipg::cli {

std::vector<std::string> run_recorded_on_ranks(
    Communicator& comm, ExperimentRecord& rec, LoadedZoo& zoo, const Tensor* train_images,
    Device device, const ResultsFolder* folder,
    const std::function<void(const ExperimentProgress&)>& progress) {
  if (!comm.distributed())
    return run_recorded(rec, zoo, train_images, device, folder, progress);
  const std::vector<Setting>& planned = rec.planned;
  std::vector<std::optional<SettingResult>> results(planned.size());
  std::mutex progress_mu;  // rank 0 reports from its own work and from its serving thread
  auto report = [&](const ExperimentProgress& e) {
    std::lock_guard<std::mutex> lock(progress_mu);
    if (progress) progress(e);
  };
  auto done_event = [&](size_t i) {
    ExperimentProgress e;
    e.phase = ExperimentProgress::Phase::Done;
    e.setting = i;
    e.settings = planned.size();
    e.current = &planned[i];
    e.result = &*results[i];
    report(e);
  };
  // The record as one process has it after the same settings: results in planned order.
  auto write = [&] {
    rec.results.clear();
    for (const auto& r : results)
      if (r) rec.results.push_back(*r);
    if (folder) folder->write(rec);
  };

  // Every rank groups the same settings (rank 0 tells the others which ones are left).
  std::vector<int64_t> left;
  if (comm.rank() == 0) {
    for (size_t i = 0; i < planned.size(); ++i) {
      std::optional<SettingResult> old = folder ? folder->reusable(planned[i]) : std::nullopt;
      if (!old) {
        left.push_back(static_cast<int64_t>(i));
        continue;
      }
      old->resumed = true;
      results[i] = std::move(old);
      done_event(i);
    }
    write();
  }
  {
    ByteWriter w;
    w.put_vector(left);
    left = ByteReader(comm.broadcast(w.bytes(), kTagBroadcast)).get_vector<int64_t>();
  }
  const std::vector<std::vector<size_t>> groups =
      batch_groups(planned, std::vector<size_t>(left.begin(), left.end()), rec.options);
  std::vector<int64_t> todo;
  if (comm.rank() == 0)
    for (size_t g = 0; g < groups.size(); ++g) todo.push_back(static_cast<int64_t>(g));
  QueueCallbacks cb;
  cb.work = [&](int64_t item) {
    const std::vector<size_t>& g = groups[static_cast<size_t>(item)];
    std::vector<Fingerprint> fps;
    std::vector<SettingResult> rs =
        run_settings(zoo, planned, g, rec.options, train_images, device, fps, report);
    for (SettingResult& r : rs) r.threads = omp_get_max_threads();  // what this rank timed with
    ByteWriter w;
    for (size_t m = 0; m < g.size(); ++m) {
      w.put_string(setting_result_text(rs[m]));
      w.put_string(encode_fingerprint(fps[m]));
    }
    return w.bytes();
  };
  cb.done = [&](int64_t item, int, const std::string& bytes) {
    ByteReader r(bytes);
    for (size_t i : groups[static_cast<size_t>(item)]) {
      SettingResult result = parse_setting_result(r.get_string());
      const Fingerprint fp = decode_fingerprint(r.get_string());
      if (folder) folder->save_fingerprint_of(result, fp);
      results[i] = std::move(result);
      write();  // after every setting: an interrupted run resumes here
      done_event(i);
    }
  };
  cb.describe = [&](int64_t item) {
    std::string out;
    for (size_t i : groups[static_cast<size_t>(item)])
      out += (out.empty() ? "setting " : ", ") + setting_label(planned[i]);
    return out;
  };
  run_queue(comm, todo, cb);
  if (comm.rank() != 0 || !folder) return {};
  std::vector<std::string> removed = folder->remove_stale_fingerprints(rec);
  folder->write(rec);
  return removed;
}

}  // namespace ipg::cli
