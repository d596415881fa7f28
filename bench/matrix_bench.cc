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
#include <cstdint>
#include <random>
#include <vector>

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

void BM_MatrixCsr(benchmark::State& state) {
  const int axis = static_cast<int>(state.range(0));
  Csr m = Benchmark1M();
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
  const double bytes = static_cast<double>(s.nnz) * (4 + 4 + 4) + static_cast<double>(m.indptr.size()) * 4;
  state.counters["bytes_per_second"] =
      benchmark::Counter(bytes * static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
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

BENCHMARK(BM_MatrixCsr)->ArgNames({"axis"})->Arg(0)->Arg(1)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_MatrixDense)
    ->ArgNames({"axis", "rows", "cols"})
    ->Args({0, 100000, 512})
    ->Args({1, 100000, 512})
    ->Args({0, 4000000, 16})
    ->Args({1, 4000000, 16})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
