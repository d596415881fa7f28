// The agreement and exchange steps that every call of sparsenorm/mpi.h
// makes (the row operator, the matrix normalization: src/mpi/sharded.cc;
// the optimizer step: src/mpi/sharded_step.cc): one all-gather of a header
// per rank that agrees on shapes, options, index list and local status,
// the same Status on every rank when anything is wrong, and the exchange
// of per-row values combined in rank order.
//
// Why an all-gather of the parts and not an MPI_Allreduce: a reduction
// may combine in a different order on each rank (MPI does not promise
// otherwise), so ranks could hold norms a few bits apart and decide a row
// at the bound differently. Gathering every rank's parts and combining them
// in rank order on every rank gives identical bits everywhere. Each rank
// receives (size - 1) * 16 bytes per touched row where a ring all-reduce
// would move about 2 * 16: no more for 2 or 3 ranks; from 4 ranks on, the
// rows are combined in chunks, one per rank, and the chunks gathered
// (CombineEverywhere), which moves about 2 * 16 bytes per row as a ring
// does (docs/DISTRIBUTED.md weighs both at 64 ranks).
#ifndef SPARSENORM_MPI_PROTOCOL_H_
#define SPARSENORM_MPI_PROTOCOL_H_

#include <mpi.h>

#include <cstdint>
#include <initializer_list>
#include <limits>
#include <new>
#include <span>
#include <sstream>
#include <string>
#include <vector>

#include "sparsenorm/sharded.h"
#include "sparsenorm/types.h"

namespace sparsenorm::mpi::detail {

static_assert(sizeof(NormPart) == 2 * sizeof(double), "parts travel as pairs of doubles");

template <class... Args>
std::string Cat(const Args&... args) {
  std::ostringstream out;
  out.precision(17);
  (out << ... << args);
  return out.str();
}

// What each rank tells the others before anything is exchanged. Every field
// is an int64 so that one MPI_INT64_T all-gather carries it.
enum Field : int {
  kStatusCode = 0,  // this rank's local checks: 0 or a StatusCode
  kDType,
  kRows,          // column-sharded: slice.rows; row-sharded: shard.rows
  kCols,          // row-sharded: shard.cols; column-sharded: slice.cols (differ)
  kRowOffset,     // row-sharded blocks
  kCyclic,
  kCount,         // indices.size
  kIndexDigest,   // IndexListDigest(indices)
  kOptionsDigest, // OptionsDigest(options)
  kDistinct,      // the length of the parts (distinct rows, or vectors)
  kColOffset,     // column-sharded optimizer step: ColumnSlice::col_offset
  kGradDType,     // optimizer step: the gradient's dtype
  kStepOptionsDigest,  // optimizer step: OptionsDigest(OptimizerOptions)
  kFields
};

using Header = std::int64_t[kFields];

struct Comm {
  MPI_Comm comm;
  int rank = 0;
  int size = 1;
};

Status MpiFailure(int code, const char* call);

Status Open(MPI_Comm comm, Comm* out);

// The all-gather of the headers: all[k * kFields + f] is rank k's field f.
Status GatherHeaders(const Comm& c, const Header& mine, std::vector<std::int64_t>* all);

// The failure of rank `from` (its code agreed, its message broadcast), as
// every rank reports it.
Status Broadcast(const Comm& c, int from, StatusCode code, const Status& local);

// The first rank whose local checks failed, or -1.
int FirstFailingRank(const Comm& c, const std::vector<std::int64_t>& all);

// The first field in `fields` on which some rank differs from rank 0.
Status Disagreement(const Comm& c, const std::vector<std::int64_t>& all,
                    std::initializer_list<int> fields);

// The headers gathered, then the first failing rank's status or the first
// disagreement on `fields`, the same on every rank.
Status Agree(const Comm& c, const Header& mine, const Status& local, std::initializer_list<int> fields,
             std::vector<std::int64_t>* all);

// From this many ranks on, the parts are combined in two steps: each rank
// combines a chunk of the rows from every rank's parts (MPI_Alltoallv), then
// the combined chunks are gathered (MPI_Allgatherv). Each rank then receives
// about 2 * 16 bytes per row instead of (size - 1) * 16, in two collectives
// instead of one. Each row is still combined once, in rank order, and its
// bits copied to every rank: the results are those of the one-step path.
constexpr int kTwoStepRanks = 4;

// Rows [ChunkBegin(k), ChunkBegin(k + 1)) are combined by rank k.
inline std::size_t ChunkBegin(std::size_t n, int size, int k) {
  return n * static_cast<std::size_t>(k) / static_cast<std::size_t>(size);
}

// The buffers of CombineEverywhere for values of T (NormPart, or a double:
// the optimizer step's sums of squares), sized before the agreement so that
// nothing can fail locally after it.
template <class T>
struct Exchange {
  static constexpr std::size_t kDoubles = sizeof(T) / sizeof(double);
  static_assert(sizeof(T) == kDoubles * sizeof(double), "values travel as doubles");

  std::vector<int> counts;  // 4 * ranks: send and receive counts and offsets
  std::vector<T> gathered;
  std::vector<T> chunk;
  std::vector<T> combined;

  // For `parts` values per rank; `too_many` says what to do when they are
  // more than an MPI collective's int counts carry.
  Status Reserve(const Comm& c, std::size_t parts, const char* too_many) {
    try {
      gathered.resize(parts * static_cast<std::size_t>(c.size));
      combined.reserve(parts);
      chunk.reserve(parts / static_cast<std::size_t>(c.size) + 1);
      counts.resize(4 * static_cast<std::size_t>(c.size));
    } catch (const std::bad_alloc&) {
      return Status(StatusCode::kOutOfMemory,
                    Cat("could not allocate the ", c.size, " x ", parts, " gathered parts."));
    }
    if (parts * 2 > static_cast<std::size_t>(std::numeric_limits<int>::max())) {
      return Status(StatusCode::kUnsupported, Cat(parts, too_many));
    }
    return Status::Ok();
  }
};

// Every rank's values combined in rank order into x->combined, the same
// bits on every rank. `combine(gathered, shards, out)` combines what an
// all-gather delivers (CombineGatheredParts, CombineGatheredSquares).
// Nothing is allocated here (Exchange::Reserve was).
template <class T, class Combine>
Status CombineEverywhere(const Comm& c, const std::vector<T>& parts, Combine&& combine, Exchange<T>* x) {
  constexpr std::size_t w = Exchange<T>::kDoubles;
  std::vector<int>* counts = &x->counts;
  std::vector<T>* gathered = &x->gathered;
  std::vector<T>* chunk = &x->chunk;
  std::vector<T>* combined = &x->combined;
  const std::size_t n = parts.size();
  if (c.size < kTwoStepRanks) {
    const int nw = static_cast<int>(n * w);
    if (int e = MPI_Allgather(parts.data(), nw, MPI_DOUBLE, gathered->data(), nw, MPI_DOUBLE, c.comm);
        e != MPI_SUCCESS) {
      return MpiFailure(e, "MPI_Allgather");
    }
    return combine(std::span<const T>(*gathered), c.size, combined);
  }
  const std::size_t begin = ChunkBegin(n, c.size, c.rank);
  const std::size_t m = ChunkBegin(n, c.size, c.rank + 1) - begin;
  // Counts in doubles; they fit an int: n * 2 was checked to.
  int* sc = counts->data();  // 4 * size entries
  int* sd = sc + c.size;
  int* rc = sd + c.size;
  int* rd = rc + c.size;
  for (int k = 0; k < c.size; ++k) {
    const std::size_t b = ChunkBegin(n, c.size, k);
    sc[k] = static_cast<int>(w * (ChunkBegin(n, c.size, k + 1) - b));
    sd[k] = static_cast<int>(w * b);
    rc[k] = static_cast<int>(w * m);
    rd[k] = static_cast<int>(w * m * static_cast<std::size_t>(k));
  }
  if (int e = MPI_Alltoallv(parts.data(), sc, sd, MPI_DOUBLE, gathered->data(), rc, rd, MPI_DOUBLE,
                            c.comm);
      e != MPI_SUCCESS) {
    return MpiFailure(e, "MPI_Alltoallv");
  }
  if (Status s = combine(std::span<const T>(gathered->data(), m * static_cast<std::size_t>(c.size)), c.size, chunk);
      !s.ok()) {
    return s;
  }
  combined->resize(n);
  if (int e = MPI_Allgatherv(chunk->data(), static_cast<int>(w * m), MPI_DOUBLE, combined->data(), sc, sd,
                             MPI_DOUBLE, c.comm);
      e != MPI_SUCCESS) {
    return MpiFailure(e, "MPI_Allgatherv");
  }
  return Status::Ok();
}

// The parts of the row operator and the matrix normalization, combined
// with sharded.h's CombineGatheredParts under p.
inline Status CombineEverywhere(const Comm& c, const std::vector<NormPart>& parts, double p,
                                Exchange<NormPart>* x) {
  return CombineEverywhere(
      c, parts,
      [p](std::span<const NormPart> g, int shards, std::vector<NormPart>* out) {
        return CombineGatheredParts(g, shards, p, out);
      },
      x);
}

}  // namespace sparsenorm::mpi::detail

#endif  // SPARSENORM_MPI_PROTOCOL_H_
