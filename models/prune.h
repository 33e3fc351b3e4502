// Pruning masks and last-layer re-initialization: the post-processing attacks of the
// paper (section 5.1.2; ../shared/algorithms.md) as building blocks for training.
// A mask holds 1 where a parameter is kept and 0 where it is pruned; train() multiplies
// every masked parameter by its mask after each optimizer step, so pruned weights stay 0.
#pragma once

#include <string>
#include <vector>

#include "models/network.h"

namespace ipg {

struct ParamMask {
  std::string name;  // parameter name as in named_parameters()
  Tensor mask;       // same shape as the parameter, 0 or 1 (CPU; moved by apply_masks)
};

// WP: the `fraction` of smallest-|w| weights among all conv and linear weights (tensors of
// rank >= 2; biases and batch-norm parameters are left alone), one global threshold. Ties
// at the threshold are broken by position, so exactly floor(fraction * count) are pruned.
std::vector<ParamMask> prune_weights(Network& net, double fraction);

// FP: per conv layer, the `fraction` of output filters with the smallest L1 norm
// (floor(fraction * filters), at least one filter always kept). A pruned filter's
// channel is removed whole: its weights, its conv bias and the batch-norm scale and
// shift that normalize it. Convs whose output is added to a residual sum (stems,
// the last conv of a block, projection shortcuts) are not pruned: their channels are
// shared with the rest of the network.
std::vector<ParamMask> prune_filters(Network& net, double fraction);

// Multiplies each named parameter by its mask in place (no graph), on the parameter's
// device. Throws std::invalid_argument for an unknown name or a shape mismatch.
void apply_masks(Network& net, std::vector<ParamMask>& masks);

// Fraction of zeros among the masked entries (for reports).
double masked_fraction(const std::vector<ParamMask>& masks);

// RTLL / RTAL: the last (classification) layer drawn afresh, PyTorch's nn.Linear default
// (weights and bias uniform in +-1/sqrt(fan_in)), from `seed`.
void reinit_last_layer(Network& net, uint64_t seed);

}  // namespace ipg
