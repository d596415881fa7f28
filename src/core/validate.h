// Argument checks shared by every operator and backend. Each returns a Status
// whose message is a full sentence naming the offending value and where it
// was found; none of them touches the caller's data.
#ifndef SPARSENORM_CORE_VALIDATE_H_
#define SPARSENORM_CORE_VALIDATE_H_

#include <cstddef>
#include <cstdint>
#include <sstream>
#include <string>
#include <utility>

#include "sparsenorm/types.h"

namespace sparsenorm::detail {

// Concatenates the arguments with operator<< (doubles in the shortest form
// that reads back as the same value).
template <class... Args>
std::string StrCat(const Args&... args) {
  std::ostringstream out;
  out.precision(17);
  (out << ... << args);
  return out.str();
}

template <class... Args>
Status InvalidArgument(const Args&... args) {
  return Status(StatusCode::kInvalidArgument, StrCat(args...));
}
template <class... Args>
Status OutOfRange(const Args&... args) {
  return Status(StatusCode::kOutOfRange, StrCat(args...));
}
template <class... Args>
Status Unsupported(const Args&... args) {
  return Status(StatusCode::kUnsupported, StrCat(args...));
}
Status OutOfMemory(const char* what);

// Formats a double compactly: 1, 0.5, 1e-12, nan, inf.
std::string FormatDouble(double v);

// mode, target, p, eps, non_finite, num_threads and backend.
Status ValidateOptions(const NormalizeOptions& options);

// A checked description of a strided 2-D array.
struct CheckedLayout {
  std::int64_t stride = 0;        // elements between row starts
  std::size_t element_size = 0;   // bytes
  std::int64_t extent_bytes = 0;  // bytes from the first to one past the last element
};

// Checks dtype, sizes, stride, null pointer and 64-bit byte-size overflow.
// `name` is how the message refers to the array, e.g. "table".
Status CheckLayout(const void* data, DType dtype, std::int64_t rows, std::int64_t cols,
                   std::int64_t row_stride, const char* name, CheckedLayout* out);

// Checks the index type, the size and the null pointer (not the values).
Status CheckIndexList(const void* data, IndexType type, std::int64_t size, const char* name);

// The operands of the row operator, checked (CPU and CUDA front ends).
struct RowOperands {
  CheckedLayout in_layout;
  CheckedLayout out_layout;
  bool in_place = true;  // in and out are the same table
};

// Layouts of `out` (called "table", or "output" when out_of_place) and of
// `in`, same shape and dtype, no partial overlap, and the index list's type,
// size and pointer. The options are the caller's to check.
Status CheckRowOperands(const ConstTable& in, const Table& out, const Indices& indices,
                        bool out_of_place, RowOperands* operands);

// The message for list[position] = value outside [0, limit).
Status IndexOutOfRange(const char* list, std::int64_t position, std::int64_t value,
                       std::int64_t limit, const char* what);

// Reads element i of an int32 or int64 index list.
inline std::int64_t IndexAt(const void* data, IndexType type, std::int64_t i) {
  return type == IndexType::kInt32 ? static_cast<const std::int32_t*>(data)[i]
                                   : static_cast<const std::int64_t*>(data)[i];
}

// The first position of [0, size) whose value is outside [0, limit), or -1.
// Parallel over `threads`; the answer does not depend on the thread count.
std::int64_t FirstInvalidIndex(const void* data, IndexType type, std::int64_t size,
                               std::int64_t limit, int threads);

// True when [a, a + a_bytes) and [b, b + b_bytes) share a byte.
bool Overlaps(const void* a, std::int64_t a_bytes, const void* b, std::int64_t b_bytes);

// The value of SPARSENORM_BACKEND, read once: true when it says "reference".
bool EnvironmentForcesReference();

}  // namespace sparsenorm::detail

#endif  // SPARSENORM_CORE_VALIDATE_H_
