// Google Benchmark programs for the row operator, with a multi-threaded
// memory copy measured in the same run as the bandwidth ceiling.
//
// Bytes counted per call (the fewest that must move): every distinct row
// read once, every scaled row written once, the index list read once. The
// calls use constant-norm mode with the target alternating between 1 and 2,
// so every distinct row is rescaled on every call (max-norm takes the same
// path when rows exceed the target). The index list rotates over several
// random draws so that rows are not served from the cache of the last call.

#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <random>
#include <vector>

#if defined(_OPENMP)
#include <omp.h>
#endif

#include "common/numerics.h"
#include "sparsenorm/rows.h"

namespace {

using sparsenorm::DType;

constexpr std::int64_t kRows = 1000000;
constexpr int kIndexSets = 6;

struct Setup {
  std::vector<unsigned char> table;
  std::vector<std::vector<std::int64_t>> index_sets;
  std::vector<std::vector<std::int64_t>> distinct;  // each set's distinct rows, increasing
};

std::vector<unsigned char> RandomTable(DType dtype, std::int64_t rows, std::int64_t cols) {
  const std::size_t es = sparsenorm::DTypeSize(dtype);
  std::vector<unsigned char> bytes(static_cast<std::size_t>(rows * cols) * es);
  std::mt19937 rng(1);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  for (std::size_t i = 0; i < static_cast<std::size_t>(rows * cols); ++i) {
    const float v = normal(rng);
    switch (dtype) {
      case DType::kFloat32:
        std::memcpy(&bytes[i * 4], &v, 4);
        break;
      case DType::kFloat64: {
        const double d = v;
        std::memcpy(&bytes[i * 8], &d, 8);
        break;
      }
      case DType::kFloat16: {
        const std::uint16_t h = sparsenorm::numerics::FloatToHalf(v);
        std::memcpy(&bytes[i * 2], &h, 2);
        break;
      }
      case DType::kBFloat16: {
        const std::uint16_t h = sparsenorm::numerics::FloatToBFloat16(v);
        std::memcpy(&bytes[i * 2], &h, 2);
        break;
      }
    }
  }
  return bytes;
}

// hot_rows > 0: indices drawn from the first hot_rows rows only, so the list
// is mostly repeats.
Setup MakeSetup(DType dtype, std::int64_t cols, std::int64_t count, std::int64_t hot_rows) {
  Setup s;
  s.table = RandomTable(dtype, kRows, cols);
  std::mt19937_64 rng(2);
  std::uniform_int_distribution<std::int64_t> pick(0, (hot_rows > 0 ? hot_rows : kRows) - 1);
  for (int k = 0; k < kIndexSets; ++k) {
    std::vector<std::int64_t> v(static_cast<std::size_t>(count));
    for (auto& i : v) i = pick(rng);
    std::vector<std::int64_t> d = v;
    std::sort(d.begin(), d.end());
    d.erase(std::unique(d.begin(), d.end()), d.end());
    s.distinct.push_back(std::move(d));
    s.index_sets.push_back(std::move(v));
  }
  return s;
}

void BM_Rows(benchmark::State& state, DType dtype, std::int64_t hot_rows) {
  const std::int64_t cols = state.range(0);
  const std::int64_t count = state.range(1);
  Setup s = MakeSetup(dtype, cols, count, hot_rows);
  sparsenorm::NormalizeOptions o;
  o.mode = sparsenorm::NormMode::kConstantNorm;
  const sparsenorm::Table table{s.table.data(), dtype, kRows, cols, 0};
  std::int64_t iteration = 0;
  double bytes = 0;
  for (auto _ : state) {
    const int k = static_cast<int>(iteration % kIndexSets);
    o.target = iteration % 2 ? 2.0 : 1.0;
    const auto& v = s.index_sets[k];
    const sparsenorm::Status st =
        sparsenorm::NormalizeRows(table, sparsenorm::Indices(std::span<const std::int64_t>(v)), o);
    if (!st.ok()) state.SkipWithError(st.message().c_str());
    bytes += 2.0 * static_cast<double>(static_cast<std::int64_t>(s.distinct[k].size()) * cols) * static_cast<double>(sparsenorm::DTypeSize(dtype)) +
             static_cast<double>(count) * sizeof(std::int64_t);
    ++iteration;
  }
  state.counters["bytes_per_second"] = benchmark::Counter(bytes, benchmark::Counter::kIsRate);
  state.counters["distinct_rows"] = static_cast<double>(s.distinct[0].size());
}

// The ceiling of the access pattern rather than of the bus: the distinct rows
// of the same index lists, visited in increasing order on every thread (as
// the operator visits them), each read and multiplied in place by 2 or 0.5,
// with the same prefetch distance (about 4 KiB ahead) and no norm, no
// validation, no deduplication. Bytes counted: each row read and written.
void BM_TouchRows(benchmark::State& state) {
  const std::int64_t cols = state.range(0);
  const std::int64_t count = state.range(1);
  Setup s = MakeSetup(DType::kFloat32, cols, count, 0);
  float* table = reinterpret_cast<float*>(s.table.data());
  const std::int64_t row_bytes = cols * 4;
  const std::int64_t ahead = std::clamp<std::int64_t>(4096 / row_bytes, 2, 16);
  std::int64_t iteration = 0;
  double bytes = 0;
  for (auto _ : state) {
    const auto& d = s.distinct[static_cast<std::size_t>(iteration % kIndexSets)];
    const float factor = iteration % 2 ? 0.5f : 2.0f;
    const auto m = static_cast<std::int64_t>(d.size());
#if defined(_OPENMP)
#pragma omp parallel
#endif
    {
#if defined(_OPENMP)
      const std::int64_t t = omp_get_thread_num(), threads = omp_get_num_threads();
#else
      const std::int64_t t = 0, threads = 1;
#endif
      const std::int64_t begin = m * t / threads, end = m * (t + 1) / threads;
      for (std::int64_t i = begin; i < end; ++i) {
        if (i + ahead < end) {
          // Every line the row touches, as the operator's PrefetchRow does.
          const auto start = reinterpret_cast<std::uintptr_t>(table + d[i + ahead] * cols);
          for (std::uintptr_t a = start & ~std::uintptr_t{63}; a < start + static_cast<std::uintptr_t>(row_bytes); a += 64) {
            __builtin_prefetch(reinterpret_cast<const void*>(a), 1, 3);
          }
        }
        float* row = table + d[i] * cols;
        for (std::int64_t j = 0; j < cols; ++j) row[j] *= factor;
      }
    }
    benchmark::ClobberMemory();
    bytes += 2.0 * static_cast<double>(m * row_bytes);
    ++iteration;
  }
  state.counters["bytes_per_second"] = benchmark::Counter(bytes, benchmark::Counter::kIsRate);
}

// The ceiling: a copy of 512 MiB with every thread, bytes read plus written.
void BM_Copy(benchmark::State& state) {
  const std::size_t n = std::size_t{512} << 20;
  std::vector<unsigned char> src(n, 1), dst(n, 0);
  for (auto _ : state) {
#if defined(_OPENMP)
#pragma omp parallel
    {
      const std::size_t t = static_cast<std::size_t>(omp_get_thread_num());
      const std::size_t threads = static_cast<std::size_t>(omp_get_num_threads());
      const std::size_t begin = n * t / threads, end = n * (t + 1) / threads;
      std::memcpy(dst.data() + begin, src.data() + begin, end - begin);
    }
#else
    std::memcpy(dst.data(), src.data(), n);
#endif
    benchmark::DoNotOptimize(dst.data());
    benchmark::ClobberMemory();
  }
  state.counters["bytes_per_second"] =
      benchmark::Counter(2.0 * static_cast<double>(n) * static_cast<double>(state.iterations()),
                         benchmark::Counter::kIsRate);
}

}  // namespace

BENCHMARK(BM_Copy)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_TouchRows)
    ->ArgNames({"D", "indices"})
    ->Args({16, 100000})
    ->Args({128, 100000})
    ->Args({512, 100000})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
BENCHMARK_CAPTURE(BM_Rows, float32, DType::kFloat32, 0)
    ->ArgNames({"D", "indices"})
    ->Args({16, 100000})
    ->Args({64, 100000})
    ->Args({128, 100000})
    ->Args({512, 100000})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
BENCHMARK_CAPTURE(BM_Rows, float16, DType::kFloat16, 0)
    ->ArgNames({"D", "indices"})
    ->Args({128, 100000})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
BENCHMARK_CAPTURE(BM_Rows, bfloat16, DType::kBFloat16, 0)
    ->ArgNames({"D", "indices"})
    ->Args({128, 100000})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
BENCHMARK_CAPTURE(BM_Rows, float64, DType::kFloat64, 0)
    ->ArgNames({"D", "indices"})
    ->Args({128, 100000})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
// Duplicate-heavy: 100,000 indices over 5,000 hot rows.
BENCHMARK_CAPTURE(BM_Rows, float32_hot5000, DType::kFloat32, 5000)
    ->ArgNames({"D", "indices"})
    ->Args({128, 100000})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

BENCHMARK_MAIN();
