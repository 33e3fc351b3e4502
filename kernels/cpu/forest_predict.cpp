// Random-forest prediction on CPU: one sample per iteration, every tree in order.
#include "kernels/cpu/forest_predict.h"

#include "kernels/common/argmax_math.h"

namespace ipg::kernels::cpu {

void forest_predict(const ForestView& f, const float* x, int64_t n, int64_t features, float* votes,
                    int32_t* labels) {
  // Samples reach leaves at different depths: dynamic chunks balance the threads.
#pragma omp parallel for schedule(dynamic, 16) if (n >= 64)
  for (int64_t r = 0; r < n; ++r) {
    float* v = votes + r * f.classes;
    forest_vote_row(f, x + r * features, v);
    labels[r] = argmax_row(v, f.classes);
  }
}

}  // namespace ipg::kernels::cpu
