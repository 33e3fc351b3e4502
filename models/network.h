// A differentiable classifier: an nn::Module whose forward takes [0,1] pixels. Each
// network carries its input normalization ((x - mean[c]) / std[c]), so callers, and every
// fingerprint, live in [0,1] pixel space whatever the training recipe was.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "engine/nn/module.h"
#include "models/classifier.h"

namespace ipg {

struct ModelConfig {
  std::string arch;
  int in_channels = 1;
  int height = 28;
  int width = 28;
  int classes = 10;
  std::vector<float> mean;  // per channel; empty: 0
  std::vector<float> std;   // per channel; empty: 1
  uint64_t seed = 0;        // weight initialization
};

class Network : public Classifier, public nn::Module {
 public:
  explicit Network(ModelConfig cfg);
  std::string arch() const override { return cfg_.arch; }
  int num_classes() const override { return cfg_.classes; }
  const ModelConfig& config() const { return cfg_; }
  bool has_logits() const override { return true; }
  // Validates the batch shape against the config, normalizes, runs forward_normalized.
  Tensor logits(const Tensor& batch) override;
  // argmax of the logits, computed without recording a graph (current mode: call
  // eval() first for inference).
  Tensor labels(const Tensor& batch) override;
  // The last (classification) layer's parameters: what FTLL/RTLL train alone.
  virtual std::vector<nn::NamedTensor> last_layer_parameters() = 0;

 protected:
  // [n, C, H, W] normalized input -> [n, classes] logits. The only description of the
  // architecture: the fingerprint loop traces it (models/frozen_network.h).
  virtual Tensor forward_normalized(const Tensor& x) = 0;

 private:
  ModelConfig cfg_;
  Tensor mean_, inv_std_;  // [1, C, 1, 1], moved with the input's device on use
};

// Creates an architecture by name: lenet5, resnet20, wrn-22-4, resnet50, vgg16,
// vgg16-imagenet. Throws std::invalid_argument listing the known names.
std::unique_ptr<Network> make_network(const ModelConfig& cfg);
std::vector<std::string> network_names();

// A lower bound on the parameter count of cfg's network, from the layers whose size grows
// with the input or the class count, without building it: lets a file reader refuse a
// tiny file whose header asks for gigabytes of weights (models/model_file.cpp). Keep in
// step with the architectures.
double min_parameters(const ModelConfig& cfg);

}  // namespace ipg
