// Row-major GEMM on cuBLAS. cuBLAS is column-major, so C = op(A) op(B) is computed as
// C^T = op(B)^T op(A)^T, which needs no transposition of the data. Full FP32 math:
// fingerprints sit at the decision boundary, where TF32's error flips labels.
#include <cublas_v2.h>
#include <limits.h>

#include <initializer_list>
#include <mutex>
#include <string>
#include <unordered_map>

#include "kernels/cuda/check.h"
#include "kernels/cuda/cublas_library.h"
#include "kernels/cuda/gemm.h"

namespace ipg::kernels::cuda {

namespace {

// One cuBLAS handle per stream, created on first use and kept for the process.
cublasHandle_t handle_for(cudaStream_t stream) {
  static std::mutex mu;
  static std::unordered_map<cudaStream_t, cublasHandle_t> handles;
  std::lock_guard<std::mutex> lock(mu);
  auto it = handles.find(stream);
  if (it != handles.end()) return it->second;
  const CublasLibrary& lib = cublas_library();
  cublasHandle_t h = nullptr;
  IPG_CUBLAS_CHECK(lib.create(&h));
  IPG_CUBLAS_CHECK(lib.set_stream(h, stream));
  IPG_CUBLAS_CHECK(lib.set_math_mode(h, CUBLAS_PEDANTIC_MATH));
  handles.emplace(stream, h);
  return h;
}

// The stream's handle, once every size fits cuBLAS's int arguments: one past 2^31 - 1
// must not wrap around silently into the product of other sizes.
cublasHandle_t checked_handle(const char* op, std::initializer_list<int64_t> sizes,
                              cudaStream_t stream) {
  for (const int64_t v : sizes)
    if (v > INT_MAX)
      throw CudaError(std::string(op) + ": a size or leading dimension of " + std::to_string(v) +
                      " exceeds cuBLAS's int range");
  return handle_for(stream);
}

cublasOperation_t op_of(bool trans) { return trans ? CUBLAS_OP_T : CUBLAS_OP_N; }

}  // namespace

void gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float* a,
          int64_t lda, const float* b, int64_t ldb, float beta, float* c, int64_t ldc,
          cudaStream_t stream) {
  if (m == 0 || n == 0) return;
  const cublasHandle_t handle = checked_handle("gemm", {m, n, k, lda, ldb, ldc}, stream);
  IPG_CUBLAS_CHECK(cublas_library().sgemm(
      handle, op_of(trans_b), op_of(trans_a), static_cast<int>(n), static_cast<int>(m),
      static_cast<int>(k), &alpha, b, static_cast<int>(ldb), a, static_cast<int>(lda), &beta, c,
      static_cast<int>(ldc)));
}

void gemm_batched(bool trans_a, bool trans_b, int64_t batch, int64_t m, int64_t n, int64_t k,
                  float alpha, const float* a, int64_t lda, int64_t stride_a, const float* b,
                  int64_t ldb, int64_t stride_b, float beta, float* c, int64_t ldc,
                  int64_t stride_c, cudaStream_t stream) {
  if (m == 0 || n == 0 || batch == 0) return;
  const cublasHandle_t handle =
      checked_handle("gemm_batched", {m, n, k, lda, ldb, ldc, batch}, stream);
  // The same C^T = op(B)^T op(A)^T as gemm, per matrix of the batch.
  IPG_CUBLAS_CHECK(cublas_library().sgemm_strided_batched(
      handle, op_of(trans_b), op_of(trans_a), static_cast<int>(n), static_cast<int>(m),
      static_cast<int>(k), &alpha, b, static_cast<int>(ldb), stride_b, a, static_cast<int>(lda),
      stride_a, &beta, c, static_cast<int>(ldc), stride_c, static_cast<int>(batch)));
}

}  // namespace ipg::kernels::cuda
