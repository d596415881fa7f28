// sparsenorm/mpi.h under mpirun with 1 to 4 ranks (tests/CMakeLists.txt).
// Every rank builds the same global table from the same seed, keeps its
// shard, and compares what the distributed call left in it with the
// single-process NormalizeRows on the whole table. Each rank counts its
// failures; the program fails when any rank failed.

#include <mpi.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <functional>
#include <limits>
#include <random>
#include <string>
#include <type_traits>
#include <vector>

#include "mpi_test_util.h"
#include "sparsenorm/mpi.h"
#include "sparsenorm/matrix.h"
#include "sparsenorm/rows.h"
#include "sparsenorm/sharded.h"

namespace {

using namespace sparsenorm;

using namespace mpi_test;

template <class T>
Dense<T> RandomTable(std::int64_t rows, std::int64_t cols, std::mt19937_64& rng) {
  Dense<T> t(rows, cols);
  std::normal_distribution<double> normal(0.0, 1.0);
  std::uniform_real_distribution<double> exponent(-2.0, 2.0);
  for (std::int64_t r = 0; r < rows; ++r) {
    const double scale = std::pow(10.0, exponent(rng)) / std::sqrt(static_cast<double>(std::max<std::int64_t>(cols, 1)));
    for (std::int64_t c = 0; c < cols; ++c) t.at(r, c) = static_cast<T>(normal(rng) * scale);
  }
  return t;
}

// Units in the last place between two finite values of T.
template <class T>
std::int64_t Ulps(T a, T b) {
  using I = std::conditional_t<sizeof(T) == 4, std::int32_t, std::int64_t>;
  auto ordered = [](T x) {
    const I i = std::bit_cast<I>(x);
    return i < 0 ? static_cast<std::int64_t>(std::numeric_limits<I>::min()) - i : static_cast<std::int64_t>(i);
  };
  const std::int64_t d = ordered(a) - ordered(b);
  return d < 0 ? -d : d;
}

// Column cut points shared by every rank: random, rank 1 empty when there
// are 3 or more ranks.
std::vector<std::int64_t> ColumnCuts(std::int64_t cols, std::mt19937_64& rng) {
  std::vector<std::int64_t> cuts(static_cast<std::size_t>(g_size + 1), 0);
  std::uniform_int_distribution<std::int64_t> pick(0, cols);
  for (int k = 1; k < g_size; ++k) cuts[static_cast<std::size_t>(k)] = pick(rng);
  cuts.back() = cols;
  std::sort(cuts.begin(), cuts.end());
  if (g_size >= 3) cuts[2] = cuts[1];
  return cuts;
}

std::uint64_t Digest(const std::string& s) {
  std::uint64_t h = 1469598103934665603ull;
  for (unsigned char ch : s) h = (h ^ ch) * 1099511628211ull;
  return h;
}

// Every rank returned the same status (code and message).
void CheckSameStatusEverywhere(const Status& s, const char* what) {
  std::uint64_t mine[2] = {static_cast<std::uint64_t>(s.code()), Digest(s.message())};
  std::vector<std::uint64_t> all(static_cast<std::size_t>(2 * g_size));
  MPI_Allgather(mine, 2, MPI_UINT64_T, all.data(), 2, MPI_UINT64_T, MPI_COMM_WORLD);
  for (int k = 0; k < g_size; ++k) {
    CHECK(all[2 * static_cast<std::size_t>(k)] == mine[0] && all[2 * static_cast<std::size_t>(k) + 1] == mine[1],
          "%s: rank %d's status differs from this rank's (%s)", what, k, s.message().c_str());
  }
}

template <class T>
void ColumnShardedMatchesSingleProcess(std::mt19937_64& rng, int trial) {
  const std::int64_t rows = std::uniform_int_distribution<std::int64_t>(1, 50)(rng);
  const std::int64_t cols = std::uniform_int_distribution<std::int64_t>(0, 40)(rng);
  const Dense<T> whole = RandomTable<T>(rows, cols, rng);
  const std::int64_t count = trial % 5 == 0 ? 0 : std::uniform_int_distribution<std::int64_t>(1, 80)(rng);
  std::vector<std::int64_t> indices(static_cast<std::size_t>(count));
  for (auto& i : indices) i = std::uniform_int_distribution<std::int64_t>(0, rows - 1)(rng);
  const std::vector<std::int64_t> cuts = ColumnCuts(cols, rng);
  NormalizeOptions options;
  const double ps[] = {2.0, 1.0, kInfinity, 3.0};
  options.p = ps[trial % 4];
  options.target = std::uniform_real_distribution<double>(0.2, 2.0)(rng);
  if (trial % 6 == 5) options.mode = NormMode::kConstantNorm;

  Dense<T> want = whole;
  RowStats want_stats;
  CHECK(NormalizeRows(want.view(), std::span<const std::int64_t>(indices), options, &want_stats).ok(), "single");
  const std::int64_t c0 = cuts[static_cast<std::size_t>(g_rank)];
  const std::int64_t c1 = cuts[static_cast<std::size_t>(g_rank) + 1];
  Dense<T> mine = whole.Columns(c0, c1);
  Dense<T> again = mine;
  RowStats stats;
  const Status s = mpi::NormalizeColumnShardedRows(MPI_COMM_WORLD, mine.view(),
                                                   std::span<const std::int64_t>(indices), options, &stats);
  CHECK(s.ok(), "trial %d: %s", trial, s.message().c_str());
  CHECK(stats.distinct_rows == want_stats.distinct_rows && stats.indices_seen == count, "trial %d stats", trial);
  // Within the bound of sharded.h; one rank is the single-process call.
  const std::int64_t tolerance = g_size == 1 ? 0 : 16;
  for (std::int64_t r = 0; r < rows; ++r) {
    for (std::int64_t c = c0; c < c1; ++c) {
      const std::int64_t d = Ulps(mine.at(r, c - c0), want.at(r, c));
      CHECK(d <= tolerance, "trial %d row %lld col %lld: %.9g vs %.9g (%lld ulps)", trial,
            static_cast<long long>(r), static_cast<long long>(c), static_cast<double>(mine.at(r, c - c0)),
            static_cast<double>(want.at(r, c)), static_cast<long long>(d));
    }
  }
  // The same bits as the split-phase primitives with one MPI_Allgather
  // between them (from 4 ranks on the adapter combines in chunks).
  {
    Dense<T> manual = whole.Columns(c0, c1);
    std::vector<std::int64_t> touched;
    std::vector<NormPart> parts, combined;
    CHECK(RowNormParts(manual.view(), std::span<const std::int64_t>(indices), options, &touched, &parts).ok(),
          "parts");
    std::vector<NormPart> gathered(parts.size() * static_cast<std::size_t>(g_size));
    MPI_Allgather(parts.data(), static_cast<int>(2 * parts.size()), MPI_DOUBLE, gathered.data(),
                  static_cast<int>(2 * parts.size()), MPI_DOUBLE, MPI_COMM_WORLD);
    CHECK(CombineGatheredParts(gathered, g_size, options.p, &combined).ok(), "combine");
    CHECK(ApplyRowNorms(manual.view(), touched, combined, options).ok(), "apply");
    CHECK(std::memcmp(manual.v.data(), mine.v.data(), mine.v.size() * sizeof(T)) == 0,
          "trial %d: differs from the one-step combination", trial);
  }
  // Reproducible bit for bit.
  CHECK(mpi::NormalizeColumnShardedRows(MPI_COMM_WORLD, again.view(), std::span<const std::int64_t>(indices),
                                        options).ok(), "again");
  CHECK(again.v == mine.v, "trial %d: a second run differs", trial);
  // Every rank counted the same rows scaled.
  std::int64_t scaled[2] = {stats.rows_scaled, -stats.rows_scaled};
  MPI_Allreduce(MPI_IN_PLACE, scaled, 2, MPI_INT64_T, MPI_MAX, MPI_COMM_WORLD);
  CHECK(scaled[0] == -scaled[1], "trial %d: ranks counted different rows scaled", trial);
}

// A row whose norm is exactly the bound: one column per rank, values whose
// parts combine exactly. Left on every rank at the bound, scaled as the
// single-process call scales it one ulp below.
void DecisionsAtTheBound() {
  const std::vector<std::vector<double>> rows = {{5.0}, {3.0, 4.0}, {2.0, 4.0, 4.0}, {1.0, 1.0, 1.0, 1.0}};
  const std::vector<double> norms = {5.0, 5.0, 6.0, 2.0};
  const auto& row = rows[static_cast<std::size_t>(std::min(g_size, 4) - 1)];
  if (g_size > 4) return;
  const double norm = norms[static_cast<std::size_t>(g_size - 1)];
  for (double target : {norm, std::nextafter(norm, 0.0)}) {
    Dense<float> whole(3, g_size);
    for (std::int64_t r = 0; r < 3; ++r) {
      for (int c = 0; c < g_size; ++c) whole.at(r, c) = static_cast<float>(row[static_cast<std::size_t>(c)]);
    }
    const std::vector<std::int64_t> idx = {2, 0, 2};
    NormalizeOptions options;
    options.target = target;
    Dense<float> want = whole;
    RowStats want_stats;
    CHECK(NormalizeRows(want.view(), std::span<const std::int64_t>(idx), options, &want_stats).ok(), "single");
    CHECK(want_stats.rows_scaled == (target == norm ? 0 : 2), "single-process decision");
    Dense<float> mine = whole.Columns(g_rank, g_rank + 1);
    RowStats stats;
    CHECK(mpi::NormalizeColumnShardedRows(MPI_COMM_WORLD, mine.view(), std::span<const std::int64_t>(idx), options,
                                          &stats).ok(), "bound");
    CHECK(stats.rows_scaled == want_stats.rows_scaled, "rows scaled %lld", static_cast<long long>(stats.rows_scaled));
    for (std::int64_t r = 0; r < 3; ++r) {
      CHECK(std::bit_cast<std::uint32_t>(mine.at(r, 0)) == std::bit_cast<std::uint32_t>(want.at(r, g_rank)),
            "target %.17g row %lld: %.9g vs %.9g", target, static_cast<long long>(r), mine.at(r, 0),
            want.at(r, g_rank));
    }
  }
}

// Global rows [begin, end) of rank k among `size` blocks, uneven: rank 0
// holds none when there are 2 ranks or more.
std::pair<std::int64_t, std::int64_t> Block(std::int64_t global, int k) {
  if (g_size == 1) return {0, global};
  const std::int64_t per = global / (g_size - 1);
  const std::int64_t begin = k == 0 ? 0 : std::min(global, per * (k - 1));
  const std::int64_t end = k == 0 ? 0 : (k == g_size - 1 ? global : std::min(global, per * k));
  return {begin, end};
}

template <class T>
void RowShardedMatchesSingleProcess(std::mt19937_64& rng, int trial, bool cyclic) {
  const std::int64_t global = std::uniform_int_distribution<std::int64_t>(0, 60)(rng);
  const std::int64_t cols = std::uniform_int_distribution<std::int64_t>(1, 20)(rng);
  const Dense<T> whole = RandomTable<T>(global, cols, rng);
  const std::int64_t count = global == 0 || trial % 4 == 0 ? 0 : std::uniform_int_distribution<std::int64_t>(1, 50)(rng);
  std::vector<std::int32_t> indices(static_cast<std::size_t>(count));
  // Only the upper half of the table is touched: some ranks own none of it.
  for (auto& i : indices) i = static_cast<std::int32_t>(std::uniform_int_distribution<std::int64_t>(global / 2, global - 1)(rng));
  NormalizeOptions options;
  options.target = 0.5;
  Dense<T> want = whole;
  CHECK(NormalizeRows(want.view(), std::span<const std::int32_t>(indices), options).ok(), "single");

  std::vector<std::int64_t> members;
  mpi::RowSharding sharding;
  sharding.cyclic = cyclic;
  if (cyclic) {
    for (std::int64_t g = g_rank; g < global; g += g_size) members.push_back(g);
  } else {
    // Blocks in reverse rank order: rank k holds block size - 1 - k.
    const auto [b, e] = Block(global, g_size - 1 - g_rank);
    for (std::int64_t g = b; g < e; ++g) members.push_back(g);
    sharding.row_offset = b;
  }
  Dense<T> shard(static_cast<std::int64_t>(members.size()), cols);
  for (std::size_t i = 0; i < members.size(); ++i) {
    for (std::int64_t c = 0; c < cols; ++c) shard.at(static_cast<std::int64_t>(i), c) = whole.at(members[i], c);
  }
  const Status s = mpi::NormalizeRowShardedRows(MPI_COMM_WORLD, shard.view(), std::span<const std::int32_t>(indices),
                                                sharding, options);
  CHECK(s.ok(), "row-sharded trial %d: %s", trial, s.message().c_str());
  for (std::size_t i = 0; i < members.size(); ++i) {
    for (std::int64_t c = 0; c < cols; ++c) {
      CHECK(Ulps(shard.at(static_cast<std::int64_t>(i), c), want.at(members[i], c)) == 0,
            "row-sharded trial %d (cyclic %d) global row %lld", trial, cyclic ? 1 : 0,
            static_cast<long long>(members[i]));
    }
  }
}

// A dense matrix: row blocks on axis 0 (the founding formula), column
// blocks on axis 1, against NormalizeMatrix on the gathered matrix.
void ShardedMatrixMatchesSingleProcess(std::mt19937_64& rng, int trial) {
  const int axis = trial % 2;
  const std::int64_t rows = std::uniform_int_distribution<std::int64_t>(0, 40)(rng);
  const std::int64_t cols = std::uniform_int_distribution<std::int64_t>(0, 30)(rng);
  const Dense<double> whole = RandomTable<double>(rows, cols, rng);
  const std::vector<std::int64_t> cuts = ColumnCuts(axis == 0 ? rows : cols, rng);
  MatrixOptions options;
  options.axis = axis;
  if (trial % 3 == 0) options.prune_below = 0.01;
  Dense<double> want = whole;
  MatrixStats want_stats;
  CHECK(NormalizeMatrix(want.view(), options, &want_stats).ok(), "single");
  const std::int64_t b = cuts[static_cast<std::size_t>(g_rank)], e = cuts[static_cast<std::size_t>(g_rank) + 1];
  Dense<double> mine(axis == 0 ? e - b : rows, axis == 0 ? cols : e - b);
  for (std::int64_t r = 0; r < mine.rows; ++r) {
    for (std::int64_t c = 0; c < mine.cols; ++c) mine.at(r, c) = axis == 0 ? whole.at(b + r, c) : whole.at(r, b + c);
  }
  MatrixStats stats;
  const Status s = mpi::NormalizeShardedMatrix(MPI_COMM_WORLD, mine.view(), options, &stats);
  CHECK(s.ok(), "matrix trial %d: %s", trial, s.message().c_str());
  CHECK(stats.vectors == want_stats.vectors && stats.zero_vectors == want_stats.zero_vectors,
        "matrix trial %d stats", trial);
  for (std::int64_t r = 0; r < mine.rows; ++r) {
    for (std::int64_t c = 0; c < mine.cols; ++c) {
      const double w = axis == 0 ? want.at(b + r, c) : want.at(r, b + c);
      if (options.prune_below > 0 && (w == 0.0 || mine.at(r, c) == 0.0)) continue;
      // Columns: the parts' scaled float64 sums against the single-process
      // plain float64 sums, a few ulps apart even with one rank.
      CHECK(Ulps(mine.at(r, c), w) <= 16, "matrix trial %d (%lld, %lld): %.17g vs %.17g",
            trial, static_cast<long long>(r), static_cast<long long>(c), mine.at(r, c), w);
    }
  }
}

// Bad input on one rank (the last): every rank returns the same error and
// no shard changes.
void FaultsLeaveEveryShardUnchanged() {
  std::mt19937_64 rng(99);  // the same on every rank
  const std::int64_t rows = 24, cols = 8;
  const Dense<float> whole = RandomTable<float>(rows, cols, rng);
  const std::vector<std::int64_t> cuts = ColumnCuts(cols, rng);
  const Dense<float> original = whole.Columns(cuts[static_cast<std::size_t>(g_rank)],
                                        cuts[static_cast<std::size_t>(g_rank) + 1]);
  const bool last = g_rank == g_size - 1;
  NormalizeOptions tiny;
  tiny.target = 1e-3;  // every finite row would be scaled

  struct Case {
    const char* name;
    std::function<Status(Dense<float>&)> call;
    StatusCode code;
    const char* words;
  };
  std::vector<std::int64_t> good = {3, 7, 3, 20};
  std::vector<std::int64_t> bad = good;
  if (last) bad[2] = rows;  // out of range, on the last rank only
  const std::vector<Case> cases = {
      {"column-sharded bad index on the last rank",
       [&](Dense<float>& t) {
         return mpi::NormalizeColumnShardedRows(MPI_COMM_WORLD, t.view(), std::span<const std::int64_t>(bad), tiny);
       },
       StatusCode::kOutOfRange, "indices[2] = 24"},
      {"column-sharded options differ on the last rank",
       [&](Dense<float>& t) {
         NormalizeOptions o = tiny;
         if (last && g_size > 1) o.eps = 1e-7;
         if (g_size == 1) o.target = -1.0;  // one rank: make it fail anyway
         return mpi::NormalizeColumnShardedRows(MPI_COMM_WORLD, t.view(), std::span<const std::int64_t>(good), o);
       },
       StatusCode::kInvalidArgument, g_size > 1 ? "ranks disagree on the options" : "target"},
      {"column-sharded row count differs on the last rank",
       [&](Dense<float>& t) {
         Table v = t.view();
         if (last) v.rows -= 1;
         if (g_size == 1) v.cols = -1;
         return mpi::NormalizeColumnShardedRows(MPI_COMM_WORLD, v, std::span<const std::int64_t>(good), tiny);
       },
       StatusCode::kInvalidArgument, g_size > 1 ? "row count" : "cols"},
      {"column-sharded NaN on the last rank under kError",
       [&](Dense<float>& t) {
         NormalizeOptions o = tiny;
         o.non_finite = NonFinitePolicy::kError;
         Dense<float> copy = t;
         if (last && t.cols > 0) t.at(7, t.cols - 1) = std::nanf("");
         const Status s = mpi::NormalizeColumnShardedRows(MPI_COMM_WORLD, t.view(), std::span<const std::int64_t>(good), o);
         if (last && t.cols > 0) t.at(7, t.cols - 1) = copy.at(7, t.cols - 1);
         return s;
       },
       StatusCode::kNonFinite, "row 7 "},
  };
  for (const Case& c : cases) {
    // The NaN case needs the last rank to hold a column.
    if (c.code == StatusCode::kNonFinite && cuts[static_cast<std::size_t>(g_size)] == cuts[static_cast<std::size_t>(g_size) - 1]) {
      continue;  // same decision on every rank: the cuts are shared
    }
    Dense<float> t = original;
    const Status s = c.call(t);
    CHECK(s.code() == c.code, "%s: got %s", c.name, s.message().c_str());
    CHECK(s.message().find(c.words) != std::string::npos, "%s: message %s", c.name, s.message().c_str());
    CHECK(t.v == original.v, "%s: the shard changed", c.name);
    CheckSameStatusEverywhere(s, c.name);
  }

  // Row-sharded: the same index list everywhere with one bad index; a list
  // that differs on the last rank; a NaN row owned by the last rank.
  const auto [b, e] = Block(rows, g_rank);
  Dense<float> shard(e - b, cols);
  for (std::int64_t g = b; g < e; ++g) {
    for (std::int64_t c = 0; c < cols; ++c) shard.at(g - b, c) = whole.at(g, c);
  }
  const Dense<float> shard0 = shard;
  mpi::RowSharding sharding;
  sharding.row_offset = b;
  std::vector<std::int64_t> everywhere_bad = {1, 23, -4};
  Status s = mpi::NormalizeRowShardedRows(MPI_COMM_WORLD, shard.view(), std::span<const std::int64_t>(everywhere_bad),
                                          sharding, tiny);
  CHECK(s.code() == StatusCode::kOutOfRange && s.message().find("indices[2] = -4") != std::string::npos,
        "row-sharded bad index: %s", s.message().c_str());
  CHECK(shard.v == shard0.v, "row-sharded bad index changed the shard");
  CheckSameStatusEverywhere(s, "row-sharded bad index");
  if (g_size > 1) {
    s = mpi::NormalizeRowShardedRows(MPI_COMM_WORLD, shard.view(), std::span<const std::int64_t>(bad), sharding, tiny);
    CHECK(s.code() == StatusCode::kInvalidArgument && s.message().find("index") != std::string::npos,
          "row-sharded list differs: %s", s.message().c_str());
    CHECK(shard.v == shard0.v, "row-sharded differing list changed the shard");
    CheckSameStatusEverywhere(s, "row-sharded differing list");
    // Blocks that leave a gap.
    mpi::RowSharding wrong = sharding;
    if (last) wrong.row_offset = b + 1;
    s = mpi::NormalizeRowShardedRows(MPI_COMM_WORLD, shard.view(), std::span<const std::int64_t>(good), wrong, tiny);
    CHECK(s.code() == StatusCode::kInvalidArgument && s.message().find("tile") != std::string::npos,
          "row-sharded blocks with a gap: %s", s.message().c_str());
    CHECK(shard.v == shard0.v, "row-sharded blocks with a gap changed the shard");
    CheckSameStatusEverywhere(s, "row-sharded blocks with a gap");
  }
  {
    NormalizeOptions o = tiny;
    o.non_finite = NonFinitePolicy::kError;
    const std::int64_t victim = rows - 1;  // owned by the last rank
    if (victim >= b && victim < e) shard.at(victim - b, 0) = std::numeric_limits<float>::infinity();
    const Dense<float> before = shard;
    const std::vector<std::int64_t> idx = {0, victim, 5};
    s = mpi::NormalizeRowShardedRows(MPI_COMM_WORLD, shard.view(), std::span<const std::int64_t>(idx), sharding, o);
    CHECK(s.code() == StatusCode::kNonFinite && s.message().find("global row 23") != std::string::npos,
          "row-sharded NaN: %s", s.message().c_str());
    CHECK(shard.v == before.v, "row-sharded NaN changed the shard");
    CheckSameStatusEverywhere(s, "row-sharded NaN");
  }
}


// A sparse matrix in CSR (major = rows) or CSC (major = columns) built from
// a dense one, keeping every nonzero and, as explicit zeros, every entry
// marked in `zeros`.
template <class T, class I>
struct Compressed {
  SparseFormat format = SparseFormat::kCSR;
  std::int64_t rows = 0, cols = 0;
  std::vector<I> indptr, indices;
  std::vector<T> values;
  SparseMatrix m;

  SparseMatrix* view() {
    m.format = format;
    m.rows = rows;
    m.cols = cols;
    m.nnz = static_cast<std::int64_t>(values.size());
    m.values = values.data();
    m.dtype = std::is_same_v<T, float> ? DType::kFloat32 : DType::kFloat64;
    m.index_type = sizeof(I) == 4 ? IndexType::kInt32 : IndexType::kInt64;
    m.indptr = indptr.data();
    m.indices = indices.data();
    return &m;
  }
  // After a call that pruned: the arrays cut to slice->nnz.
  void Sync() {
    values.resize(static_cast<std::size_t>(m.nnz));
    indices.resize(static_cast<std::size_t>(m.nnz));
  }
  // The dense matrix; (r, c) with r in [r0, r0 + rows) and so on.
  Dense<double> ToDense() const {
    Dense<double> d(rows, cols);
    const bool csr = format == SparseFormat::kCSR;
    for (std::int64_t s = 0; s + 1 < static_cast<std::int64_t>(indptr.size()); ++s) {
      for (I k = indptr[static_cast<std::size_t>(s)]; k < indptr[static_cast<std::size_t>(s) + 1]; ++k) {
        const std::int64_t minor = indices[static_cast<std::size_t>(k)];
        d.at(csr ? s : minor, csr ? minor : s) += values[static_cast<std::size_t>(k)];
      }
    }
    return d;
  }
  bool SameBytes(const Compressed& o) const {
    return indptr == o.indptr && indices == o.indices && values.size() == o.values.size() &&
           std::memcmp(values.data(), o.values.data(), values.size() * sizeof(T)) == 0;
  }
};

// Rows [r0, r1) and columns [c0, c1) of `d` (with `zeros` marking explicit
// zeros) as CSR or CSC.
template <class T, class I>
Compressed<T, I> Compress(const Dense<double>& d, const Dense<std::uint8_t>& zeros, SparseFormat format,
                          std::int64_t r0, std::int64_t r1, std::int64_t c0, std::int64_t c1) {
  Compressed<T, I> m;
  m.format = format;
  m.rows = r1 - r0;
  m.cols = c1 - c0;
  const bool csr = format == SparseFormat::kCSR;
  const std::int64_t majors = csr ? m.rows : m.cols, minors = csr ? m.cols : m.rows;
  m.indptr.push_back(0);
  for (std::int64_t s = 0; s < majors; ++s) {
    for (std::int64_t t = 0; t < minors; ++t) {
      const std::int64_t r = r0 + (csr ? s : t), c = c0 + (csr ? t : s);
      if (d.at(r, c) == 0.0 && !zeros.at(r, c)) continue;
      m.indices.push_back(static_cast<I>(t));
      m.values.push_back(static_cast<T>(d.at(r, c)));
    }
    m.indptr.push_back(static_cast<I>(m.values.size()));
  }
  return m;
}

// A random sparse matrix: about a third of the entries stored, some of
// them explicit zeros, every fifth column and seventh row empty.
void RandomSparse(std::int64_t rows, std::int64_t cols, std::mt19937_64& rng, Dense<double>* d,
                  Dense<std::uint8_t>* zeros) {
  *d = Dense<double>(rows, cols);
  *zeros = Dense<std::uint8_t>(rows, cols);
  std::uniform_real_distribution<double> u(0.0, 1.0);
  std::normal_distribution<double> normal(0.0, 1.0);
  for (std::int64_t r = 0; r < rows; ++r) {
    for (std::int64_t c = 0; c < cols; ++c) {
      const double x = u(rng);
      if (r % 7 == 3 || c % 5 == 2 || x > 0.35) continue;
      if (x < 0.03) {
        zeros->at(r, c) = 1;
      } else {
        d->at(r, c) = normal(rng) * std::pow(10.0, 2 * u(rng) - 1);
      }
    }
  }
}

// A sparse matrix: CSR row blocks on axis 0, CSC column blocks on axis 1,
// against NormalizeMatrix on the whole matrix in the same format; then the
// same call again on a fresh copy of the shard, which must give the same
// bytes.
template <class T, class I>
void ShardedSparseMatchesSingleProcess(std::mt19937_64& rng, int trial) {
  const int axis = trial % 2;
  const std::int64_t rows = std::uniform_int_distribution<std::int64_t>(0, 40)(rng);
  const std::int64_t cols = std::uniform_int_distribution<std::int64_t>(0, 30)(rng);
  Dense<double> d(0, 0);
  Dense<std::uint8_t> zeros(0, 0);
  RandomSparse(rows, cols, rng, &d, &zeros);
  const std::vector<std::int64_t> cuts = ColumnCuts(axis == 0 ? rows : cols, rng);
  const SparseFormat format = axis == 0 ? SparseFormat::kCSR : SparseFormat::kCSC;
  MatrixOptions options;
  options.axis = axis;
  if (trial % 3 == 0) options.prune_below = 0.01;
  if (trial % 4 == 1) options.norm.p = 1.0;
  std::vector<std::int64_t> subset;
  const std::int64_t vectors = axis == 0 ? cols : rows;
  if (trial % 5 == 2 && vectors > 0) {
    subset = {vectors - 1, 0, vectors / 2, 0};
    options.subset = Indices(std::span<const std::int64_t>(subset));
  }
  Compressed<T, I> whole = Compress<T, I>(d, zeros, format, 0, rows, 0, cols);
  MatrixStats want_stats;
  CHECK(NormalizeMatrix(whole.view(), options, &want_stats).ok(), "single");
  whole.Sync();
  const Dense<double> want = whole.ToDense();
  const std::int64_t b = cuts[static_cast<std::size_t>(g_rank)], e = cuts[static_cast<std::size_t>(g_rank) + 1];
  const Compressed<T, I> original =
      axis == 0 ? Compress<T, I>(d, zeros, format, b, e, 0, cols) : Compress<T, I>(d, zeros, format, 0, rows, b, e);
  Compressed<T, I> mine = original;
  MatrixStats stats;
  const Status s = mpi::NormalizeShardedMatrix(MPI_COMM_WORLD, mine.view(), options, &stats);
  CHECK(s.ok(), "sparse trial %d: %s", trial, s.message().c_str());
  mine.Sync();
  CHECK(stats.vectors == want_stats.vectors && stats.zero_vectors == want_stats.zero_vectors &&
            stats.nnz_before == static_cast<std::int64_t>(original.values.size()) &&
            stats.nnz_after == static_cast<std::int64_t>(mine.values.size()),
        "sparse trial %d stats", trial);
  std::int64_t nnz_after = stats.nnz_after;
  MPI_Allreduce(MPI_IN_PLACE, &nnz_after, 1, MPI_INT64_T, MPI_SUM, MPI_COMM_WORLD);
  if (options.prune_below == 0) {
    CHECK(nnz_after == want_stats.nnz_after, "sparse trial %d: %lld entries, want %lld", trial,
          static_cast<long long>(nnz_after), static_cast<long long>(want_stats.nnz_after));
  }
  const Dense<double> got = mine.ToDense();
  for (std::int64_t r = 0; r < got.rows; ++r) {
    for (std::int64_t c = 0; c < got.cols; ++c) {
      const double w = axis == 0 ? want.at(b + r, c) : want.at(r, b + c);
      const double a = got.at(r, c);
      if (options.prune_below > 0 && (w == 0.0 || a == 0.0)) continue;
      CHECK(Ulps(static_cast<T>(a), static_cast<T>(w)) <= 16, "sparse trial %d (%lld, %lld): %.17g vs %.17g",
            trial, static_cast<long long>(r), static_cast<long long>(c), a, w);
    }
  }
  Compressed<T, I> again = original;
  CHECK(mpi::NormalizeShardedMatrix(MPI_COMM_WORLD, again.view(), options).ok(), "sparse trial %d again", trial);
  again.Sync();
  CHECK(again.SameBytes(mine), "sparse trial %d: a second run gave other bytes", trial);
}

// Bad sparse input on the last rank: every rank returns the same error and
// no rank's arrays (values, indices, indptr) change.
void SparseFaultsLeaveEveryShardUnchanged() {
  std::mt19937_64 rng(123);  // the same on every rank
  const std::int64_t rows = 30, cols = 9;
  Dense<double> d(0, 0);
  Dense<std::uint8_t> zeros(0, 0);
  RandomSparse(rows, cols, rng, &d, &zeros);
  d.at(rows - 1, 4) = 0.5;  // held by the last rank
  const auto [b, e] = Block(rows, g_rank);
  const bool last = g_rank == g_size - 1;
  const auto original = Compress<float, std::int64_t>(d, zeros, SparseFormat::kCSR, b, e, 0, cols);
  MatrixOptions options;
  options.prune_below = 0.2;  // a write would compact the arrays too
  options.norm.non_finite = NonFinitePolicy::kError;
  using Slice = Compressed<float, std::int64_t>;
  struct Case {
    const char* name;
    std::function<Status(Slice&)> call;
    StatusCode code;
    const char* words;
    bool needs_two_ranks;
  };
  const std::string last_rank = "rank " + std::to_string(g_size - 1) + " of " + std::to_string(g_size) + ": ";
  // The stored entry of global (rows - 1, 4), on the last rank.
  std::size_t victim = 0;
  if (last) {
    for (std::int64_t k = original.indptr[static_cast<std::size_t>(e - b - 1)]; k < original.indptr.back(); ++k) {
      if (original.indices[static_cast<std::size_t>(k)] == 4) victim = static_cast<std::size_t>(k);
    }
  }
  const std::vector<std::int64_t> subset = {1, 4};
  const std::vector<std::int64_t> other_subset = {1, 5};
  const std::vector<Case> cases = {
      {"sparse: a column index out of range on the last rank",
       [&](Slice& t) {
         if (last && !t.indices.empty()) t.indices.back() = cols;
         const Status s = mpi::NormalizeShardedMatrix(MPI_COMM_WORLD, t.view(), options);
         if (last && !t.indices.empty()) t.indices.back() = original.indices.back();
         return s;
       },
       StatusCode::kOutOfRange, last_rank.c_str(), false},
      {"sparse: NaN on the last rank under kError",
       [&](Slice& t) {
         if (last) t.values[victim] = std::nanf("");
         const Status s = mpi::NormalizeShardedMatrix(MPI_COMM_WORLD, t.view(), options);
         if (last) t.values[victim] = original.values[victim];
         return s;
       },
       StatusCode::kNonFinite, "column 4 ", false},
      {"sparse: a CSC slice on the last rank",
       [&](Slice& t) {
         SparseMatrix* v = t.view();
         if (last) {
           v->format = SparseFormat::kCSC;  // indptr is then too short: it is not read
           v->rows = cols;
           v->cols = e - b;
         }
         return mpi::NormalizeShardedMatrix(MPI_COMM_WORLD, v, options);
       },
       StatusCode::kUnsupported, "CSC matrix on axis 0", false},
      {"sparse: a null slice on the last rank",
       [&](Slice& t) {
         SparseMatrix* v = t.view();
         return mpi::NormalizeShardedMatrix(MPI_COMM_WORLD, last ? nullptr : v, options);
       },
       StatusCode::kInvalidArgument, "slice is null", false},
      {"sparse: the column count differs on the last rank",
       [&](Slice& t) {
         SparseMatrix* v = t.view();
         if (last) v->cols += 1;
         return mpi::NormalizeShardedMatrix(MPI_COMM_WORLD, v, options);
       },
       StatusCode::kInvalidArgument, "ranks disagree", true},
      {"sparse: the subset differs on the last rank",
       [&](Slice& t) {
         MatrixOptions o = options;
         o.subset = Indices(std::span<const std::int64_t>(last ? other_subset : subset));
         return mpi::NormalizeShardedMatrix(MPI_COMM_WORLD, t.view(), o);
       },
       StatusCode::kInvalidArgument, "ranks disagree on the options", true},
  };
  for (const Case& c : cases) {
    if (c.needs_two_ranks && g_size == 1) continue;
    Slice t = original;
    const Status s = c.call(t);
    CHECK(s.code() == c.code, "%s: got %s", c.name, s.message().c_str());
    CHECK(s.message().find(c.words) != std::string::npos, "%s: message %s", c.name, s.message().c_str());
    CHECK(t.SameBytes(original) && t.m.nnz == static_cast<std::int64_t>(original.values.size()),
          "%s: the slice changed", c.name);
    CheckSameStatusEverywhere(s, c.name);
  }
}

}  // namespace

int main(int argc, char** argv) {
  Start(&argc, &argv);
  std::mt19937_64 rng(20261207);  // the same sequence on every rank
  for (int trial = 0; trial < 30; ++trial) {
    ColumnShardedMatchesSingleProcess<float>(rng, trial);
    ColumnShardedMatchesSingleProcess<double>(rng, trial);
    RowShardedMatchesSingleProcess<float>(rng, trial, trial % 2 == 1);
    ShardedMatrixMatchesSingleProcess(rng, trial);
    ShardedSparseMatchesSingleProcess<float, std::int32_t>(rng, trial);
    ShardedSparseMatchesSingleProcess<double, std::int64_t>(rng, trial);
  }
  DecisionsAtTheBound();
  FaultsLeaveEveryShardUnchanged();
  SparseFaultsLeaveEveryShardUnchanged();
  return Finish();
}
