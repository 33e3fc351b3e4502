// cuBLAS opened on first use (kernels/cuda/cublas_library.h): the library named by the
// headers we were built with loads and exports every entry point the table holds. Needs
// no GPU (loading and asking the version touch no device), only a CUDA build; that
// ordinary commands do not load it at all is cli_smoke's check (LD_DEBUG).
#include <gtest/gtest.h>

#include <string>
#if IPG_HAS_CUDA
#include "kernels/cuda/cublas_library.h"
#endif

namespace ipg {
namespace {

#if IPG_HAS_CUDA
TEST(CublasLibrary, LoadsWithEveryEntryPointAndTheHeadersMajorVersion) {
  const auto& lib = kernels::cuda::cublas_library();
  EXPECT_NE(lib.create, nullptr);
  EXPECT_NE(lib.set_stream, nullptr);
  EXPECT_NE(lib.set_math_mode, nullptr);
  EXPECT_NE(lib.sgemm, nullptr);
  ASSERT_NE(lib.get_property, nullptr);
  int major = -1;
  ASSERT_EQ(lib.get_property(MAJOR_VERSION, &major), CUBLAS_STATUS_SUCCESS);
  EXPECT_EQ(major, CUBLAS_VER_MAJOR) << kernels::cuda::cublas_soname();
  // Opened once: the same table every time.
  EXPECT_EQ(&kernels::cuda::cublas_library(), &lib);
}
#else
TEST(CublasLibrary, LoadsWithEveryEntryPointAndTheHeadersMajorVersion) {
  GTEST_SKIP() << "built without CUDA";
}
#endif

}  // namespace
}  // namespace ipg
