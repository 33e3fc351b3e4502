// A small RAII wrapper over the HDF5 C API for model, fingerprint and Keras files and
// golden test data. Every failure (missing, non-HDF5 or truncated file, missing object,
// wrong type or shape, absurd size) throws FileError naming the file and the object
// path; HDF5's own error-stack printing is turned off. Handles are cheap to copy (they
// share one HDF5 identifier). HDF5 serializes calls internally; a handle is not meant to
// be shared between threads while it is in use.
#pragma once

#include <stdint.h>

#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

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
  // Names of the direct children, in name order.
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
  // Throws FileError when the file is missing, not HDF5, or truncated.
  explicit File(const std::string& path);
};

// Creates an HDF5 file that appears at `path` only on commit(): writes go to
// "<path>.tmp-<pid>", commit() closes it (flushing everything) and renames it over
// `path`. A writer destroyed without commit() deletes the temp file, so a crash or an
// exception never leaves a half-written output. The object is the root group; groups
// and datasets opened from it are closed by commit().
class FileWriter : public Group {
 public:
  explicit FileWriter(const std::string& path);
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
  bool done_ = false;
};

}  // namespace h5
}  // namespace ipg
