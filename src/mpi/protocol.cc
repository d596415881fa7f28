// The agreement steps of src/mpi/protocol.h.

#include "mpi/protocol.h"

#include <string>
#include <vector>

namespace sparsenorm::mpi::detail {
namespace {

const char* FieldName(int f) {
  switch (f) {
    case kDType: return "the table dtype";
    case kRows: return "the table's row count";
    case kCols: return "the table's column count";
    case kCyclic: return "cyclic";
    case kCount: return "the index count";
    case kIndexDigest: return "the index list (its digest)";
    case kOptionsDigest: return "the options (mode, target, p, eps, non_finite)";
    case kDistinct: return "the number of parts (distinct rows or vectors)";
    case kColOffset: return "the slices' column offsets";
    case kGradDType: return "the gradient dtype";
    case kStepOptionsDigest:
      return "the optimizer options (kind, hyperparameters, step, constraint, rounding, seed, non_finite)";
    default: return "a field";
  }
}

}  // namespace

Status MpiFailure(int code, const char* call) {
  char text[MPI_MAX_ERROR_STRING];
  int length = 0;
  if (MPI_Error_string(code, text, &length) != MPI_SUCCESS) length = 0;
  return Status(StatusCode::kInvalidArgument,
                Cat(call, " failed: ", std::string(text, static_cast<std::size_t>(length)), "."));
}

Status Open(MPI_Comm comm, Comm* out) {
  int initialized = 0;
  MPI_Initialized(&initialized);
  if (!initialized) {
    return Status(StatusCode::kInvalidArgument, "MPI is not initialized: call MPI_Init first.");
  }
  if (comm == MPI_COMM_NULL) {
    return Status(StatusCode::kInvalidArgument, "comm is MPI_COMM_NULL.");
  }
  out->comm = comm;
  if (int e = MPI_Comm_rank(comm, &out->rank); e != MPI_SUCCESS) return MpiFailure(e, "MPI_Comm_rank");
  if (int e = MPI_Comm_size(comm, &out->size); e != MPI_SUCCESS) return MpiFailure(e, "MPI_Comm_size");
  return Status::Ok();
}

Status GatherHeaders(const Comm& c, const Header& mine, std::vector<std::int64_t>* all) {
  all->assign(static_cast<std::size_t>(c.size) * kFields, 0);
  if (int e = MPI_Allgather(mine, kFields, MPI_INT64_T, all->data(), kFields, MPI_INT64_T, c.comm);
      e != MPI_SUCCESS) {
    return MpiFailure(e, "MPI_Allgather");
  }
  return Status::Ok();
}

Status Broadcast(const Comm& c, int from, StatusCode code, const Status& local) {
  std::string text = c.rank == from ? local.message() : std::string();
  std::int64_t length = static_cast<std::int64_t>(text.size());
  if (int e = MPI_Bcast(&length, 1, MPI_INT64_T, from, c.comm); e != MPI_SUCCESS) {
    return MpiFailure(e, "MPI_Bcast");
  }
  text.resize(static_cast<std::size_t>(length));
  if (length > 0) {
    if (int e = MPI_Bcast(text.data(), static_cast<int>(length), MPI_CHAR, from, c.comm);
        e != MPI_SUCCESS) {
      return MpiFailure(e, "MPI_Bcast");
    }
  }
  return Status(code, Cat("rank ", from, " of ", c.size, ": ", text));
}

int FirstFailingRank(const Comm& c, const std::vector<std::int64_t>& all) {
  for (int k = 0; k < c.size; ++k) {
    if (all[static_cast<std::size_t>(k) * kFields + kStatusCode] != 0) return k;
  }
  return -1;
}

Status Disagreement(const Comm& c, const std::vector<std::int64_t>& all,
                    std::initializer_list<int> fields) {
  for (int f : fields) {
    for (int k = 1; k < c.size; ++k) {
      const std::int64_t a = all[static_cast<std::size_t>(f)];
      const std::int64_t b = all[static_cast<std::size_t>(k) * kFields + f];
      if (a == b) continue;
      const bool show = f != kIndexDigest && f != kOptionsDigest && f != kStepOptionsDigest;
      return Status(StatusCode::kInvalidArgument,
                    Cat("ranks disagree on ", FieldName(f),
                        show ? Cat(": rank 0 has ", a, ", rank ", k, " has ", b)
                             : Cat(": rank ", k, " differs from rank 0"),
                        ". Every rank must make the same call on its own shard; nothing was "
                        "modified on any rank."));
    }
  }
  return Status::Ok();
}

Status Agree(const Comm& c, const Header& mine, const Status& local, std::initializer_list<int> fields,
             std::vector<std::int64_t>* all) {
  if (Status s = GatherHeaders(c, mine, all); !s.ok()) return s;
  if (const int bad = FirstFailingRank(c, *all); bad >= 0) {
    return Broadcast(c, bad, static_cast<StatusCode>((*all)[static_cast<std::size_t>(bad) * kFields]), local);
  }
  return Disagreement(c, *all, fields);
}

}  // namespace sparsenorm::mpi::detail
