// Bytes for the messages between ranks (mpi_queue.h): a writer and a reader of plain
// values, and a fingerprint (every field, bit for bit) or a row range of one. Both ends are
// the same build on the same kind of machine (one byte order): no conversion.
#pragma once

#include <stdint.h>

#include <string>
#include <vector>

#include "fingerprint/fingerprint_file.h"

namespace ipg::cli {

class ByteWriter {
 public:
  template <class T>
  void put(const T& v) {
    bytes_.append(reinterpret_cast<const char*>(&v), sizeof v);
  }
  void put_string(const std::string& s);
  template <class T>
  void put_vector(const std::vector<T>& v) {
    put<uint64_t>(v.size());
    bytes_.append(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(T));
  }
  const std::string& bytes() const { return bytes_; }

 private:
  std::string bytes_;
};

// Throws std::runtime_error on a message shorter than what is read from it.
class ByteReader {
 public:
  explicit ByteReader(const std::string& bytes) : bytes_(bytes) {}
  template <class T>
  T get() {
    T v;
    take(&v, sizeof v);
    return v;
  }
  std::string get_string();
  template <class T>
  std::vector<T> get_vector() {
    const uint64_t n = get<uint64_t>();
    if (n > (bytes_.size() - at_) / sizeof(T)) short_message();
    std::vector<T> v(n);
    take(v.data(), n * sizeof(T));
    return v;
  }

 private:
  void take(void* to, size_t n);
  [[noreturn]] void short_message() const;
  const std::string& bytes_;
  size_t at_ = 0;
};

// Rows [first, first + rows) of fp: points, labels and the per-candidate fields.
std::string encode_rows(const Fingerprint& fp, int64_t first, int64_t rows);
// Writes rows encoded by encode_rows into `to` (same shape) at the rows they came from.
void decode_rows_into(const std::string& bytes, Fingerprint& to);
// A whole fingerprint, and back.
std::string encode_fingerprint(const Fingerprint& fp);
Fingerprint decode_fingerprint(const std::string& bytes);

}  // namespace ipg::cli
