// The matrix normalization on the device. One call enqueues, on the
// caller's stream and without waiting:
//
//   memset      header, subset bitmap and per-vector accumulators;
//   [subset]    ClaimKernel: range check and deduplication of the subset;
//   [sparse]    structure checks: index pointers, index ranges, canonical
//               order (which is also what rules out duplicate coordinates);
//   norms       by path (the front end's MatrixPath):
//                 contiguous   a group of lanes per vector (dense rows, CSR
//                              rows, CSC columns), as the row operator;
//                 dense cols   per (row chunk, column) partial sums, folded in
//                              chunk order, then a second chunked pass in
//                              float64 for the columns that need the scaled
//                              fallback;
//                 scattered    per entry: atomicMax of |x| per vector, then
//                              the exact fixed-point sum of (|x| / max)^p,
//                              then one thread per vector for the scale;
//   apply       every kernel that writes caller data first reads the header
//               and exits when any check failed, NaN/inf under kError
//               included, so a failed call modifies nothing;
//   [prune]     dense: fused with the apply; sparse: tile counts, a scan,
//               a stable scatter into scratch, index pointers rebuilt, the
//               kept entries copied back;
//   finish      one thread fills in the offending values for the report.
//
// Every sum has a fixed order or is an integer sum, so results are
// bit-for-bit reproducible.

#include <cuda_runtime.h>

#include <algorithm>

#include "cuda/claim.cuh"
#include "cuda/launch.h"
#include "cuda/vector_ops.cuh"

namespace sparsenorm {
namespace cuda {
namespace dev {
namespace {

using detail::Format;
using detail::MatrixHeader;

constexpr int kPruneItems = 16;  // entries per thread in the pruning tiles
constexpr int64_t kPruneTile = static_cast<int64_t>(kThreads) * kPruneItems;

__device__ __forceinline__ unsigned long long Key(int64_t position) {
  return detail::FirstPosition::KeyOf(position);
}

__device__ __forceinline__ bool HasError(const MatrixHeader* h, bool coo) {
  return detail::AnyCheckFailed(*h, coo);
}

__device__ __forceinline__ int64_t GlobalThread() {
  return static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
}
__device__ __forceinline__ int64_t ThreadCount() {
  return static_cast<int64_t>(gridDim.x) * blockDim.x;
}

__device__ __forceinline__ void Flush(unsigned long long a, unsigned long long* ga,
                                      unsigned long long b = 0, unsigned long long* gb = nullptr,
                                      unsigned long long c = 0, unsigned long long* gc = nullptr,
                                      unsigned long long d = 0, unsigned long long* gd = nullptr) {
  const unsigned long long local[4] = {a, b, c, d};
  unsigned long long* const global[4] = {ga, gb, gc, gd};
  FlushCounts(local, global);
}

// ---------------------------------------------------------------------------
// Structure checks.

template <class I>
__global__ void __launch_bounds__(kThreads)
    ValidateIndptrKernel(const I* __restrict__ indptr, int64_t segments, int64_t nnz,
                         MatrixHeader* header) {
  for (int64_t i = GlobalThread(); i <= segments; i += ThreadCount()) {
    const long long v = static_cast<long long>(indptr[i]);
    if (i == 0 && v != 0) header->check[detail::kCheckIndptrStart].key = Key(0);
    if (i > 0 && v < static_cast<long long>(indptr[i - 1])) {
      atomicMax(&header->check[detail::kCheckIndptrDecrease].key, Key(i));
    }
    if (i == segments && v != nnz) header->check[detail::kCheckIndptrEnd].key = Key(i);
  }
}

template <class I>
__global__ void __launch_bounds__(kThreads)
    ValidateMinorKernel(const I* __restrict__ indices, int64_t nnz, int64_t limit,
                        MatrixHeader* header) {
  unsigned long long bad = 0;
  for (int64_t k = GlobalThread(); k < nnz; k += ThreadCount()) {
    const long long v = static_cast<long long>(indices[k]);
    if (static_cast<unsigned long long>(v) >= static_cast<unsigned long long>(limit)) {
      bad = Key(k) > bad ? Key(k) : bad;
    }
  }
  if (bad != 0) atomicMax(&header->check[detail::kCheckMinorIndex].key, bad);
}

// Within each segment, indices must strictly increase: then no coordinate
// repeats. Runs only on valid index pointers.
template <class I>
__global__ void __launch_bounds__(kThreads)
    ValidateSortedKernel(const I* __restrict__ indptr, const I* __restrict__ indices,
                         int64_t segments, int group, MatrixHeader* header) {
  if (header->check[detail::kCheckIndptrStart].found() || header->check[detail::kCheckIndptrDecrease].found() ||
      header->check[detail::kCheckIndptrEnd].found()) {
    return;
  }
  const Group g = MakeGroup(group);
  for (int64_t s = GroupId(group); s < segments; s += GroupCount(group)) {
    const int64_t begin = static_cast<int64_t>(indptr[s]);
    const int64_t end = static_cast<int64_t>(indptr[s + 1]);
    for (int64_t k = begin + 1 + g.lane; k < end; k += g.size) {
      if (!(indices[k - 1] < indices[k])) {
        atomicMax(&header->check[detail::kCheckUnsorted].key, Key(k));
      }
    }
  }
}

template <class I>
__global__ void __launch_bounds__(kThreads)
    ValidateCooKernel(const I* __restrict__ row, const I* __restrict__ col, int64_t nnz,
                      int64_t rows, int64_t cols, MatrixHeader* header) {
  unsigned long long bad_row = 0, bad_col = 0, row_major = 0, col_major = 0;
  for (int64_t k = GlobalThread(); k < nnz; k += ThreadCount()) {
    const long long r = static_cast<long long>(row[k]);
    const long long c = static_cast<long long>(col[k]);
    const unsigned long long key = Key(k);
    if (static_cast<unsigned long long>(r) >= static_cast<unsigned long long>(rows)) bad_row = key > bad_row ? key : bad_row;
    if (static_cast<unsigned long long>(c) >= static_cast<unsigned long long>(cols)) bad_col = key > bad_col ? key : bad_col;
    if (k > 0) {
      const long long pr = static_cast<long long>(row[k - 1]);
      const long long pc = static_cast<long long>(col[k - 1]);
      if (!(pr < r || (pr == r && pc < c))) row_major = key > row_major ? key : row_major;
      if (!(pc < c || (pc == c && pr < r))) col_major = key > col_major ? key : col_major;
    }
  }
  if (bad_row != 0) atomicMax(&header->check[detail::kCheckMinorIndex].key, bad_row);
  if (bad_col != 0) atomicMax(&header->check[detail::kCheckCooCol].key, bad_col);
  if (row_major != 0) atomicMax(&header->check[detail::kCheckUnsorted].key, row_major);
  if (col_major != 0) atomicMax(&header->coo_colmajor.key, col_major);
}

// ---------------------------------------------------------------------------
// Contiguous vectors: dense rows, CSR rows, CSC columns.

template <class S>
struct DenseLocator {
  S* base;
  int64_t stride;
  int64_t cols;
  __device__ __forceinline__ S* Start(int64_t v) const { return base + v * stride; }
  __device__ __forceinline__ int64_t Length(int64_t) const { return cols; }
};

template <class S, class I>
struct SparseLocator {
  S* base;
  const I* indptr;
  __device__ __forceinline__ S* Start(int64_t v) const { return base + static_cast<int64_t>(indptr[v]); }
  __device__ __forceinline__ int64_t Length(int64_t v) const {
    return static_cast<int64_t>(indptr[v + 1]) - static_cast<int64_t>(indptr[v]);
  }
};

// The tasks of the contiguous path: every vector, or the owned positions of
// the subset list.
struct Tasks {
  int64_t count;
  const void* subset;  // null: task t is vector t
  IndexType subset_type;
  const unsigned char* owner;
  __device__ __forceinline__ int64_t Vector(int64_t t) const {
    if (subset == nullptr) return t;
    return owner[t] ? detail::LoadIndex(subset, subset_type, t) : -1;
  }
};

template <class Tr, int kVec, class Loc>
__global__ void __launch_bounds__(kThreads)
    ContiguousCheckKernel(Loc loc, Tasks tasks, int group, bool coo, MatrixHeader* header) {
  if (HasError(header, coo)) return;
  const Group g = MakeGroup(group);
  for (int64_t t = GroupId(group); t < tasks.count; t += GroupCount(group)) {
    const int64_t v = tasks.Vector(t);
    if (v < 0) continue;
    if (!VectorFinite<Tr, kVec>(loc.Start(v), loc.Length(v), g) && g.lane == 0) {
      atomicMax(&header->check[detail::kCheckNonFinite].key, Key(v));
    }
  }
}

template <class Tr, int kVec, class Loc>
__global__ void __launch_bounds__(kThreads, kVectorBlocksPerSM)
    ContiguousKernel(Loc loc, Tasks tasks, int group, NormRule prm, bool coo,
                     MatrixHeader* header) {
  if (HasError(header, coo)) return;
  const Group g = MakeGroup(group);
  unsigned long long scaled = 0, zero = 0, nonfinite = 0;
  for (int64_t t = GroupId(group); t < tasks.count; t += GroupCount(group)) {
    const int64_t v = tasks.Vector(t);
    if (v < 0) continue;
    typename Tr::Storage* p = loc.Start(v);
    const Outcome o = ProcessVector<Tr, kVec>(p, p, loc.Length(v), g, prm);
    if (g.lane == 0) {
      scaled += o == Outcome::kScaled;
      zero += o == Outcome::kZero;
      nonfinite += o == Outcome::kNonFinite;
    }
  }
  Flush(scaled, &header->scaled, zero, &header->zero, nonfinite, &header->nonfinite);
}

// ---------------------------------------------------------------------------
// Columns of a dense row-major matrix.

struct DenseArgs {
  void* values;
  int64_t rows;
  int64_t cols;
  int64_t stride;
  int64_t chunk_rows;
  int64_t chunks;
};

template <class Tr>
__global__ void __launch_bounds__(kThreads)
    DenseColumnPartialKernel(DenseArgs a, typename Tr::Acc* partial, NormKind kind, bool coo,
                             MatrixHeader* header) {
  if (HasError(header, coo)) return;
  using S = typename Tr::Storage;
  const S* x = static_cast<const S*>(a.values);
  for (int64_t t = GlobalThread(); t < a.chunks * a.cols; t += ThreadCount()) {
    const int64_t chunk = t / a.cols;
    const int64_t c = t - chunk * a.cols;
    const int64_t end = min(a.rows, (chunk + 1) * a.chunk_rows);
    auto acc = num::ZeroAcc(typename Tr::Compute());
    for (int64_t r = chunk * a.chunk_rows; r < end; ++r) num::Accumulate(acc, Tr::Widen(x[r * a.stride + c]), kind);
    partial[t] = acc;
  }
}

struct VectorState {
  unsigned long long* max_key;  // scattered: max |x| key; dense columns: fallback m (as bits)
  unsigned long long* sums;     // scattered: 128-bit fixed sums (lo, hi)
  Scale* scales;
  const unsigned* bitmap;       // subset marks, or null
};

__device__ __forceinline__ void Count(Action action, double norm, unsigned long long& scaled,
                                      unsigned long long& zero, unsigned long long& nonfinite) {
  scaled += action == Action::kScale;
  nonfinite += action == Action::kNonFinite;
  zero += action != Action::kNonFinite && norm == 0.0;
}

template <class Tr>
__global__ void __launch_bounds__(kThreads)
    DenseColumnFinishKernel(DenseArgs a, const typename Tr::Acc* partial, VectorState st,
                            NormRule prm, bool nonfinite_error, bool coo, MatrixHeader* header) {
  if (HasError(header, coo)) return;
  unsigned long long scaled = 0, zero = 0, nonfinite = 0;
  for (int64_t c = GlobalThread(); c < a.cols; c += ThreadCount()) {
    st.max_key[c] = 0;
    const Scale leave = LeaveScale();
    if (st.bitmap != nullptr && !BitSet(st.bitmap, c)) {
      st.scales[c] = leave;
      continue;
    }
    // No chunk at all when the matrix has no rows: every column is empty.
    auto acc = a.chunks > 0 ? partial[c] : num::ZeroAcc(typename Tr::Compute());
    for (int64_t chunk = 1; chunk < a.chunks; ++chunk) acc = num::Combine(acc, partial[chunk * a.cols + c]);
    const num::FastNorm fast = num::FinishFast(acc, prm.kind);
    if (fast.fallback) {
      // Decided by the float64 pass that follows.
      st.max_key[c] = numerics::DoubleBits(num::AccMax(acc));
      st.scales[c] = leave;
      continue;
    }
    const Scale s = Decide(fast.value, fast.finite, prm);
    st.scales[c] = s;
    Count(s.action, fast.value, scaled, zero, nonfinite);
    if (!fast.finite && nonfinite_error) atomicMax(&header->check[detail::kCheckNonFinite].key, Key(c));
  }
  Flush(scaled, &header->scaled, zero, &header->zero, nonfinite, &header->nonfinite);
}

template <class Tr>
__global__ void __launch_bounds__(kThreads)
    DenseColumnScaledPartialKernel(DenseArgs a, const unsigned long long* fallback_m, double* partial,
                                   NormRule prm, bool coo, MatrixHeader* header) {
  if (HasError(header, coo)) return;
  using S = typename Tr::Storage;
  const S* x = static_cast<const S*>(a.values);
  for (int64_t t = GlobalThread(); t < a.chunks * a.cols; t += ThreadCount()) {
    const int64_t chunk = t / a.cols;
    const int64_t c = t - chunk * a.cols;
    if (fallback_m[c] == 0) continue;
    const double m = numerics::BitsToDouble(fallback_m[c]);
    const int64_t end = min(a.rows, (chunk + 1) * a.chunk_rows);
    double s = 0.0;
    for (int64_t r = chunk * a.chunk_rows; r < end; ++r) {
      s = s + ScaledTerm(static_cast<double>(Tr::Widen(x[r * a.stride + c])), m, prm.kind, prm.p);
    }
    partial[t] = s;
  }
}

__global__ void __launch_bounds__(kThreads)
    DenseColumnFinish2Kernel(DenseArgs a, const double* partial, VectorState st, NormRule prm,
                             bool coo, MatrixHeader* header) {
  if (HasError(header, coo)) return;
  unsigned long long scaled = 0, zero = 0, nonfinite = 0;
  for (int64_t c = GlobalThread(); c < a.cols; c += ThreadCount()) {
    if (st.max_key[c] == 0) continue;
    const double m = numerics::BitsToDouble(st.max_key[c]);
    double s = partial[c];
    for (int64_t chunk = 1; chunk < a.chunks; ++chunk) s = s + partial[chunk * a.cols + c];
    const double norm = FinishScaled(m, s, prm.kind, prm.p);
    const Scale sc = Decide(norm, true, prm);
    st.scales[c] = sc;
    Count(sc.action, norm, scaled, zero, nonfinite);
  }
  Flush(scaled, &header->scaled, zero, &header->zero, nonfinite, &header->nonfinite);
}

// One warp per row, lanes over the columns: every element once, scaled by
// its column's factor (when `scales` is set) and pruned.
template <class Tr>
__global__ void __launch_bounds__(kThreads)
    DenseApplyKernel(DenseArgs a, const Scale* __restrict__ scales, double prune_below, bool coo,
                     MatrixHeader* header) {
  if (HasError(header, coo)) return;
  using S = typename Tr::Storage;
  S* x = static_cast<S*>(a.values);
  const int lane = static_cast<int>(threadIdx.x & 31);
  const int64_t warp = GlobalThread() / 32;
  const int64_t warps = ThreadCount() / 32;
  unsigned long long pruned = 0;
  for (int64_t r = warp; r < a.rows; r += warps) {
    S* row = x + r * a.stride;
    for (int64_t c = lane; c < a.cols; c += 32) {
      const S before = row[c];
      S v = before;
      if (scales != nullptr) {
        const Scale s = scales[c];
        if (s.action == Action::kScale) v = Tr::Scaled(v, s);
      }
      if (prune_below > 0.0 && Tr::Widen(v) != 0.0f && num::BelowThreshold<Tr>(v, prune_below)) {
        v = S{};  // +0 in every storage type
        ++pruned;
      }
      if (scales != nullptr || prune_below > 0.0) {
        if (!SameBits(v, before)) row[c] = v;
      }
    }
  }
  Flush(pruned, &header->pruned);
}

// ---------------------------------------------------------------------------
// Scattered vectors: CSR columns, CSC rows, COO.

struct EntryArgs {
  void* values;
  const void* vector_of;  // per entry, its vector (column or row index)
  int64_t nnz;
};

template <class Tr, class I>
__global__ void __launch_bounds__(kThreads)
    EntryMaxKernel(EntryArgs a, VectorState st, bool coo, MatrixHeader* header) {
  if (HasError(header, coo)) return;
  const auto* x = static_cast<const typename Tr::Storage*>(a.values);
  const I* vec = static_cast<const I*>(a.vector_of);
  for (int64_t k = GlobalThread(); k < a.nnz; k += ThreadCount()) {
    const int64_t v = static_cast<int64_t>(vec[k]);
    if (st.bitmap != nullptr && !BitSet(st.bitmap, v)) continue;
    const unsigned long long key = num::MagnitudeKey(static_cast<double>(Tr::Widen(x[k])));
    // The plain read spares most atomics once the maxima have settled.
    if (key > st.max_key[v]) atomicMax(&st.max_key[v], key);
  }
}

template <class Tr, class I>
__global__ void __launch_bounds__(kThreads)
    EntrySumKernel(EntryArgs a, VectorState st, NormRule prm, bool coo, MatrixHeader* header) {
  if (HasError(header, coo)) return;
  const auto* x = static_cast<const typename Tr::Storage*>(a.values);
  const I* vec = static_cast<const I*>(a.vector_of);
  for (int64_t k = GlobalThread(); k < a.nnz; k += ThreadCount()) {
    const int64_t v = static_cast<int64_t>(vec[k]);
    if (st.bitmap != nullptr && !BitSet(st.bitmap, v)) continue;
    const unsigned long long max_key = st.max_key[v];
    if (max_key == 0 || !num::KeyFinite(max_key)) continue;
    const double t = ScaledTerm(static_cast<double>(Tr::Widen(x[k])), numerics::BitsToDouble(max_key),
                                     prm.kind, prm.p);
    const unsigned long long term = num::FixedTerm(t);
    if (term == 0) continue;
    unsigned long long* sum = st.sums + 2 * v;
    const unsigned long long old = atomicAdd(&sum[0], term);
    if (old + term < old) atomicAdd(&sum[1], 1ull);  // carry into the high word
  }
}

__global__ void __launch_bounds__(kThreads)
    VectorFinishKernel(int64_t vectors, VectorState st, NormRule prm, bool nonfinite_error,
                       bool coo, MatrixHeader* header) {
  if (HasError(header, coo)) return;
  unsigned long long scaled = 0, zero = 0, nonfinite = 0;
  for (int64_t v = GlobalThread(); v < vectors; v += ThreadCount()) {
    if (st.bitmap != nullptr && !BitSet(st.bitmap, v)) {
      st.scales[v] = LeaveScale();
      continue;
    }
    const unsigned long long max_key = st.max_key[v];
    const bool finite = num::KeyFinite(max_key);
    const double m = numerics::BitsToDouble(max_key);
    double norm = 0.0;
    if (finite && max_key != 0) {
      norm = prm.kind == NormKind::kLInf
                 ? m
                 : FinishScaled(m, num::FixedToDouble(st.sums[2 * v + 1], st.sums[2 * v]), prm.kind, prm.p);
    }
    const Scale s = Decide(norm, finite, prm);
    st.scales[v] = s;
    Count(s.action, norm, scaled, zero, nonfinite);
    if (!finite && nonfinite_error) atomicMax(&header->check[detail::kCheckNonFinite].key, Key(v));
  }
  Flush(scaled, &header->scaled, zero, &header->zero, nonfinite, &header->nonfinite);
}

template <class Tr, class I>
__global__ void __launch_bounds__(kThreads)
    EntryApplyKernel(EntryArgs a, const Scale* __restrict__ scales, bool coo, MatrixHeader* header) {
  if (HasError(header, coo)) return;
  auto* x = static_cast<typename Tr::Storage*>(a.values);
  const I* vec = static_cast<const I*>(a.vector_of);
  for (int64_t k = GlobalThread(); k < a.nnz; k += ThreadCount()) {
    const Scale s = scales[static_cast<int64_t>(vec[k])];
    if (s.action == Action::kScale) x[k] = Tr::Scaled(x[k], s);
  }
}

// ---------------------------------------------------------------------------
// Sparse pruning: a stable compaction of every entry array.

struct PruneArgs {
  void* values;
  void* index_a;  // CSR/CSC: indices; COO: row
  void* index_b;  // COO: col; else null
  void* indptr;   // CSR/CSC; else null
  int64_t segments;
  int64_t nnz;
  double tau;
  unsigned long long* tile_counts;   // per tile: kept entries, then the exclusive prefix
  long long* thread_prefix;          // per thread slot of every tile: kept entries before it
  void* tmp_values;
  void* tmp_a;
  void* tmp_b;
};

template <class Tr>
__device__ __forceinline__ bool Kept(const typename Tr::Storage* x, int64_t k, double tau) {
  return !num::BelowThreshold<Tr>(x[k], tau);
}

template <class Tr>
__global__ void __launch_bounds__(kThreads)
    PruneCountKernel(PruneArgs a, bool coo, MatrixHeader* header) {
  if (HasError(header, coo)) return;
  __shared__ unsigned long long block_kept;
  const auto* x = static_cast<const typename Tr::Storage*>(a.values);
  const int64_t tiles = (a.nnz + kPruneTile - 1) / kPruneTile;
  unsigned long long pruned = 0;
  for (int64_t tile = blockIdx.x; tile < tiles; tile += gridDim.x) {
    if (threadIdx.x == 0) block_kept = 0;
    __syncthreads();
    const int64_t begin = tile * kPruneTile + static_cast<int64_t>(threadIdx.x) * kPruneItems;
    unsigned long long kept = 0;
    for (int i = 0; i < kPruneItems; ++i) {
      const int64_t k = begin + i;
      if (k >= a.nnz) break;
      if (Kept<Tr>(x, k, a.tau)) {
        ++kept;
      } else {
        ++pruned;
      }
    }
    for (int off = 16; off > 0; off /= 2) kept += __shfl_xor_sync(0xffffffffu, kept, off);
    if ((threadIdx.x & 31) == 0) atomicAdd(&block_kept, kept);
    __syncthreads();
    if (threadIdx.x == 0) a.tile_counts[tile] = block_kept;
  }
  Flush(pruned, &header->pruned);
}

// Exclusive prefix sums of the tile counts, in place, by one block; the
// total is the kept count.
__global__ void __launch_bounds__(1024) PruneScanKernel(unsigned long long* counts, int64_t tiles, bool coo,
                                                        MatrixHeader* header) {
  if (HasError(header, coo)) return;
  __shared__ unsigned long long warp_sums[32];
  __shared__ unsigned long long carry;
  if (threadIdx.x == 0) carry = 0;
  __syncthreads();
  const int lane = threadIdx.x & 31;
  const int warp = threadIdx.x >> 5;
  for (int64_t base = 0; base < tiles; base += blockDim.x) {
    const int64_t i = base + threadIdx.x;
    const unsigned long long v = i < tiles ? counts[i] : 0;
    unsigned long long inclusive = v;
    for (int off = 1; off < 32; off *= 2) {
      const unsigned long long y = __shfl_up_sync(0xffffffffu, inclusive, off);
      if (lane >= off) inclusive += y;
    }
    if (lane == 31) warp_sums[warp] = inclusive;
    __syncthreads();
    if (warp == 0) {
      unsigned long long w = lane < static_cast<int>(blockDim.x >> 5) ? warp_sums[lane] : 0;
      for (int off = 1; off < 32; off *= 2) {
        const unsigned long long y = __shfl_up_sync(0xffffffffu, w, off);
        if (lane >= off) w += y;
      }
      warp_sums[lane] = w;  // inclusive over warps
    }
    __syncthreads();
    const unsigned long long before_warp = warp > 0 ? warp_sums[warp - 1] : 0;
    if (i < tiles) counts[i] = carry + before_warp + inclusive - v;
    __syncthreads();
    if (threadIdx.x == blockDim.x - 1) carry += warp_sums[(blockDim.x >> 5) - 1];
    __syncthreads();
  }
  if (threadIdx.x == 0) header->kept = carry;
}

// Each tile again: its kept entries go, in order, to the scratch copies at
// the tile's offset; each thread slot records the kept count before it.
template <class Tr, class I>
__global__ void __launch_bounds__(kThreads)
    PruneScatterKernel(PruneArgs a, bool coo, MatrixHeader* header) {
  if (HasError(header, coo)) return;
  using S = typename Tr::Storage;
  __shared__ unsigned long long warp_sums[kThreads / 32];
  const S* x = static_cast<const S*>(a.values);
  const I* ia = static_cast<const I*>(a.index_a);
  const I* ib = static_cast<const I*>(a.index_b);
  S* tx = static_cast<S*>(a.tmp_values);
  I* ta = static_cast<I*>(a.tmp_a);
  I* tb = static_cast<I*>(a.tmp_b);
  const int lane = threadIdx.x & 31;
  const int warp = threadIdx.x >> 5;
  const int64_t tiles = (a.nnz + kPruneTile - 1) / kPruneTile;
  for (int64_t tile = blockIdx.x; tile < tiles; tile += gridDim.x) {
    const int64_t begin = tile * kPruneTile + static_cast<int64_t>(threadIdx.x) * kPruneItems;
    unsigned mask = 0;
    for (int i = 0; i < kPruneItems; ++i) {
      const int64_t k = begin + i;
      if (k < a.nnz && Kept<Tr>(x, k, a.tau)) mask |= 1u << i;
    }
    const unsigned long long mine = __popc(mask);
    unsigned long long inclusive = mine;
    for (int off = 1; off < 32; off *= 2) {
      const unsigned long long y = __shfl_up_sync(0xffffffffu, inclusive, off);
      if (lane >= off) inclusive += y;
    }
    if (lane == 31) warp_sums[warp] = inclusive;
    __syncthreads();
    unsigned long long before = a.tile_counts[tile] + inclusive - mine;
    for (int w = 0; w < warp; ++w) before += warp_sums[w];
    __syncthreads();
    a.thread_prefix[tile * kThreads + threadIdx.x] = static_cast<long long>(before);
    int64_t out = static_cast<int64_t>(before);
    for (int i = 0; i < kPruneItems; ++i) {
      if (!((mask >> i) & 1u)) continue;
      const int64_t k = begin + i;
      tx[out] = x[k];
      ta[out] = ia[k];
      if (tb != nullptr) tb[out] = ib[k];
      ++out;
    }
  }
}

template <class Tr, class I>
__global__ void __launch_bounds__(kThreads)
    PruneIndptrKernel(PruneArgs a, bool coo, MatrixHeader* header) {
  if (HasError(header, coo)) return;
  const auto* x = static_cast<const typename Tr::Storage*>(a.values);
  I* indptr = static_cast<I*>(a.indptr);
  const unsigned long long kept = header->kept;
  for (int64_t i = GlobalThread(); i <= a.segments; i += ThreadCount()) {
    const int64_t k = static_cast<int64_t>(indptr[i]);
    long long v;
    if (k >= a.nnz) {
      v = static_cast<long long>(kept);
    } else {
      const int64_t slot = k / kPruneItems;
      v = a.thread_prefix[slot];
      for (int64_t j = slot * kPruneItems; j < k; ++j) v += Kept<Tr>(x, j, a.tau);
    }
    indptr[i] = static_cast<I>(v);
  }
}

template <class Tr, class I>
__global__ void __launch_bounds__(kThreads)
    PruneCopyBackKernel(PruneArgs a, bool coo, MatrixHeader* header) {
  if (HasError(header, coo)) return;
  using S = typename Tr::Storage;
  const int64_t kept = static_cast<int64_t>(header->kept);
  S* x = static_cast<S*>(a.values);
  I* ia = static_cast<I*>(a.index_a);
  I* ib = static_cast<I*>(a.index_b);
  const S* tx = static_cast<const S*>(a.tmp_values);
  const I* ta = static_cast<const I*>(a.tmp_a);
  const I* tb = static_cast<const I*>(a.tmp_b);
  for (int64_t k = GlobalThread(); k < kept; k += ThreadCount()) {
    x[k] = tx[k];
    ia[k] = ta[k];
    if (ib != nullptr) ib[k] = tb[k];
  }
}

// ---------------------------------------------------------------------------
// The report.

__global__ void FinishKernel(detail::MatrixReportArgs a, MatrixHeader* header) {
  if (blockIdx.x != 0 || threadIdx.x != 0) return;
  detail::FinishMatrixHeader(a, header);
}

// ---------------------------------------------------------------------------
// Launch.

struct Pieces {
  MatrixHeader* header;
  unsigned* bitmap;
  unsigned char* owner;
  VectorState state;
  void* partial;
  PruneArgs prune;
};

Pieces Carve(const detail::MatrixLaunch& job, const detail::MatrixScratchLayout& l) {
  auto* base = static_cast<unsigned char*>(job.scratch);
  Pieces p{};
  p.header = reinterpret_cast<MatrixHeader*>(base);
  const bool subset = job.subset_size >= 0;
  p.bitmap = subset ? reinterpret_cast<unsigned*>(base + l.bitmap_offset) : nullptr;
  p.owner = base + l.owner_offset;
  const int64_t vectors = job.axis == 0 ? job.cols : job.rows;
  auto* v = base + l.vector_offset;
  p.state.max_key = reinterpret_cast<unsigned long long*>(v);
  p.state.sums = reinterpret_cast<unsigned long long*>(v + detail::AlignUp(8 * static_cast<size_t>(vectors)));
  p.state.scales = reinterpret_cast<Scale*>(v + detail::AlignUp(8 * static_cast<size_t>(vectors)) +
                                                 detail::AlignUp(16 * static_cast<size_t>(vectors)));
  p.state.bitmap = p.bitmap;
  p.partial = base + l.partial_offset;
  return p;
}

template <class Tr, int kVec, class Loc>
void LaunchContiguous(const detail::MatrixLaunch& job, Loc loc, int group, const Pieces& p,
                      cudaStream_t stream) {
  const bool coo = job.format == Format::kCOO;
  Tasks tasks;
  const int64_t vectors = job.axis == 0 ? job.cols : job.rows;
  tasks.count = job.subset_size >= 0 ? job.subset_size : vectors;
  tasks.subset = job.subset_size >= 0 ? job.subset : nullptr;
  tasks.subset_type = job.subset_type;
  tasks.owner = p.owner;
  const int64_t threads = tasks.count * group;
  if (job.nonfinite_error) {
    ContiguousCheckKernel<Tr, kVec, Loc><<<GridFor(ContiguousCheckKernel<Tr, kVec, Loc>, threads), kThreads, 0,
                                           stream>>>(loc, tasks, group, coo, p.header);
  }
  ContiguousKernel<Tr, kVec, Loc><<<GridFor(ContiguousKernel<Tr, kVec, Loc>, threads), kThreads, 0, stream>>>(
      loc, tasks, group, job.rule, coo, p.header);
}

template <class Tr, class I>
void LaunchPrune(const detail::MatrixLaunch& job, const detail::MatrixScratchLayout& l, Pieces& p,
                 cudaStream_t stream) {
  const bool coo = job.format == Format::kCOO;
  const int64_t tiles = (job.nnz + kPruneTile - 1) / kPruneTile;
  auto* base = static_cast<unsigned char*>(job.scratch) + l.prune_offset;
  PruneArgs a{};
  a.values = job.values;
  a.index_a = coo ? job.row : job.indices;
  a.index_b = coo ? job.col : nullptr;
  a.indptr = coo ? nullptr : job.indptr;
  a.segments = job.format == Format::kCSR ? job.rows : job.cols;
  a.nnz = job.nnz;
  a.tau = job.prune_below;
  a.tile_counts = reinterpret_cast<unsigned long long*>(base);
  size_t off = detail::AlignUp(8 * static_cast<size_t>(tiles));
  a.thread_prefix = reinterpret_cast<long long*>(base + off);
  off += detail::AlignUp(8 * static_cast<size_t>(tiles) * kThreads);
  a.tmp_values = base + off;
  off += detail::AlignUp(sizeof(typename Tr::Storage) * static_cast<size_t>(job.nnz));
  a.tmp_a = base + off;
  off += detail::AlignUp(sizeof(I) * static_cast<size_t>(job.nnz));
  a.tmp_b = coo ? base + off : nullptr;

  const int grid_tiles = static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(tiles, 1 << 16)));
  PruneCountKernel<Tr><<<grid_tiles, kThreads, 0, stream>>>(a, coo, p.header);
  PruneScanKernel<<<1, 1024, 0, stream>>>(a.tile_counts, tiles, coo, p.header);
  PruneScatterKernel<Tr, I><<<grid_tiles, kThreads, 0, stream>>>(a, coo, p.header);
  if (!coo) {
    PruneIndptrKernel<Tr, I><<<GridFor(PruneIndptrKernel<Tr, I>, a.segments + 1), kThreads, 0, stream>>>(
        a, coo, p.header);
  }
  PruneCopyBackKernel<Tr, I><<<GridFor(PruneCopyBackKernel<Tr, I>, job.nnz), kThreads, 0, stream>>>(
      a, coo, p.header);
}

template <class Tr, class I>
cudaError_t LaunchSparse(const detail::MatrixLaunch& job, const detail::MatrixScratchLayout& l, Pieces& p,
                         cudaStream_t stream) {
  using S = typename Tr::Storage;
  const bool coo = job.format == Format::kCOO;
  const I* indptr = static_cast<const I*>(job.indptr);
  const I* indices = static_cast<const I*>(job.indices);
  const int64_t segments = job.format == Format::kCSR ? job.rows : job.cols;
  const int64_t minor = job.format == Format::kCSR ? job.cols : job.rows;
  const int seg_group = detail::SegmentGroupSize(job.nnz, segments);

  if (coo) {
    ValidateCooKernel<I><<<GridFor(ValidateCooKernel<I>, job.nnz), kThreads, 0, stream>>>(
        static_cast<const I*>(job.row), static_cast<const I*>(job.col), job.nnz, job.rows, job.cols, p.header);
  } else {
    ValidateIndptrKernel<I><<<GridFor(ValidateIndptrKernel<I>, segments + 1), kThreads, 0, stream>>>(
        indptr, segments, job.nnz, p.header);
    ValidateMinorKernel<I><<<GridFor(ValidateMinorKernel<I>, job.nnz), kThreads, 0, stream>>>(
        indices, job.nnz, minor, p.header);
    ValidateSortedKernel<I><<<GridFor(ValidateSortedKernel<I>, segments * seg_group), kThreads, 0, stream>>>(
        indptr, indices, segments, seg_group, p.header);
  }

  if (job.path == MatrixPath::kContiguous) {
    SparseLocator<S, I> loc{static_cast<S*>(job.values), indptr};
    LaunchContiguous<Tr, 1>(job, loc, seg_group, p, stream);
  } else {
    EntryArgs e;
    e.values = job.values;
    e.nnz = job.nnz;
    if (coo) {
      e.vector_of = job.axis == 0 ? job.col : job.row;
    } else {
      e.vector_of = job.indices;
    }
    const int64_t vectors = job.axis == 0 ? job.cols : job.rows;
    EntryMaxKernel<Tr, I><<<GridFor(EntryMaxKernel<Tr, I>, job.nnz), kThreads, 0, stream>>>(e, p.state, coo,
                                                                                          p.header);
    if (job.rule.kind != NormKind::kLInf) {
      EntrySumKernel<Tr, I><<<GridFor(EntrySumKernel<Tr, I>, job.nnz), kThreads, 0, stream>>>(
          e, p.state, job.rule, coo, p.header);
    }
    VectorFinishKernel<<<GridFor(VectorFinishKernel, vectors), kThreads, 0, stream>>>(
        vectors, p.state, job.rule, job.nonfinite_error, coo, p.header);
    EntryApplyKernel<Tr, I><<<GridFor(EntryApplyKernel<Tr, I>, job.nnz), kThreads, 0, stream>>>(
        e, p.state.scales, coo, p.header);
  }
  if (job.prune_below > 0.0 && job.nnz > 0) LaunchPrune<Tr, I>(job, l, p, stream);
  return cudaSuccess;
}

template <class Tr>
cudaError_t LaunchDense(const detail::MatrixLaunch& job, const detail::MatrixScratchLayout& l, Pieces& p,
                        cudaStream_t stream) {
  using S = typename Tr::Storage;
  DenseArgs a;
  a.values = job.values;
  a.rows = job.rows;
  a.cols = job.cols;
  a.stride = job.row_stride;
  a.chunk_rows = detail::DenseChunkRows(job.rows, job.cols);
  a.chunks = job.rows == 0 ? 0 : (job.rows + a.chunk_rows - 1) / a.chunk_rows;
  const double tau = job.prune_below;
  if (job.axis == 1) {
    if (job.vectorized) {
      constexpr int kWide = 16 / static_cast<int>(sizeof(S));
      DenseLocator<S> loc{static_cast<S*>(job.values), job.row_stride, job.cols};
      LaunchContiguous<Tr, kWide>(job, loc, num::GroupSizeFor(job.cols / kWide), p, stream);
    } else {
      DenseLocator<S> loc{static_cast<S*>(job.values), job.row_stride, job.cols};
      LaunchContiguous<Tr, 1>(job, loc, num::GroupSizeFor(job.cols), p, stream);
    }
    if (tau > 0.0) {
      DenseApplyKernel<Tr><<<GridFor(DenseApplyKernel<Tr>, job.rows * 32), kThreads, 0, stream>>>(
          a, nullptr, tau, false, p.header);
    }
    return cudaSuccess;
  }
  auto* partial = static_cast<typename Tr::Acc*>(p.partial);
  const int64_t cells = a.chunks * a.cols;
  DenseColumnPartialKernel<Tr><<<GridFor(DenseColumnPartialKernel<Tr>, cells), kThreads, 0, stream>>>(
      a, partial, job.rule.kind, false, p.header);
  DenseColumnFinishKernel<Tr><<<GridFor(DenseColumnFinishKernel<Tr>, a.cols), kThreads, 0, stream>>>(
      a, partial, p.state, job.rule, job.nonfinite_error, false, p.header);
  // The float64 pass reuses the partial buffer (Finish has folded it).
  auto* partial2 = static_cast<double*>(p.partial);
  DenseColumnScaledPartialKernel<Tr><<<GridFor(DenseColumnScaledPartialKernel<Tr>, cells), kThreads, 0,
                                       stream>>>(a, p.state.max_key, partial2, job.rule, false, p.header);
  DenseColumnFinish2Kernel<<<GridFor(DenseColumnFinish2Kernel, a.cols), kThreads, 0, stream>>>(
      a, partial2, p.state, job.rule, false, p.header);
  DenseApplyKernel<Tr><<<GridFor(DenseApplyKernel<Tr>, job.rows * 32), kThreads, 0, stream>>>(
      a, p.state.scales, tau, false, p.header);
  return cudaSuccess;
}

template <class Tr>
cudaError_t LaunchTyped(const detail::MatrixLaunch& job) {
  cudaStream_t stream = static_cast<cudaStream_t>(job.stream);
  const detail::MatrixScratchLayout l = detail::MatrixLayout(job);
  Pieces p = Carve(job, l);
  cudaError_t e = cudaMemsetAsync(job.scratch, 0, l.zeroed_bytes, stream);
  if (e != cudaSuccess) return e;
  const int64_t vectors = job.axis == 0 ? job.cols : job.rows;
  if (job.subset_size >= 0) {
    if (job.subset_type == IndexType::kInt32) {
      ClaimKernel<int32_t><<<GridFor(ClaimKernel<int32_t>, job.subset_size), kThreads, 0, stream>>>(
          static_cast<const int32_t*>(job.subset), job.subset_size, vectors, p.bitmap, p.owner,
          &p.header->check[detail::kCheckSubsetIndex], &p.header->vectors);
    } else {
      ClaimKernel<int64_t><<<GridFor(ClaimKernel<int64_t>, job.subset_size), kThreads, 0, stream>>>(
          static_cast<const int64_t*>(job.subset), job.subset_size, vectors, p.bitmap, p.owner,
          &p.header->check[detail::kCheckSubsetIndex], &p.header->vectors);
    }
  }
  if (job.format == Format::kDense) {
    LaunchDense<Tr>(job, l, p, stream);
  } else if (job.index_type == IndexType::kInt32) {
    LaunchSparse<Tr, int32_t>(job, l, p, stream);
  } else {
    LaunchSparse<Tr, int64_t>(job, l, p, stream);
  }
  FinishKernel<<<1, 32, 0, stream>>>(detail::ReportArgsOf(job), p.header);
  return cudaGetLastError();
}

}  // namespace
}  // namespace dev

namespace detail {


int64_t DenseChunkRows(int64_t rows, int64_t cols) {
  // About 2^18 (chunk, column) cells: enough threads to fill a large GPU,
  // and at least 16 rows per cell so that a cell's loads are worth a thread.
  const int64_t cells = int64_t{1} << 18;
  const int64_t chunks = std::max<int64_t>(1, cells / std::max<int64_t>(cols, 1));
  const int64_t chunk_rows = (std::max<int64_t>(rows, 1) + chunks - 1) / chunks;
  return std::max<int64_t>(16, chunk_rows);
}

int SegmentGroupSize(int64_t nnz, int64_t segments) {
  const int64_t mean = segments > 0 ? (nnz + segments - 1) / segments : 1;
  return num::GroupSizeFor(mean);
}

MatrixScratchLayout MatrixLayout(const MatrixLaunch& job) {
  MatrixScratchLayout l{};
  const int64_t vectors = job.axis == 0 ? job.cols : job.rows;
  const bool subset = job.subset_size >= 0;
  // COO runs as scattered: its entries are in canonical order, and each
  // vector's are found through the coordinates.
  const MatrixPath path = job.path == MatrixPath::kCoo ? MatrixPath::kScattered : job.path;
  size_t off = kHeaderBytes;
  l.bitmap_offset = off;
  l.bitmap_bytes = subset ? static_cast<size_t>((vectors + 31) / 32) * 4 : 0;
  off += AlignUp(l.bitmap_bytes);
  l.vector_offset = off;
  // max keys and 128-bit sums (zeroed), then the scales.
  const size_t per_vector_zeroed = path == MatrixPath::kContiguous ? 0 : AlignUp(8 * static_cast<size_t>(vectors)) +
                                                                          AlignUp(16 * static_cast<size_t>(vectors));
  const size_t scales = path == MatrixPath::kContiguous ? 0 : AlignUp(sizeof(Scale) * static_cast<size_t>(vectors));
  l.zeroed_bytes = off + per_vector_zeroed;
  l.vector_bytes = per_vector_zeroed + scales;
  off += l.vector_bytes;
  l.owner_offset = off;
  off += subset ? AlignUp(static_cast<size_t>(job.subset_size)) : 0;
  l.partial_offset = off;
  if (path == MatrixPath::kDenseColumns) {
    const int64_t chunk_rows = DenseChunkRows(job.rows, job.cols);
    const int64_t chunks = job.rows == 0 ? 0 : (job.rows + chunk_rows - 1) / chunk_rows;
    const size_t acc = job.dtype == DType::kFloat64 ? sizeof(num::DoubleAcc) : sizeof(num::FloatAcc);
    off += AlignUp(std::max(acc, sizeof(double)) * static_cast<size_t>(chunks * job.cols));
  }
  l.prune_offset = off;
  if (job.format != Format::kDense && job.prune_below > 0.0 && job.nnz > 0) {
    const int64_t tiles = (job.nnz + dev::kPruneTile - 1) / dev::kPruneTile;
    const size_t index_size = IndexSize(job.index_type);
    const size_t value_size = ElementSize(job.dtype);
    const auto nnz = static_cast<size_t>(job.nnz);
    off += AlignUp(8 * static_cast<size_t>(tiles)) + AlignUp(8 * static_cast<size_t>(tiles) * dev::kThreads) +
           AlignUp(value_size * nnz) + AlignUp(index_size * nnz) +
           (job.format == Format::kCOO ? AlignUp(index_size * nnz) : 0);
  }
  l.total = off;
  return l;
}

int LaunchMatrix(const MatrixLaunch& job) {
  cudaError_t e = cudaErrorInvalidValue;
  VisitDType(job.dtype, [&](auto t) { e = dev::LaunchTyped<num::DeviceTraits<TypeOf<decltype(t)>>>(job); });
  return e;
}

}  // namespace detail
}  // namespace cuda
}  // namespace sparsenorm
