// Google Benchmark cases for the matrix normalization (linked into
// sparsenorm_bench beside the row operator's cases and the memory copy).
//
// Bytes counted per call (the fewest that must move): every stored value
// read and written once, every stored index and index pointer read once
// (they are read to validate the matrix, and to find the columns on axis 0
// and repeated coordinates on axis 1). Dense: the matrix read and written
// once. The calls use constant-norm mode with the target alternating
// between 1 and 2, so every vector is rescaled on every call.

#include <benchmark/benchmark.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <vector>

#if defined(_OPENMP)
#include <omp.h>
#endif
#if defined(__x86_64__)
#include <immintrin.h>
#endif

#include "sparsenorm/matrix.h"

namespace {

// A CSR matrix of rows x cols with about nnz entries at uniformly random
// distinct coordinates, column indices sorted within each row.
struct Csr {
  std::int64_t rows = 0, cols = 0;
  std::vector<std::int32_t> indptr, indices;
  std::vector<float> values;
};

Csr RandomCsr(std::int64_t rows, std::int64_t cols, std::int64_t nnz) {
  Csr m;
  m.rows = rows;
  m.cols = cols;
  std::mt19937_64 rng(7);
  std::vector<std::int32_t> count(static_cast<std::size_t>(rows), 0);
  std::uniform_int_distribution<std::int64_t> pick_row(0, rows - 1), pick_col(0, cols - 1);
  for (std::int64_t i = 0; i < nnz; ++i) ++count[pick_row(rng)];
  m.indptr.assign(static_cast<std::size_t>(rows) + 1, 0);
  for (std::int64_t r = 0; r < rows; ++r) m.indptr[r + 1] = m.indptr[r] + count[r];
  m.indices.resize(static_cast<std::size_t>(nnz));
  std::normal_distribution<float> normal(0.0f, 1.0f);
  m.values.resize(static_cast<std::size_t>(nnz));
  for (auto& v : m.values) v = normal(rng);
  for (std::int64_t r = 0; r < rows; ++r) {
    auto* b = m.indices.data() + m.indptr[r];
    auto* e = m.indices.data() + m.indptr[r + 1];
    for (;;) {  // distinct columns: redraw the rare row with a repeat
      for (auto* p = b; p < e; ++p) *p = static_cast<std::int32_t>(pick_col(rng));
      std::sort(b, e);
      if (std::adjacent_find(b, e) == e) break;
    }
  }
  return m;
}

const Csr& Benchmark1M() {
  static const Csr m = RandomCsr(1000000, 100000, 20000000);
  return m;
}

// The same matrix with the columns of each row in random order (distinct
// still): a non-canonical CSR matrix, as SciPy's products return.
const Csr& Benchmark1MUnsorted() {
  static const Csr m = [] {
    Csr u = Benchmark1M();
    std::mt19937_64 rng(8);
    for (std::int64_t r = 0; r < u.rows; ++r) {
      const std::int64_t b = u.indptr[r], e = u.indptr[r + 1];
      for (std::int64_t k = e - 1; k > b; --k) {  // Fisher-Yates over the row's entries
        const std::int64_t j = b + static_cast<std::int64_t>(rng() % static_cast<std::uint64_t>(k - b + 1));
        std::swap(u.indices[k], u.indices[j]);
        std::swap(u.values[k], u.values[j]);
      }
    }
    return u;
  }();
  return m;
}

// The bytes a CSR normalization must move: the values read and written, the
// column indices and index pointers read.
double CsrBytes(const Csr& m) {
  return static_cast<double>(m.values.size()) * (4 + 4 + 4) + static_cast<double>(m.indptr.size()) * 4;
}

void BM_MatrixCsr(benchmark::State& state, bool unsorted) {
  const int axis = static_cast<int>(state.range(0));
  Csr m = unsorted ? Benchmark1MUnsorted() : Benchmark1M();
  sparsenorm::SparseMatrix s;
  s.format = sparsenorm::SparseFormat::kCSR;
  s.rows = m.rows;
  s.cols = m.cols;
  s.nnz = static_cast<std::int64_t>(m.values.size());
  s.values = m.values.data();
  s.dtype = sparsenorm::DType::kFloat32;
  s.index_type = sparsenorm::IndexType::kInt32;
  s.indptr = m.indptr.data();
  s.indices = m.indices.data();
  sparsenorm::MatrixOptions o;
  o.axis = axis;
  std::int64_t iteration = 0;
  for (auto _ : state) {
    o.norm.target = iteration++ % 2 ? 2.0 : 1.0;
    const sparsenorm::Status st = sparsenorm::NormalizeMatrix(&s, o);
    if (!st.ok()) state.SkipWithError(st.message().c_str());
  }
  state.counters["bytes_per_second"] =
      benchmark::Counter(CsrBytes(m) * static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
}

// The ceiling of the axis-0 access pattern rather than of the bus: what the
// two passes of a CSR column normalization cost with nothing else. Pass 1
// adds each value's square into its column's float64 slot (one private
// table per thread, rows split evenly, the tables then added); then every
// column's float32 scale; pass 2 multiplies each value by its column's
// scale (8-wide AVX2 gathers where the CPU has them). No validation, no
// plans, no care for zero, huge or non-finite norms: not a usable
// normalization, a lower bound on the time of one. Bytes counted as for
// BM_MatrixCsr.
void ColumnScalesScalar(float* v, const std::int32_t* idx, const float* scale, std::int64_t n) {
  for (std::int64_t k = 0; k < n; ++k) v[k] *= scale[idx[k]];
}

#if defined(__x86_64__)
__attribute__((target("avx2"))) void ColumnScalesAvx2(float* v, const std::int32_t* idx,
                                                      const float* scale, std::int64_t n) {
  std::int64_t k = 0;
  for (; k + 8 <= n; k += 8) {
    const __m256i c = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(idx + k));
    const __m256 s = _mm256_i32gather_ps(scale, c, 4);
    _mm256_storeu_ps(v + k, _mm256_mul_ps(_mm256_loadu_ps(v + k), s));
  }
  ColumnScalesScalar(v + k, idx + k, scale, n - k);
}
#endif

void BM_CsrColumnsCeiling(benchmark::State& state) {
  Csr m = Benchmark1M();
  const std::int64_t cols = m.cols;
  auto scale_pass = &ColumnScalesScalar;
#if defined(__x86_64__)
  if (__builtin_cpu_supports("avx2")) scale_pass = &ColumnScalesAvx2;
#endif
#if defined(_OPENMP)
  const int threads = omp_get_max_threads();
#else
  const int threads = 1;
#endif
  std::vector<std::vector<double>> sums(static_cast<std::size_t>(threads), std::vector<double>(static_cast<std::size_t>(cols)));
  std::vector<float> scale(static_cast<std::size_t>(cols));
  std::int64_t iteration = 0;
  for (auto _ : state) {
    const double target = iteration++ % 2 ? 2.0 : 1.0;
#if defined(_OPENMP)
#pragma omp parallel num_threads(threads)
#endif
    {
#if defined(_OPENMP)
      const int t = omp_get_thread_num();
#else
      const int t = 0;
#endif
      const std::int64_t r0 = m.rows * t / threads, r1 = m.rows * (t + 1) / threads;
      const std::int64_t k0 = m.indptr[r0], k1 = m.indptr[r1];
      double* acc = sums[t].data();
      std::memset(acc, 0, static_cast<std::size_t>(cols) * sizeof(double));
      for (std::int64_t k = k0; k < k1; ++k) {
        const double y = m.values[k];
        acc[m.indices[k]] += y * y;
      }
#if defined(_OPENMP)
#pragma omp barrier
#endif
      const std::int64_t c0 = cols * t / threads, c1 = cols * (t + 1) / threads;
      for (std::int64_t c = c0; c < c1; ++c) {
        double total = 0.0;
        for (int q = 0; q < threads; ++q) total += sums[q][c];
        scale[c] = static_cast<float>(target / std::sqrt(total));
      }
#if defined(_OPENMP)
#pragma omp barrier
#endif
      scale_pass(m.values.data() + k0, m.indices.data() + k0, scale.data(), k1 - k0);
    }
    benchmark::ClobberMemory();
  }
  state.counters["bytes_per_second"] =
      benchmark::Counter(CsrBytes(m) * static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
}

void BM_MatrixDense(benchmark::State& state) {
  const int axis = static_cast<int>(state.range(0));
  const std::int64_t rows = state.range(1), cols = state.range(2);
  std::vector<float> w(static_cast<std::size_t>(rows * cols));
  std::mt19937 rng(3);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  for (auto& v : w) v = normal(rng);
  sparsenorm::MatrixOptions o;
  o.axis = axis;
  std::int64_t iteration = 0;
  for (auto _ : state) {
    o.norm.target = iteration++ % 2 ? 2.0 : 1.0;
    const sparsenorm::Status st = sparsenorm::NormalizeMatrix(sparsenorm::MakeTable(w.data(), rows, cols), o);
    if (!st.ok()) state.SkipWithError(st.message().c_str());
  }
  state.counters["bytes_per_second"] = benchmark::Counter(
      2.0 * static_cast<double>(w.size()) * 4 * static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
}

}  // namespace

BENCHMARK_CAPTURE(BM_MatrixCsr, sorted, false)->ArgNames({"axis"})->Arg(0)->Arg(1)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_CAPTURE(BM_MatrixCsr, unsorted, true)->ArgNames({"axis"})->Arg(0)->Arg(1)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_CsrColumnsCeiling)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_MatrixDense)
    ->ArgNames({"axis", "rows", "cols"})
    ->Args({0, 100000, 512})
    ->Args({1, 100000, 512})
    ->Args({0, 4000000, 16})
    ->Args({1, 4000000, 16})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
