// sparsenorm::mpi::ColumnShardedOptimizerStep under mpirun with 1 to 4
// ranks (tests/CMakeLists.txt). Every rank builds the same global table,
// state and gradient from the same seed, keeps its columns, runs the
// distributed step, and compares its columns (and its replica of row-wise
// Adagrad's sum) with OptimizerStep on the whole table. Each rank counts
// its failures; the program fails when any rank failed.

#include <mpi.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <functional>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "mpi_test_util.h"
#include "sparsenorm/mpi.h"
#include "sparsenorm/optim.h"

namespace {

using namespace sparsenorm;

using namespace mpi_test;

// The step's inputs: the table, the state tables the kind uses, the
// gradient rows and the indices.
template <class T>
struct Step {
  Dense<T> table, sum, exp_avg, exp_avg_sq, grad;
  std::vector<std::int64_t> indices;
  OptimizerOptions options;

  OptimizerState state() {
    OptimizerState s;
    if (options.kind == OptimizerKind::kAdagrad || options.kind == OptimizerKind::kRowWiseAdagrad) s.sum = sum.view();
    if (options.kind == OptimizerKind::kAdam) {
      s.exp_avg = exp_avg.view();
      s.exp_avg_sq = exp_avg_sq.view();
    }
    return s;
  }
  Indices index_view() const { return Indices(std::span<const std::int64_t>(indices)); }

  // This rank's columns [c0, c1): the slice, its elementwise state and
  // gradient, the whole of row-wise Adagrad's sum.
  Step Slice(std::int64_t c0, std::int64_t c1) const {
    Step s = *this;
    s.table = table.Columns(c0, c1);
    s.grad = grad.Columns(c0, c1);
    if (options.kind != OptimizerKind::kRowWiseAdagrad) s.sum = sum.Columns(c0, c1);
    s.exp_avg = exp_avg.Columns(c0, c1);
    s.exp_avg_sq = exp_avg_sq.Columns(c0, c1);
    return s;
  }
  Status RunSharded(RowStats* stats) {
    return mpi::ColumnShardedOptimizerStep(MPI_COMM_WORLD, table.view(), state(), index_view(), grad.const_view(),
                                           options, stats);
  }
  bool SameAs(const Step& o) const {
    return table.v == o.table.v && sum.v == o.sum.v && exp_avg.v == o.exp_avg.v && exp_avg_sq.v == o.exp_avg_sq.v;
  }
};

template <class T>
Dense<T> Random(std::int64_t rows, std::int64_t cols, double low, double high, std::mt19937_64& rng) {
  Dense<T> t(rows, cols);
  std::uniform_real_distribution<double> u(low, high);
  for (std::int64_t r = 0; r < rows; ++r) {
    for (std::int64_t c = 0; c < cols; ++c) t.at(r, c) = static_cast<T>(u(rng));
  }
  return t;
}

template <class T>
Step<T> RandomStep(const OptimizerOptions& o, std::int64_t rows, std::int64_t cols, std::int64_t n,
                   std::mt19937_64& rng) {
  Step<T> s;
  s.options = o;
  s.table = Random<T>(rows, cols, -1.0, 1.0, rng);
  s.sum = Random<T>(rows, o.kind == OptimizerKind::kRowWiseAdagrad ? 1 : cols, 0.0, 0.1, rng);
  s.exp_avg = Random<T>(rows, cols, -0.1, 0.1, rng);
  s.exp_avg_sq = Random<T>(rows, cols, 0.0, 0.1, rng);
  std::uniform_int_distribution<std::int64_t> pick(0, rows - 1);
  for (std::int64_t i = 0; i < n; ++i) s.indices.push_back(pick(rng) / 2);  // repeats
  s.grad = Random<T>(n, cols, -1.0, 1.0, rng);
  return s;
}

// Column cut points shared by every rank: random and uneven, rank 1 empty
// when there are 3 or more ranks.
std::vector<std::int64_t> ColumnCuts(std::int64_t cols, std::mt19937_64& rng) {
  std::vector<std::int64_t> cuts(static_cast<std::size_t>(g_size + 1), 0);
  std::uniform_int_distribution<std::int64_t> pick(0, cols);
  for (int k = 1; k < g_size; ++k) cuts[static_cast<std::size_t>(k)] = pick(rng);
  cuts.back() = cols;
  std::sort(cuts.begin(), cuts.end());
  if (g_size >= 3) cuts[2] = cuts[1];
  return cuts;
}

std::uint64_t Digest(const void* data, std::size_t bytes) {
  std::uint64_t h = 1469598103934665603ull;
  const auto* p = static_cast<const unsigned char*>(data);
  for (std::size_t i = 0; i < bytes; ++i) h = (h ^ p[i]) * 1099511628211ull;
  return h;
}

// Every rank holds the same value.
bool SameEverywhere(std::uint64_t mine) {
  std::vector<std::uint64_t> all(static_cast<std::size_t>(g_size));
  MPI_Allgather(&mine, 1, MPI_UINT64_T, all.data(), 1, MPI_UINT64_T, MPI_COMM_WORLD);
  return std::all_of(all.begin(), all.end(), [&](std::uint64_t v) { return v == mine; });
}

void CheckSameStatusEverywhere(const Status& s, const char* what) {
  const std::string text = std::to_string(static_cast<int>(s.code())) + s.message();
  CHECK(SameEverywhere(Digest(text.data(), text.size())), "%s: the ranks' statuses differ (here: %s)", what,
        s.message().c_str());
}

void CheckSameStatsEverywhere(const RowStats& st, const char* what) {
  const std::int64_t v[4] = {st.indices_seen, st.distinct_rows, st.rows_scaled, st.nonfinite_rows};
  CHECK(SameEverywhere(Digest(v, sizeof v)), "%s: the ranks' stats differ", what);
}

// Within `ulps` units of T's precision of the row's largest magnitude: the
// combined sums and norms move the scale of a row by a few ulps, which moves
// each element by a few ulps of the row's scale.
template <class T>
void CheckClose(const Dense<T>& got, const Dense<T>& want, double ulps, const std::string& what) {
  const double unit = std::numeric_limits<T>::epsilon();
  for (std::int64_t r = 0; r < want.rows; ++r) {
    double m = std::numeric_limits<T>::min();
    for (std::int64_t c = 0; c < want.cols; ++c) m = std::max(m, std::fabs(static_cast<double>(want.at(r, c))));
    for (std::int64_t c = 0; c < want.cols; ++c) {
      const double d = std::fabs(static_cast<double>(got.at(r, c)) - static_cast<double>(want.at(r, c)));
      if (!(d <= ulps * unit * m)) {
        CHECK(false, "%s: row %lld col %lld: %.17g vs %.17g", what.c_str(), static_cast<long long>(r),
              static_cast<long long>(c), static_cast<double>(got.at(r, c)), static_cast<double>(want.at(r, c)));
        return;
      }
    }
  }
}

template <class T>
void MatchesSingleProcess(OptimizerKind kind, ConstraintKind constraint, std::mt19937_64& rng) {
  OptimizerOptions o = kind == OptimizerKind::kSGD       ? SgdOptions(0.1, 0.01)
                       : kind == OptimizerKind::kAdagrad ? AdagradOptions(0.05, 0.01, 0.01)
                       : kind == OptimizerKind::kAdam    ? AdamOptions(0.01)
                                                         : RowWiseAdagradOptions(0.05, 1e-8, 0.01, WeightDecayMode::kL2);
  o.step = 3;
  o.constraint.kind = constraint;
  o.constraint.target = 0.4;
  const std::int64_t rows = 30;
  const std::int64_t cols = std::uniform_int_distribution<std::int64_t>(1, 40)(rng);
  const std::int64_t n = std::uniform_int_distribution<std::int64_t>(0, 90)(rng);
  const Step<T> whole = RandomStep<T>(o, rows, cols, n, rng);
  const std::vector<std::int64_t> cuts = ColumnCuts(cols, rng);
  const std::int64_t c0 = cuts[static_cast<std::size_t>(g_rank)], c1 = cuts[static_cast<std::size_t>(g_rank) + 1];

  Step<T> want = whole;
  RowStats want_stats;
  const Status ws = OptimizerStep(want.table.view(), want.state(), want.index_view(), want.grad.const_view(),
                                  want.options, &want_stats);
  CHECK(ws.ok(), "single process: %s", ws.message().c_str());
  const Step<T> want_slice = want.Slice(c0, c1);

  Step<T> mine = whole.Slice(c0, c1);
  Step<T> again = mine;
  RowStats stats, stats_again;
  const std::string what = std::string(sizeof(T) == 4 ? "float" : "double") + " kind " +
                           std::to_string(static_cast<int>(kind)) + " constraint " +
                           std::to_string(static_cast<int>(constraint)) + " cols " + std::to_string(cols);
  const Status s = mine.RunSharded(&stats);
  CHECK(s.ok(), "%s: %s", what.c_str(), s.message().c_str());
  const Status s2 = again.RunSharded(&stats_again);
  CHECK(s2.ok() && mine.SameAs(again), "%s: a second run stored other bits", what.c_str());
  CHECK(stats.indices_seen == want_stats.indices_seen && stats.distinct_rows == want_stats.distinct_rows &&
            stats.nonfinite_rows == 0,
        "%s: stats", what.c_str());
  CheckSameStatsEverywhere(stats, what.c_str());
  if (kind == OptimizerKind::kRowWiseAdagrad) {
    CHECK(SameEverywhere(Digest(mine.sum.v.data(), mine.sum.v.size() * sizeof(T))),
          "%s: row-wise Adagrad's sum differs between ranks", what.c_str());
  }
  const bool exact = g_size == 1 || (kind != OptimizerKind::kRowWiseAdagrad && constraint == ConstraintKind::kNone);
  if (exact) {
    CHECK(mine.SameAs(want_slice), "%s: not the single-process bits", what.c_str());
    CHECK(stats.rows_scaled == want_stats.rows_scaled, "%s: rows_scaled", what.c_str());
  } else {
    CheckClose(mine.table, want_slice.table, 64, what + " table");
    CheckClose(mine.sum, want_slice.sum, 64, what + " sum");
    CheckClose(mine.exp_avg, want_slice.exp_avg, 64, what + " exp_avg");
    CheckClose(mine.exp_avg_sq, want_slice.exp_avg_sq, 64, what + " exp_avg_sq");
  }
}

// NaN in the last rank's columns of one gradient row: under kSkip every
// rank leaves that row and counts it; under kError every rank fails with the
// same status and nothing is written anywhere.
void NonFiniteOnTheLastRank(std::mt19937_64& rng) {
  for (OptimizerKind kind : {OptimizerKind::kSGD, OptimizerKind::kRowWiseAdagrad, OptimizerKind::kAdam}) {
    OptimizerOptions o = kind == OptimizerKind::kSGD ? SgdOptions(0.1)
                         : kind == OptimizerKind::kAdam ? AdamOptions(0.01)
                                                        : RowWiseAdagradOptions(0.05);
    o.constraint.kind = ConstraintKind::kMaxNorm;
    Step<float> whole = RandomStep<float>(o, 12, 8, 0, rng);
    whole.indices = {2, 5, 2, 9};
    whole.grad = Random<float>(4, 8, -1.0, 1.0, rng);
    whole.grad.at(2, 7) = std::nanf("");  // row 2's second occurrence, the last column
    std::vector<std::int64_t> cuts(static_cast<std::size_t>(g_size + 1), 0);
    for (int k = 1; k <= g_size; ++k) cuts[static_cast<std::size_t>(k)] = 8 * k / g_size;
    const Step<float> original = whole.Slice(cuts[static_cast<std::size_t>(g_rank)], cuts[static_cast<std::size_t>(g_rank) + 1]);

    Step<float> mine = original;
    RowStats stats;
    Status s = mine.RunSharded(&stats);
    CHECK(s.ok() && stats.nonfinite_rows == 1, "kind %d kSkip: %s", static_cast<int>(kind), s.message().c_str());
    for (std::int64_t c = 0; c < mine.table.cols; ++c) {
      CHECK(mine.table.at(2, c) == original.table.at(2, c), "kind %d: row 2 changed", static_cast<int>(kind));
    }
    if (kind == OptimizerKind::kRowWiseAdagrad) CHECK(mine.sum.at(2, 0) == original.sum.at(2, 0), "row 2's sum changed");
    CheckSameStatsEverywhere(stats, "kSkip");

    mine = original;
    mine.options.non_finite = NonFinitePolicy::kError;
    s = mine.RunSharded(&stats);
    CHECK(s.code() == StatusCode::kNonFinite, "kind %d kError: %s", static_cast<int>(kind), s.message().c_str());
    CHECK(s.message().find("rank " + std::to_string(g_size - 1) + " of ") == 0, "kError names the rank: %s",
          s.message().c_str());
    mine.options.non_finite = NonFinitePolicy::kSkip;
    CHECK(mine.SameAs(original), "kind %d kError: something was written", static_cast<int>(kind));
    CheckSameStatusEverywhere(s, "kError");
  }
}

// Bad input on the last rank only: every rank returns the same error and
// nothing changes on any rank.
void FaultsOnTheLastRankWriteNothing(std::mt19937_64& rng) {
  const bool last = g_rank == g_size - 1;
  const OptimizerOptions base = RowWiseAdagradOptions(0.05);
  const Step<float> whole = RandomStep<float>(base, 16, 10, 20, rng);
  const std::vector<std::int64_t> cuts = ColumnCuts(10, rng);
  const Step<float> original = whole.Slice(cuts[static_cast<std::size_t>(g_rank)], cuts[static_cast<std::size_t>(g_rank) + 1]);
  struct Case {
    const char* name;
    std::function<void(Step<float>&, Table*, OptimizerState*)> spoil;  // on the last rank
    StatusCode code;
    const char* words;
  };
  const std::vector<Case> cases = {
      {"a bad index", [](Step<float>& s, Table*, OptimizerState*) { s.indices[3] = 16; }, StatusCode::kOutOfRange,
       "indices[3] = 16"},
      {"another step number",
       [](Step<float>& s, Table*, OptimizerState*) {
         s.options.step = g_size > 1 ? 2 : 0;
       },
       StatusCode::kInvalidArgument, g_size > 1 ? "optimizer options" : "step"},
      {"another seed",
       [](Step<float>& s, Table*, OptimizerState*) {
         s.options.seed = 7;
         if (g_size == 1) s.options.lr = -1.0;
       },
       StatusCode::kInvalidArgument, g_size > 1 ? "optimizer options" : "lr"},
      {"another row count",
       [](Step<float>&, Table* t, OptimizerState* st) {
         t->rows -= 1;
         st->sum.rows -= 1;
         if (g_size == 1) t->cols = -1;
       },
       StatusCode::kInvalidArgument, g_size > 1 ? "row count" : "cols"},
      {"a state of the wrong shape", [](Step<float>&, Table*, OptimizerState* st) { st->sum.cols = 2; },
       StatusCode::kInvalidArgument, "state.sum"},
  };
  for (const Case& c : cases) {
    Step<float> mine = original;
    Table table = mine.table.view();
    OptimizerState state = mine.state();
    Step<float> args = mine;  // the indices and options the call sees
    if (last) c.spoil(args, &table, &state);
    RowStats stats;
    const Status s = mpi::ColumnShardedOptimizerStep(MPI_COMM_WORLD, table, state, args.index_view(),
                                                     mine.grad.const_view(), args.options, &stats);
    CHECK(s.code() == c.code, "%s: got %s", c.name, s.message().c_str());
    CHECK(s.message().find(c.words) != std::string::npos, "%s: message %s", c.name, s.message().c_str());
    CHECK(mine.SameAs(original), "%s: something was written", c.name);
    CheckSameStatusEverywhere(s, c.name);
  }
}

}  // namespace

int main(int argc, char** argv) {
  Start(&argc, &argv);
  std::mt19937_64 rng(20261208);  // the same sequence on every rank
  for (int trial = 0; trial < 3; ++trial) {
    for (OptimizerKind kind : {OptimizerKind::kSGD, OptimizerKind::kAdagrad, OptimizerKind::kRowWiseAdagrad,
                               OptimizerKind::kAdam}) {
      for (ConstraintKind constraint : {ConstraintKind::kNone, ConstraintKind::kMaxNorm, ConstraintKind::kConstantNorm}) {
        MatchesSingleProcess<float>(kind, constraint, rng);
        MatchesSingleProcess<double>(kind, constraint, rng);
      }
    }
  }
  NonFiniteOnTheLastRank(rng);
  FaultsOnTheLastRankWriteNothing(rng);
  return Finish();
}
