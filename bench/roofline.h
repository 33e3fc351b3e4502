// The ceilings a case is measured against: peak FLOP/s of single-precision GEMM (oneDNN
// on the CPU, cuBLAS on the GPU, both in full FP32) and peak memory bandwidth (STREAM
// copy and triad on the CPU, a device-to-device copy on the GPU). They are cases too, so
// bench_kernels reports them next to everything else.
#pragma once

#include <stdint.h>

#include "bench/common.h"

namespace ipg::bench {

// C = A B with square n x n operands (2 n^3 FLOP).
Prepared roofline_sgemm(Device d, int64_t n);
// a = b on n floats: 8 n bytes moved (read + write; write-allocate traffic not counted,
// as in STREAM). On a GPU this is cudaMemcpyAsync device to device.
Prepared roofline_copy(Device d, int64_t n);
// a = b + s c on n floats (CPU only): 12 n bytes, 2 n FLOP.
Prepared roofline_triad(Device d, int64_t n);

// Best of a few runs of the cases above, at the sizes bench_kernels registers.
Roofline measure_cpu_roofline(bool quick);
Roofline measure_cuda_roofline(Device d, bool quick);

// Sizes shared by the measurement and the registered cases.
int64_t roofline_sgemm_size(Device d, bool quick);
int64_t roofline_stream_size(Device d, bool quick);

}  // namespace ipg::bench
