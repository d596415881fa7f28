// The row operator on the device. One call enqueues, on the caller's
// stream and without waiting for anything:
//
//   memset     the header and the row bitmap to zero;
//   Claim      every index is range-checked; valid ones set their row's bit
//              with atomicOr, and the one position whose atomicOr flipped
//              the bit becomes the row's owner (owner flag 1). Out-of-range
//              positions are recorded (first position wins) and claim
//              nothing;
//   [kError]   CheckOwners reads each owned row and notes whether any holds
//              NaN/inf; FirstNonFinite, only when one did, finds the first
//              position of the list whose row does;
//   Rows       exits at once when the header holds an error (filling in the
//              offending value for the report); otherwise each owned row is
//              normalized by one group of lanes (in place), or every row is
//              copied or normalized (out of place).
//
// Each distinct row is thus read and written by exactly one group, and its
// result depends on its own values only: the output is bit-for-bit the same
// whatever the order of the indices, their repeats, or the scheduling.

#include <cuda_runtime.h>

#include <algorithm>
#include <mutex>

#include "cuda/launch.h"
#include "cuda/claim.cuh"
#include "cuda/vector_ops.cuh"

namespace sparsenorm {
namespace cuda {
namespace dev {
namespace {

using detail::RowsHeader;

__device__ __forceinline__ bool HasError(const RowsHeader* h) {
  return h->bad.found() || h->nonfinite.found();
}

struct TableArgs {
  const void* in;
  void* out;
  int64_t in_stride;
  int64_t out_stride;
  int64_t cols;
  int group;
};

// The index list with its type known at run time: a uniform branch per load
// costs nothing next to the row it names, and halves the kernels compiled.
struct IndexList {
  const void* data;
  IndexType type;
  __device__ __forceinline__ int64_t operator[](int64_t i) const { return detail::LoadIndex(data, type, i); }
};

template <class Tr>
__device__ __forceinline__ const typename Tr::Storage* InRow(const TableArgs& t, int64_t r) {
  return static_cast<const typename Tr::Storage*>(t.in) + r * t.in_stride;
}
template <class Tr>
__device__ __forceinline__ typename Tr::Storage* OutRow(const TableArgs& t, int64_t r) {
  return static_cast<typename Tr::Storage*>(t.out) + r * t.out_stride;
}

// kError, step 1: does any owned row hold NaN or infinity?
template <class Tr, int kVec>
__global__ void __launch_bounds__(kThreads)
    CheckOwnersKernel(TableArgs t, IndexList indices, int64_t n,
                      const unsigned char* __restrict__ owner, RowsHeader* header) {
  if (HasError(header)) return;
  const Group g = MakeGroup(t.group);
  for (int64_t i = GroupId(t.group); i < n; i += GroupCount(t.group)) {
    if (!owner[i]) continue;
    if (!VectorFinite<Tr, kVec>(InRow<Tr>(t, indices[i]), t.cols, g)) {
      if (g.lane == 0) atomicOr(&header->nonfinite_found, 1u);
    }
  }
}

// kError, step 2 (only when step 1 found one): the first position of the
// list whose row holds NaN or infinity, as the CPU reports it.
template <class Tr, int kVec>
__global__ void __launch_bounds__(kThreads)
    FirstNonFiniteKernel(TableArgs t, IndexList indices, int64_t n,
                         RowsHeader* header) {
  if (header->bad.found() || header->nonfinite_found == 0) return;
  const Group g = MakeGroup(t.group);
  for (int64_t i = GroupId(t.group); i < n; i += GroupCount(t.group)) {
    if (!VectorFinite<Tr, kVec>(InRow<Tr>(t, indices[i]), t.cols, g)) {
      if (g.lane == 0) atomicMax(&header->nonfinite.key, detail::FirstPosition::KeyOf(i));
    }
  }
}

// Run by the last kernel of the sequence, error or not (by one thread).
__device__ void FinishHeader(IndexList indices, int64_t n, int64_t rows, RowsHeader* header) {
  if (blockIdx.x != 0 || threadIdx.x != 0) return;
  detail::FinishRowsHeader(indices.data, indices.type, n, rows, header);
}

template <class Tr, int kVec>
__global__ void __launch_bounds__(kThreads, kVectorBlocksPerSM)
    InPlaceKernel(TableArgs t, int64_t rows, IndexList indices, int64_t n,
                  const unsigned char* __restrict__ owner, NormRule prm, RowsHeader* header) {
  FinishHeader(indices, n, rows, header);
  if (HasError(header)) return;
  const Group g = MakeGroup(t.group);
  unsigned long long scaled = 0, nonfinite = 0;
  for (int64_t i = GroupId(t.group); i < n; i += GroupCount(t.group)) {
    if (!owner[i]) continue;
    typename Tr::Storage* row = OutRow<Tr>(t, indices[i]);
    const Outcome o = ProcessVector<Tr, kVec>(row, row, t.cols, g, prm);
    if (g.lane == 0) {
      scaled += o == Outcome::kScaled;
      nonfinite += o == Outcome::kNonFinite;
    }
  }
  const unsigned long long local[4] = {scaled, nonfinite, 0, 0};
  unsigned long long* const global[4] = {&header->scaled, &header->nonfinite_rows, nullptr, nullptr};
  FlushCounts(local, global);
}

template <class Tr, int kVec>
__global__ void __launch_bounds__(kThreads, kVectorBlocksPerSM)
    OutOfPlaceKernel(TableArgs t, int64_t rows, const unsigned* __restrict__ bitmap,
                     IndexList indices, int64_t n, NormRule prm,
                     RowsHeader* header) {
  FinishHeader(indices, n, rows, header);
  if (HasError(header)) return;
  const Group g = MakeGroup(t.group);
  unsigned long long scaled = 0, nonfinite = 0;
  for (int64_t r = GroupId(t.group); r < rows; r += GroupCount(t.group)) {
    const typename Tr::Storage* in = InRow<Tr>(t, r);
    typename Tr::Storage* out = OutRow<Tr>(t, r);
    if ((bitmap[r >> 5] >> (r & 31)) & 1u) {
      const Outcome o = ProcessVector<Tr, kVec>(in, out, t.cols, g, prm);
      if (g.lane == 0) {
        scaled += o == Outcome::kScaled;
        nonfinite += o == Outcome::kNonFinite;
      }
    } else {
      CopyVector<typename Tr::Storage, kVec>(in, out, t.cols, g);
    }
  }
  const unsigned long long local[4] = {scaled, nonfinite, 0, 0};
  unsigned long long* const global[4] = {&header->scaled, &header->nonfinite_rows, nullptr, nullptr};
  FlushCounts(local, global);
}

template <class Tr, int kVec>
cudaError_t LaunchTyped(const detail::RowsLaunch& job) {
  cudaStream_t stream = static_cast<cudaStream_t>(job.stream);
  const detail::RowsScratchLayout layout = detail::RowsLayout(job.rows, job.num_indices);
  auto* base = static_cast<unsigned char*>(job.scratch);
  auto* header = reinterpret_cast<RowsHeader*>(base);
  auto* bitmap = reinterpret_cast<unsigned*>(base + layout.bitmap_offset);
  auto* owner = base + layout.owner_offset;
  const IndexList indices{job.indices, job.index_type};
  const int64_t n = job.num_indices;

  cudaError_t e = cudaMemsetAsync(base, 0, layout.bitmap_offset + layout.bitmap_bytes, stream);
  if (e != cudaSuccess) return e;

  if (job.index_type == IndexType::kInt32) {
    ClaimKernel<int32_t><<<GridFor(ClaimKernel<int32_t>, n), kThreads, 0, stream>>>(
        static_cast<const int32_t*>(job.indices), n, job.rows, bitmap, owner, &header->bad, &header->distinct);
  } else {
    ClaimKernel<int64_t><<<GridFor(ClaimKernel<int64_t>, n), kThreads, 0, stream>>>(
        static_cast<const int64_t*>(job.indices), n, job.rows, bitmap, owner, &header->bad, &header->distinct);
  }

  TableArgs t;
  t.in = job.in;
  t.out = job.out;
  t.in_stride = job.in_stride;
  t.out_stride = job.out_stride;
  t.cols = job.cols;
  t.group = num::GroupSizeFor(job.cols / kVec);

  if (job.nonfinite_error) {
    const int64_t threads = n * t.group;
    CheckOwnersKernel<Tr, kVec><<<GridFor(CheckOwnersKernel<Tr, kVec>, threads), kThreads, 0, stream>>>(
        t, indices, n, owner, header);
    FirstNonFiniteKernel<Tr, kVec><<<GridFor(FirstNonFiniteKernel<Tr, kVec>, threads), kThreads, 0, stream>>>(
        t, indices, n, header);
  }
  if (job.in_place) {
    InPlaceKernel<Tr, kVec><<<GridFor(InPlaceKernel<Tr, kVec>, n * t.group), kThreads, 0, stream>>>(
        t, job.rows, indices, n, owner, job.rule, header);
  } else {
    OutOfPlaceKernel<Tr, kVec><<<GridFor(OutOfPlaceKernel<Tr, kVec>, job.rows * t.group), kThreads, 0, stream>>>(
        t, job.rows, bitmap, indices, n, job.rule, header);
  }
  return cudaGetLastError();
}

template <class Tr>
cudaError_t DispatchVector(const detail::RowsLaunch& job) {
  constexpr int kWide = 16 / static_cast<int>(sizeof(typename Tr::Storage));
  return job.vectorized ? LaunchTyped<Tr, kWide>(job) : LaunchTyped<Tr, 1>(job);
}

}  // namespace
}  // namespace dev

namespace detail {

int LaunchRows(const RowsLaunch& job) {
  cudaError_t e = cudaErrorInvalidValue;
  VisitDType(job.dtype, [&](auto t) { e = dev::DispatchVector<num::DeviceTraits<TypeOf<decltype(t)>>>(job); });
  return e;
}

}  // namespace detail
}  // namespace cuda
}  // namespace sparsenorm
