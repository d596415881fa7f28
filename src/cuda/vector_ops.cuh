// Device code shared by the row and matrix kernels: one contiguous vector
// (a table row, a dense matrix row, a CSR row's values) processed by a group
// of G lanes of one warp, G a power of two up to 32.
//
// Layout, which emulate.h replays on the host: the vector is cut into
// accesses of kVec elements; lane l of the group handles accesses
// l, l + G, l + 2G, ... and accumulates their elements in order into its
// own accumulator; the G partials are then combined by an XOR butterfly
// (offsets G/2, G/4, ..., 1), after which every lane holds the same value.
// Up to kCache accesses per lane are kept in registers, so that rows of up
// to G * kCache accesses (2 KiB with 32 lanes) are read from memory once;
// longer ones are read again for the scaling pass.
#ifndef SPARSENORM_CUDA_VECTOR_OPS_CUH_
#define SPARSENORM_CUDA_VECTOR_OPS_CUH_

#include <cuda_runtime.h>
#include <stdint.h>

#include "cuda/device_math.h"

namespace sparsenorm {
namespace cuda {
namespace dev {

constexpr int kThreads = 256;  // threads per block for every kernel
constexpr int kCache = 4;      // accesses per lane kept in registers
// Blocks kept resident per SM by the kernels that run ProcessVector: the
// compiler then caps registers at 65536 / (256 * 3) = 85 per thread (80 in
// practice, with at most 12 bytes spilled on sm_90, against up to 108
// registers and two blocks without the bound). Rows are scattered: the more
// warps wait on memory at once, the closer a kernel gets to the memory's
// bandwidth. A tuning knob, unmeasured (docs/CUDA.md).
constexpr int kVectorBlocksPerSM = 3;

// kVec consecutive elements moved by one load: 16 bytes, or one element.
template <class S, int kVec>
struct Pack {
  static_assert(sizeof(S) * kVec == 16, "a pack is 16 bytes");
  union {
    uint4 raw;
    S e[kVec];
  } u;
  __device__ __forceinline__ static Pack Load(const S* p) {
    Pack v;
    v.u.raw = *reinterpret_cast<const uint4*>(p);
    return v;
  }
  __device__ __forceinline__ void Store(S* p) const { *reinterpret_cast<uint4*>(p) = u.raw; }
};

template <class S>
struct Pack<S, 1> {
  union {
    S e[1];
  } u;
  __device__ __forceinline__ static Pack Load(const S* p) {
    Pack v;
    v.u.e[0] = *p;
    return v;
  }
  __device__ __forceinline__ void Store(S* p) const { *p = u.e[0]; }
};

// A group of lanes within a warp.
struct Group {
  int lane;       // 0 .. size - 1
  int size;       // power of two, 1 .. 32
  unsigned mask;  // the group's lanes within the warp
};

__device__ __forceinline__ Group MakeGroup(int size) {
  const int warp_lane = static_cast<int>(threadIdx.x & 31);
  Group g;
  g.size = size;
  g.lane = warp_lane & (size - 1);
  const int first = warp_lane - g.lane;
  g.mask = size == 32 ? 0xffffffffu : (((1u << size) - 1u) << first);
  return g;
}

// Global group number and group count for grid-stride loops.
__device__ __forceinline__ int64_t GroupId(int size) {
  return (static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x) / size;
}
__device__ __forceinline__ int64_t GroupCount(int size) {
  return static_cast<int64_t>(gridDim.x) * blockDim.x / size;
}

__device__ __forceinline__ num::FloatAcc GroupReduce(num::FloatAcc a, const Group& g) {
  for (int off = g.size / 2; off > 0; off /= 2) {
    num::FloatAcc b;
    b.sum = __shfl_xor_sync(g.mask, a.sum, off);
    b.max_bits = __shfl_xor_sync(g.mask, a.max_bits, off);
    a = num::Combine(a, b);
  }
  return a;
}

__device__ __forceinline__ num::DoubleAcc GroupReduce(num::DoubleAcc a, const Group& g) {
  for (int off = g.size / 2; off > 0; off /= 2) {
    num::DoubleAcc b;
    b.sum = __shfl_xor_sync(g.mask, a.sum, off);
    b.max_bits = __shfl_xor_sync(g.mask, static_cast<unsigned long long>(a.max_bits), off);
    a = num::Combine(a, b);
  }
  return a;
}

// The group's sum of one value per lane (float or double), every lane
// getting the same bits (IEEE addition is commutative).
template <class C>
__device__ __forceinline__ C GroupSum(C s, const Group& g) {
  for (int off = g.size / 2; off > 0; off /= 2) s = s + __shfl_xor_sync(g.mask, s, off);
  return s;
}

// The scaled float64 pass (the CPU's ScaledNorm) over in[0 : accesses *
// kVec): for p outside {1, 2, inf}, and for sums beyond float range. Rare,
// so it reads the vector again rather than keep a third pass over the
// register cache, and it is not inlined: CUDA's float64 pow alone would
// otherwise raise the register count of every row kernel, costing
// occupancy on the common path.
template <class Tr, int kVec>
__device__ __noinline__ double FallbackNorm(const typename Tr::Storage* in, int64_t accesses, Group g,
                                            double m, NormRule prm) {
  using P = Pack<typename Tr::Storage, kVec>;
  double s = 0.0;
  for (int64_t a = g.lane; a < accesses; a += g.size) {
    const P v = P::Load(in + a * kVec);
#pragma unroll
    for (int e = 0; e < kVec; ++e) {
      s = s + ScaledTerm(static_cast<double>(Tr::Widen(v.u.e[e])), m, prm.kind, prm.p);
    }
  }
  return FinishScaled(m, GroupSum(s, g), prm.kind, prm.p);
}

// Scaling by a factor outside float32's normal range (or, for float64, with
// a power-of-two shift): float64 arithmetic per element. Rare; reads the
// input again and is kept out of line so that its registers do not weigh on
// the common path.
template <class Tr, int kVec>
__device__ __noinline__ void ScaleSlow(const typename Tr::Storage* in, typename Tr::Storage* out,
                                       int64_t accesses, Group g, Scale scale) {
  using P = Pack<typename Tr::Storage, kVec>;
  for (int64_t a = g.lane; a < accesses; a += g.size) {
    P v = P::Load(in + a * kVec);
#pragma unroll
    for (int e = 0; e < kVec; ++e) v.u.e[e] = Tr::Scaled(v.u.e[e], scale);
    v.Store(out + a * kVec);
  }
}

// Reads the vector in[0 : n) (n a multiple of kVec), computes its norm,
// decides, and writes the result to out (which may be in). When nothing is
// scaled and out == in, nothing is written. Every lane of the group must
// call this with the same arguments.
template <class Tr, int kVec>
__device__ __forceinline__ Outcome ProcessVector(const typename Tr::Storage* in,
                                                 typename Tr::Storage* out, int64_t n,
                                                 const Group& g, const NormRule& prm) {
  using S = typename Tr::Storage;
  using P = Pack<S, kVec>;
  const int64_t accesses = n / kVec;
  const bool cached = accesses <= static_cast<int64_t>(g.size) * kCache;
  P cache[kCache];
  auto acc = num::ZeroAcc(typename Tr::Compute());
  if (cached) {
#pragma unroll
    for (int j = 0; j < kCache; ++j) {
      const int64_t a = g.lane + static_cast<int64_t>(j) * g.size;
      if (a < accesses) cache[j] = P::Load(in + a * kVec);
    }
#pragma unroll
    for (int j = 0; j < kCache; ++j) {
      const int64_t a = g.lane + static_cast<int64_t>(j) * g.size;
      if (a < accesses) {
#pragma unroll
        for (int e = 0; e < kVec; ++e) num::Accumulate(acc, Tr::Widen(cache[j].u.e[e]), prm.kind);
      }
    }
  } else {
    for (int64_t a = g.lane; a < accesses; a += g.size) {
      const P v = P::Load(in + a * kVec);
#pragma unroll
      for (int e = 0; e < kVec; ++e) num::Accumulate(acc, Tr::Widen(v.u.e[e]), prm.kind);
    }
  }
  acc = GroupReduce(acc, g);
  const num::FastNorm fast = num::FinishFast(acc, prm.kind);
  double norm = fast.value;
  if (fast.fallback) norm = FallbackNorm<Tr, kVec>(in, accesses, g, num::AccMax(acc), prm);
  const Scale scale = Decide(norm, fast.finite, prm);
  const bool scaling = scale.action == Action::kScale;
  if (scaling && !Tr::Fast(scale)) {
    ScaleSlow<Tr, kVec>(in, out, accesses, g, scale);
  } else if (scaling || in != out) {
    if (cached) {
#pragma unroll
      for (int j = 0; j < kCache; ++j) {
        const int64_t a = g.lane + static_cast<int64_t>(j) * g.size;
        if (a < accesses) {
          P v = cache[j];
          if (scaling) {
#pragma unroll
            for (int e = 0; e < kVec; ++e) v.u.e[e] = Tr::ScaledFast(v.u.e[e], scale);
          }
          v.Store(out + a * kVec);
        }
      }
    } else {
      for (int64_t a = g.lane; a < accesses; a += g.size) {
        P v = P::Load(in + a * kVec);
        if (scaling) {
#pragma unroll
          for (int e = 0; e < kVec; ++e) v.u.e[e] = Tr::ScaledFast(v.u.e[e], scale);
        }
        v.Store(out + a * kVec);
      }
    }
  }
  return OutcomeOf(scale, norm);
}

// Whether every element of in[0 : n) is finite (every lane gets the answer).
template <class Tr, int kVec>
__device__ __forceinline__ bool VectorFinite(const typename Tr::Storage* in, int64_t n,
                                             const Group& g) {
  using P = Pack<typename Tr::Storage, kVec>;
  auto acc = num::ZeroAcc(typename Tr::Compute());
  for (int64_t a = g.lane; a < n / kVec; a += g.size) {
    const P v = P::Load(in + a * kVec);
#pragma unroll
    for (int e = 0; e < kVec; ++e) num::Accumulate(acc, Tr::Widen(v.u.e[e]), NormKind::kLInf);
  }
  return num::AccFinite(GroupReduce(acc, g));
}

// Copies in[0 : n) to out.
template <class S, int kVec>
__device__ __forceinline__ void CopyVector(const S* in, S* out, int64_t n, const Group& g) {
  for (int64_t a = g.lane; a < n / kVec; a += g.size) Pack<S, kVec>::Load(in + a * kVec).Store(out + a * kVec);
}

// Per-thread counters summed over the block and flushed to global memory
// with one atomic each. Every thread of the block must call it.
__device__ __forceinline__ void FlushCounts(const unsigned long long (&local)[4],
                                            unsigned long long* const (&global)[4]) {
  __shared__ unsigned long long shared[4];
  if (threadIdx.x < 4) shared[threadIdx.x] = 0;
  __syncthreads();
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    unsigned long long x = local[i];
    for (int off = 16; off > 0; off /= 2) x += __shfl_xor_sync(0xffffffffu, x, off);
    if ((threadIdx.x & 31) == 0 && x != 0) atomicAdd(&shared[i], x);
  }
  __syncthreads();
  if (threadIdx.x < 4 && global[threadIdx.x] != nullptr && shared[threadIdx.x] != 0) {
    atomicAdd(global[threadIdx.x], shared[threadIdx.x]);
  }
}

}  // namespace dev
}  // namespace cuda
}  // namespace sparsenorm

#endif  // SPARSENORM_CUDA_VECTOR_OPS_CUH_
