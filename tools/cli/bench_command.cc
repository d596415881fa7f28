// sparsenorm bench: the built-in benchmark on synthetic data, no file needed.
//
// The row operator is measured as bench/compare_rows.py measures it: every
// repetition times a memory copy (bytes read + written, every thread), then
// one NormalizeRows call on fresh uniform indices with a max-norm below every
// row norm (0.8x per repetition), so every distinct row is read and rescaled.
// Bytes counted per call: each distinct row read once, each scaled row
// written once, the index list read once. Figures are medians over the
// repetitions of per-repetition values, so each ratio compares two
// measurements taken moments apart.
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <nlohmann/json.hpp>
#include <random>

#if defined(_OPENMP)
#include <omp.h>
#endif

#include "cli/commands.h"
#include "cli/output.h"
#include "common/element_types.h"
#include "formats/error.h"
#include "sparsenorm/matrix.h"
#include "sparsenorm/rows.h"
#include "sparsenorm/version.h"

namespace sparsenorm::cli {
namespace {

struct BenchArgs {
  std::int64_t rows = 1000000;
  std::int64_t cols = 128;
  std::int64_t indices = 100000;
  std::int64_t hot = 0;
  std::string dtype = "float32";
  int reps = 15;
  std::int64_t copy_mib = 512;
  std::string which = "all";
  std::int64_t matrix_rows = 8192;
  std::int64_t matrix_cols = 4096;
  std::int64_t matrix_nnz_per_row = 16;
};

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const std::size_t n = v.size();
  return n % 2 == 1 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

DType ParseDType(const std::string& s) {
  for (const DTypeInfo& info : kDTypeInfos) {
    if (s == info.name) return info.dtype;
  }
  throw Error("--dtype must be " + DTypeNameList(" or ") + ", not " + formats::Quote(s) + ".", kExitUsage);
}

// Uniform values in [-1, 1) of the given dtype, from a fast generator: the
// distribution does not matter, only that every row norm is about
// sqrt(cols / 3).
void Fill(std::uint8_t* data, DType dtype, std::size_t count, std::uint64_t seed) {
  std::uint64_t s = seed * 0x9e3779b97f4a7c15ull + 1;
  for (std::size_t i = 0; i < count; ++i) {
    s ^= s << 13;
    s ^= s >> 7;
    s ^= s << 17;
    const double v = static_cast<float>(static_cast<double>(s >> 11) * 0x1p-52 - 1.0);
    VisitDType(dtype, [&](auto tag) {
      using T = TypeOf<decltype(tag)>;
      const T x = Element<T>::RoundDouble(v);
      std::memcpy(data + sizeof(T) * i, &x, sizeof(T));
    });
  }
}

// The reference bandwidth: memcpy of `bytes` split over `threads`, counted
// as bytes read plus bytes written.
class CopyMeter {
 public:
  CopyMeter(std::size_t bytes, int threads) : src_(bytes), dst_(bytes), threads_(threads) {
    std::memset(src_.data, 1, bytes);  // touch every page before timing
    std::memset(dst_.data, 0, bytes);
  }
  double Measure() {
    const auto start = std::chrono::steady_clock::now();
    const std::size_t n = src_.size;
    const int t = threads_;
#if defined(_OPENMP)
#pragma omp parallel for num_threads(t) schedule(static)
#endif
    for (int i = 0; i < t; ++i) {
      const std::size_t begin = n * static_cast<std::size_t>(i) / static_cast<std::size_t>(t);
      const std::size_t end = n * static_cast<std::size_t>(i + 1) / static_cast<std::size_t>(t);
      std::memcpy(dst_.data + begin, src_.data + begin, end - begin);
    }
    return 2.0 * static_cast<double>(n) / SecondsSince(start);
  }

 private:
  AlignedBuffer src_, dst_;
  int threads_;
};

// Reads 64 MiB (twice the L3 of the machines we use) so that the copy's
// dirty lines are written back before the timed call, not during it.
double Flush(const AlignedBuffer& flush) {
  double sum = 0;
  const auto* f = reinterpret_cast<const float*>(flush.data);
  for (std::size_t i = 0; i < flush.size / 4; i += 16) sum += f[i];
  return sum;
}

double SmallestRowNorm(const std::uint8_t* data, DType dtype, std::int64_t rows, std::int64_t cols) {
  double smallest = std::numeric_limits<double>::infinity();
  for (std::int64_t r = 0; r < rows; ++r) {
    double sum = 0;
    for (std::int64_t c = 0; c < cols; ++c) {
      const double x = ValueAt(data, dtype, static_cast<std::size_t>(r * cols + c));
      sum += x * x;
    }
    smallest = std::min(smallest, std::sqrt(sum));
  }
  return smallest;
}

struct CaseResult {
  std::string key;  // the summary line's name: rows, matrix-dense, matrix-csr
  std::string name;
  double ms = 0, bytes_per_s = 0, copy_bytes_per_s = 0, fraction = 0, moved = 0;
};

// The repetitions of one case: each measures the copy, flushes the cache (so
// that the timed call does not pay for the copy's dirty lines), then times
// run(), which makes the library call and returns its Status. finish() runs
// after the clock stops: it checks the call did what the case claims,
// prepares the next repetition and returns the bytes the call moved. The
// figures are medians over the repetitions.
template <class Run, class Finish>
CaseResult TimeCase(const Global& g, const char* label, int reps, CopyMeter& copy,
                    const AlignedBuffer& flush, double* sink, Run&& run, Finish&& finish) {
  std::vector<double> ms, rate, copy_rate, fraction, moved_v;
  Progress progress(g, label, static_cast<std::uint64_t>(reps));
  for (int rep = 0; rep < reps; ++rep) {
    const double c = copy.Measure();
    *sink += Flush(flush);
    const auto start = std::chrono::steady_clock::now();
    const Status s = run();
    const double seconds = SecondsSince(start);
    if (!s.ok()) throw Error("the benchmark call failed: " + s.message());
    const double moved = finish();
    ms.push_back(seconds * 1e3);
    rate.push_back(moved / seconds);
    copy_rate.push_back(c);
    fraction.push_back(moved / seconds / c);
    moved_v.push_back(moved);
    progress.Update(static_cast<std::uint64_t>(rep + 1));
  }
  CaseResult r;
  r.ms = Median(ms);
  r.bytes_per_s = Median(rate);
  r.copy_bytes_per_s = Median(copy_rate);
  r.fraction = Median(fraction);
  r.moved = Median(moved_v);
  return r;
}

CaseResult BenchRows(const Global& g, const BenchArgs& a, DType dtype, CopyMeter& copy,
                     const AlignedBuffer& flush, double* sink) {
  const std::size_t elem = DTypeSize(dtype);
  const auto count = static_cast<std::size_t>(a.rows * a.cols);
  AlignedBuffer table(count * elem);
  Fill(table.data, dtype, count, 1);
  std::mt19937_64 rng(7);
  std::uniform_int_distribution<std::int64_t> pick(0, (a.hot > 0 ? std::min(a.hot, a.rows) : a.rows) - 1);
  std::vector<std::int64_t> idx(static_cast<std::size_t>(a.indices));
  NormalizeOptions o;
  o.target = 0.5 * SmallestRowNorm(table.data, dtype, a.rows, a.cols);  // below every row norm
  o.num_threads = g.threads;
  for (auto& i : idx) i = pick(rng);
  RowStats st;
  CaseResult r = TimeCase(
      g, "bench rows", a.reps, copy, flush, sink,
      [&] {
        return NormalizeRows(Table{table.data, dtype, a.rows, a.cols, 0},
                             std::span<const std::int64_t>(idx), o, &st);
      },
      [&] {
        if (st.rows_scaled != st.distinct_rows) {
          throw Error(fmt::format("only {} of {} rows were scaled; the benchmark would not measure "
                                  "what it claims.", st.rows_scaled, st.distinct_rows));
        }
        const double moved = static_cast<double>((st.distinct_rows + st.rows_scaled) * a.cols) *
                                 static_cast<double>(elem) + static_cast<double>(idx.size()) * 8;
        o.target *= 0.8;
        for (auto& i : idx) i = pick(rng);
        return moved;
      });
  r.key = "rows";
  r.name = fmt::format("rows {} {}x{}, {} idx{}", DTypeName(dtype), a.rows, a.cols, a.indices,
                       a.hot > 0 ? fmt::format(" over {} rows", a.hot) : "");
  return r;
}

// Whole-matrix normalization of a dense row-major matrix along axis 0 (the
// column norms of sklearn's normalize(W, axis=0)), max-norm below every
// column norm so that every value is rewritten. Bytes: every value read
// once and written once.
CaseResult BenchMatrix(const Global& g, const BenchArgs& a, DType dtype, CopyMeter& copy,
                       const AlignedBuffer& flush, double* sink) {
  const std::size_t elem = DTypeSize(dtype);
  const auto count = static_cast<std::size_t>(a.matrix_rows * a.matrix_cols);
  AlignedBuffer m(count * elem);
  Fill(m.data, dtype, count, 2);
  MatrixOptions o;
  o.axis = 0;
  o.norm.mode = NormMode::kMaxNorm;
  // Below every column norm (about sqrt(rows / 3) for these values).
  o.norm.target = 0.25 * std::sqrt(static_cast<double>(a.matrix_rows));
  o.norm.num_threads = g.threads;
  const double moved = 2.0 * static_cast<double>(count * elem);
  CaseResult r = TimeCase(
      g, "bench matrix", a.reps, copy, flush, sink,
      [&] { return NormalizeMatrix(Table{m.data, dtype, a.matrix_rows, a.matrix_cols, 0}, o); },
      [&] {
        o.norm.target *= 0.8;
        return moved;
      });
  r.key = "matrix-dense";
  r.name = fmt::format("matrix {} {}x{} dense, axis 0", DTypeName(dtype), a.matrix_rows, a.matrix_cols);
  return r;
}

// A CSR matrix of matrix_rows x matrix_rows with matrix_nnz_per_row entries
// per row at distinct random columns in increasing order (int32 indices),
// axis 0 (column norms across rows: the scattered case). Bytes: values read
// and written once, column indices read once, indptr read once.
CaseResult BenchSparse(const Global& g, const BenchArgs& a, DType dtype, CopyMeter& copy,
                       const AlignedBuffer& flush, double* sink) {
  const std::int64_t n = a.matrix_rows, k = std::min(a.matrix_nnz_per_row, n);
  const std::size_t elem = DTypeSize(dtype);
  const auto nnz = static_cast<std::size_t>(n * k);
  AlignedBuffer values(nnz * elem);
  Fill(values.data, dtype, nnz, 3);
  std::vector<std::int32_t> indices(nnz), indptr(static_cast<std::size_t>(n) + 1);
  // A canonical CSR matrix, as SciPy builds them: each row's k columns are
  // distinct and increasing, one drawn at random from each of k equal
  // stripes of the columns (unsorted rows would take the library's slower
  // path for repeated coordinates).
  std::mt19937 rng(11);
  const std::int64_t stripe = n / k;
  std::uniform_int_distribution<std::int64_t> offset(0, stripe - 1);
  for (std::size_t i = 0; i < nnz; ++i) {
    const auto j = static_cast<std::int64_t>(i % static_cast<std::size_t>(k));
    indices[i] = static_cast<std::int32_t>(j * stripe + offset(rng));
  }
  for (std::int64_t r = 0; r <= n; ++r) indptr[static_cast<std::size_t>(r)] = static_cast<std::int32_t>(r * k);
  MatrixOptions o;
  o.axis = 0;
  o.norm.mode = NormMode::kMaxNorm;
  o.norm.target = 0.01;  // below the norm of every nonempty column
  o.norm.num_threads = g.threads;
  const double moved = static_cast<double>(nnz) * (2.0 * static_cast<double>(elem) + 4) + 4.0 * (n + 1);
  SparseMatrix m;  // no pruning: the call changes its values only
  m.format = SparseFormat::kCSR;
  m.rows = m.cols = n;
  m.nnz = static_cast<std::int64_t>(nnz);
  m.values = values.data;
  m.dtype = dtype;
  m.index_type = IndexType::kInt32;
  m.indptr = indptr.data();
  m.indices = indices.data();
  CaseResult r = TimeCase(
      g, "bench sparse", a.reps, copy, flush, sink, [&] { return NormalizeMatrix(&m, o); },
      [&] {
        o.norm.target *= 0.8;
        return moved;
      });
  r.key = "matrix-csr";
  r.name = fmt::format("matrix {} {}x{} csr, {} per row, axis 0", DTypeName(dtype), n, n, k);
  return r;
}

void Run(const Global& g, const BenchArgs& a) {
  const DType dtype = ParseDType(a.dtype);
  if (a.rows < 1 || a.cols < 1 || a.indices < 1 || a.reps < 1 || a.copy_mib < 1 || a.hot < 0 ||
      a.matrix_rows < 1 || a.matrix_cols < 1 || a.matrix_nnz_per_row < 1 ||
      a.matrix_rows * std::min(a.matrix_nnz_per_row, a.matrix_rows) > INT32_MAX) {
    throw Error("the benchmark sizes must be positive (and the sparse case under 2^31 entries).",
                kExitUsage);
  }
  const bool rows = a.which == "rows" || a.which == "all";
  const bool matrix = a.which == "matrix" || a.which == "all";
  if (!rows && !matrix) {
    throw Error("--case must be rows, matrix or all, not " + formats::Quote(a.which) + ".", kExitUsage);
  }
  const int threads = g.threads > 0 ? g.threads : DefaultThreadCount();
  CopyMeter copy(static_cast<std::size_t>(a.copy_mib) << 20, threads);
  AlignedBuffer flush(std::size_t{64} << 20);
  std::memset(flush.data, 0, flush.size);
  double sink = 0;
  std::vector<CaseResult> results;
  if (rows) results.push_back(BenchRows(g, a, dtype, copy, flush, &sink));
  if (matrix) {
    results.push_back(BenchMatrix(g, a, dtype, copy, flush, &sink));
    results.push_back(BenchSparse(g, a, dtype, copy, flush, &sink));
  }
  if (sink == 12345.678) fmt::print(stderr, " ");  // keeps the flush reads alive

  if (g.json) {
    nlohmann::json cases = nlohmann::json::array();
    for (const auto& r : results) {
      cases.push_back({{"key", r.key}, {"case", r.name}, {"ms", r.ms}, {"bytes_per_s", r.bytes_per_s},
                       {"copy_bytes_per_s", r.copy_bytes_per_s}, {"fraction_of_copy", r.fraction},
                       {"bytes_moved", r.moved}});
    }
    PrintJson({{"command", "bench"}, {"threads", threads}, {"simd", ActiveSimdTarget()},
               {"reps", a.reps}, {"copy_mib", a.copy_mib}, {"cases", cases}});
    return;
  }
  fmt::print("sparsenorm {} bench: {} threads, {}, medians of {} repetitions; copy = memcpy of {} MiB, "
             "bytes read + written\n", SPARSENORM_VERSION_STRING, threads, ActiveSimdTarget(), a.reps, a.copy_mib);
  fmt::print("{:52s} {:>9s} {:>10s} {:>10s} {:>8s}\n", "case", "ms", "GB/s", "copy GB/s", "of copy");
  for (const auto& r : results) {
    fmt::print("{:52s} {:9.3f} {:10.2f} {:10.2f} {:8.2f}\n", r.name, r.ms, r.bytes_per_s / 1e9,
               r.copy_bytes_per_s / 1e9, r.fraction);
  }
  for (const auto& r : results) {
    fmt::print("{}-cli: gbytes_per_s={:.2f} fraction_of_copy={:.2f}\n",
               r.key, r.bytes_per_s / 1e9, r.fraction);
  }
}

}  // namespace

Runner AddBenchCommand(CLI::App& app, const Global& g) {
  auto args = std::make_shared<BenchArgs>();
  CLI::App* cmd = app.add_subcommand(
      "bench", "Measure the library on synthetic data (no file needed) against a memory copy.");
  cmd->add_option("--case", args->which, "rows, matrix or all")->capture_default_str();
  cmd->add_option("--rows", args->rows, "table rows")->capture_default_str();
  cmd->add_option("--cols", args->cols, "table columns")->capture_default_str();
  cmd->add_option("--indices", args->indices, "indices per call, uniform over the rows")->capture_default_str();
  cmd->add_option("--hot", args->hot, "draw the indices from the first HOT rows only (0: all)")->capture_default_str();
  cmd->add_option("--dtype", args->dtype, DTypeNameList(" or "))->capture_default_str();
  cmd->add_option("--reps", args->reps, "repetitions (medians are reported)")->capture_default_str();
  cmd->add_option("--copy-mib", args->copy_mib, "size of the reference memory copy")->capture_default_str();
  cmd->add_option("--matrix-rows", args->matrix_rows, "rows of the dense matrix case")->capture_default_str();
  cmd->add_option("--matrix-cols", args->matrix_cols, "columns of the dense matrix case")->capture_default_str();
  cmd->add_option("--matrix-nnz", args->matrix_nnz_per_row,
                  "entries per row of the sparse case (a square CSR matrix of --matrix-rows rows)")
      ->capture_default_str();
  cmd->footer(R"(Examples:
  sparsenorm bench
      the row operator's headline case (float32 1,000,000 x 128, 100,000
      indices), then a dense and a CSR matrix normalized along axis 0
  sparsenorm bench --case rows --dtype bfloat16 --hot 5000 --threads 8
      bfloat16, indices drawn from 5,000 hot rows, 8 threads
  sparsenorm bench --rows 10000 --reps 3 --copy-mib 64 --json
      a quick check, as JSON)");
  return [args, &g] { Run(g, *args); };
}

}  // namespace sparsenorm::cli
