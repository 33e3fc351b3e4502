// CPU twin of kernels/cuda/forest_predict.cu: random-forest labels for a batch.
#pragma once

#include <stdint.h>

#include "kernels/common/forest_math.h"

namespace ipg::kernels::cpu {

// For each of the n rows of x ([n, features], features = C*H*W): votes[r, :] = the sum of
// the trees' leaf distributions (forest_vote_row) and labels[r] = its argmax (ties to the
// smallest class). votes is [n, f.classes] scratch that the caller may read afterwards.
void forest_predict(const ForestView& f, const float* x, int64_t n, int64_t features, float* votes,
                    int32_t* labels);

}  // namespace ipg::kernels::cpu
