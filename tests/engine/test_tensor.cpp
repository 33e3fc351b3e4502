// Tensor basics: shapes, strides, copies, views, errors.
#include <gtest/gtest.h>

#include "engine/error.h"
#include "engine/ops/view.h"
#include "engine/tensor.h"
#include "tests/support/parity.h"

namespace ipg {
namespace {

TEST(Tensor, ShapeAndContiguousStrides) {
  Tensor t = Tensor::zeros({2, 3, 4, 5});
  EXPECT_EQ(t.ndim(), 4);
  EXPECT_EQ(t.numel(), 120);
  EXPECT_EQ(t.strides(), (Shape{60, 20, 5, 1}));
  EXPECT_EQ(t.dim(-1), 5);
  EXPECT_EQ(t.nbytes(), 480u);
  EXPECT_THROW(t.dim(4), ShapeError);
  for (float v : t.to_vector()) EXPECT_EQ(v, 0.f);
}

TEST(Tensor, ScalarTensorHasOneElement) {
  Tensor s = Tensor::full({}, 3.5f);
  EXPECT_EQ(s.numel(), 1);
  EXPECT_EQ(s.item(), 3.5f);
}

TEST(Tensor, FromVectorChecksSize) {
  EXPECT_THROW(Tensor::from_vector({1, 2, 3}, {2, 2}), ShapeError);
  Tensor t = Tensor::from_vector({1, 2, 3, 4}, {2, 2});
  EXPECT_EQ(t.to_vector(), (std::vector<float>{1, 2, 3, 4}));
}

TEST(Tensor, CloneIsIndependentCopyIsShared) {
  Tensor a = Tensor::from_vector({1, 2, 3}, {3});
  Tensor shared = a;
  Tensor copy = a.clone();
  a.data()[0] = 10.f;
  EXPECT_EQ(shared.to_vector()[0], 10.f);
  EXPECT_EQ(copy.to_vector()[0], 1.f);
}

TEST(Tensor, CopyFromChecksShapeAndDtype) {
  Tensor a = Tensor::zeros({2, 3});
  EXPECT_THROW(a.copy_from(Tensor::zeros({3, 2})), ShapeError);
  EXPECT_THROW(a.copy_from(Tensor::zeros({2, 3}, Device::cpu(), DType::I32)), ShapeError);
  a.copy_from(Tensor::full({2, 3}, 7.f));
  for (float v : a.to_vector()) EXPECT_EQ(v, 7.f);
}

TEST(Tensor, Int32TensorsAndDtypeChecks) {
  Tensor l = Tensor::from_vector_i32({3, 1, 4}, {3});
  EXPECT_EQ(l.dtype(), DType::I32);
  EXPECT_EQ(l.to_vector_i32(), (std::vector<int32_t>{3, 1, 4}));
  EXPECT_THROW(l.data(), std::invalid_argument);
  EXPECT_THROW(l.set_requires_grad(true), std::invalid_argument);
}

TEST(Tensor, Narrow0SharesRows) {
  Tensor t = Tensor::from_vector({0, 1, 2, 3, 4, 5, 6, 7}, {4, 2});
  Tensor mid = t.narrow0(1, 2);
  EXPECT_EQ(mid.shape(), (Shape{2, 2}));
  EXPECT_EQ(mid.to_vector(), (std::vector<float>{2, 3, 4, 5}));
  mid.data()[0] = -1.f;
  EXPECT_EQ(t.to_vector()[2], -1.f);
  EXPECT_THROW(t.narrow0(3, 2), ShapeError);
}

TEST(Tensor, ReshapeIsAViewAndChecksSize) {
  Tensor t = Tensor::from_vector({1, 2, 3, 4, 5, 6}, {2, 3});
  Tensor r = ops::reshape(t, {3, -1});
  EXPECT_EQ(r.shape(), (Shape{3, 2}));
  EXPECT_EQ(r.raw(), t.raw());
  EXPECT_THROW(ops::reshape(t, {4, 2}), ShapeError);
  EXPECT_THROW(ops::reshape(t, {-1, -1}), ShapeError);
  // 7 * 7905747460161236407 is 1 modulo 2^64: a product that wraps would accept this
  // shape as 6 elements (a file's shape, found by fuzzing).
  EXPECT_THROW(ops::reshape(t, {7, 7905747460161236407LL, -1}), ShapeError);
  EXPECT_THROW(ops::reshape(t, {7, 7905747460161236407LL, 6}), ShapeError);
  EXPECT_EQ(ops::flatten(Tensor::zeros({2, 3, 4})).shape(), (Shape{2, 12}));
}

TEST(Tensor, NegativeDimensionRejected) { EXPECT_THROW(Tensor::empty({2, -1}), ShapeError); }

TEST(Tensor, UndefinedTensorUseThrows) {
  Tensor t;
  EXPECT_FALSE(t.defined());
  EXPECT_THROW(t.shape(), std::logic_error);
}

TEST(TensorCuda, RoundTripThroughDevice) {
  IPG_REQUIRE_CUDA();
  Tensor a = Tensor::from_vector({1, -2, 3.5f, 4}, {2, 2});
  Tensor d = a.to(Device::cuda(0));
  EXPECT_EQ(d.device(), Device::cuda(0));
  Tensor back = d.cpu();
  EXPECT_EQ(back.to_vector(), a.to_vector());
  Tensor z = Tensor::zeros({3}, Device::cuda(0));
  EXPECT_EQ(z.to_vector(), (std::vector<float>{0, 0, 0}));
  Tensor dd = d.clone();
  EXPECT_EQ(dd.to_vector(), a.to_vector());
}

}  // namespace
}  // namespace ipg
