// Many tables in one call against one call per table, and against the
// ceiling of the access pattern (issue "The step at its ceiling"): by
// default 26 float32 tables of 100,000 x 64 (DLRM has 26 sparse features)
// with 2,048 random indices each.
//
// Each repetition runs, in an order shuffled per repetition:
//   batched   one NormalizeRowsMany call on all the tables;
//   separate  one NormalizeRows call per table;
//   ceiling   one OpenMP parallel region that visits the distinct rows of
//             every table (ascending within a table, as the operator visits
//             them), prefetching about 4 KiB ahead, and multiplies each
//             element by the same factor: the operator's reads and writes
//             with no validation, no deduplication and no norm.
// Every call uses constant-norm mode with a target alternating between 1
// and 2, so every distinct row is read and written on every call. The index
// lists rotate over several random draws so that the rows are not in the
// cache from the call before. Bytes counted: every distinct row read and
// written once, every index read once. The machine's copy bandwidth is
// measured in the same run (a multi-threaded memcpy of 512 MiB).
//
// Printed last, medians over the repetitions of per-repetition ratios:
//   tables-cpu: batched_over_separate=<separate / batched> fraction_of_ceiling=<ceiling / batched>
//
// Usage: sparsenorm_tables_bench [--tables N] [--rows R] [--cols D]
//                                [--indices K] [--repetitions M] [--threads T]

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#if defined(_OPENMP)
#include <omp.h>
#endif

#include "common/prefetch.h"
#include "sparsenorm/rows.h"

namespace {

using Clock = std::chrono::steady_clock;
constexpr int kIndexSets = 6;

struct Args {
  int tables = 26;
  std::int64_t rows = 100000;
  std::int64_t cols = 64;
  std::int64_t indices = 2048;
  int repetitions = 41;
  int threads = 0;  // 0: the library's default
};

Args Parse(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    const std::string flag = argv[i];
    if (i + 1 >= argc) {
      std::fprintf(stderr, "%s needs a value\n", flag.c_str());
      std::exit(2);
    }
    const long long v = std::atoll(argv[++i]);
    if (flag == "--tables") a.tables = static_cast<int>(v);
    else if (flag == "--rows") a.rows = v;
    else if (flag == "--cols") a.cols = v;
    else if (flag == "--indices") a.indices = v;
    else if (flag == "--repetitions") a.repetitions = static_cast<int>(v);
    else if (flag == "--threads") a.threads = static_cast<int>(v);
    else {
      std::fprintf(stderr, "unknown flag %s\n", flag.c_str());
      std::exit(2);
    }
  }
  if (a.tables < 1 || a.rows < 1 || a.cols < 1 || a.indices < 1 || a.repetitions < 1) {
    std::fprintf(stderr, "sizes must be positive\n");
    std::exit(2);
  }
  return a;
}

double Seconds(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const std::size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

// Bytes per second of a multi-threaded copy of 512 MiB (read plus written),
// the best of a few.
double CopyBandwidth() {
  const std::size_t n = std::size_t{512} << 20;
  std::vector<unsigned char> src(n, 1), dst(n, 0);
  double best = 0;
  for (int rep = 0; rep < 5; ++rep) {
    const auto t0 = Clock::now();
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
    const double s = Seconds(t0, Clock::now());
    if (dst[n / 3] != 1) std::abort();  // keeps the copy
    best = std::max(best, 2.0 * static_cast<double>(n) / s);
  }
  return best;
}

struct Workload {
  Args args;
  std::vector<std::vector<float>> tables;
  // [set][table]: the index list and its distinct rows, ascending.
  std::vector<std::vector<std::vector<std::int64_t>>> lists, distinct;
  std::int64_t distinct_rows(int set) const {
    std::int64_t n = 0;
    for (const auto& d : distinct[static_cast<std::size_t>(set)]) n += static_cast<std::int64_t>(d.size());
    return n;
  }
};

Workload Make(const Args& a) {
  Workload w;
  w.args = a;
  std::mt19937_64 rng(2026);
  std::uniform_real_distribution<float> value(-1.0f, 1.0f);
  w.tables.resize(static_cast<std::size_t>(a.tables));
  for (auto& t : w.tables) {
    t.resize(static_cast<std::size_t>(a.rows * a.cols));
    for (float& x : t) x = value(rng);
  }
  std::uniform_int_distribution<std::int64_t> row(0, a.rows - 1);
  w.lists.resize(kIndexSets);
  w.distinct.resize(kIndexSets);
  for (int s = 0; s < kIndexSets; ++s) {
    for (int k = 0; k < a.tables; ++k) {
      std::vector<std::int64_t> list(static_cast<std::size_t>(a.indices));
      for (auto& i : list) i = row(rng);
      std::vector<std::int64_t> d = list;
      std::sort(d.begin(), d.end());
      d.erase(std::unique(d.begin(), d.end()), d.end());
      w.lists[s].push_back(std::move(list));
      w.distinct[s].push_back(std::move(d));
    }
  }
  return w;
}

sparsenorm::NormalizeOptions Options(const Args& a, double target) {
  sparsenorm::NormalizeOptions o;
  o.mode = sparsenorm::NormMode::kConstantNorm;
  o.target = target;
  o.num_threads = a.threads;
  return o;
}

sparsenorm::Table TableOf(Workload& w, int k) {
  return sparsenorm::Table{w.tables[static_cast<std::size_t>(k)].data(), sparsenorm::DType::kFloat32,
                           w.args.rows, w.args.cols, w.args.cols};
}

void Check(const sparsenorm::Status& s) {
  if (!s.ok()) {
    std::fprintf(stderr, "sparsenorm: %s\n", s.message().c_str());
    std::exit(1);
  }
}

void Batched(Workload& w, int set, double target) {
  std::vector<sparsenorm::RowsBatchEntry> entries;
  entries.reserve(static_cast<std::size_t>(w.args.tables));
  for (int k = 0; k < w.args.tables; ++k) {
    entries.push_back({TableOf(w, k), std::span<const std::int64_t>(w.lists[set][k]), Options(w.args, target)});
  }
  Check(sparsenorm::NormalizeRowsMany(entries));
}

void Separate(Workload& w, int set, double target) {
  for (int k = 0; k < w.args.tables; ++k) {
    Check(sparsenorm::NormalizeRows(TableOf(w, k), std::span<const std::int64_t>(w.lists[set][k]),
                                    Options(w.args, target)));
  }
}

// The ceiling: every table's distinct rows (their addresses listed before
// the clock starts) in one parallel region, split evenly across the threads
// in table order.
std::vector<float*> RowAddresses(Workload& w, int set) {
  std::vector<float*> rows;
  for (int k = 0; k < w.args.tables; ++k) {
    for (std::int64_t r : w.distinct[static_cast<std::size_t>(set)][static_cast<std::size_t>(k)]) {
      rows.push_back(w.tables[static_cast<std::size_t>(k)].data() + r * w.args.cols);
    }
  }
  return rows;
}

void Ceiling(const Workload& w, const std::vector<float*>& rows, float factor) {
  const auto total = static_cast<std::int64_t>(rows.size());
  const std::int64_t cols = w.args.cols, row_bytes = cols * 4;
  const std::int64_t ahead = std::clamp<std::int64_t>(4096 / row_bytes, 2, 16);
  const int threads = w.args.threads > 0 ? w.args.threads : sparsenorm::DefaultThreadCount();
#if defined(_OPENMP)
#pragma omp parallel num_threads(threads)
#endif
  {
#if defined(_OPENMP)
    const std::int64_t t = omp_get_thread_num(), count = omp_get_num_threads();
#else
    const std::int64_t t = 0, count = 1;
    (void)threads;
#endif
    const std::int64_t begin = total * t / count, end = total * (t + 1) / count;
    for (std::int64_t g = begin; g < end; ++g) {
      if (g + ahead < end) sparsenorm::PrefetchRow(rows[static_cast<std::size_t>(g + ahead)], row_bytes);
      float* row = rows[static_cast<std::size_t>(g)];
      for (std::int64_t j = 0; j < cols; ++j) row[j] *= factor;
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  const Args args = Parse(argc, argv);
  Workload w = Make(args);
  std::vector<std::vector<float*>> addresses;
  for (int set = 0; set < kIndexSets; ++set) addresses.push_back(RowAddresses(w, set));
  const double copy = CopyBandwidth();

  enum { kBatched, kSeparate, kCeiling, kVariants };
  const char* names[kVariants] = {"batched", "separate", "ceiling"};
  std::vector<double> seconds[kVariants];
  std::vector<double> bytes;
  std::vector<double> separate_ratio, ceiling_ratio;
  std::mt19937 shuffle(7);
  int order[kVariants] = {kBatched, kSeparate, kCeiling};
  int call = 0;
  // The ceiling alternates its factor call by call, so that its rows stay
  // bounded (the set of a call and the parity of `call` go together).
  int ceilings = 0;
  for (int rep = -2; rep < args.repetitions; ++rep) {  // two warm-up rounds
    std::shuffle(order, order + kVariants, shuffle);
    double t[kVariants] = {};
    for (int v : order) {
      const int set = call % kIndexSets;
      const double target = call % 2 ? 2.0 : 1.0;
      ++call;
      const auto t0 = Clock::now();
      if (v == kBatched) Batched(w, set, target);
      else if (v == kSeparate) Separate(w, set, target);
      else Ceiling(w, addresses[static_cast<std::size_t>(set)], ceilings++ % 2 ? 0.5f : 2.0f);
      t[v] = Seconds(t0, Clock::now());
      if (v == kBatched && rep >= 0) {
        bytes.push_back(2.0 * static_cast<double>(w.distinct_rows(set) * args.cols * 4) +
                        static_cast<double>(args.tables * args.indices * 8));
      }
    }
    if (rep < 0) continue;
    for (int v = 0; v < kVariants; ++v) seconds[v].push_back(t[v]);
    separate_ratio.push_back(t[kSeparate] / t[kBatched]);
    ceiling_ratio.push_back(t[kCeiling] / t[kBatched]);
  }

  const double moved = Median(bytes);
  std::printf("%d tables of %lld x %lld float32, %lld indices each, %d threads, %d repetitions\n",
              args.tables, static_cast<long long>(args.rows), static_cast<long long>(args.cols),
              static_cast<long long>(args.indices),
              args.threads > 0 ? args.threads : sparsenorm::DefaultThreadCount(), args.repetitions);
  std::printf("copy bandwidth %.2f GB/s; bytes that must move per call %.2f MB\n", copy / 1e9, moved / 1e6);
  for (int v = 0; v < kVariants; ++v) {
    const double s = Median(seconds[v]);
    std::printf("  %-9s median %8.1f us  %6.2f GB/s  fraction_of_copy %.2f\n", names[v], s * 1e6,
                moved / s / 1e9, moved / s / copy);
  }
  std::printf("tables-cpu: batched_over_separate=%.2f fraction_of_ceiling=%.2f\n", Median(separate_ratio),
              Median(ceiling_ratio));
  return 0;
}
