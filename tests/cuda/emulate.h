// A host replay of the device kernels' arithmetic: the same functions of
// src/cuda/device_math.h and src/common/ called in the same order as the
// kernels call them (lane assignment, register cache aside, XOR butterflies,
// chunk folds, fixed-point sums). For p in {1, 2, infinity} the results are bit-for-bit those of the
// device; for other p, CUDA's pow may differ from the host's in the last
// bits. Tests use it on every machine to check the device arithmetic
// against the CPU path and the reference, and on a GPU machine to check the
// kernels against it bit for bit. Host-only, not part of the library.
#ifndef SPARSENORM_TESTS_CUDA_EMULATE_H_
#define SPARSENORM_TESTS_CUDA_EMULATE_H_

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <utility>
#include <cstring>
#include <vector>

#include "cuda/device_math.h"
#include "cuda/launch.h"

namespace sparsenorm::cuda::emulate {

template <class Tr>
using Storage = typename Tr::Storage;

template <class Acc>
Acc Butterfly(std::vector<Acc> lanes) {
  for (std::size_t off = lanes.size() / 2; off > 0; off /= 2) {
    std::vector<Acc> next = lanes;
    for (std::size_t l = 0; l < lanes.size(); ++l) next[l] = num::Combine(lanes[l], lanes[l ^ off]);
    lanes.swap(next);
  }
  return lanes[0];
}

inline double ButterflySum(std::vector<double> lanes) {
  for (std::size_t off = lanes.size() / 2; off > 0; off /= 2) {
    std::vector<double> next = lanes;
    for (std::size_t l = 0; l < lanes.size(); ++l) next[l] = lanes[l] + lanes[l ^ off];
    lanes.swap(next);
  }
  return lanes[0];
}

struct VectorResult {
  Outcome outcome;
  double norm;
  Scale scale;
};

// The norm and the decision for in[0 : n) as ProcessVector computes them
// with `group` lanes and `elems` elements per access (n a multiple of it).
template <class Tr>
VectorResult Decide(const Storage<Tr>* in, std::int64_t n, int group, int elems,
                    const NormRule& prm) {
  using Acc = typename Tr::Acc;
  const std::int64_t accesses = n / elems;
  std::vector<Acc> lanes(static_cast<std::size_t>(group), num::ZeroAcc(typename Tr::Compute()));
  for (int l = 0; l < group; ++l) {
    for (std::int64_t a = l; a < accesses; a += group) {
      for (int e = 0; e < elems; ++e) num::Accumulate(lanes[l], Tr::Widen(in[a * elems + e]), prm.kind);
    }
  }
  const Acc acc = Butterfly(lanes);
  const num::FastNorm fast = num::FinishFast(acc, prm.kind);
  double norm = fast.value;
  if (fast.fallback) {
    const double m = num::AccMax(acc);
    std::vector<double> sums(static_cast<std::size_t>(group), 0.0);
    for (int l = 0; l < group; ++l) {
      for (std::int64_t a = l; a < accesses; a += group) {
        for (int e = 0; e < elems; ++e) {
          sums[l] = sums[l] + ScaledTerm(static_cast<double>(Tr::Widen(in[a * elems + e])), m, prm.kind, prm.p);
        }
      }
    }
    norm = FinishScaled(m, ButterflySum(sums), prm.kind, prm.p);
  }
  VectorResult r;
  r.norm = norm;
  r.scale = Decide(norm, fast.finite, prm);
  r.outcome = OutcomeOf(r.scale, norm);
  return r;
}

template <class Tr>
void Apply(Storage<Tr>* x, std::int64_t n, const Scale& s) {
  if (s.action != Action::kScale) return;
  for (std::int64_t i = 0; i < n; ++i) x[i] = Tr::Scaled(x[i], s);
}

// ProcessVector in place, with the layout the row launcher picks.
template <class Tr>
VectorResult ProcessRow(Storage<Tr>* row, std::int64_t cols, bool vectorized, const NormRule& prm) {
  const int elems = num::AccessElems(sizeof(Storage<Tr>), vectorized);
  const int group = num::GroupSizeFor(cols / elems);
  const VectorResult r = Decide<Tr>(row, cols, group, elems, prm);
  Apply<Tr>(row, cols, r.scale);
  return r;
}

// The dense column pass: chunk partials in row order, folded in chunk
// order; the float64 fallback likewise.
template <class Tr>
VectorResult DenseColumn(const Storage<Tr>* x, std::int64_t rows, std::int64_t stride, std::int64_t c,
                         std::int64_t chunk_rows, const NormRule& prm) {
  using Acc = typename Tr::Acc;
  const std::int64_t chunks = rows == 0 ? 0 : (rows + chunk_rows - 1) / chunk_rows;
  Acc acc = num::ZeroAcc(typename Tr::Compute());
  for (std::int64_t ch = 0; ch < chunks; ++ch) {
    Acc part = num::ZeroAcc(typename Tr::Compute());
    const std::int64_t end = std::min(rows, (ch + 1) * chunk_rows);
    for (std::int64_t r = ch * chunk_rows; r < end; ++r) num::Accumulate(part, Tr::Widen(x[r * stride + c]), prm.kind);
    acc = ch == 0 ? part : num::Combine(acc, part);
  }
  const num::FastNorm fast = num::FinishFast(acc, prm.kind);
  double norm = fast.value;
  if (fast.fallback) {
    const double m = num::AccMax(acc);
    double s = 0.0;
    for (std::int64_t ch = 0; ch < chunks; ++ch) {
      double part = 0.0;
      const std::int64_t end = std::min(rows, (ch + 1) * chunk_rows);
      for (std::int64_t r = ch * chunk_rows; r < end; ++r) {
        part = part + ScaledTerm(static_cast<double>(Tr::Widen(x[r * stride + c])), m, prm.kind, prm.p);
      }
      s = ch == 0 ? part : s + part;
    }
    norm = FinishScaled(m, s, prm.kind, prm.p);
  }
  VectorResult r;
  r.norm = norm;
  r.scale = Decide(norm, fast.finite, prm);
  r.outcome = OutcomeOf(r.scale, norm);
  return r;
}

// A scattered vector (its values in any order): max |x|, then the exact
// fixed-point sum of (|x| / max)^p.
template <class Tr>
VectorResult Scattered(const std::vector<Storage<Tr>>& values, const NormRule& prm) {
  std::uint64_t max_key = 0;
  for (const auto& v : values) {
    const std::uint64_t k = num::MagnitudeKey(static_cast<double>(Tr::Widen(v)));
    if (k > max_key) max_key = k;
  }
  const bool finite = num::KeyFinite(max_key);
  const double m = numerics::BitsToDouble(max_key);
  double norm = 0.0;
  if (finite && max_key != 0) {
    if (prm.kind == NormKind::kLInf) {
      norm = m;
    } else {
      unsigned __int128 sum = 0;
      for (const auto& v : values) {
        sum += num::FixedTerm(ScaledTerm(static_cast<double>(Tr::Widen(v)), m, prm.kind, prm.p));
      }
      norm = FinishScaled(m, num::FixedToDouble(static_cast<std::uint64_t>(sum >> 64),
                                                     static_cast<std::uint64_t>(sum)),
                               prm.kind, prm.p);
    }
  }
  VectorResult r;
  r.norm = norm;
  r.scale = Decide(norm, finite, prm);
  r.outcome = OutcomeOf(r.scale, norm);
  return r;
}

// ---------------------------------------------------------------------------
// The device's checks, replayed: the header the kernels of one call write
// (first positions, then the offending values by FinishRowsHeader /
// FinishMatrixHeader, which are the device's own code), for data in host
// memory. cuda::detail::RowsFinding / MatrixFinding then give the finding
// the front end formats; tests/cuda/messages_test.cc compares that message
// with the CPU's and the reference's for the same bad input.

inline void Offer(detail::FirstPosition* first, std::int64_t position) {
  const unsigned long long key = detail::FirstPosition::KeyOf(position);
  if (key > first->key) first->key = key;
}

template <class Tr>
bool VectorFinite(const Storage<Tr>* x, std::int64_t n, std::int64_t step) {
  for (std::int64_t k = 0; k < n; ++k) {
    if (!std::isfinite(static_cast<double>(Tr::Widen(x[k * step])))) return false;
  }
  return true;
}

// ClaimKernel, CheckOwnersKernel and FirstNonFiniteKernel, then the last
// kernel's FinishRowsHeader, on a table of `rows` x `cols` (row stride
// `stride` elements).
template <class Tr>
detail::RowsHeader ReplayRowChecks(const Storage<Tr>* table, std::int64_t rows, std::int64_t cols,
                                   std::int64_t stride, const void* indices, IndexType type,
                                   std::int64_t n, bool nonfinite_error) {
  detail::RowsHeader h{};
  for (std::int64_t i = 0; i < n; ++i) {
    if (detail::OutOfRange(detail::LoadIndex(indices, type, i), rows)) Offer(&h.bad, i);
  }
  if (nonfinite_error && !h.bad.found()) {
    for (std::int64_t i = 0; i < n; ++i) {
      if (!VectorFinite<Tr>(table + detail::LoadIndex(indices, type, i) * stride, cols, 1)) Offer(&h.nonfinite, i);
    }
  }
  detail::FinishRowsHeader(indices, type, n, rows, &h);
  return h;
}

// The checks of one matrix call (job: host arrays, as MatrixLaunch describes
// them): the subset claim, the structure checks, and under the error policy
// the non-finite check of the vectors considered, which every path makes only
// when no earlier check failed; then FinishMatrixHeader.
template <class Tr>
detail::MatrixHeader ReplayMatrixChecks(const detail::MatrixLaunch& job) {
  using detail::Format;
  detail::MatrixHeader h{};
  const bool coo = job.format == Format::kCOO;
  const IndexType t = job.index_type;
  const std::int64_t vectors = job.axis == 0 ? job.cols : job.rows;
  std::vector<bool> considered(static_cast<std::size_t>(vectors), job.subset_size < 0);
  for (std::int64_t k = 0; k < std::max<std::int64_t>(job.subset_size, 0); ++k) {
    const long long v = detail::LoadIndex(job.subset, job.subset_type, k);
    if (detail::OutOfRange(v, vectors)) {
      Offer(&h.check[detail::kCheckSubsetIndex], k);
    } else {
      considered[static_cast<std::size_t>(v)] = true;
    }
  }
  // Where each stored value belongs: (row, col) per entry.
  std::vector<std::pair<long long, long long>> at;
  if (coo) {
    for (std::int64_t k = 0; k < job.nnz; ++k) {
      const long long r = detail::LoadIndex(job.row, t, k), c = detail::LoadIndex(job.col, t, k);
      if (detail::OutOfRange(r, job.rows)) Offer(&h.check[detail::kCheckMinorIndex], k);
      if (detail::OutOfRange(c, job.cols)) Offer(&h.check[detail::kCheckCooCol], k);
      if (k > 0) {
        const long long pr = detail::LoadIndex(job.row, t, k - 1), pc = detail::LoadIndex(job.col, t, k - 1);
        if (!(pr < r || (pr == r && pc < c))) Offer(&h.check[detail::kCheckUnsorted], k);
        if (!(pc < c || (pc == c && pr < r))) Offer(&h.coo_colmajor, k);
      }
      at.emplace_back(r, c);
    }
  } else if (job.format != Format::kDense) {
    const bool csr = job.format == Format::kCSR;
    const std::int64_t segments = csr ? job.rows : job.cols;
    const std::int64_t minor = csr ? job.cols : job.rows;
    for (std::int64_t i = 0; i <= segments; ++i) {
      const long long v = detail::LoadIndex(job.indptr, t, i);
      if (i == 0 && v != 0) Offer(&h.check[detail::kCheckIndptrStart], 0);
      if (i > 0 && v < detail::LoadIndex(job.indptr, t, i - 1)) Offer(&h.check[detail::kCheckIndptrDecrease], i);
      if (i == segments && v != job.nnz) Offer(&h.check[detail::kCheckIndptrEnd], i);
    }
    for (std::int64_t k = 0; k < job.nnz; ++k) {
      if (detail::OutOfRange(detail::LoadIndex(job.indices, t, k), minor)) Offer(&h.check[detail::kCheckMinorIndex], k);
    }
    const bool pointers_valid = !h.check[detail::kCheckIndptrStart].found() &&
                                !h.check[detail::kCheckIndptrDecrease].found() &&
                                !h.check[detail::kCheckIndptrEnd].found();
    if (pointers_valid) {
      for (std::int64_t s = 0; s < segments; ++s) {
        const long long b = detail::LoadIndex(job.indptr, t, s), e = detail::LoadIndex(job.indptr, t, s + 1);
        for (long long k = b; k < e; ++k) {
          const long long m = detail::LoadIndex(job.indices, t, k);
          if (k > b && !(detail::LoadIndex(job.indices, t, k - 1) < m)) Offer(&h.check[detail::kCheckUnsorted], k);
          at.emplace_back(csr ? s : m, csr ? m : s);
        }
      }
    }
  }
  if (job.nonfinite_error && !detail::AnyCheckFailed(h, coo)) {
    const auto* x = static_cast<const Storage<Tr>*>(job.values);
    std::vector<bool> finite(static_cast<std::size_t>(vectors), true);
    if (job.format == Format::kDense) {
      for (std::int64_t v = 0; v < vectors; ++v) {
        finite[static_cast<std::size_t>(v)] =
            job.axis == 0 ? VectorFinite<Tr>(x + v, job.rows, job.row_stride)
                          : VectorFinite<Tr>(x + v * job.row_stride, job.cols, 1);
      }
    } else {
      for (std::size_t k = 0; k < at.size(); ++k) {
        const long long v = job.axis == 0 ? at[k].second : at[k].first;
        if (!std::isfinite(static_cast<double>(Tr::Widen(x[k])))) finite[static_cast<std::size_t>(v)] = false;
      }
    }
    for (std::int64_t v = 0; v < vectors; ++v) {
      if (considered[static_cast<std::size_t>(v)] && !finite[static_cast<std::size_t>(v)]) {
        Offer(&h.check[detail::kCheckNonFinite], v);
      }
    }
  }
  detail::FinishMatrixHeader(detail::ReportArgsOf(job), &h);
  return h;
}

}  // namespace sparsenorm::cuda::emulate

#endif  // SPARSENORM_TESTS_CUDA_EMULATE_H_
