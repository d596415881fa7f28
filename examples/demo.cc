// sparsenorm-demo: the library's main job on a built-in synthetic table.
//
// Builds an embedding table whose row norms spread over two orders of
// magnitude, draws a skewed list of row indices (as a training step's
// sparse update would, with repeats), applies the max-norm constraint to
// the touched rows, and prints the distribution of their norms before and
// after, with the time and the memory throughput of the call.
//
//   sparsenorm-demo [rows] [cols] [indices] [max_norm]
//   (defaults: 1000000 64 200000 1.0)

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "sparsenorm/sparsenorm.h"

namespace {

std::vector<double> RowNorms(const std::vector<float>& table, std::int64_t cols,
                             const std::vector<std::int64_t>& rows) {
  std::vector<double> norms;
  norms.reserve(rows.size());
  for (std::int64_t r : rows) {
    double s = 0;
    for (std::int64_t k = 0; k < cols; ++k) {
      const double v = table[static_cast<std::size_t>(r * cols + k)];
      s += v * v;
    }
    norms.push_back(std::sqrt(s));
  }
  std::sort(norms.begin(), norms.end());
  return norms;
}

void PrintDistribution(const char* title, const std::vector<double>& sorted, double target) {
  auto q = [&](double f) {
    return sorted[static_cast<std::size_t>(f * static_cast<double>(sorted.size() - 1))];
  };
  // A row scaled to the target has norm target * (1 +- a few float32 ulps);
  // count and bin the norms with that tolerance so such rows read as "at".
  constexpr double kRounding = 1e-6;
  const auto over = std::count_if(sorted.begin(), sorted.end(),
                                  [&](double v) { return v > target * (1 + kRounding); });
  std::printf("%s (%zu distinct rows)\n", title, sorted.size());
  std::printf("  min %.4g   p10 %.4g   median %.4g   p90 %.4g   max %.4g\n", sorted.front(),
              q(0.10), q(0.50), q(0.90), sorted.back());
  std::printf("  above max_norm %.3g (beyond float32 rounding): %lld rows (%.1f%%)\n", target, static_cast<long long>(over),
              100.0 * static_cast<double>(over) / static_cast<double>(sorted.size()));
  // Histogram on a log scale from 0.01 to 100; bin b holds (lo, hi].
  constexpr int kBins = 16;
  std::vector<std::int64_t> bins(kBins, 0);
  for (double v : sorted) {
    const double x = std::max(v * (1 - kRounding), 1e-30);
    int b = static_cast<int>(std::ceil((std::log10(x) + 2.0) / 4.0 * kBins)) - 1;
    bins[std::clamp(b, 0, kBins - 1)]++;
  }
  const std::int64_t peak = *std::max_element(bins.begin(), bins.end());
  for (int b = 0; b < kBins; ++b) {
    const double hi = std::pow(10.0, -2.0 + 4.0 * (b + 1) / kBins);
    const int width = peak > 0 ? static_cast<int>(50 * bins[b] / peak) : 0;
    std::printf("  <= %-8.3g |%-50s %lld\n", hi, std::string(static_cast<std::size_t>(width), '#').c_str(),
                static_cast<long long>(bins[b]));
  }
}

}  // namespace

int main(int argc, char** argv) {
  const std::int64_t rows = argc > 1 ? std::atoll(argv[1]) : 1000000;
  const std::int64_t cols = argc > 2 ? std::atoll(argv[2]) : 64;
  const std::int64_t count = argc > 3 ? std::atoll(argv[3]) : 200000;
  const double max_norm = argc > 4 ? std::atof(argv[4]) : 1.0;
  if (rows <= 0 || cols <= 0 || count < 0) {
    std::fprintf(stderr, "usage: sparsenorm-demo [rows > 0] [cols > 0] [indices >= 0] [max_norm]\n");
    return 2;
  }

  std::printf("sparsenorm %s demo: %lld x %lld float32 table, %lld indices, max_norm %g, "
              "%d threads, SIMD %s\n\n",
              SPARSENORM_VERSION_STRING, static_cast<long long>(rows), static_cast<long long>(cols),
              static_cast<long long>(count), max_norm, sparsenorm::DefaultThreadCount(),
              sparsenorm::ActiveSimdTarget());

  // Rows drawn from N(0, 1) and scaled so that their norms are log-normal
  // around 1: some inside the ball, many outside.
  std::mt19937_64 rng(42);
  std::vector<float> table(static_cast<std::size_t>(rows * cols));
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::lognormal_distribution<float> row_scale(0.0f, 1.0f);
  for (std::int64_t r = 0; r < rows; ++r) {
    const float s = row_scale(rng) / std::sqrt(static_cast<float>(cols));
    for (std::int64_t k = 0; k < cols; ++k) table[static_cast<std::size_t>(r * cols + k)] = normal(rng) * s;
  }
  // Skewed access: popular rows repeat, as in real embedding lookups.
  std::vector<std::int64_t> indices(static_cast<std::size_t>(count));
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  for (auto& i : indices) {
    i = std::min<std::int64_t>(rows - 1, static_cast<std::int64_t>(static_cast<double>(rows) * std::pow(unit(rng), 2.0)));
  }
  std::vector<std::int64_t> distinct = indices;
  std::sort(distinct.begin(), distinct.end());
  distinct.erase(std::unique(distinct.begin(), distinct.end()), distinct.end());
  if (distinct.empty()) {
    std::printf("no indices: nothing to do\n");
    return 0;
  }

  PrintDistribution("row norms before", RowNorms(table, cols, distinct), max_norm);

  sparsenorm::NormalizeOptions options;
  options.target = max_norm;
  sparsenorm::RowStats stats;
  const auto t0 = std::chrono::steady_clock::now();
  const sparsenorm::Status status = sparsenorm::NormalizeRows(
      sparsenorm::MakeTable(table.data(), rows, cols), sparsenorm::Indices(std::span<const std::int64_t>(indices)),
      options, &stats);
  const auto t1 = std::chrono::steady_clock::now();
  if (!status.ok()) {
    std::fprintf(stderr, "sparsenorm: %s\n", status.message().c_str());
    return 1;
  }
  const double seconds = std::chrono::duration<double>(t1 - t0).count();
  // Bytes that had to move: each distinct row read, each scaled row written,
  // the index list read.
  const double bytes = static_cast<double>(stats.distinct_rows + stats.rows_scaled) *
                           static_cast<double>(cols) * sizeof(float) +
                       static_cast<double>(count) * sizeof(std::int64_t);

  std::printf("\nNormalizeRows: %lld indices, %lld distinct rows, %lld scaled, %lld non-finite\n",
              static_cast<long long>(stats.indices_seen), static_cast<long long>(stats.distinct_rows),
              static_cast<long long>(stats.rows_scaled), static_cast<long long>(stats.nonfinite_rows));
  std::printf("  %.3f ms, %.2f GB/s of row and index traffic (one cold call; see bench/run)\n\n",
              seconds * 1e3, bytes / seconds / 1e9);

  PrintDistribution("row norms after", RowNorms(table, cols, distinct), max_norm);
  return 0;
}
