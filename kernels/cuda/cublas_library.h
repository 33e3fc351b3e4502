// cuBLAS, loaded when first used instead of when the process starts.
//
// Linked normally, libcublas pulls in libcublasLt, whose static initializers cost every
// process about 0.3 s before main() (perf on `ipguard --version`: 38% of its samples in
// libcublasLt, most of the rest page faults it causes), though most commands never touch
// a GPU and the GPU ones use cuBLAS only for linear layers. So cuBLAS is opened with
// dlopen the first time a GEMM runs on CUDA, and its few entry points are called through
// this table. The declarations come from cublas_v2.h, so a changed signature is a compile
// error, not a crash.
#pragma once

#include <cublas_v2.h>

namespace ipg::kernels::cuda {

struct CublasLibrary {
  decltype(&::cublasCreate_v2) create;
  decltype(&::cublasSetStream_v2) set_stream;
  decltype(&::cublasSetMathMode) set_math_mode;
  decltype(&::cublasSgemm_v2) sgemm;
  decltype(&::cublasSgemmStridedBatched) sgemm_strided_batched;
  decltype(&::cublasGetProperty) get_property;
};

// The loaded library, opened once per process (thread-safe). Throws ipg::CudaError naming
// the library and the loader's reason when it cannot be opened or lacks an entry point.
// Searched as the dynamic loader searches (LD_LIBRARY_PATH, our RUNPATH, ld.so.cache),
// then beside the libcudart this process uses, where the toolkit installs it.
const CublasLibrary& cublas_library();

// The file name tried first: libcublas.so.<major> of the headers we were built with.
const char* cublas_soname();

}  // namespace ipg::kernels::cuda
