// Reading a zoo folder for the experiment (the contract shared with `ipguard zoo`, which
// writes it):
//   DIR/target.h5          the protected network
//   DIR/positive/NAME.h5   post-processed copies of it
//   DIR/negative/NAME.h5   independently trained models (any architecture, forests)
//   DIR/adaptive/NAME.h5   optional: distillations and label-only extractions of the
//                          target, reported apart from positives and negatives
//   DIR/manifest.json      optional: {"format": "ipguard-zoo", "version": 1, "models":
//                          [{"file", "group", "sha256", "duplicate_of", ...}], "sha256"}
// With a manifest, it decides: it is read by models/zoo_manifest.h (every field's type and
// its own sha256, the SHA-256 of the compact dump of the object without that key), the
// target's sha256 is checked (a mismatch is fatal), every other listed file's sha256 is
// checked, groups come from it, and a model listed as a duplicate of another is counted
// once (its file is not kept). Without one, the folder layout decides.
#pragma once

#include <string>
#include <vector>

namespace ipg {

enum class SuspectGroup { Positive, Negative, Adaptive };
const char* group_name(SuspectGroup g);  // "positive" | "negative" | "adaptive"

struct ZooModel {
  std::string file;  // relative to the zoo folder, e.g. "positive/ftll.h5"
  std::string path;  // the folder joined with `file`
  std::string name;  // the file's stem, e.g. "ftll"
  SuspectGroup group = SuspectGroup::Positive;  // unused for the target
  std::string sha256;                           // of the file's bytes
};

// A suspect the experiment cannot use (missing, checksum mismatch, unloadable): reported,
// and the rest are evaluated without it.
struct ZooProblem {
  std::string file;
  std::string reason;
};

struct ZooDuplicate {
  std::string file, duplicate_of;
  SuspectGroup group = SuspectGroup::Positive;
};

struct Zoo {
  std::string dir;
  ZooModel target;
  std::vector<ZooModel> suspects;  // positives, negatives, adaptive; by file name in a group
  std::vector<ZooDuplicate> duplicates;  // manifest entries whose file is not kept
  std::vector<std::string> unlisted;     // .h5 files in the group folders the manifest omits
  std::vector<ZooProblem> problems;
  std::string manifest_sha256;  // the manifest's own sha256; "" without one
  // SHA-256 over every model's group, file and sha256: what a resumed run must match.
  std::string identity;
  std::vector<const ZooModel*> group(SuspectGroup g) const;
};

// Lists and checks a zoo folder. Throws std::invalid_argument naming the folder or file for
// a bad zoo: not a folder, no target.h5, a manifest that is not valid JSON, not of this
// format, or whose sha256 or target sha256 mismatches, no positive or no negative suspect.
// A suspect file that is missing or mismatches its listed sha256 goes to `problems`.
Zoo scan_zoo(const std::string& dir);

}  // namespace ipg
