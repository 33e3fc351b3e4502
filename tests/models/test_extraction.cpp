// Extraction (models/extraction.h): Hinton's distillation loss against its formula and
// by finite differences, its minimum at the teacher's own soft labels, its stability, and
// a short distillation and label-only run that learns the teacher's labels; the recipes'
// single-source rule (models/recipe.h).
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>

#include "engine/random.h"
#include "models/extraction.h"
#include "models/recipe.h"
#include "tests/support/gradcheck.h"

namespace ipg {
namespace {

Tensor random_logits(int64_t n, int64_t k, uint64_t seed, float scale = 3.f) {
  Generator g(seed);
  return Tensor::uniform({n, k}, -scale, scale, g);
}

// Row softmax of z / T in double.
std::vector<double> soft(const std::vector<float>& z, int64_t n, int64_t k, double T) {
  std::vector<double> p(z.size());
  for (int64_t r = 0; r < n; ++r) {
    double m = -1e300, s = 0;
    for (int64_t j = 0; j < k; ++j) m = std::max(m, z[r * k + j] / T);
    for (int64_t j = 0; j < k; ++j) s += std::exp(z[r * k + j] / T - m);
    for (int64_t j = 0; j < k; ++j) p[r * k + j] = std::exp(z[r * k + j] / T - m) / s;
  }
  return p;
}

TEST(Distillation, LossIsTSquaredTimesTheSoftCrossEntropy) {
  const int64_t n = 5, k = 7;
  const float T = 3.f;
  const Tensor z = random_logits(n, k, 1);
  const std::vector<double> q = soft(random_logits(n, k, 2).to_vector(), n, k, 1.0);
  std::vector<float> qf(q.begin(), q.end());
  const Tensor targets = Tensor::from_vector(qf, {n, k});
  const std::vector<double> p = soft(z.to_vector(), n, k, T);
  double want = 0;
  for (int64_t i = 0; i < n * k; ++i) want -= qf[i] * std::log(p[i]);
  want = want / n * T * T;
  EXPECT_NEAR(distillation_loss(z, targets, T).item(), want, 1e-4 * std::fabs(want));
}

TEST(Distillation, GradientMatchesFiniteDifferences) {
  const int64_t n = 4, k = 6;
  const std::vector<double> q = soft(random_logits(n, k, 4).to_vector(), n, k, 1.0);
  const Tensor targets = Tensor::from_vector(std::vector<float>(q.begin(), q.end()), {n, k});
  Tensor z = random_logits(n, k, 3);
  z.set_requires_grad(true);
  EXPECT_GRADCHECK(
      [&](const std::vector<Tensor>& in) { return distillation_loss(in[0], targets, 2.5f); },
      {z});
}

TEST(Distillation, MinimalAtTheTeachersOwnSoftLabels) {
  // The gradient T (softmax(z/T) - p) / n vanishes when p is the student's own softmax.
  const int64_t n = 3, k = 5;
  const float T = 4.f;
  Tensor z = random_logits(n, k, 5);
  const std::vector<double> p = soft(z.to_vector(), n, k, T);
  const Tensor targets = Tensor::from_vector(std::vector<float>(p.begin(), p.end()), {n, k});
  z.set_requires_grad(true);
  distillation_loss(z, targets, T).backward();
  for (float g : z.grad().to_vector()) EXPECT_NEAR(g, 0.f, 1e-6f);
  // And any other target gives a larger loss.
  const Tensor other = Tensor::from_vector(std::vector<float>(n * k, 1.f / k), {n, k});
  EXPECT_GT(distillation_loss(z.detach(), other, T).item(),
            distillation_loss(z.detach(), targets, T).item());
}

TEST(Distillation, FiniteForHugeLogits) {
  Tensor z = random_logits(4, 10, 6, 1e4f);
  const Tensor targets = Tensor::full({4, 10}, 0.1f);
  z.set_requires_grad(true);
  const Tensor loss = distillation_loss(z, targets, 1.f);
  EXPECT_TRUE(std::isfinite(loss.item()));
  loss.backward();
  for (float g : z.grad().to_vector()) EXPECT_TRUE(std::isfinite(g));
  EXPECT_THROW(distillation_loss(z, Tensor::full({4, 9}, 0.1f), 1.f), std::invalid_argument);
  EXPECT_THROW(distillation_loss(z, targets, 0.f), std::invalid_argument);
}

TEST(Distillation, SoftTargetsAreTheTeachersSoftmax) {
  ModelConfig c;
  c.arch = "lenet5";
  c.seed = 2;
  auto teacher = make_network(c);
  Generator g(7);
  const Tensor x = Tensor::uniform({6, 1, 28, 28}, 0.f, 1.f, g);
  const Tensor s = soft_targets(*teacher, x, 2.f, Device::cpu(), 4);  // two batches
  teacher->eval();
  const std::vector<double> want = soft(teacher->logits(x).detach().to_vector(), 6, 10, 2.0);
  const std::vector<float> got = s.to_vector();
  for (size_t i = 0; i < got.size(); ++i) EXPECT_NEAR(got[i], want[i], 1e-6);
}

// Three classes of 28x28 images: a bright band in the top, middle or bottom third.
Dataset bands(int64_t n, uint64_t seed) {
  Generator g(seed);
  Dataset d;
  d.name = "bands";
  d.num_classes = 3;
  d.images = Tensor::uniform({n, 1, 28, 28}, 0.f, 0.4f, g);
  d.labels = Tensor::empty({n}, Device::cpu(), DType::I32);
  for (int64_t i = 0; i < n; ++i) {
    const int k = static_cast<int>(i % 3);
    d.labels.data_i32()[i] = k;
    for (int r = 9 * k + 1; r < 9 * k + 8; ++r)
      for (int col = 4; col < 24; ++col) d.images.data()[(i * 28 + r) * 28 + col] = 1.f;
  }
  return d;
}

class ExtractionRun : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("ipg_extraction_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::filesystem::path dir_;
};

TEST_F(ExtractionRun, StudentsLearnTheTeachersLabelsNotTheTrueOnes) {
  // A teacher trained on the bands with its labels permuted (class k -> k+1 mod 3): a
  // student of it must follow the teacher, not the images' own labels, which it never sees.
  Dataset train = bands(600, 1), test = bands(300, 2);
  Dataset shifted = train;
  shifted.labels = Tensor::empty({600}, Device::cpu(), DType::I32);
  for (int64_t i = 0; i < 600; ++i)
    shifted.labels.data_i32()[i] = (train.labels.data_i32()[i] + 1) % 3;
  ModelRecipe t;
  t.arch = "lenet5";
  t.data = "bands";
  t.seed = 3;
  t.opt.epochs = 2;
  t.opt.batch = 32;
  MadeModel teacher = make_model(t, shifted, test, Device::cpu());
  const std::string teacher_file = (dir_ / "teacher.h5").string();
  save_made_model(teacher, teacher_file);
  for (Extraction e : {Extraction::Distill, Extraction::LabelOnly}) {
    ModelRecipe r = t;
    r.seed = 9;
    r.teacher = teacher_file;
    r.extraction = e;
    MadeModel student = make_model(r, train, test, Device::cpu());
    const std::vector<int32_t> ys = predict(*student.net, test.images, Device::cpu());
    const std::vector<int32_t> yt = predict(*teacher.net, test.images, Device::cpu());
    int agree = 0, true_label = 0;
    for (size_t i = 0; i < ys.size(); ++i) {
      agree += ys[i] == yt[i];
      true_label += ys[i] == test.labels.data_i32()[i];
    }
    EXPECT_GT(agree, 270) << extraction_name(e);      // > 90% like the teacher
    EXPECT_LT(true_label, 30) << extraction_name(e);  // < 10% like the true labels
    EXPECT_NE(student.provenance.recipe.find(teacher_file), std::string::npos);
  }
}

TEST(Recipe, OneSourceExactly) {
  const Dataset d = bands(6, 1);
  ModelRecipe r;
  EXPECT_THROW(prepare_model(r, d, Device::cpu()), std::invalid_argument);  // none
  r.arch = "lenet5";
  r.init = "x.h5";
  EXPECT_THROW(prepare_model(r, d, Device::cpu()), std::invalid_argument);  // two
  r.init.clear();
  r.extraction = Extraction::Distill;
  EXPECT_THROW(prepare_model(r, d, Device::cpu()), std::invalid_argument);  // no teacher
}

}  // namespace
}  // namespace ipg
