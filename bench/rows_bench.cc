// Google Benchmark programs for the row operator, with a multi-threaded
// memory copy measured in the same run as the bandwidth ceiling, and the
// ceiling of the operator's access pattern (BM_TouchRows) for every case of
// BM_Rows/float32: batches of 256 to 100,000 indices, rows of 16 to 512
// float32, and tables of 1M to 32M rows with huge pages advised for and
// against.
//
// Bytes counted per call (the fewest that must move): every distinct row
// read once, every scaled row written once, the index list read once. The
// calls use constant-norm mode with the target alternating between 1 and 2,
// so every distinct row is rescaled on every call (max-norm takes the same
// path when rows exceed the target). The index list rotates over several
// random draws so that rows are not served from the cache of the last call.

#include <benchmark/benchmark.h>

#include <sys/mman.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <new>
#include <random>
#include <vector>

#if defined(_OPENMP)
#include <omp.h>
#endif

#include "common/numerics.h"
#include "common/prefetch.h"
#include "core/entry.h"
#include "sparsenorm/rows.h"

namespace {

using sparsenorm::DType;

constexpr std::int64_t kRows = 1000000;
constexpr int kIndexSets = 6;

// A table's memory: 2 MiB aligned, so that transparent huge pages can back
// it whole, and, on request, advised for or against them (madvise), so that
// the cost of translation misses on large tables can be measured.
struct TableMemory {
  unsigned char* data = nullptr;
  std::size_t bytes = 0;
  TableMemory() = default;
  TableMemory(std::size_t n, int huge_pages) : bytes(n) {
    const std::size_t align = std::size_t{2} << 20;
    data = static_cast<unsigned char*>(std::aligned_alloc(align, (n + align - 1) / align * align));
    if (data == nullptr) throw std::bad_alloc();
    if (huge_pages >= 0) madvise(data, n, huge_pages ? MADV_HUGEPAGE : MADV_NOHUGEPAGE);
  }
  TableMemory(const TableMemory&) = delete;
  TableMemory& operator=(const TableMemory&) = delete;
  ~TableMemory() { std::free(data); }
};

struct Setup {
  DType dtype;
  std::int64_t rows, cols, count, hot_rows;
  int huge_pages;
  std::unique_ptr<TableMemory> table;
  std::vector<std::vector<std::int64_t>> index_sets;
  std::vector<std::vector<std::int64_t>> distinct;  // each set's distinct rows, increasing
};

// Values in [-1, 1) from a counter hash, every thread filling its own part:
// fast enough that a 4 GB table costs about a second, where a normal
// distribution drawn on one thread cost a minute. The values do not matter
// to the timing (constant-norm mode scales every row; none is subnormal).
void FillTable(unsigned char* bytes, DType dtype, std::int64_t elements) {
#if defined(_OPENMP)
#pragma omp parallel for schedule(static)
#endif
  for (std::int64_t i = 0; i < elements; ++i) {
    std::uint64_t z = static_cast<std::uint64_t>(i) * 0x9e3779b97f4a7c15ull;
    z = (z ^ (z >> 31)) * 0xbf58476d1ce4e5b9ull;
    const float v = static_cast<float>(static_cast<std::int64_t>(z >> 40) - (1 << 23)) * 0x1p-23f;
    switch (dtype) {
      case DType::kFloat32:
        std::memcpy(bytes + i * 4, &v, 4);
        break;
      case DType::kFloat64: {
        const double d = v;
        std::memcpy(bytes + i * 8, &d, 8);
        break;
      }
      case DType::kFloat16: {
        const std::uint16_t h = sparsenorm::numerics::FloatToHalf(v);
        std::memcpy(bytes + i * 2, &h, 2);
        break;
      }
      case DType::kBFloat16: {
        const std::uint16_t h = sparsenorm::numerics::FloatToBFloat16(v);
        std::memcpy(bytes + i * 2, &h, 2);
        break;
      }
    }
  }
}

// The setup of the last case asked for, kept: Google Benchmark calls a case
// several times (its trial runs), and building a table each time was most of
// the suite's run time. huge_pages: -1 leaves the kernel's default, 0 and 1
// advise against and for transparent huge pages.
// hot_rows > 0: indices drawn from the first hot_rows rows only, so the list
// is mostly repeats.
Setup& MakeSetup(DType dtype, std::int64_t cols, std::int64_t count, std::int64_t hot_rows,
                 std::int64_t rows = kRows, int huge_pages = -1) {
  static Setup s{};
  const bool same_table = s.table && s.dtype == dtype && s.rows == rows && s.cols == cols &&
                          s.huge_pages == huge_pages;
  if (same_table && s.count == count && s.hot_rows == hot_rows) return s;
  s.index_sets.clear();
  s.distinct.clear();
  s.count = count;
  s.hot_rows = hot_rows;
  if (!same_table) {  // the index lists alone are quick to draw; a table is not
    s.table.reset();
    s.dtype = dtype;
    s.rows = rows;
    s.cols = cols;
    s.huge_pages = huge_pages;
    const std::size_t bytes = static_cast<std::size_t>(rows * cols) * sparsenorm::DTypeSize(dtype);
    s.table = std::make_unique<TableMemory>(bytes, huge_pages);
    FillTable(s.table->data, dtype, rows * cols);
  }
  std::mt19937_64 rng(2);
  std::uniform_int_distribution<std::int64_t> pick(0, (hot_rows > 0 ? hot_rows : rows) - 1);
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

// Arguments: D, the index count and, when `sized`, the table's rows and
// its huge-page advice (TableMemory).
Setup& SetupFor(const benchmark::State& state, DType dtype, std::int64_t hot_rows, bool sized) {
  return MakeSetup(dtype, state.range(0), state.range(1), hot_rows, sized ? state.range(2) : kRows,
                   sized ? static_cast<int>(state.range(3)) : -1);
}

// Which deduplication a call takes: the planner's choice, or the row bitmap
// or the hash set forced through the front end's tuning (core/entry.h), to
// compare them where the planner decides between them.
enum class Dedup { kPlanner, kBitmap, kHashSet };

void BM_Rows(benchmark::State& state, DType dtype, std::int64_t hot_rows, bool sized,
             Dedup dedup = Dedup::kPlanner) {
  const std::int64_t cols = state.range(0);
  const std::int64_t count = state.range(1);
  Setup& s = SetupFor(state, dtype, hot_rows, sized);
  sparsenorm::NormalizeOptions o;
  o.mode = sparsenorm::NormMode::kConstantNorm;
  const sparsenorm::Table table{s.table->data, dtype, s.rows, cols, 0};
  sparsenorm::Tuning forced;
  if (dedup == Dedup::kBitmap) {
    forced.bitmap_bytes_per_index = forced.large_bitmap_bytes_per_index = std::int64_t{1} << 30;
  }
  if (dedup == Dedup::kHashSet) {
    forced.bitmap_bytes_per_index = forced.large_bitmap_bytes_per_index = forced.bitmap_slack_bytes = 0;
  }
  std::int64_t iteration = 0;
  double bytes = 0;
  for (auto _ : state) {
    const int k = static_cast<int>(iteration % kIndexSets);
    o.target = iteration % 2 ? 2.0 : 1.0;
    const auto& v = s.index_sets[k];
    const sparsenorm::Indices indices{std::span<const std::int64_t>(v)};
    const sparsenorm::Status st =
        dedup != Dedup::kPlanner
            ? sparsenorm::detail::NormalizeRows(table, table, indices, o, false, forced, nullptr)
            : sparsenorm::NormalizeRows(table, indices, o);
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
void BM_TouchRows(benchmark::State& state, bool sized) {
  const std::int64_t cols = state.range(0);
  Setup& s = SetupFor(state, DType::kFloat32, 0, sized);
  float* table = reinterpret_cast<float*>(s.table->data);
  const std::int64_t row_bytes = cols * 4;
  const std::int64_t ahead = std::clamp<std::int64_t>(4096 / row_bytes, 2, 16);
  std::int64_t iteration = 0;
  double bytes = 0;
  for (auto _ : state) {
    const auto& d = s.distinct[static_cast<std::size_t>(iteration % kIndexSets)];
    // Each index set is doubled on one rotation and halved on the next, so
    // the values stay where they started. (Alternating by iteration would
    // pair every set with one factor, since kIndexSets is even: its rows
    // would reach infinity or zero within a few hundred calls, and the
    // operator measured after it on the same table would see those.)
    const float factor = (iteration / kIndexSets) % 2 ? 0.5f : 2.0f;
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
        if (i + ahead < end) sparsenorm::PrefetchRow(table + d[i + ahead] * cols, row_bytes);
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

// The row operator and the ceiling of its access pattern, pair by pair:
// small batches (256, 4,096 indices) to the benchmark case (100,000), short
// rows to long ones.
void RowsAndIndices(benchmark::internal::Benchmark* b) {
  b->ArgNames({"D", "indices"});
  for (std::int64_t count : {256, 4096, 100000}) {
    for (std::int64_t d : {16, 32, 64, 128, 512}) b->Args({d, count});
  }
}

// Huge tables: the same 100,000 rows of 32 float32 out of 1M, 8M and 32M
// rows, with transparent huge pages advised against (0) and for (1); and
// small batches (256 and 4,096 indices) on the 32M-row table.
void TableSizes(benchmark::internal::Benchmark* b) {
  b->ArgNames({"D", "indices", "rows", "thp"});
  for (std::int64_t rows : {1000000, 8000000, 32000000}) {
    for (std::int64_t thp : {0, 1}) b->Args({32, 100000, rows, thp});
  }
  for (std::int64_t count : {256, 4096}) b->Args({32, count, 32000000, 1});
}

BENCHMARK(BM_Copy)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_CAPTURE(BM_TouchRows, float32, false)
    ->Apply(RowsAndIndices)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
BENCHMARK_CAPTURE(BM_Rows, float32, DType::kFloat32, 0, false)
    ->Apply(RowsAndIndices)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
BENCHMARK_CAPTURE(BM_TouchRows, float32_tables, true)
    ->Apply(TableSizes)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
BENCHMARK_CAPTURE(BM_Rows, float32_tables, DType::kFloat32, 0, true)
    ->Apply(TableSizes)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
BENCHMARK_CAPTURE(BM_Rows, float32_tables_bitmap, DType::kFloat32, 0, true, Dedup::kBitmap)
    ->Apply(TableSizes)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
BENCHMARK_CAPTURE(BM_Rows, float32_tables_hash, DType::kFloat32, 0, true, Dedup::kHashSet)
    ->Apply(TableSizes)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
// Small batches with either deduplication forced, on the 1M-row table.
BENCHMARK_CAPTURE(BM_Rows, float32_bitmap, DType::kFloat32, 0, false, Dedup::kBitmap)
    ->ArgNames({"D", "indices"})
    ->ArgsProduct({{16, 64}, {256, 1024, 2048, 4096}})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
BENCHMARK_CAPTURE(BM_Rows, float32_hash, DType::kFloat32, 0, false, Dedup::kHashSet)
    ->ArgNames({"D", "indices"})
    ->ArgsProduct({{16, 64}, {256, 1024, 2048, 4096}})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
BENCHMARK_CAPTURE(BM_Rows, float16, DType::kFloat16, 0, false)
    ->ArgNames({"D", "indices"})
    ->Args({128, 100000})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
BENCHMARK_CAPTURE(BM_Rows, bfloat16, DType::kBFloat16, 0, false)
    ->ArgNames({"D", "indices"})
    ->Args({128, 100000})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
BENCHMARK_CAPTURE(BM_Rows, float64, DType::kFloat64, 0, false)
    ->ArgNames({"D", "indices"})
    ->Args({128, 100000})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
// Duplicate-heavy: 100,000 indices over 5,000 hot rows.
BENCHMARK_CAPTURE(BM_Rows, float32_hot5000, DType::kFloat32, 5000, false)
    ->ArgNames({"D", "indices"})
    ->Args({128, 100000})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

BENCHMARK_MAIN();
