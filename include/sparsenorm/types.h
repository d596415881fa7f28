// Plain data types shared by every sparsenorm operator: storage and index
// dtypes, views over caller-owned memory, options, statistics and the status
// object every entry point returns.
//
// Nothing here owns memory. A view is a pointer plus sizes; the caller keeps
// the memory alive for the duration of the call.
#ifndef SPARSENORM_TYPES_H_
#define SPARSENORM_TYPES_H_

#include <cstddef>
#include <cstdint>
#include <limits>
#include <span>
#include <string>
#include <utility>

#include "sparsenorm/dtype.h"
#include "sparsenorm/export.h"

namespace sparsenorm {

// ---------------------------------------------------------------------------
// Status: the core library reports errors through return values, never
// exceptions. Messages are complete sentences that name the offending value
// and where it was found.

enum class StatusCode : std::uint8_t {
  kOk = 0,
  kInvalidArgument,  // a bad option, size, shape or pointer
  kOutOfRange,       // an index outside its valid range
  kUnsupported,      // a dtype or layout the operator does not handle
  kNonFinite,        // a NaN/infinity row when NonFinitePolicy::kError is set
  kOutOfMemory,      // scratch memory could not be allocated
  kDeviceError,      // a CUDA runtime error
};

class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(StatusCode code, std::string message)
      : code_(code), message_(std::move(message)) {}

  static Status Ok() { return Status(); }

  bool ok() const noexcept { return code_ == StatusCode::kOk; }
  StatusCode code() const noexcept { return code_; }
  const std::string& message() const noexcept { return message_; }

 private:
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
};

SPARSENORM_API const char* StatusCodeName(StatusCode code) noexcept;

// ---------------------------------------------------------------------------
// Views.

// A row-major table of `rows` x `cols` elements. Row r starts at element
// r * row_stride; row_stride == 0 means `cols` (densely packed rows).
struct Table {
  void* data = nullptr;
  DType dtype = DType::kFloat32;
  std::int64_t rows = 0;
  std::int64_t cols = 0;
  std::int64_t row_stride = 0;
};

struct ConstTable {
  const void* data = nullptr;
  DType dtype = DType::kFloat32;
  std::int64_t rows = 0;
  std::int64_t cols = 0;
  std::int64_t row_stride = 0;

  ConstTable() = default;
  ConstTable(const void* d, DType t, std::int64_t r, std::int64_t c, std::int64_t s = 0)
      : data(d), dtype(t), rows(r), cols(c), row_stride(s) {}
  // A mutable table may always be read.
  ConstTable(const Table& t)  // NOLINT(google-explicit-constructor)
      : data(t.data), dtype(t.dtype), rows(t.rows), cols(t.cols), row_stride(t.row_stride) {}
};

// A list of row indices. Never reordered or written by the library.
struct Indices {
  const void* data = nullptr;
  IndexType type = IndexType::kInt64;
  std::int64_t size = 0;

  Indices() = default;
  Indices(const void* d, IndexType t, std::int64_t n) : data(d), type(t), size(n) {}
  Indices(std::span<const std::int32_t> s)  // NOLINT(google-explicit-constructor)
      : data(s.data()), type(IndexType::kInt32), size(static_cast<std::int64_t>(s.size())) {}
  Indices(std::span<const std::int64_t> s)  // NOLINT(google-explicit-constructor)
      : data(s.data()), type(IndexType::kInt64), size(static_cast<std::int64_t>(s.size())) {}
};

template <typename T>
Table MakeTable(T* data, std::int64_t rows, std::int64_t cols, std::int64_t row_stride = 0) {
  return Table{data, DTypeOf<T>::value, rows, cols, row_stride};
}
template <typename T>
ConstTable MakeConstTable(const T* data, std::int64_t rows, std::int64_t cols,
                          std::int64_t row_stride = 0) {
  return ConstTable(data, DTypeOf<T>::value, rows, cols, row_stride);
}

// ---------------------------------------------------------------------------
// Options shared by the row operator and the matrix normalization.

// kMaxNorm: a vector whose norm r exceeds `target` is scaled by
// target / (r + eps); one with r <= target is left as it is.
// kConstantNorm: every vector with r > 0 is scaled by target / (r + eps).
enum class NormMode : std::uint8_t { kMaxNorm = 0, kConstantNorm = 1 };

// What to do with a vector that holds NaN or infinity. Such a vector is never
// modified; kSkip counts it in the statistics, kError fails the whole call
// before anything is written.
enum class NonFinitePolicy : std::uint8_t { kSkip = 0, kError = 1 };

// kAuto runs the fast SIMD, multi-threaded path unless the environment
// variable SPARSENORM_BACKEND=reference is set; kReference always runs the
// scalar oracle (slow; for testing and debugging).
enum class Backend : std::uint8_t { kAuto = 0, kReference = 1 };

inline constexpr double kInfinity = std::numeric_limits<double>::infinity();

struct NormalizeOptions {
  NormMode mode = NormMode::kMaxNorm;
  double target = 1.0;  // finite, >= 0
  double p = 2.0;       // > 0; kInfinity selects max |x|
  double eps = 1e-12;   // finite, >= 0; added to the norm in the scale only
  NonFinitePolicy non_finite = NonFinitePolicy::kSkip;
  int num_threads = 0;  // 0: every core the OpenMP runtime offers
  Backend backend = Backend::kAuto;
};

// The semantics of torch.embedding_renorm_(weight, indices, max_norm,
// norm_type): max-norm, strict comparison, eps = 1e-7.
inline NormalizeOptions TorchEmbeddingRenormOptions(double max_norm, double norm_type = 2.0) {
  NormalizeOptions o;
  o.mode = NormMode::kMaxNorm;
  o.target = max_norm;
  o.p = norm_type;
  o.eps = 1e-7;
  return o;
}

// The semantics of Caffe2's SparseNormalize operator.
inline NormalizeOptions Caffe2Options(bool use_max_norm, double norm) {
  NormalizeOptions o;
  o.mode = use_max_norm ? NormMode::kMaxNorm : NormMode::kConstantNorm;
  o.target = norm;
  o.p = 2.0;
  o.eps = 1e-12;
  return o;
}

// What one call of the row operator did.
struct RowStats {
  std::int64_t indices_seen = 0;    // length of the index list
  std::int64_t distinct_rows = 0;   // distinct row indices in it
  std::int64_t rows_scaled = 0;     // distinct rows whose values were rescaled
  std::int64_t nonfinite_rows = 0;  // distinct rows left alone because of NaN/inf
};

}  // namespace sparsenorm

#endif  // SPARSENORM_TYPES_H_
