// sparsenorm/mpi.h: the row operator on sharded tables, and the matrix
// normalization on sharded dense and sparse matrices, through MPI. Uses
// only the public API of libsparsenorm (sharded.h, rows.h) and MPI's C API;
// the agreement and the exchange are mpi/protocol.h's (which says why the
// parts are all-gathered rather than all-reduced).

#include "sparsenorm/mpi.h"

#include "mpi/protocol.h"

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <limits>
#include <new>
#include <sstream>
#include <string>
#include <vector>

#include "sparsenorm/rows.h"
#include "sparsenorm/sharded.h"

namespace sparsenorm::mpi {
namespace {

using namespace detail;  // the protocol's steps (mpi/protocol.h)

Status ColumnSharded(MPI_Comm comm, Table slice, Indices indices, const NormalizeOptions& options,
                     RowStats* stats_out) {
  Comm c;
  if (Status s = Open(comm, &c); !s.ok()) return s;

  // Local work first: the checks and the parts, and every buffer the rest
  // of the call needs, so that nothing can fail locally after the agreement.
  std::vector<std::int64_t> rows;
  std::vector<NormPart> parts;
  Exchange<NormPart> exchange;
  Status local = RowNormParts(ConstTable(slice), indices, options, &rows, &parts);
  if (local.ok()) {
    local = exchange.Reserve(c, parts.size(),
                             " distinct rows in one call exceed what one MPI_Allgather of int "
                             "counts carries; split the index list.");
  }
  Header mine{};
  mine[kStatusCode] = static_cast<std::int64_t>(local.code());
  mine[kDType] = static_cast<std::int64_t>(slice.dtype);
  mine[kRows] = slice.rows;
  mine[kCount] = indices.size;
  mine[kIndexDigest] = static_cast<std::int64_t>(IndexListDigest(indices));
  mine[kOptionsDigest] = static_cast<std::int64_t>(OptionsDigest(options));
  mine[kDistinct] = static_cast<std::int64_t>(parts.size());
  std::vector<std::int64_t> all;
  if (Status s = Agree(c, mine, local,
                       {kOptionsDigest, kDType, kRows, kCount, kIndexDigest, kDistinct}, &all);
      !s.ok()) {
    return s;
  }

  // The parts of the touched rows only, combined in rank order (see the
  // top of this file).
  if (Status s = CombineEverywhere(c, parts, options.p, &exchange); !s.ok()) return s;

  // Every rank holds the same rows and the same combined bits, so every
  // rank reaches the same outcome here (kNonFinite under kError included)
  // without another exchange.
  RowStats stats;
  if (Status s = ApplyRowNorms(slice, rows, exchange.combined, options, &stats); !s.ok()) return s;
  stats.indices_seen = indices.size;
  if (stats_out != nullptr) *stats_out = stats;
  return Status::Ok();
}

// The global row count of a row-sharded table, after checking that the
// ranks' blocks tile it (or that cyclic shards have the right sizes).
Status GlobalRows(const Comm& c, const std::vector<std::int64_t>& all, bool cyclic,
                  std::int64_t* global) {
  struct Block {
    std::int64_t offset, rows;
    int rank;
  };
  std::vector<Block> blocks;
  std::int64_t total = 0;
  for (int k = 0; k < c.size; ++k) {
    const std::int64_t* h = all.data() + static_cast<std::size_t>(k) * kFields;
    if (h[kRows] > std::numeric_limits<std::int64_t>::max() - total) {
      return Status(StatusCode::kInvalidArgument, "the ranks' row counts overflow 64 bits.");
    }
    total += h[kRows];
    blocks.push_back({h[kRowOffset], h[kRows], k});
  }
  if (cyclic) {
    for (const Block& b : blocks) {
      const std::int64_t owned = total > b.rank ? (total - b.rank + c.size - 1) / c.size : 0;
      if (b.rows != owned) {
        return Status(StatusCode::kInvalidArgument,
                      Cat("rank ", b.rank, " holds ", b.rows, " rows but owns ", owned, " of the ",
                          total, " global rows in a cyclic layout (rows g with g % ", c.size,
                          " == ", b.rank, "); nothing was modified on any rank."));
      }
    }
  } else {
    std::stable_sort(blocks.begin(), blocks.end(),
                     [](const Block& a, const Block& b) { return a.offset < b.offset; });
    // An empty block owns nothing: any offset in [0, total] will do.
    std::int64_t next = 0;
    for (const Block& b : blocks) {
      if (b.rows == 0 && b.offset >= 0 && b.offset <= total) continue;
      if (b.offset != next) {
        return Status(StatusCode::kInvalidArgument,
                      Cat("rank ", b.rank, " holds rows [", b.offset, ", ", b.offset + b.rows,
                          ") but the ranks' blocks must tile [0, ", total,
                          ") without gaps or overlaps, and the row after the previous block is ",
                          next, "; nothing was modified on any rank."));
      }
      next += b.rows;
    }
  }
  *global = total;
  return Status::Ok();
}

Status RowSharded(MPI_Comm comm, Table shard, Indices indices, RowSharding sharding,
                  const NormalizeOptions& options, RowStats* stats_out) {
  Comm c;
  if (Status s = Open(comm, &c); !s.ok()) return s;

  // What each rank can check before knowing the global row count: options,
  // its shard's layout and the index list's type and pointer (an empty
  // index list reads no row).
  std::vector<std::int64_t> unused_rows;
  std::vector<NormPart> unused_parts;
  Status local = RowNormParts(ConstTable(shard), Indices(nullptr, indices.type, 0), options,
                              &unused_rows, &unused_parts);
  if (local.ok() && (indices.size < 0 || (indices.size > 0 && indices.data == nullptr))) {
    local = Status(StatusCode::kInvalidArgument,
                   Cat("indices has size ", indices.size, " and data ",
                       indices.data == nullptr ? "null" : "set", "."));
  }
  if (local.ok() && !sharding.cyclic && sharding.row_offset < 0) {
    local = Status(StatusCode::kInvalidArgument,
                   Cat("sharding.row_offset = ", sharding.row_offset, " is negative."));
  }
  Header mine{};
  mine[kStatusCode] = static_cast<std::int64_t>(local.code());
  mine[kDType] = static_cast<std::int64_t>(shard.dtype);
  mine[kRows] = shard.rows;
  mine[kCols] = shard.cols;
  mine[kRowOffset] = sharding.cyclic ? 0 : sharding.row_offset;
  mine[kCyclic] = sharding.cyclic ? 1 : 0;
  mine[kCount] = indices.size;
  mine[kIndexDigest] = local.ok() ? static_cast<std::int64_t>(IndexListDigest(indices)) : 0;
  mine[kOptionsDigest] = static_cast<std::int64_t>(OptionsDigest(options));
  std::vector<std::int64_t> all;
  if (Status s = Agree(c, mine, local,
                       {kOptionsDigest, kDType, kCols, kCyclic, kCount, kIndexDigest}, &all);
      !s.ok()) {
    return s;
  }
  std::int64_t global = 0;
  if (Status s = GlobalRows(c, all, sharding.cyclic, &global); !s.ok()) return s;

  // Now each rank checks the rows it owns. The index range check gives the
  // same answer on every rank (same list, same global count); NaN or
  // infinity under kError only the owner sees, hence the agreement below.
  RowOwnership ownership;
  ownership.global_rows = global;
  ownership.local_rows = shard.rows;
  ownership.row_offset = sharding.row_offset;
  ownership.cyclic = sharding.cyclic;
  ownership.rank = c.rank;
  ownership.world = c.size;
  std::vector<std::int64_t> local_indices;
  local = OwnedRowIndices(indices, ownership, &local_indices);
  if (local.ok() && options.non_finite == NonFinitePolicy::kError) {
    std::vector<std::int64_t> rows;
    std::vector<NormPart> parts;
    local = RowNormParts(ConstTable(shard), Indices(std::span<const std::int64_t>(local_indices)),
                         options, &rows, &parts);
    for (std::size_t i = 0; local.ok() && i < rows.size(); ++i) {
      if (parts[i].scale == parts[i].scale) continue;  // not NaN
      const std::int64_t g = sharding.cyclic ? rows[i] * c.size + c.rank : rows[i] + sharding.row_offset;
      local = Status(StatusCode::kNonFinite,
                     Cat("global row ", g, " (local row ", rows[i],
                         ") holds NaN or infinity and options.non_finite is kError; nothing was "
                         "modified on any rank."));
    }
  }
  std::int64_t first = local.ok() ? c.size : c.rank;
  if (int e = MPI_Allreduce(MPI_IN_PLACE, &first, 1, MPI_INT64_T, MPI_MIN, c.comm); e != MPI_SUCCESS) {
    return MpiFailure(e, "MPI_Allreduce");
  }
  if (first < c.size) {
    const int from = static_cast<int>(first);
    std::int64_t code = static_cast<std::int64_t>(local.code());
    if (int e = MPI_Bcast(&code, 1, MPI_INT64_T, from, c.comm); e != MPI_SUCCESS) {
      return MpiFailure(e, "MPI_Bcast");
    }
    return Broadcast(c, from, static_cast<StatusCode>(code), local);
  }
  // Every check has passed on every rank: only running out of scratch
  // memory could fail this rank's call now.
  return NormalizeRows(shard, Indices(std::span<const std::int64_t>(local_indices)), options, stats_out);
}

// What the matrix protocol needs to know of a slice, whatever its storage:
// its parts (the local checks), its dtype and the count of the vectors every
// shard holds part of, and how to write it.
Status LocalParts(const Table& slice, const MatrixOptions& options, std::vector<NormPart>* parts) {
  return MatrixNormParts(ConstTable(slice), options, parts);
}
Status LocalParts(SparseMatrix* slice, const MatrixOptions& options, std::vector<NormPart>* parts) {
  if (slice == nullptr) {
    return Status(StatusCode::kInvalidArgument, "slice is null: pass this rank's SparseMatrix.");
  }
  return MatrixNormParts(*slice, options, parts);
}
DType DTypeOf(const Table& slice) { return slice.dtype; }
DType DTypeOf(const SparseMatrix* slice) { return slice != nullptr ? slice->dtype : DType{}; }
std::int64_t VectorCount(const Table& slice, int axis) { return axis == 0 ? slice.cols : slice.rows; }
std::int64_t VectorCount(const SparseMatrix* slice, int axis) {
  if (slice == nullptr) return -1;
  return axis == 0 ? slice->cols : slice->rows;
}

// Slice: Table (dense) or SparseMatrix* (CSR rows on axis 0, CSC columns on
// axis 1); the protocol is the same.
template <class Slice>
Status ShardedMatrix(MPI_Comm comm, Slice slice, const MatrixOptions& options, MatrixStats* stats) {
  Comm c;
  if (Status s = Open(comm, &c); !s.ok()) return s;
  std::vector<NormPart> parts;
  Exchange<NormPart> exchange;
  Status local = LocalParts(slice, options, &parts);
  if (local.ok()) {
    local = exchange.Reserve(c, parts.size(),
                             " vectors in one call exceed what one MPI collective of int counts "
                             "carries; pass a subset.");
  }
  Header mine{};
  mine[kStatusCode] = static_cast<std::int64_t>(local.code());
  mine[kDType] = static_cast<std::int64_t>(DTypeOf(slice));
  // The vectors' count: every shard holds part of each.
  mine[kRows] = VectorCount(slice, options.axis);
  mine[kOptionsDigest] = static_cast<std::int64_t>(OptionsDigest(options));
  mine[kDistinct] = static_cast<std::int64_t>(parts.size());
  std::vector<std::int64_t> all;
  if (Status s = Agree(c, mine, local, {kOptionsDigest, kDType, kRows, kDistinct}, &all);
      !s.ok()) {
    return s;
  }
  if (Status s = CombineEverywhere(c, parts, options.norm.p, &exchange); !s.ok()) {
    return s;
  }
  // The same combined bits everywhere: the same outcome everywhere.
  return ApplyMatrixNorms(slice, options, exchange.combined, stats);
}

}  // namespace

Status NormalizeColumnShardedRows(MPI_Comm comm, Table slice, Indices indices,
                                  const NormalizeOptions& options, RowStats* stats) noexcept {
  try {
    return ColumnSharded(comm, slice, indices, options, stats);
  } catch (const std::bad_alloc&) {
    return Status(StatusCode::kOutOfMemory, "could not allocate the column-sharded call's buffers.");
  }
}

Status NormalizeShardedMatrix(MPI_Comm comm, Table slice, const MatrixOptions& options,
                              MatrixStats* stats) noexcept {
  try {
    return ShardedMatrix(comm, slice, options, stats);
  } catch (const std::bad_alloc&) {
    return Status(StatusCode::kOutOfMemory, "could not allocate the sharded matrix call's buffers.");
  }
}

Status NormalizeShardedMatrix(MPI_Comm comm, SparseMatrix* slice, const MatrixOptions& options,
                              MatrixStats* stats) noexcept {
  try {
    return ShardedMatrix(comm, slice, options, stats);
  } catch (const std::bad_alloc&) {
    return Status(StatusCode::kOutOfMemory, "could not allocate the sharded matrix call's buffers.");
  }
}

Status NormalizeRowShardedRows(MPI_Comm comm, Table shard, Indices indices, RowSharding sharding,
                               const NormalizeOptions& options, RowStats* stats) noexcept {
  try {
    return RowSharded(comm, shard, indices, sharding, options, stats);
  } catch (const std::bad_alloc&) {
    return Status(StatusCode::kOutOfMemory, "could not allocate the row-sharded call's buffers.");
  }
}

}  // namespace sparsenorm::mpi
