// Random-forest prediction on CUDA: one thread per sample walks every tree in order and
// adds the leaf distributions into its row of votes, exactly as the CPU twin does, so
// the labels are the same bits. A thread per (sample, tree) plus a reduction would
// expose more parallelism for tiny batches, but batches here hold hundreds of images
// and the fixed-order sum is what keeps the two devices identical.
#include "kernels/common/argmax_math.h"
#include "kernels/cuda/forest_predict.h"
#include "kernels/cuda/launch.cuh"

namespace ipg::kernels::cuda {

void forest_predict(const ForestView& f, const float* x, int64_t n, int64_t features, float* votes,
                    int32_t* labels, cudaStream_t stream) {
  launch(n, stream, [=] __device__(int64_t r) {
    float* v = votes + r * f.classes;
    forest_vote_row(f, x + r * features, v);
    labels[r] = argmax_row(v, f.classes);
  });
}

}  // namespace ipg::kernels::cuda
