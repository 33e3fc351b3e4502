// Message bytes (mpi_codec.h).
#include "tools/ipguard/mpi_codec.h"

#include <algorithm>
#include <cstring>
#include <stdexcept>

namespace ipg::cli {

void ByteWriter::put_string(const std::string& s) {
  put<uint64_t>(s.size());
  bytes_ += s;
}

std::string ByteReader::get_string() {
  const uint64_t n = get<uint64_t>();
  if (n > bytes_.size() - at_) short_message();
  std::string s = bytes_.substr(at_, n);
  at_ += n;
  return s;
}

void ByteReader::take(void* to, size_t n) {
  if (n > bytes_.size() - at_) short_message();
  std::memcpy(to, bytes_.data() + at_, n);
  at_ += n;
}

void ByteReader::short_message() const {
  throw std::runtime_error("MPI: a message between ranks is shorter than its contents");
}

namespace {

template <class T>
std::vector<T> slice(const std::vector<T>& v, int64_t first, int64_t rows) {
  return std::vector<T>(v.begin() + first, v.begin() + first + rows);
}

template <class T>
void place(std::vector<T>& to, const std::vector<T>& from, int64_t first) {
  if (first < 0 || first + static_cast<int64_t>(from.size()) > static_cast<int64_t>(to.size()))
    throw std::runtime_error("MPI: rows of a fingerprint outside it");
  std::copy(from.begin(), from.end(), to.begin() + first);
}

}  // namespace

std::string encode_rows(const Fingerprint& fp, int64_t first, int64_t rows) {
  const int64_t per = fp.points.numel() / std::max<int64_t>(1, fp.size());
  ByteWriter w;
  w.put(first);
  w.put(rows);
  w.put_vector(std::vector<float>(fp.points.data() + first * per, fp.points.data() + (first + rows) * per));
  w.put_vector(slice(fp.labels.to_vector_i32(), first, rows));
  w.put_vector(slice(fp.source, first, rows));
  w.put_vector(slice(fp.target, first, rows));
  w.put_vector(slice(fp.iterations, first, rows));
  w.put_vector(slice(fp.final_loss, first, rows));
  w.put_vector(slice(fp.converged, first, rows));
  return w.bytes();
}

void decode_rows_into(const std::string& bytes, Fingerprint& to) {
  ByteReader r(bytes);
  const int64_t first = r.get<int64_t>(), rows = r.get<int64_t>();
  const int64_t per = to.points.numel() / std::max<int64_t>(1, to.size());
  const std::vector<float> points = r.get_vector<float>();
  if (first < 0 || rows < 0 || first + rows > to.size() ||
      static_cast<int64_t>(points.size()) != rows * per)
    throw std::runtime_error("MPI: rows of a fingerprint outside it");
  std::copy(points.begin(), points.end(), to.points.data() + first * per);
  std::vector<int32_t> labels = to.labels.to_vector_i32();
  place(labels, r.get_vector<int32_t>(), first);
  to.labels = Tensor::from_vector_i32(labels, {to.size()});
  place(to.source, r.get_vector<int32_t>(), first);
  place(to.target, r.get_vector<int32_t>(), first);
  place(to.iterations, r.get_vector<int32_t>(), first);
  place(to.final_loss, r.get_vector<float>(), first);
  place(to.converged, r.get_vector<uint8_t>(), first);
}

std::string encode_fingerprint(const Fingerprint& fp) {
  ByteWriter w;
  w.put_string(fp.method);
  w.put(fp.params.k);
  w.put(fp.params.lr);
  w.put(fp.params.iters);
  w.put(fp.params.eps);
  w.put_string(fp.params.init);
  w.put_string(fp.params.target);
  w.put(fp.seed);
  w.put_string(fp.model_sha256);
  w.put_string(fp.arch);
  w.put_string(fp.created);
  w.put_vector(fp.points.shape());
  w.put_vector(fp.points.to_vector());
  w.put_vector(fp.labels.to_vector_i32());
  w.put_vector(fp.source);
  w.put_vector(fp.target);
  w.put_vector(fp.iterations);
  w.put_vector(fp.final_loss);
  w.put_vector(fp.converged);
  return w.bytes();
}

Fingerprint decode_fingerprint(const std::string& bytes) {
  ByteReader r(bytes);
  Fingerprint fp;
  fp.method = r.get_string();
  fp.params.k = r.get<double>();
  fp.params.lr = r.get<double>();
  fp.params.iters = r.get<int64_t>();
  fp.params.eps = r.get<double>();
  fp.params.init = r.get_string();
  fp.params.target = r.get_string();
  fp.seed = r.get<uint64_t>();
  fp.model_sha256 = r.get_string();
  fp.arch = r.get_string();
  fp.created = r.get_string();
  const Shape shape = r.get_vector<int64_t>();
  const std::vector<float> points = r.get_vector<float>();
  const std::vector<int32_t> labels = r.get_vector<int32_t>();
  if (shape.empty() || static_cast<int64_t>(points.size()) != shape_numel(shape) ||
      static_cast<int64_t>(labels.size()) != shape[0])
    throw std::runtime_error("MPI: a fingerprint message whose sizes disagree");
  fp.points = Tensor::from_vector(points, shape);
  fp.labels = Tensor::from_vector_i32(labels, {shape[0]});
  fp.source = r.get_vector<int32_t>();
  fp.target = r.get_vector<int32_t>();
  fp.iterations = r.get_vector<int32_t>();
  fp.final_loss = r.get_vector<float>();
  fp.converged = r.get_vector<uint8_t>();
  return fp;
}

}  // namespace ipg::cli
