// Loads cuBLAS on first use (cublas_library.h). Host code only.
#include "kernels/cuda/cublas_library.h"

#include <dlfcn.h>

#include <string>

#include "kernels/cuda/check.h"

namespace ipg::kernels::cuda {

namespace {

#define IPG_STR2(x) #x
#define IPG_STR(x) IPG_STR2(x)
constexpr const char* kSoname = "libcublas.so." IPG_STR(CUBLAS_VER_MAJOR);

// The folder of the libcudart this process has loaded ("" when it cannot be told).
std::string cudart_folder() {
  Dl_info info{};
  if (dladdr(reinterpret_cast<void*>(&cudaGetErrorString), &info) == 0 || !info.dli_fname)
    return "";
  const std::string path = info.dli_fname;
  const size_t slash = path.rfind('/');
  return slash == std::string::npos ? "" : path.substr(0, slash);
}

template <typename F>
void resolve(void* lib, const char* name, F* out) {
  dlerror();  // clears an earlier error, so the one read below is dlsym's
  void* sym = dlsym(lib, name);
  if (!sym) {
    const char* e = dlerror();
    throw CudaError(std::string("cuBLAS: ") + (e ? e : name) +
                    " (a cuBLAS older than the headers ipguard was built with?)");
  }
  *out = reinterpret_cast<F>(sym);
}

CublasLibrary load() {
  // RTLD_LOCAL: its symbols serve only this table; RTLD_NOW: a missing dependency
  // (libcublasLt) is reported here, not as a crash at the first GEMM.
  void* lib = dlopen(kSoname, RTLD_NOW | RTLD_LOCAL);
  std::string why = lib ? "" : dlerror();
  if (!lib) {
    const std::string folder = cudart_folder();
    if (!folder.empty()) {
      lib = dlopen((folder + "/" + kSoname).c_str(), RTLD_NOW | RTLD_LOCAL);
      if (!lib) why += std::string("; beside libcudart: ") + dlerror();
    }
  }
  if (!lib)
    throw CudaError(std::string("cannot load cuBLAS (") + why +
                    "): install it with the CUDA toolkit or point LD_LIBRARY_PATH at it");
  // Never closed: handles made from it live as long as the process.
  CublasLibrary t{};
  resolve(lib, "cublasCreate_v2", &t.create);
  resolve(lib, "cublasSetStream_v2", &t.set_stream);
  resolve(lib, "cublasSetMathMode", &t.set_math_mode);
  resolve(lib, "cublasSgemm_v2", &t.sgemm);
  resolve(lib, "cublasSgemmStridedBatched", &t.sgemm_strided_batched);
  resolve(lib, "cublasGetProperty", &t.get_property);
  return t;
}

}  // namespace

const CublasLibrary& cublas_library() {
  // A failed load throws out of the initializer, so the next call tries again.
  static const CublasLibrary library = load();
  return library;
}

const char* cublas_soname() { return kSoname; }

}  // namespace ipg::kernels::cuda
