// Device parsing, --device resolution, and mixing devices as a clear error.
#include <gtest/gtest.h>

#include <sstream>

#include "engine/device.h"
#include "engine/error.h"
#include "engine/ops/elementwise.h"
#include "tests/support/parity.h"

namespace ipg {
namespace {

TEST(Device, ParseAndPrint) {
  EXPECT_EQ(Device::parse("cpu"), Device::cpu());
  EXPECT_EQ(Device::parse("cuda"), Device::cuda(0));
  EXPECT_EQ(Device::parse("cuda:3"), Device::cuda(3));
  EXPECT_EQ(Device::cuda(2).str(), "cuda:2");
  for (const char* bad : {"gpu", "cuda:", "cuda:x", "cuda:-1", "cuda:1x", ""})
    EXPECT_THROW(Device::parse(bad), std::invalid_argument) << bad;
}

TEST(Device, AutoFallsBackToCpuWithOneNoticeInACudaBuild) {
  std::ostringstream notice;
  const Device d = resolve_device("auto", &notice);
  if (cuda_available()) {
    EXPECT_TRUE(d.is_cuda());
    EXPECT_EQ(notice.str(), "");
  } else if (!cuda_built()) {  // a CPU-only build: the CPU is what was built for
    EXPECT_TRUE(d.is_cpu());
    EXPECT_EQ(notice.str(), "");
  } else {
    EXPECT_TRUE(d.is_cpu());
    const std::string s = notice.str();
    EXPECT_NE(s.find("running on CPU"), std::string::npos);
    EXPECT_EQ(std::count(s.begin(), s.end(), '\n'), 1);
  }
}

TEST(Device, AskingForAnAbsentDeviceIsAClearError) {
  if (cuda_available()) GTEST_SKIP() << "a GPU is present";
  try {
    resolve_device("cuda", nullptr);
    FAIL() << "expected DeviceError";
  } catch (const DeviceError& e) {
    EXPECT_NE(std::string(e.what()).find("CUDA not available"), std::string::npos);
  }
  EXPECT_THROW(Tensor::zeros({2}, Device::cuda(0)), DeviceError);
}

TEST(DeviceCuda, MixingDevicesIsAnError) {
  IPG_REQUIRE_CUDA();
  Tensor a = Tensor::ones({2});
  Tensor b = Tensor::ones({2}, Device::cuda(0));
  try {
    ops::add(a, b);
    FAIL() << "expected DeviceError";
  } catch (const DeviceError& e) {
    EXPECT_NE(std::string(e.what()).find("cpu and cuda:0"), std::string::npos);
  }
}

}  // namespace
}  // namespace ipg
