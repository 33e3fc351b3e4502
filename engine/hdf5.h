// A small RAII wrapper over the HDF5 C API for model, fingerprint and Keras files and
// golden test data. Every failure (missing, non-HDF5 or truncated file, missing object,
// wrong type or shape, absurd size) throws FileError naming the file and the object
// path; HDF5's own error-stack printing is turned off. Handles are cheap to copy (they
// share one HDF5 identifier). HDF5 serializes calls internally; a handle is not meant to
// be shared between threads while it is in use.
//
// Every file FileWriter commits is sealed (docs/file-integrity.md): a root attribute
// content_sha256 over the canonical content, and an integrity header in the HDF5 user
// block with the SHA-256 of every byte after it, which File checks before libhdf5 parses
// anything. Format readers call check_integrity() once they know the format version.
#pragma once

#include <stdint.h>

#include <functional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "engine/temp_files.h"
#include "engine/tensor.h"

namespace ipg {

// A file that is missing, malformed, or does not hold what the caller expects. The
// message starts with "<file>: <object path>: ".
struct FileError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

namespace h5 {

// Reads refuse datasets and attributes with more elements than these before allocating
// anything: a corrupt or hostile header can claim 10^12 elements.
constexpr int64_t kMaxDatasetElements = int64_t{1} << 32;
constexpr int64_t kMaxAttributeElements = int64_t{1} << 24;
// Link and attribute names longer than this, or holding control bytes, are refused: no
// file of ours has them, and a corrupt header can make libhdf5 hand out garbage names.
constexpr size_t kMaxNameLength = 1024;
// At most this many links per group are listed (a corrupt count can claim billions).
constexpr size_t kMaxLinksPerGroup = 1000000;

// The root attribute holding a sealed file's content digest (64 lowercase hex digits).
constexpr const char* kContentDigestAttr = "content_sha256";
// Bytes at the start of a sealed file reserved for the integrity header (the HDF5 user
// block: HDF5 itself starts at this offset and never reads the block).
constexpr int64_t kIntegrityHeaderSize = 512;

// What File found before the HDF5 superblock, checked before libhdf5 reads the file (a
// user block that is not a well-formed integrity header is refused at open).
enum class ByteSeal {
  None,      // no integrity header: a legacy file, or one ipguard did not write
  Verified,  // an integrity header whose SHA-256 of every later byte matches
};

// A name or path read from a file, fit for an error message: bytes outside printable
// ASCII (and backslash) become \xNN, and more than `max` characters are cut with "...".
std::string printable(const std::string& s, size_t max = 80);

// One-line notices about files that load with a caveat (a legacy format). They go to
// std::cerr unless a sink is installed; tests capture them. Returns the previous sink
// (an empty function means the default).
using NoticeSink = std::function<void(const std::string& line)>;
NoticeSink set_notice_sink(NoticeSink sink);
void notice(const std::string& line);

// How string arrays are stored: variable-length UTF-8 (what h5py writes for str), or
// fixed-length null-padded ASCII (what Keras writes for layer_names / weight_names).
enum class StringLayout { Variable, Fixed };

// One HDF5 identifier with shared ownership (reference counted by HDF5 itself).
class Handle {
 public:
  Handle() = default;
  explicit Handle(int64_t id) : id_(id) {}
  Handle(const Handle& o);
  Handle(Handle&& o) noexcept : id_(o.release()) {}
  // Copy and move assignment both: `o` arrives as a copy or a moved-from handle.
  Handle& operator=(Handle o) noexcept {
    std::swap(id_, o.id_);
    return *this;
  }
  ~Handle();
  int64_t id() const { return id_; }
  bool valid() const { return id_ >= 0; }
  void reset();
  // Gives up ownership without closing (the caller closes the identifier itself).
  int64_t release() {
    const int64_t id = id_;
    id_ = -1;
    return id;
  }

 private:
  int64_t id_ = -1;
};

// A group or dataset: anything that carries attributes. Attribute reads convert
// between numeric widths (HDF5 does it) but never between strings and numbers.
class Object {
 public:
  // The file as the caller named it (a writer's final path, not its temp file).
  const std::string& file() const { return file_; }
  // Absolute path inside the file, e.g. "/params/conv1/weight".
  const std::string& path() const { return path_; }

  bool has_attr(const std::string& name) const;
  std::vector<std::string> attr_names() const;  // in name order

  // A scalar or one-element string attribute, fixed- or variable-length.
  std::string attr_string(const std::string& name) const;
  // A string attribute of any rank, flattened; a scalar gives one element. An empty
  // attribute of any type is an empty list (Keras stores [] as an empty float64 array).
  std::vector<std::string> attr_strings(const std::string& name) const;
  // attr_strings(name), or when absent the concatenation of name0, name1, ... as Keras
  // writes lists too long for one attribute header; throws when neither exists.
  std::vector<std::string> attr_strings_chunked(const std::string& name) const;
  // Scalar or one-element numeric attributes.
  int64_t attr_int(const std::string& name) const;
  double attr_double(const std::string& name) const;
  // A numeric attribute of any rank, flattened.
  std::vector<float> attr_floats(const std::string& name) const;

  // Strict reads for the attributes of our own formats: the stored class must be exactly
  // integer, float or string (no conversion between them) and the dataspace a scalar, as
  // our writers and h5py store one value; a vector must be 1-D with exactly `n`
  // elements. Anything else throws FileError naming the attribute and what it holds.
  int64_t scalar_int(const std::string& name) const;
  double scalar_float(const std::string& name) const;
  std::string scalar_string(const std::string& name) const;
  std::vector<float> float_vector(const std::string& name, int64_t n) const;

  // Writers replace an attribute of the same name. A single string is stored as a
  // variable-length UTF-8 scalar, as h5py stores a Python str.
  void set_attr_string(const std::string& name, const std::string& value);
  void set_attr_strings(const std::string& name, const std::vector<std::string>& values,
                        StringLayout layout = StringLayout::Variable);
  void set_attr_int(const std::string& name, int64_t value);
  void set_attr_double(const std::string& name, double value);
  void set_attr_floats(const std::string& name, const std::vector<float>& values);

  int64_t id() const { return handle_.id(); }

 protected:
  Object(Handle handle, std::string file, std::string path)
      : handle_(std::move(handle)), file_(std::move(file)), path_(std::move(path)) {}
  // "<file>: <path>: what" for messages about this object or a child named `child`.
  std::string where(const std::string& child = "") const;
  std::string child_path(const std::string& name) const;

  Handle handle_;
  std::string file_;
  std::string path_;
};

// A dataset. Float32 and int32 tensors are stored with their shape; a tensor of shape
// [] is a scalar dataset.
class Dataset : public Object {
 public:
  // Dimensions as stored, without reading the data.
  Shape shape() const;
  // "float32", "int32", "float64", "uint8", "string", ...
  std::string type_name() const;
  // The data as a CPU tensor. Throws unless the stored type is exactly `dtype` (any byte
  // order); the message reports the type and shape found.
  Tensor read(DType dtype) const;
  // Also checks the shape, reporting both shapes on a mismatch.
  Tensor read(DType dtype, const Shape& expected) const;
  // Any integer or float dataset converted to float32 (uint8 images, float64 arrays).
  std::vector<float> read_floats(Shape* shape = nullptr) const;

 private:
  friend class Group;
  using Object::Object;
};

class Group : public Object {
 public:
  // Whether a link `name` (may contain '/') resolves to an object; false when any
  // intermediate group is missing.
  bool exists(const std::string& name) const;
  bool is_group(const std::string& name) const;
  bool is_dataset(const std::string& name) const;
  // Names of the direct children, in name order. Names longer than kMaxNameLength or
  // holding control bytes, and more than kMaxLinksPerGroup links, throw FileError.
  std::vector<std::string> children() const;

  Group group(const std::string& name) const;
  Dataset dataset(const std::string& name) const;
  // Creates the group and any missing intermediate groups; an existing group is opened.
  Group create_group(const std::string& name);
  // Writes a float32 or int32 tensor (from any device) as dataset `name`, creating
  // intermediate groups; throws if `name` exists.
  Dataset write(const std::string& name, const Tensor& t);

 protected:
  friend class File;
  friend class FileWriter;
  using Object::Object;
};

// An HDF5 file opened read-only; the object is its root group.
class File : public Group {
 public:
  // Throws FileError when the file is missing, not HDF5, or truncated, and when it has
  // an integrity header that its bytes do not match ("content digest mismatch"): then
  // libhdf5 never parses it.
  explicit File(const std::string& path);
  ByteSeal byte_seal() const { return seal_; }

 private:
  File(const std::string& path, std::pair<Handle, ByteSeal> opened);
  ByteSeal seal_;
};

// SHA-256 (hex) of the canonical serialization of everything in the file but the root
// attribute content_sha256 (docs/file-integrity.md): depth first from the root, links in
// name order; per group its path and attributes, per dataset its path, type, shape and
// values, per attribute its object, name, type, shape and value. Byte order, layout,
// chunking, compression and timestamps are not part of it. Only hard links to groups and
// datasets of integer, float or string types occur in our files: anything else (soft or
// external links, an object linked twice, other types) throws FileError.
std::string content_digest(const File& f);

// The integrity check of our file formats, called by a reader once it has read the
// format version (versions >= 2 are sealed): a verified integrity header (with a
// well-formed content_sha256), or else a content_sha256 that matches content_digest()
// and no damaged header.
// A version-1 file with neither loads after one notice line "notice: <file> has no
// integrity digest (format 1); <resave_hint>". Otherwise throws FileError "<file>:
// content digest mismatch (corrupted or modified)" or says what is missing.
void check_integrity(const File& f, int64_t version, const std::string& resave_hint);

// Creates an HDF5 file that appears at `path` only on commit(): writes go to
// "<path>.tmp-<pid>", commit() closes it (flushing everything), seals it and renames it
// over `path`. A writer destroyed without commit() deletes the temp file, so a crash or
// an exception never leaves a half-written output. The object is the root group; groups
// and datasets opened from it are closed by commit().
//
// Sealing reads the temp file back: its content digest becomes the root attribute
// content_sha256, then the SHA-256 of its bytes goes into the integrity header. A file
// whose content cannot be read back (a dataset declared but never written, a link
// elsewhere) fails commit(). Unsealed is for tests and fuzzers that must write such
// files: they carry no digest, as legacy files do.
enum class Sealing { Sealed, Unsealed };

class FileWriter : public Group {
 public:
  explicit FileWriter(const std::string& path, Sealing sealing = Sealing::Sealed);
  ~FileWriter();
  FileWriter(const FileWriter&) = delete;
  FileWriter& operator=(const FileWriter&) = delete;
  void commit();
  const std::string& temp_path() const { return temp_path_; }

 private:
  // Closes everything in the temp file; false when HDF5 could not flush it.
  bool close_file();
  Handle file_id_;
  std::string temp_path_;
  TempFileGuard temp_guard_;  // removed if a signal stops the process mid-write
  Sealing sealing_;
  bool done_ = false;
};

// Seals a closed HDF5 file at `path` in place, as commit() does (`display` names it in
// messages). The integrity header is written only when the file was created with a user
// block of kIntegrityHeaderSize bytes; otherwise it gets the content_sha256 attribute
// only. For FileWriter and for fuzzers building files through the C API.
void seal_file(const std::string& path, const std::string& display);

}  // namespace h5
}  // namespace ipg
