// The cost of the sharded row operator over the single-process call, for
// docs/DISTRIBUTED.md. Run with 2 ranks:
//
//   mpirun -np 2 build/tests/sparsenorm_mpi_overhead [rows cols batch iterations]
//
// Rank 0 holds the whole table too, for the single-process call. Each
// iteration, interleaved: the single-process call on rank 0 (1 thread, then
// 2 threads: the machine's cores), the column-sharded call (each rank half
// the columns), the row-sharded call (each rank half the rows), and the
// exchange alone (the MPI_Allgather of 16 bytes per distinct row per rank)
// and one all-gather of 80 bytes per rank (the agreement's latency), and
// the column-sharded call's local work without any exchange.
// Every call rescales every touched row (constant-norm mode), so each
// iteration does the same work. Times are the slowest rank's; the table
// reports medians of times and of per-iteration ratios, and the time the
// touched rows' bytes (read and written once) take at the memcpy bandwidth
// measured in the same run.

#include <mpi.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <span>
#include <vector>

#include "sparsenorm/mpi.h"
#include "sparsenorm/rows.h"
#include "sparsenorm/sharded.h"

namespace {

using namespace sparsenorm;

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// Seconds of fn on the slowest rank.
template <class Fn>
double Timed(Fn&& fn) {
  MPI_Barrier(MPI_COMM_WORLD);
  const double start = MPI_Wtime();
  fn();
  double t = MPI_Wtime() - start;
  MPI_Allreduce(MPI_IN_PLACE, &t, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
  return t;
}

void Fill(std::vector<float>* v, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  for (float& x : *v) x = normal(rng);
}

}  // namespace

int main(int argc, char** argv) {
  MPI_Init(&argc, &argv);
  int rank = 0, size = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  const std::int64_t rows = argc > 1 ? std::atoll(argv[1]) : 1 << 20;
  const std::int64_t cols = argc > 2 ? std::atoll(argv[2]) : 64;
  const std::int64_t batch = argc > 3 ? std::atoll(argv[3]) : 1 << 16;
  const int iterations = argc > 4 ? std::atoi(argv[4]) : 21;

  std::vector<std::int64_t> indices(static_cast<std::size_t>(batch));
  {
    std::mt19937_64 rng(1);  // the same list on every rank
    std::uniform_int_distribution<std::int64_t> pick(0, rows - 1);
    for (auto& i : indices) i = pick(rng);
  }
  std::vector<std::int64_t> distinct = indices;
  std::sort(distinct.begin(), distinct.end());
  distinct.erase(std::unique(distinct.begin(), distinct.end()), distinct.end());

  // The whole table (rank 0), a column slice and a row block on every rank.
  std::vector<float> whole(rank == 0 ? static_cast<std::size_t>(rows * cols) : 0);
  Fill(&whole, 2);
  const std::int64_t c0 = cols * rank / size, c1 = cols * (rank + 1) / size;
  std::vector<float> column_slice(static_cast<std::size_t>(rows * (c1 - c0)));
  Fill(&column_slice, 3 + static_cast<std::uint64_t>(rank));
  const std::int64_t r0 = rows * rank / size, r1 = rows * (rank + 1) / size;
  std::vector<float> row_block(static_cast<std::size_t>((r1 - r0) * cols));
  Fill(&row_block, 7 + static_cast<std::uint64_t>(rank));
  std::vector<double> parts(distinct.size() * 2, 1.0), gathered(parts.size() * static_cast<std::size_t>(size));
  // The memcpy ceiling: 256 MiB copied, read once and written once.
  std::vector<char> from(std::size_t{1} << 28, 1), to(std::size_t{1} << 28, 0);

  NormalizeOptions one;
  one.mode = NormMode::kConstantNorm;
  one.num_threads = 1;
  NormalizeOptions two = one;
  two.num_threads = 2;
  const Indices idx{std::span<const std::int64_t>(indices)};
  const Table whole_table = MakeTable(whole.data(), rank == 0 ? rows : 0, cols);
  const Table column_table = MakeTable(column_slice.data(), rows, c1 - c0);
  const Table row_table = MakeTable(row_block.data(), r1 - r0, cols);
  mpi::RowSharding blocks;
  blocks.row_offset = r0;

  std::int64_t header[10] = {};
  std::vector<std::int64_t> headers(static_cast<std::size_t>(10 * size));
  std::vector<double> single1, single2, column, row, exchange, latency, local, copy;
  bool ok = true;
  for (int it = -2; it < iterations; ++it) {  // two warm-up rounds
    const double a = Timed([&] { if (rank == 0) ok &= NormalizeRows(whole_table, idx, one).ok(); });
    const double b = Timed([&] { if (rank == 0) ok &= NormalizeRows(whole_table, idx, two).ok(); });
    const double c = Timed([&] { ok &= mpi::NormalizeColumnShardedRows(MPI_COMM_WORLD, column_table, idx, one).ok(); });
    const double d = Timed([&] { ok &= mpi::NormalizeRowShardedRows(MPI_COMM_WORLD, row_table, idx, blocks, one).ok(); });
    const double e = Timed([&] {
      MPI_Allgather(parts.data(), static_cast<int>(parts.size()), MPI_DOUBLE, gathered.data(),
                    static_cast<int>(parts.size()), MPI_DOUBLE, MPI_COMM_WORLD);
    });
    const double h = Timed([&] {
      std::vector<std::int64_t> touched;
      std::vector<NormPart> mine, combined;
      ok &= RowNormParts(column_table, idx, one, &touched, &mine).ok();
      ok &= CombineGatheredParts(mine, 1, one.p, &combined).ok();
      ok &= ApplyRowNorms(column_table, touched, combined, one).ok();
    });
    const double g = Timed([&] {
      MPI_Allgather(header, 10, MPI_INT64_T, headers.data(), 10, MPI_INT64_T, MPI_COMM_WORLD);
    });
    const double f = Timed([&] { if (rank == 0) std::memcpy(to.data(), from.data(), from.size()); });
    if (it < 0) continue;
    single1.push_back(a);
    single2.push_back(b);
    column.push_back(c);
    row.push_back(d);
    exchange.push_back(e);
    latency.push_back(g);
    local.push_back(h);
    copy.push_back(f);
  }
  if (rank == 0) {
    std::vector<double> rc1, rr1, rc2, rr2;
    for (std::size_t i = 0; i < single1.size(); ++i) {
      rc1.push_back(column[i] / single1[i]);
      rr1.push_back(row[i] / single1[i]);
      rc2.push_back(column[i] / single2[i]);
      rr2.push_back(row[i] / single2[i]);
    }
    const double touched = static_cast<double>(distinct.size()) * static_cast<double>(cols) * 4.0;
    const double bandwidth = 2.0 * static_cast<double>(from.size()) / Median(copy);  // read + write
    std::printf("%d ranks, table %lld x %lld float32, %lld indices (%zu distinct rows, %.1f MiB touched), "
                "%d iterations%s\n",
                size, static_cast<long long>(rows), static_cast<long long>(cols), static_cast<long long>(batch),
                distinct.size(), touched / (1 << 20), iterations, ok ? "" : ", SOME CALL FAILED");
    std::printf("memcpy ceiling: %.2f GB/s; touched rows read and written once at it: %.3f ms\n",
                bandwidth / 1e9, 2.0 * touched / bandwidth * 1e3);
    std::printf("single process, 1 thread:   %8.3f ms\n", Median(single1) * 1e3);
    std::printf("single process, 2 threads:  %8.3f ms\n", Median(single2) * 1e3);
    std::printf("column-sharded, %d ranks:    %8.3f ms  (ratio to 1 thread %.2f, to 2 threads %.2f)\n", size,
                Median(column) * 1e3, Median(rc1), Median(rc2));
    std::printf("  its local work alone (parts, combine, apply; no exchange): %8.3f ms\n",
                Median(local) * 1e3);
    std::printf("row-sharded, %d ranks:       %8.3f ms  (ratio to 1 thread %.2f, to 2 threads %.2f)\n", size,
                Median(row) * 1e3, Median(rr1), Median(rr2));
    std::printf("exchange alone (%zu bytes per rank): %.3f ms\n", parts.size() * sizeof(double),
                Median(exchange) * 1e3);
    std::printf("one small all-gather (80 bytes per rank, the agreement's size): %.3f ms\n",
                Median(latency) * 1e3);
  }
  MPI_Finalize();
  return ok ? 0 : 1;
}
