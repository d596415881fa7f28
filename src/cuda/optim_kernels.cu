// The optimizer step on the device (include/sparsenorm/optim.h). One call
// enqueues, on the caller's stream and without waiting for anything:
//
// A sparse gradient (n indices):
//   memset        the header;
//   Prepare       every index is range-checked (the first bad position is
//                 recorded); the sort's keys (the index values) and values
//                 (the positions 0 .. n - 1) are written;
//   [kError]      CheckGradient: the first gradient row holding NaN/inf;
//   SortPairs     CUB's radix sort of the (row, position) pairs. It is
//                 stable: within a row the positions stay in list order;
//   Heads         1 where a run of equal rows (a segment) starts, else 0;
//   InclusiveSum  (CUB) the segment number of every sorted position;
//   Segments      where each segment starts, and how many there are;
//   Slots         how many repeat groups (kRepeatGroupSize occurrences) each
//                 segment longer than one group has, then
//   ExclusiveSum  (CUB) the first slot of each in the partial sums;
//   Partials      every repeat group of those segments summed in list order,
//                 all of them in parallel;
//   Update        one group of lanes per segment: the summed gradient, the
//                 rule, the checks, the norm, the stores.
// A dense gradient: memset, [kError] CheckGradient, Update over every row.
//
// Every kernel after the checks returns at once when the header holds an
// error, so nothing of the caller's is written (CUB's kernels run anyway:
// they write scratch only). The gradient of a row is summed in the order of
// the list, a repeat group at a time, the group sums added in order; each
// element's update is a fixed sequence of IEEE operations (common/
// optim_rules.h); the row sums (row-wise Adagrad's sum of squares, the
// constraint's norm) are combined in a fixed order of lanes. Only integer
// atomics are used (first positions, counts), whose order changes nothing:
// the bits stored do not depend on the scheduling.

#include <cuda_runtime.h>

#include <cub/device/device_radix_sort.cuh>
#include <cub/device/device_scan.cuh>

#include "cuda/claim.cuh"
#include "cuda/launch.h"
#include "cuda/vector_ops.cuh"

namespace sparsenorm {
namespace cuda {
namespace dev {
namespace {

using detail::FirstPosition;
using detail::StepHeader;
using detail::StepLaunch;
using detail::StepScratchLayout;

template <class T>
using Compute = typename Element<T>::Compute;

__device__ __forceinline__ bool Failed(const StepHeader* h) { return detail::StepFailed(*h); }

// Key bits of the sort: enough for every valid row, rows - 1. Invalid
// indices are sorted on these bits too, harmlessly: the call fails.
int KeyBits(int64_t rows) {
  int bits = 0;
  for (uint64_t v = rows > 1 ? static_cast<uint64_t>(rows - 1) : 0; v != 0; v >>= 1) ++bits;
  return bits;
}

// ---------------------------------------------------------------------------
// Checks and sort input.

__global__ void __launch_bounds__(kThreads)
    PrepareKernel(const void* indices, IndexType type, int64_t n, int64_t rows, void* keys,
                  int64_t* positions, FirstPosition* bad) {
  unsigned long long first = 0;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride) {
    const long long r = detail::LoadIndex(indices, type, i);
    if (detail::OutOfRange(r, rows)) {
      const unsigned long long key = FirstPosition::KeyOf(i);
      first = key > first ? key : first;
    }
    if (type == IndexType::kInt32) {
      static_cast<uint32_t*>(keys)[i] = static_cast<uint32_t>(r);
    } else {
      static_cast<uint64_t*>(keys)[i] = static_cast<uint64_t>(r);
    }
    positions[i] = i;
  }
  if (first != 0) atomicMax(&bad->key, first);
}

// kError: the first gradient row holding NaN or infinity (every row, as the
// CPU checks them, before anything is written).
template <class Tr>
__global__ void __launch_bounds__(kThreads)
    CheckGradientKernel(const typename Tr::Storage* grad, int64_t stride, int64_t n, int64_t cols,
                        int group, FirstPosition* nonfinite) {
  const Group g = MakeGroup(group);
  for (int64_t i = GroupId(group); i < n; i += GroupCount(group)) {
    if (!VectorFinite<Tr, 1>(grad + i * stride, cols, g) && g.lane == 0) {
      atomicMax(&nonfinite->key, FirstPosition::KeyOf(i));
    }
  }
}

// ---------------------------------------------------------------------------
// Segments of the sorted list.

__global__ void __launch_bounds__(kThreads)
    HeadsKernel(const void* keys, IndexType type, int64_t n, int64_t* heads, const StepHeader* h) {
  if (Failed(h)) return;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride) {
    heads[i] = i == 0 || detail::LoadIndex(keys, type, i) != detail::LoadIndex(keys, type, i - 1);
  }
}

// `segment[i]`: the number of segments that start at or before sorted
// position i (the inclusive sum of the heads).
__global__ void __launch_bounds__(kThreads)
    SegmentsKernel(const int64_t* segment, int64_t n, int64_t* begin, StepHeader* h) {
  if (Failed(h)) return;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride) {
    if (i == 0 || segment[i] != segment[i - 1]) begin[segment[i] - 1] = i;
    if (i == n - 1) {
      begin[segment[i]] = n;
      h->distinct = static_cast<unsigned long long>(segment[i]);
    }
  }
}

// The repeat groups of each segment (0 past the last segment), whose
// exclusive sum is each segment's first slot in the partial sums.
__global__ void __launch_bounds__(kThreads)
    SlotsKernel(const int64_t* begin, int64_t n, int64_t* slots, const StepHeader* h) {
  if (Failed(h)) return;
  const auto segments = static_cast<int64_t>(h->distinct);
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t s = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; s < n; s += stride) {
    slots[s] = s < segments ? detail::RepeatGroupsOf(begin[s + 1] - begin[s]) : 0;
  }
}

// ---------------------------------------------------------------------------
// Gradient sums.

// The gradient rows at positions[0 .. count) of the sorted list.
template <class S>
struct PositionRows {
  using Storage = S;
  const S* grad;
  int64_t stride;
  const int64_t* positions;
  __device__ __forceinline__ const S* operator()(int64_t i) const { return grad + positions[i] * stride; }
};

// Rows `stride` elements apart: a dense gradient's row, a segment's partial sums.
template <class S>
struct DirectRows {
  using Storage = S;
  const S* first;
  int64_t stride;
  __device__ __forceinline__ const S* operator()(int64_t i) const { return first + i * stride; }
};

// Into acc[t], for the lane's columns j = j0 + lane + t * G (t <
// kStepCache, j < cols): rows(0)[j] + rows(1)[j] + ... + rows(count - 1)[j],
// widened to C and added in that order. count >= 1.
template <class C, class Rows>
__device__ __forceinline__ void SumColumns(const Rows& rows, int64_t count, int64_t cols, int64_t j0,
                                           const Group& g, C (&acc)[num::kStepCache]) {
  using S = typename Rows::Storage;
  for (int64_t i = 0; i < count; ++i) {
    const S* row = rows(i);
#pragma unroll
    for (int t = 0; t < num::kStepCache; ++t) {
      const int64_t j = j0 + g.lane + static_cast<int64_t>(t) * g.size;
      if (j < cols) {
        const C x = static_cast<C>(Element<S>::Widen(row[j]));
        acc[t] = i == 0 ? x : acc[t] + x;
      }
    }
  }
}

// Each repeat group of the segments longer than one group, summed into its
// slot: the first sorted position of a group is the segment's start plus a
// multiple of kRepeatGroupSize.
template <class G>
__global__ void __launch_bounds__(kThreads)
    PartialsKernel(const G* grad, int64_t grad_stride, int64_t cols, int group, int64_t n,
                   const int64_t* positions, const int64_t* segment, const int64_t* begin,
                   const int64_t* slots, Compute<G>* partials, const StepHeader* h) {
  using C = Compute<G>;
  if (Failed(h)) return;
  const Group g = MakeGroup(group);
  for (int64_t i = GroupId(group); i < n; i += GroupCount(group)) {
    const int64_t s = segment[i] - 1;
    const int64_t b = begin[s], e = begin[s + 1];
    if (e - b <= kRepeatGroupSize || (i - b) % kRepeatGroupSize != 0) continue;
    const int64_t count = e - i < kRepeatGroupSize ? e - i : kRepeatGroupSize;
    C* out = partials + (slots[s] + (i - b) / kRepeatGroupSize) * cols;
    const PositionRows<G> rows{grad, grad_stride, positions + i};
    for (int64_t j0 = 0; j0 < cols; j0 += static_cast<int64_t>(g.size) * num::kStepCache) {
      C acc[num::kStepCache];
      SumColumns<C>(rows, count, cols, j0, g, acc);
#pragma unroll
      for (int t = 0; t < num::kStepCache; ++t) {
        const int64_t j = j0 + g.lane + static_cast<int64_t>(t) * g.size;
        if (j < cols) out[j] = acc[t];
      }
    }
  }
}

// ---------------------------------------------------------------------------
// The update.

struct UpdateArgs {
  detail::StepArrayArg table;
  detail::StepArrayArg state[2];
  const void* grad;
  int64_t grad_stride;
  int64_t rows;
  int64_t cols;
  int group;
  StepRule rule;
  bool has_constraint;
  NormRule constraint;
  bool stochastic;
  uint64_t seed;
  int64_t step;
  // The report (FinishStepHeader).
  const void* indices;
  IndexType index_type;
  int64_t n;
  // Sparse: the sorted keys (index_type wide), positions, segment starts,
  // first slots and partial sums. Dense: gradient row r is table row r.
  bool dense;
  const void* keys;
  const int64_t* positions;
  const int64_t* begin;
  const int64_t* slots;
  const void* partials;
};

// Where one row's gradient comes from, and its sum over a chunk of columns.
template <class G>
struct RowGradient {
  using C = Compute<G>;
  const UpdateArgs* a;
  int64_t first;  // dense: the row; sparse: the segment's first sorted position
  int64_t count;  // occurrences (1 for a dense gradient)
  int64_t slot;   // the first partial sum, when count > kRepeatGroupSize

  __device__ __forceinline__ void Sum(int64_t j0, const Group& g, C (&acc)[num::kStepCache]) const {
    const G* grad = static_cast<const G*>(a->grad);
    if (a->dense) {
      SumColumns<C>(DirectRows<G>{grad + first * a->grad_stride, a->grad_stride}, 1, a->cols, j0, g, acc);
    } else if (count <= kRepeatGroupSize) {
      SumColumns<C>(PositionRows<G>{grad, a->grad_stride, a->positions + first}, count, a->cols, j0, g, acc);
    } else {
      const C* p = static_cast<const C*>(a->partials) + slot * a->cols;
      SumColumns<C>(DirectRows<C>{p, a->cols}, detail::RepeatGroupsOf(count), a->cols, j0, g, acc);
    }
  }
};

// One table row: the rule over every column (pass 1; row-wise Adagrad needs
// its row sum first, then a pass for w'), the checks and the norm, then the
// stores (pass 2), which compute each element again from the same inputs:
// the same bits, with nothing held but the first chunk's gradient.
template <class T, class G>
__device__ __forceinline__ Outcome UpdateRow(const UpdateArgs& a, int64_t row, const RowGradient<G>& src,
                                             const Group& g) {
  using C = Compute<T>;
  constexpr int K = num::kStepCache;
  const int64_t chunk = static_cast<int64_t>(g.size) * K;
  const StepRule& rule = a.rule;
  const StepCoefficients<C>& k = CoefficientsOf<C>(rule);
  const bool rowwise = HasRowState(rule.kind);
  const int element_states = ElementStateCount(rule.kind);
  T* w_row = static_cast<T*>(a.table.data) + row * a.table.stride;
  C* s0 = a.state[0].data != nullptr ? static_cast<C*>(a.state[0].data) + row * a.state[0].stride : nullptr;
  C* s1 = a.state[1].data != nullptr ? static_cast<C*>(a.state[1].data) + row * a.state[1].stride : nullptr;

  C cached[K];
  src.Sum(0, g, cached);
  // The gradient of the lane's columns of the chunk at j0.
  auto gradient = [&](int64_t j0, C (&out)[K]) {
    if (j0 == 0) {
#pragma unroll
      for (int t = 0; t < K; ++t) out[t] = cached[t];
    } else {
      src.Sum(j0, g, out);
    }
  };
  auto column = [&](int64_t j0, int t) { return j0 + g.lane + static_cast<int64_t>(t) * g.size; };

  RowWiseFactors<C> f{C(0), C(0), C(1)};
  // Element j's update from its summed gradient gj (row-wise: once f is known).
  auto update = [&](int64_t j, C gj) -> num::UpdatedElement<C> {
    const C w = Element<T>::Widen(w_row[j]);
    if (rowwise) {
      const C x = RowWiseElement<C>(w, gj, f);
      return num::UpdatedElement<C>{x, C(0), C(0), num::IsFinite(x)};
    }
    return num::UpdateElement<C>(rule, w, gj, element_states > 0 ? s0[j] : C(0),
                                 element_states > 1 ? s1[j] : C(0));
  };

  bool finite = true;
  auto acc = num::ZeroAcc(C());
  const NormKind norm_kind = a.constraint.kind;
  if (rowwise) {
    C squares = C(0);
    for (int64_t j0 = 0; j0 < a.cols; j0 += chunk) {
      C gc[K];
      gradient(j0, gc);
#pragma unroll
      for (int t = 0; t < K; ++t) {
        const int64_t j = column(j0, t);
        if (j < a.cols) {
          squares = squares + RowWiseSquare<C>(Element<T>::Widen(w_row[j]), gc[t], rule.decay, k);
          finite = finite && num::IsFinite(gc[t]);
        }
      }
    }
    f = RowWiseRow<C>(s0[0], GroupSum(squares, g), rule.decay, k);
    finite = finite && num::IsFinite(f.sum);
  }
  for (int64_t j0 = 0; j0 < a.cols; j0 += chunk) {
    C gc[K];
    gradient(j0, gc);
#pragma unroll
    for (int t = 0; t < K; ++t) {
      const int64_t j = column(j0, t);
      if (j < a.cols) {
        const num::UpdatedElement<C> e = update(j, gc[t]);
        finite = finite && e.finite;
        if (a.has_constraint) num::Accumulate(acc, e.w, norm_kind);
      }
    }
  }
  // Every lane of the group has read what it needs of the row's state
  // before any lane writes (the row-wise sum is read by all of them).
  if (!__all_sync(g.mask, finite)) return Outcome::kNonFinite;

  Scale scale = LeaveScale();
  if (a.has_constraint) {
    acc = GroupReduce(acc, g);
    const num::FastNorm fast = num::FinishFast(acc, norm_kind);
    double norm = fast.value;
    if (fast.fallback) {
      const double m = num::AccMax(acc);
      double sum = 0.0;
      for (int64_t j0 = 0; j0 < a.cols; j0 += chunk) {
        C gc[K];
        gradient(j0, gc);
#pragma unroll
        for (int t = 0; t < K; ++t) {
          const int64_t j = column(j0, t);
          if (j < a.cols) {
            sum = sum + ScaledTerm(static_cast<double>(update(j, gc[t]).w), m, norm_kind, a.constraint.p);
          }
        }
      }
      norm = FinishScaled(m, GroupSum(sum, g), norm_kind, a.constraint.p);
    }
    scale = Decide(norm, fast.finite, a.constraint);
  }

  const uint32_t key = a.stochastic ? stochastic::RowKey(a.seed, a.step, row) : 0u;
  for (int64_t j0 = 0; j0 < a.cols; j0 += chunk) {
    C gc[K];
    gradient(j0, gc);
#pragma unroll
    for (int t = 0; t < K; ++t) {
      const int64_t j = column(j0, t);
      if (j < a.cols) {
        const num::UpdatedElement<C> e = update(j, gc[t]);
        if (element_states > 0) s0[j] = e.s0;
        if (element_states > 1) s1[j] = e.s1;
        w_row[j] = num::StoreElement<T>(e.w, scale, a.stochastic, key, j);
      }
    }
  }
  if (rowwise && g.lane == 0) s0[0] = f.sum;
  return scale.action == Action::kScale ? Outcome::kScaled : Outcome::kLeft;
}

template <class T, class G>
__global__ void __launch_bounds__(kThreads) UpdateKernel(UpdateArgs a, StepHeader* h) {
  if (blockIdx.x == 0 && threadIdx.x == 0) detail::FinishStepHeader(a.indices, a.index_type, a.n, a.rows, h);
  // As the CPU: a row of no columns has nothing to update (it is counted
  // among the distinct rows all the same).
  if (Failed(h) || a.cols == 0) return;
  const int64_t segments = a.dense ? a.rows : static_cast<int64_t>(h->distinct);
  const Group g = MakeGroup(a.group);
  unsigned long long scaled = 0, nonfinite = 0;
  for (int64_t s = GroupId(a.group); s < segments; s += GroupCount(a.group)) {
    RowGradient<G> src{&a, s, 1, 0};
    int64_t row = s;
    if (!a.dense) {
      src.first = a.begin[s];
      src.count = a.begin[s + 1] - src.first;
      src.slot = a.slots[s];
      row = detail::LoadIndex(a.keys, a.index_type, src.first);
    }
    const Outcome o = UpdateRow<T, G>(a, row, src, g);
    if (g.lane == 0) {
      scaled += o == Outcome::kScaled;
      nonfinite += o == Outcome::kNonFinite;
    }
  }
  const unsigned long long local[4] = {scaled, nonfinite, 0, 0};
  unsigned long long* const global[4] = {&h->scaled, &h->nonfinite_rows, nullptr, nullptr};
  FlushCounts(local, global);
}

// ---------------------------------------------------------------------------
// Launch.

template <class Key>
cudaError_t SortQuery(int64_t n, int bits, size_t* bytes) {
  cub::DoubleBuffer<Key> keys(nullptr, nullptr);
  cub::DoubleBuffer<int64_t> values(nullptr, nullptr);
  return cub::DeviceRadixSort::SortPairs(nullptr, *bytes, keys, values, n, 0, bits);
}

// Sorts the pairs; *keys and *values then point at the sorted ones, and
// *spare at the value buffer the sort no longer needs.
template <class Key>
cudaError_t Sort(const StepLaunch& job, const StepScratchLayout& l, void** keys, int64_t** values,
                 int64_t** spare) {
  auto* base = static_cast<unsigned char*>(job.scratch);
  cub::DoubleBuffer<Key> k(reinterpret_cast<Key*>(base + l.keys_offset[0]), reinterpret_cast<Key*>(base + l.keys_offset[1]));
  cub::DoubleBuffer<int64_t> v(reinterpret_cast<int64_t*>(base + l.values_offset[0]),
                               reinterpret_cast<int64_t*>(base + l.values_offset[1]));
  const int bits = KeyBits(job.rows);
  // With no key bits (a table of one row) every valid key is 0: the list
  // is sorted as it stands.
  if (bits > 0) {
    size_t bytes = l.temp_bytes;
    const cudaError_t e = cub::DeviceRadixSort::SortPairs(base + l.temp_offset, bytes, k, v, job.num_indices, 0,
                                                          bits, static_cast<cudaStream_t>(job.stream));
    if (e != cudaSuccess) return e;
  }
  *keys = k.Current();
  *values = v.Current();
  *spare = v.Alternate();
  return cudaSuccess;
}

template <class T, class G>
cudaError_t LaunchTyped(const StepLaunch& job, const StepScratchLayout& l) {
  using C = Compute<T>;
  cudaStream_t stream = static_cast<cudaStream_t>(job.stream);
  auto* base = static_cast<unsigned char*>(job.scratch);
  auto* header = reinterpret_cast<StepHeader*>(base);
  const int64_t n = job.num_indices;
  const int group = num::StepGroupSize(job.cols);

  cudaError_t e = cudaMemsetAsync(base, 0, detail::kHeaderBytes, stream);
  if (e != cudaSuccess) return e;

  if (job.nonfinite_error && n > 0) {
    using Tr = num::DeviceTraits<G>;
    CheckGradientKernel<Tr><<<GridFor(CheckGradientKernel<Tr>, n * group), kThreads, 0, stream>>>(
        static_cast<const G*>(job.grad), job.grad_stride, n, job.cols, group, &header->nonfinite);
  }

  UpdateArgs a{};
  a.table = job.table;
  a.state[0] = job.state[0];
  a.state[1] = job.state[1];
  a.grad = job.grad;
  a.grad_stride = job.grad_stride;
  a.rows = job.rows;
  a.cols = job.cols;
  a.group = group;
  a.rule = job.rule;
  a.has_constraint = job.has_constraint;
  a.constraint = job.constraint;
  a.stochastic = job.stochastic;
  a.seed = job.seed;
  a.step = job.step;
  a.indices = job.indices;
  a.index_type = job.index_type;
  a.n = n;
  a.dense = job.dense();
  // The update kernel's loop runs over the segments, which the device
  // counts: the grid is sized for as many as there can be.
  int64_t segments_at_most = job.rows;

  if (!job.dense()) {
    segments_at_most = n;
    if (n > 0) {
      PrepareKernel<<<GridFor(PrepareKernel, n), kThreads, 0, stream>>>(
          job.indices, job.index_type, n, job.rows, base + l.keys_offset[0],
          reinterpret_cast<int64_t*>(base + l.values_offset[0]), &header->bad);
      void* keys = nullptr;
      int64_t* positions = nullptr;
      int64_t* segment = nullptr;  // the heads, then the segment numbers
      e = job.index_type == IndexType::kInt32 ? Sort<uint32_t>(job, l, &keys, &positions, &segment)
                                              : Sort<uint64_t>(job, l, &keys, &positions, &segment);
      if (e != cudaSuccess) return e;
      auto* begin = reinterpret_cast<int64_t*>(base + l.begin_offset);
      auto* slots = reinterpret_cast<int64_t*>(base + l.slot_offset);
      auto* partials = reinterpret_cast<C*>(base + l.partial_offset);
      void* temp = base + l.temp_offset;
      size_t temp_bytes = l.temp_bytes;

      HeadsKernel<<<GridFor(HeadsKernel, n), kThreads, 0, stream>>>(keys, job.index_type, n, segment, header);
      e = cub::DeviceScan::InclusiveSum(temp, temp_bytes, segment, n, stream);
      if (e != cudaSuccess) return e;
      SegmentsKernel<<<GridFor(SegmentsKernel, n), kThreads, 0, stream>>>(segment, n, begin, header);
      SlotsKernel<<<GridFor(SlotsKernel, n), kThreads, 0, stream>>>(begin, n, slots, header);
      temp_bytes = l.temp_bytes;
      e = cub::DeviceScan::ExclusiveSum(temp, temp_bytes, slots, n, stream);
      if (e != cudaSuccess) return e;
      if (l.partial_rows > 0) {
        PartialsKernel<G><<<GridFor(PartialsKernel<G>, n * group), kThreads, 0, stream>>>(
            static_cast<const G*>(job.grad), job.grad_stride, job.cols, group, n, positions, segment, begin, slots,
            partials, header);
      }
      a.keys = keys;
      a.positions = positions;
      a.begin = begin;
      a.slots = slots;
      a.partials = partials;
    }
  }
  UpdateKernel<T, G><<<GridFor(UpdateKernel<T, G>, segments_at_most * group), kThreads, 0, stream>>>(a, header);
  return cudaGetLastError();
}

}  // namespace
}  // namespace dev

namespace detail {

int StepLayout(const StepLaunch& job, StepScratchLayout* layout) {
  StepScratchLayout l{};
  size_t offset = kHeaderBytes;
  const int64_t n = job.num_indices;
  if (!job.dense() && n > 0) {
    const size_t key_size = job.index_type == IndexType::kInt32 ? 4 : 8;
    const size_t count = static_cast<size_t>(n);
    for (int i = 0; i < 2; ++i) {
      l.keys_offset[i] = offset;
      offset += AlignUp(count * key_size);
    }
    for (int i = 0; i < 2; ++i) {
      l.values_offset[i] = offset;
      offset += AlignUp(count * sizeof(int64_t));
    }
    l.begin_offset = offset;
    offset += AlignUp((count + 1) * sizeof(int64_t));
    l.slot_offset = offset;
    offset += AlignUp((count + 1) * sizeof(int64_t));
    l.partial_offset = offset;
    l.partial_rows = MaxRepeatGroups(n);
    const size_t arithmetic = job.dtype == DType::kFloat64 ? 8 : 4;
    offset += AlignUp(static_cast<size_t>(l.partial_rows) * static_cast<size_t>(job.cols) * arithmetic);

    size_t sort_bytes = 0, inclusive_bytes = 0, exclusive_bytes = 0;
    const int bits = dev::KeyBits(job.rows);
    cudaError_t e = key_size == 4 ? dev::SortQuery<uint32_t>(n, bits, &sort_bytes)
                                  : dev::SortQuery<uint64_t>(n, bits, &sort_bytes);
    if (e == cudaSuccess) e = cub::DeviceScan::InclusiveSum(nullptr, inclusive_bytes, static_cast<int64_t*>(nullptr), n);
    if (e == cudaSuccess) e = cub::DeviceScan::ExclusiveSum(nullptr, exclusive_bytes, static_cast<int64_t*>(nullptr), n);
    if (e != cudaSuccess) return e;
    l.temp_offset = offset;
    l.temp_bytes = std::max(sort_bytes, std::max(inclusive_bytes, exclusive_bytes));
    offset += AlignUp(l.temp_bytes);
  }
  l.total = offset;
  *layout = l;
  return cudaSuccess;
}

int LaunchStep(const StepLaunch& job) {
  StepScratchLayout l;
  if (const int e = StepLayout(job, &l); e != cudaSuccess) return e;
  cudaError_t e = cudaErrorInvalidValue;
  // The gradient is the table's storage type or its arithmetic type.
  VisitDType(job.dtype, [&](auto t) {
    using T = TypeOf<decltype(t)>;
    using C = typename Element<T>::Compute;
    if (job.grad_dtype == job.dtype) {
      e = dev::LaunchTyped<T, T>(job, l);
    } else if constexpr (!std::is_same_v<T, C>) {
      e = dev::LaunchTyped<T, C>(job, l);
    }
  });
  return e;
}

}  // namespace detail
}  // namespace cuda
}  // namespace sparsenorm
