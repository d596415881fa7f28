#include "zipf_batch.h"

#include <algorithm>
#include <cmath>

namespace sparsenorm::bench {
namespace {

// SplitMix64's output function on a counter: value i of stream `seed` is
// Mix(seed, i), so any element can be made on any thread.
std::uint64_t Mix(std::uint64_t seed, std::uint64_t i) {
  std::uint64_t z = seed * 0xd1342543de82ef95ull + (i + 1) * 0x9e3779b97f4a7c15ull;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

double Unit(std::uint64_t bits) { return static_cast<double>(bits >> 11) * 0x1.0p-53; }

// Uniform in [0, bound), without the modulo's bias worth mentioning for
// bounds far below 2^64 (multiply-shift).
std::uint64_t Below(std::uint64_t bits, std::uint64_t bound) {
  return static_cast<std::uint64_t>((static_cast<unsigned __int128>(bits) * bound) >> 64);
}

}  // namespace

std::vector<std::int64_t> ZipfBatch(std::int64_t count, std::int64_t rows, double exponent,
                                    std::uint64_t seed) {
  std::vector<std::int64_t> perm(static_cast<std::size_t>(rows));
  for (std::int64_t r = 0; r < rows; ++r) perm[static_cast<std::size_t>(r)] = r;
  for (std::int64_t r = rows - 1; r > 0; --r) {  // Fisher-Yates
    const auto j = Below(Mix(seed, static_cast<std::uint64_t>(r)), static_cast<std::uint64_t>(r + 1));
    std::swap(perm[static_cast<std::size_t>(r)], perm[j]);
  }
  std::vector<double> cdf(static_cast<std::size_t>(rows));
  double total = 0;
  for (std::int64_t k = 1; k <= rows; ++k) {
    total += std::pow(static_cast<double>(k), -exponent);
    cdf[static_cast<std::size_t>(k - 1)] = total;
  }
  std::vector<std::int64_t> out(static_cast<std::size_t>(count));
  for (std::int64_t i = 0; i < count; ++i) {
    const double u = Unit(Mix(seed + 1, static_cast<std::uint64_t>(i))) * total;
    const auto rank = std::upper_bound(cdf.begin(), cdf.end(), u) - cdf.begin();  // k - 1
    out[static_cast<std::size_t>(i)] = perm[static_cast<std::size_t>(std::min<std::int64_t>(rank, rows - 1))];
  }
  return out;
}

void FillUniform(float* out, std::int64_t n, float scale, std::uint64_t seed) {
#if defined(_OPENMP)
#pragma omp parallel for schedule(static)
#endif
  for (std::int64_t i = 0; i < n; ++i) {
    const double u = Unit(Mix(seed, static_cast<std::uint64_t>(i)));
    out[i] = static_cast<float>((2.0 * u - 1.0) * scale);
  }
}

}  // namespace sparsenorm::bench

extern "C" void sparsenorm_bench_fill_uniform(float* out, std::int64_t n, float scale, std::uint64_t seed) {
  sparsenorm::bench::FillUniform(out, n, scale, seed);
}

extern "C" void sparsenorm_bench_zipf_batch(std::int64_t count, std::int64_t rows, double exponent,
                                            std::uint64_t seed, std::int64_t* out) {
  const std::vector<std::int64_t> batch = sparsenorm::bench::ZipfBatch(count, rows, exponent, seed);
  std::copy(batch.begin(), batch.end(), out);
}
