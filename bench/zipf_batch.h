// The index batch of the optimizer-step benchmarks (optim_bench.cc and,
// through ctypes, compare_optim.py): one definition, so both measure the
// same batch.
//
// Real training batches repeat popular items. The batch draws `count`
// ranks k in [1, rows] with probability proportional to k^-exponent (Zipf),
// by inverse CDF from a counter-based generator, and maps rank k to row
// perm[k - 1] through a fixed random permutation, so popular rows lie
// scattered over the table as in a trained embedding. With 1,000,000 rows,
// exponent 1.1 and 100,000 draws about 24,000 rows are distinct, and the
// most popular one is named about 12,000 times.
#ifndef SPARSENORM_BENCH_ZIPF_BATCH_H_
#define SPARSENORM_BENCH_ZIPF_BATCH_H_

#include <cstdint>
#include <vector>

namespace sparsenorm::bench {

std::vector<std::int64_t> ZipfBatch(std::int64_t count, std::int64_t rows, double exponent,
                                    std::uint64_t seed);

// n values uniform in [-scale, scale), from the same generator (much faster
// than std::normal_distribution; the benchmarks need values, not a law).
void FillUniform(float* out, std::int64_t n, float scale, std::uint64_t seed);

}  // namespace sparsenorm::bench

extern "C" {
// ZipfBatch into out[0 .. count).
void sparsenorm_bench_zipf_batch(std::int64_t count, std::int64_t rows, double exponent,
                                 std::uint64_t seed, std::int64_t* out);
// FillUniform.
void sparsenorm_bench_fill_uniform(float* out, std::int64_t n, float scale, std::uint64_t seed);
}

#endif  // SPARSENORM_BENCH_ZIPF_BATCH_H_
