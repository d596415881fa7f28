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
#include <vector>

#include "sparsenorm/mpi.h"
#include "sparsenorm/matrix.h"
#include "sparsenorm/rows.h"
#include "sparsenorm/sharded.h"

namespace {

using namespace sparsenorm;

int g_rank = 0;
int g_size = 1;
int g_failures = 0;

#define CHECK(cond, ...)                                                    \
  do {                                                                      \
    if (!(cond)) {                                                          \
      ++g_failures;                                                         \
      std::fprintf(stderr, "rank %d, %s:%d: CHECK(%s) failed: ", g_rank,    \
                   __FILE__, __LINE__, #cond);                              \
      std::fprintf(stderr, __VA_ARGS__);                                    \
      std::fprintf(stderr, "\n");                                           \
    }                                                                       \
  } while (0)

// A dense row-major table of float or double.
template <class T>
struct Dense {
  std::int64_t rows = 0, cols = 0;
  std::vector<T> v;
  Dense(std::int64_t r, std::int64_t c) : rows(r), cols(c), v(static_cast<std::size_t>(r * c)) {}
  T& at(std::int64_t r, std::int64_t c) { return v[static_cast<std::size_t>(r * cols + c)]; }
  const T& at(std::int64_t r, std::int64_t c) const { return v[static_cast<std::size_t>(r * cols + c)]; }
  Table view() { return MakeTable(v.data(), rows, cols); }
};

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

template <class T>
Dense<T> Columns(const Dense<T>& t, std::int64_t c0, std::int64_t c1) {
  Dense<T> s(t.rows, c1 - c0);
  for (std::int64_t r = 0; r < t.rows; ++r) {
    for (std::int64_t c = c0; c < c1; ++c) s.at(r, c - c0) = t.at(r, c);
  }
  return s;
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
  Dense<T> mine = Columns(whole, c0, c1);
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
    Dense<T> manual = Columns(whole, c0, c1);
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
    Dense<float> mine = Columns(whole, g_rank, g_rank + 1);
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
  const Dense<float> original = Columns(whole, cuts[static_cast<std::size_t>(g_rank)],
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

}  // namespace

int main(int argc, char** argv) {
  MPI_Init(&argc, &argv);
  MPI_Comm_rank(MPI_COMM_WORLD, &g_rank);
  MPI_Comm_size(MPI_COMM_WORLD, &g_size);
  std::mt19937_64 rng(20261207);  // the same sequence on every rank
  for (int trial = 0; trial < 30; ++trial) {
    ColumnShardedMatchesSingleProcess<float>(rng, trial);
    ColumnShardedMatchesSingleProcess<double>(rng, trial);
    RowShardedMatchesSingleProcess<float>(rng, trial, trial % 2 == 1);
    ShardedMatrixMatchesSingleProcess(rng, trial);
  }
  DecisionsAtTheBound();
  FaultsLeaveEveryShardUnchanged();
  int failures = g_failures;
  MPI_Allreduce(MPI_IN_PLACE, &failures, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
  if (g_rank == 0) std::printf("%d ranks: %d failed checks\n", g_size, failures);
  MPI_Finalize();
  return failures == 0 ? 0 : 1;
}
