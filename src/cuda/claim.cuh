// Device code shared by the row operator and the matrix normalization's
// subset lists: range checks with first-position reporting, the claim
// bitmap that deduplicates an index list, and the grid size of the
// grid-stride kernels.
#ifndef SPARSENORM_CUDA_CLAIM_CUH_
#define SPARSENORM_CUDA_CLAIM_CUH_

#include <cuda_runtime.h>
#include <stdint.h>

#include <algorithm>
#include <mutex>

#include "cuda/launch.h"
#include "cuda/vector_ops.cuh"

namespace sparsenorm {
namespace cuda {
namespace dev {

// Range-checks indices[0 : n) against [0, limit) and claims each valid row:
// the position whose atomicOr flips the row's bit gets owner flag 1, every
// other position 0. The first invalid position is recorded in *bad (zeroed
// beforehand), whatever the scheduling. *distinct counts the owners. bitmap
// must be zeroed beforehand.
template <class I>
__global__ void __launch_bounds__(kThreads)
    ClaimKernel(const I* __restrict__ indices, int64_t n, int64_t limit, unsigned* bitmap,
                unsigned char* __restrict__ owner, detail::FirstPosition* bad_position,
                unsigned long long* distinct_count) {
  unsigned long long distinct = 0;
  unsigned long long bad = 0;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride) {
    const long long r = static_cast<long long>(indices[i]);
    if (detail::OutOfRange(r, limit)) {
      const unsigned long long key = detail::FirstPosition::KeyOf(i);
      bad = key > bad ? key : bad;
      owner[i] = 0;
      continue;
    }
    unsigned* word = bitmap + (r >> 5);
    const unsigned bit = 1u << (r & 31);
    unsigned char mine = 0;
    // A plain read first spares the atomic for rows already claimed; it can
    // only see a stale 0, never a stale 1, and the atomic decides.
    if ((*word & bit) == 0) mine = (atomicOr(word, bit) & bit) == 0;
    owner[i] = mine;
    distinct += mine;
  }
  if (bad != 0) atomicMax(&bad_position->key, bad);
  const unsigned long long local[4] = {distinct, 0, 0, 0};
  unsigned long long* const global[4] = {distinct_count, nullptr, nullptr, nullptr};
  FlushCounts(local, global);
}

__device__ __forceinline__ bool BitSet(const unsigned* bitmap, int64_t i) {
  return (bitmap[i >> 5] >> (i & 31)) & 1u;
}

// Blocks for a grid-stride kernel: as many as can be resident at once (an
// occupancy query per kernel, made once per process: the first device used
// decides), or fewer when there is less work.
template <class Kernel>
int GridFor(Kernel kernel, int64_t threads_needed) {
  static int per_sm = 0;
  static int sms = 0;
  static std::once_flag once;
  std::call_once(once, [&] {
    int device = 0;
    if (cudaGetDevice(&device) != cudaSuccess) return;
    cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device);
    cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, kernel, kThreads, 0);
  });
  const int64_t resident = static_cast<int64_t>(std::max(per_sm, 1)) * std::max(sms, 1);
  const int64_t needed = (threads_needed + kThreads - 1) / kThreads;
  return static_cast<int>(std::max<int64_t>(1, std::min(resident, needed)));
}

}  // namespace dev
}  // namespace cuda
}  // namespace sparsenorm

#endif  // SPARSENORM_CUDA_CLAIM_CUH_
