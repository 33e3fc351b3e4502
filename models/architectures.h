// Constructors of the built-in architectures (registered by name in network.cpp).
// Module paths follow the common PyTorch layouts ("layer1/0/conv1/weight") or, for the
// Keras applications models, Keras's layer names split at their '_' levels
// ("conv2/block1/1_conv/weight"), so weight import can match by name.
#pragma once

#include <memory>

#include "models/network.h"

namespace ipg {

// LeNet-5: conv5(6, pad 2)-pool-conv5(16)-pool-fc120-fc84-fc; any input of at least 12x12.
std::unique_ptr<Network> make_lenet5(const ModelConfig& cfg);
// CIFAR ResNet20: 3 stages x 3 basic blocks (16/32/64), 1x1-conv projection shortcuts.
std::unique_ptr<Network> make_resnet20(const ModelConfig& cfg);
// WRN-22-4: 3 stages x 3 pre-activation blocks, widths 64/128/256.
std::unique_ptr<Network> make_wrn22_4(const ModelConfig& cfg);
// ResNet50 as Keras applications builds it (v1: stride on the first 1x1 conv).
std::unique_ptr<Network> make_resnet50(const ModelConfig& cfg);
// VGG16 with batch norm and a CIFAR head (global average pool, one linear layer).
std::unique_ptr<Network> make_vgg16(const ModelConfig& cfg);
// VGG16 as Keras applications builds it: no batch norm, 4096-wide fc1/fc2 with dropout.
std::unique_ptr<Network> make_vgg16_imagenet(const ModelConfig& cfg);

}  // namespace ipg
