// A zoo folder's manifest.json: which file is which suspect, how it was made, and the
// SHA-256 of every file and of the manifest itself, so that a reader can tell a changed
// or swapped file from the one the zoo made. The folder (shared by `ipguard zoo`, which
// writes it, and `ipguard experiment`, which reads it):
//   DIR/target.h5           the protected network (a bit-identical copy of --target)
//   DIR/positive/NAME.h5    post-processed copies (ftll, ftal, rtll, rtal, wp-P, fp-C)
//   DIR/negative/NAME.h5    independently trained models (any architecture, forests)
//   DIR/adaptive/NAME.h5    extractions of the target (distillation, label-only), reported
//                           apart from positives and negatives
//   DIR/manifest.json       {"format": "ipguard-zoo", "version": 1, "models": [...],
//                            "sweeps": [...], "sha256": "..."}
// Each model: file, group (target|positive|negative|adaptive), kind (network|forest),
// arch, parent ("target.h5" or null), attack (target|ftll|ftal|rtll|rtal|wp|fp|
// independent|distill|label-only), param (WP's p, FP's c, or null), seed, accuracy (test
// split), sha256 (of the file's bytes), command (the equivalent single command),
// duplicate_of (null, or the file of an earlier model with identical weights: this one's
// file is then not kept, its sha256 is that of the bytes it was written with, and readers
// count it once), weights_sha256 (models/recipe.h weights_sha256) and same_outputs_as.
// "sha256" at the top is the SHA-256 of the compact JSON text (nlohmann dump(), no
// indent, keys sorted) of the object without that key. The file is written indented, to a
// temporary name renamed over the old one.
// Each sweep (WP, FP): the values kept and the first value whose accuracy loss exceeded
// the limit (not kept: no file), with its accuracy and command.
#pragma once

#include <optional>
#include <string>
#include <vector>

namespace ipg {

constexpr const char* kZooFormat = "ipguard-zoo";
constexpr int kZooVersion = 1;

struct ZooEntry {
  std::string file;   // relative to the zoo folder, e.g. "positive/wp-0.2.h5"
  std::string group;  // target | positive | negative | adaptive
  std::string kind;   // network | forest
  std::string arch;
  std::string parent;  // "" -> null
  std::string attack;
  std::optional<double> param;
  std::optional<int64_t> seed;
  double accuracy = -1;
  std::string sha256;
  std::string command;
  std::string duplicate_of;  // "" -> null
  std::string weights_sha256;
  // "" -> null; else an earlier kept network whose weights differ from this one's but
  // whose logits on every test image are the same, bit for bit (e.g. FP c = 1/16 and 2/16
  // of a LeNet-5 whose second pruned filter was dead on the training images). Both are
  // kept: off the data (where fingerprints lie) the differing weights may still act.
  std::string same_outputs_as;
};

struct ZooSweep {
  std::string attack;  // wp | fp
  double target_accuracy = 0;
  double max_accuracy_loss = 0.03;
  std::vector<double> kept;
  std::optional<double> stopped_at;  // none: every value was kept
  double stop_accuracy = -1;
  std::string stop_command;
};

struct ZooManifest {
  std::vector<ZooEntry> models;
  std::vector<ZooSweep> sweeps;
  const ZooEntry* find(const std::string& file) const;
};

// The file's text (indented JSON, its "sha256" filled in).
std::string manifest_text(const ZooManifest& m);
// SHA-256 hex of the compact dump of the manifest object without its "sha256" key.
std::string manifest_sha256(const ZooManifest& m);
// Writes manifest_text to `path` through a temporary file in the same folder and a rename.
void write_manifest(const ZooManifest& m, const std::string& path);
// Parses and checks a manifest: JSON, format, version, every field's type, and its
// sha256. Throws FileError naming the file ("<path>: manifest checksum mismatch (...)").
ZooManifest read_manifest(const std::string& path);
// Every kept file (duplicate_of null) exists under `dir` and has its listed sha256;
// FileError naming the first that does not ("<dir>/positive/ftll.h5: sha256 ... , the
// manifest lists ...").
void verify_zoo_files(const std::string& dir, const ZooManifest& m);

}  // namespace ipg
