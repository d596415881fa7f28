// Element types: the storage types of tables and matrices and the types of
// index lists. Plain C++17 with no standard-library header beyond <cstdint>
// and <cstddef>, because the CUDA kernels (compiled as C++17) include it too.
//
// Every other fact about an element type (its size, name, how it widens to
// its arithmetic type and how results are rounded back, the codes DLPack and
// file formats use for it) lives in one place inside the library,
// src/common/element_types.h; docs/DESIGN.md says how to add a type.
#ifndef SPARSENORM_DTYPE_H_
#define SPARSENORM_DTYPE_H_

#include <cstddef>
#include <cstdint>

#include "sparsenorm/export.h"

namespace sparsenorm {

enum class DType : std::uint8_t { kFloat32 = 0, kFloat64 = 1, kFloat16 = 2, kBFloat16 = 3 };
enum class IndexType : std::uint8_t { kInt32 = 0, kInt64 = 1 };

// IEEE binary16 and bfloat16 storage: the raw 16 bits. The library converts
// them to float32 for arithmetic and rounds results back to nearest-even.
struct float16 {
  std::uint16_t bits;
};
struct bfloat16 {
  std::uint16_t bits;
};

// "float32", "float64", "float16", "bfloat16", or "unknown".
SPARSENORM_API const char* DTypeName(DType dtype) noexcept;
// Size in bytes of one element; 0 for a value outside the enumeration.
SPARSENORM_API std::size_t DTypeSize(DType dtype) noexcept;
// "int32", "int64", or "unknown".
SPARSENORM_API const char* IndexTypeName(IndexType type) noexcept;

// The DType of a storage type: DTypeOf<float>::value == DType::kFloat32.
template <typename T>
struct DTypeOf;
template <>
struct DTypeOf<float> {
  static constexpr DType value = DType::kFloat32;
};
template <>
struct DTypeOf<double> {
  static constexpr DType value = DType::kFloat64;
};
template <>
struct DTypeOf<float16> {
  static constexpr DType value = DType::kFloat16;
};
template <>
struct DTypeOf<bfloat16> {
  static constexpr DType value = DType::kBFloat16;
};

}  // namespace sparsenorm

#endif  // SPARSENORM_DTYPE_H_
