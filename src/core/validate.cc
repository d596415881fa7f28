#include "core/validate.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <vector>

#include "core/parallel.h"

#if defined(_OPENMP)
#include <omp.h>
#endif

namespace sparsenorm::detail {

Status OutOfMemory(const char* what) {
  return Status(StatusCode::kOutOfMemory, StrCat("could not allocate ", what, "."));
}

std::string FormatDouble(double v) {
  if (std::isnan(v)) return "nan";
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  char buf[32];
  for (int precision = 6; precision <= 17; ++precision) {
    std::snprintf(buf, sizeof buf, "%.*g", precision, v);
    if (std::strtod(buf, nullptr) == v) break;
  }
  return buf;
}

Status ValidateOptions(const NormalizeOptions& o) {
  if (o.mode != NormMode::kMaxNorm && o.mode != NormMode::kConstantNorm) {
    return InvalidArgument("options.mode = ", static_cast<int>(o.mode),
                           " is not a NormMode (0 = max-norm, 1 = constant-norm).");
  }
  if (!(o.target >= 0.0) || std::isinf(o.target)) {
    return InvalidArgument("options.target = ", FormatDouble(o.target),
                           " is invalid: the target norm must be a finite number >= 0.");
  }
  if (!(o.p > 0.0)) {
    return InvalidArgument("options.p = ", FormatDouble(o.p),
                           " is invalid: the norm order must be > 0 (infinity selects max |x|).");
  }
  if (!(o.eps >= 0.0) || std::isinf(o.eps)) {
    return InvalidArgument("options.eps = ", FormatDouble(o.eps),
                           " is invalid: eps must be a finite number >= 0.");
  }
  if (o.non_finite != NonFinitePolicy::kSkip && o.non_finite != NonFinitePolicy::kError) {
    return InvalidArgument("options.non_finite = ", static_cast<int>(o.non_finite),
                           " is not a NonFinitePolicy (0 = skip, 1 = error).");
  }
  if (o.num_threads < 0) {
    return InvalidArgument("options.num_threads = ", o.num_threads,
                           " is invalid: use 0 for every core or a positive count.");
  }
  if (o.backend != Backend::kAuto && o.backend != Backend::kReference) {
    return InvalidArgument("options.backend = ", static_cast<int>(o.backend),
                           " is not a Backend (0 = auto, 1 = reference).");
  }
  return Status::Ok();
}

Status CheckLayout(const void* data, DType dtype, std::int64_t rows, std::int64_t cols,
                   std::int64_t row_stride, const char* name, CheckedLayout* out) {
  const std::size_t element_size = DTypeSize(dtype);
  if (element_size == 0) {
    return Unsupported(name, ".dtype = ", static_cast<int>(dtype),
                       " is not a supported dtype (float32, float64, float16, bfloat16).");
  }
  if (rows < 0) return InvalidArgument(name, ".rows = ", rows, " is negative.");
  if (cols < 0) return InvalidArgument(name, ".cols = ", cols, " is negative.");
  if (row_stride < 0) return InvalidArgument(name, ".row_stride = ", row_stride, " is negative.");
  const std::int64_t stride = row_stride == 0 ? cols : row_stride;
  if (stride < cols) {
    return InvalidArgument(name, ".row_stride = ", row_stride, " is smaller than ", name,
                           ".cols = ", cols, ": rows would overlap.");
  }
  std::int64_t extent = 0;
  if (rows > 0 && cols > 0) {
    std::int64_t last_row_start = 0;
    std::int64_t bytes = 0;
    if (__builtin_mul_overflow(rows - 1, stride, &last_row_start) ||
        __builtin_add_overflow(last_row_start, cols, &extent) ||
        __builtin_mul_overflow(extent, static_cast<std::int64_t>(element_size), &bytes)) {
      return InvalidArgument(name, " of ", rows, " rows x ", cols, " columns with row stride ",
                             stride, " and ", element_size,
                             "-byte elements spans more bytes than a 64-bit offset can address.");
    }
    extent = bytes;
  }
  if (data == nullptr && extent > 0) {
    return InvalidArgument(name, ".data is null but the ", name, " has ", rows, " x ", cols,
                           " elements.");
  }
  if (out != nullptr) *out = CheckedLayout{stride, element_size, extent};
  return Status::Ok();
}

Status CheckRowOperands(const ConstTable& in, const Table& out, const Indices& indices,
                        bool out_of_place, RowOperands* operands) {
  const char* out_name = out_of_place ? "output" : "table";
  if (Status s = CheckLayout(out.data, out.dtype, out.rows, out.cols, out.row_stride, out_name,
                             &operands->out_layout);
      !s.ok()) {
    return s;
  }
  operands->in_layout = operands->out_layout;
  operands->in_place = true;
  if (out_of_place) {
    if (Status s = CheckLayout(in.data, in.dtype, in.rows, in.cols, in.row_stride, "input",
                               &operands->in_layout);
        !s.ok()) {
      return s;
    }
    if (in.dtype != out.dtype || in.rows != out.rows || in.cols != out.cols) {
      return InvalidArgument("input is ", in.rows, " x ", in.cols, " ", DTypeName(in.dtype),
                             " but output is ", out.rows, " x ", out.cols, " ",
                             DTypeName(out.dtype), ": they must have the same shape and dtype.");
    }
    const bool same =
        in.data == out.data && operands->in_layout.stride == operands->out_layout.stride;
    if (!same && Overlaps(in.data, operands->in_layout.extent_bytes, out.data,
                          operands->out_layout.extent_bytes)) {
      return InvalidArgument(
          "input and output overlap in memory without being the same table; pass the same "
          "table for in-place use or separate memory.");
    }
    operands->in_place = same;
  }
  return CheckIndexList(indices.data, indices.type, indices.size, "indices");
}

Status CheckIndexList(const void* data, IndexType type, std::int64_t size, const char* name) {
  if (type != IndexType::kInt32 && type != IndexType::kInt64) {
    return Unsupported(name, " has index type code ", static_cast<int>(type),
                       ", which is neither int32 (0) nor int64 (1).");
  }
  if (size < 0) return InvalidArgument(name, ".size = ", size, " is negative.");
  if (data == nullptr && size > 0) {
    return InvalidArgument(name, ".data is null but ", name, ".size = ", size, ".");
  }
  return Status::Ok();
}

Status IndexOutOfRange(const char* list, std::int64_t position, std::int64_t value,
                       std::int64_t limit, const char* what) {
  if (limit == 0) {
    return OutOfRange(list, "[", position, "] = ", value, " is out of range: the ", what,
                      " count is 0, so no index is valid.");
  }
  return OutOfRange(list, "[", position, "] = ", value, " is out of range for ", limit, " ",
                    what, "s (valid indices are 0 to ", limit - 1, ").");
}

namespace {
template <class I>
std::int64_t FirstInvalidIn(const I* data, std::int64_t begin, std::int64_t end,
                            std::int64_t limit) {
  // Unsigned compare folds the "< 0" and ">= limit" tests into one.
  const auto ulimit = static_cast<std::uint64_t>(limit);
  for (std::int64_t i = begin; i < end; ++i) {
    if (static_cast<std::uint64_t>(static_cast<std::int64_t>(data[i])) >= ulimit) return i;
  }
  return -1;
}
}  // namespace

std::int64_t FirstInvalidIndex(const void* data, IndexType type, std::int64_t size,
                               std::int64_t limit, int threads) {
  std::vector<std::int64_t> first(static_cast<std::size_t>(std::max(threads, 1)), -1);
  ParallelFor(threads, size, [&](std::int64_t begin, std::int64_t end, int t) {
    first[t] = type == IndexType::kInt32
                   ? FirstInvalidIn(static_cast<const std::int32_t*>(data), begin, end, limit)
                   : FirstInvalidIn(static_cast<const std::int64_t*>(data), begin, end, limit);
  });
  // Slices are in position order, so the first slice that found one wins.
  for (std::int64_t f : first) {
    if (f >= 0) return f;
  }
  return -1;
}

bool Overlaps(const void* a, std::int64_t a_bytes, const void* b, std::int64_t b_bytes) {
  if (a_bytes <= 0 || b_bytes <= 0) return false;
  const auto pa = reinterpret_cast<std::uintptr_t>(a);
  const auto pb = reinterpret_cast<std::uintptr_t>(b);
  return pa < pb + static_cast<std::uintptr_t>(b_bytes) &&
         pb < pa + static_cast<std::uintptr_t>(a_bytes);
}

int MaxThreads() {
  static const int threads = [] {
    for (const char* name : {"SPARSENORM_NUM_THREADS", "OMP_NUM_THREADS"}) {
      // OMP_NUM_THREADS may be a list ("4,2"); its first entry is ours.
      if (const char* v = std::getenv(name)) {
        const long n = std::strtol(v, nullptr, 10);
        if (n > 0) return static_cast<int>(std::min<long>(n, 1 << 16));
      }
    }
#if defined(_OPENMP)
    return std::max(1, omp_get_num_procs());
#else
    return 1;
#endif
  }();
  return threads;
}

bool EnvironmentForcesReference() {
  static const bool forced = [] {
    const char* v = std::getenv("SPARSENORM_BACKEND");
    return v != nullptr && std::strcmp(v, "reference") == 0;
  }();
  return forced;
}

}  // namespace sparsenorm::detail
