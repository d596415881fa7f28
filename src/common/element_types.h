// Everything the library knows about an element type, in one place: for
// each storage type its DType, name, size, arithmetic type, widening and
// rounding, and the codes DLPack, .npy and .safetensors files use for it;
// for each index type the same; and the one run-time switch from a DType or
// IndexType to a template instantiation.
//
// Used by the CPU kernels, the reference, the CUDA kernels (this header is
// C++17 and its element functions compile for the device), the Python
// binding and the command-line tool's file formats. A value outside the
// enumerations is never mapped to a type: VisitDType returns false and the
// front ends report kUnsupported.
//
// Adding a storage type (docs/DESIGN.md): its enumerator, storage struct and
// DTypeOf in include/sparsenorm/dtype.h, its bit conversions in
// src/common/numerics.h, and an Element<T> here plus its entry in
// StorageTypes. Every kernel is written over Element<T>.
#ifndef SPARSENORM_COMMON_ELEMENT_TYPES_H_
#define SPARSENORM_COMMON_ELEMENT_TYPES_H_

#include <stddef.h>
#include <stdint.h>

#include <algorithm>
#include <array>
#include <string>
#include <string_view>
#include <type_traits>

#include "common/host_device.h"
#include "common/numerics.h"
#include "sparsenorm/dtype.h"

namespace sparsenorm {

template <class... Ts>
struct TypeList {};

// What a visitor receives: the type as a value, `TypeOf<decltype(tag)>`.
template <class T>
struct Tag {
  using type = T;
};
template <class TagT>
using TypeOf = typename TagT::type;

// ---------------------------------------------------------------------------
// Storage types.
//
// Element<T>:
//   Compute            the type norms and products are computed in
//   kDType, kName      the enumerator and its name
//   kDLPackCode        DLDataTypeCode (kDLFloat = 2, kDLBfloat = 4); bits = 8 * sizeof(T)
//   kNpyDescr          the .npy descr without its byte-order character
//   kSafetensors       the .safetensors dtype string
//   Widen(x)           exact conversion to Compute
//   Round(c)           Compute -> T, nearest-even
//   RoundDouble(d)     double -> T, correctly rounded (nearest-even)

template <class T>
struct Element;

template <>
struct Element<float> {
  using Compute = float;
  static constexpr DType kDType = DType::kFloat32;
  static constexpr const char* kName = "float32";
  static constexpr uint8_t kDLPackCode = 2;
  static constexpr const char* kNpyDescr = "f4";
  static constexpr const char* kSafetensors = "F32";
  SN_HD static float Widen(float x) { return x; }
  SN_HD static float Round(float c) { return c; }
  SN_HD static float RoundDouble(double d) { return static_cast<float>(d); }
};

template <>
struct Element<double> {
  using Compute = double;
  static constexpr DType kDType = DType::kFloat64;
  static constexpr const char* kName = "float64";
  static constexpr uint8_t kDLPackCode = 2;
  static constexpr const char* kNpyDescr = "f8";
  static constexpr const char* kSafetensors = "F64";
  SN_HD static double Widen(double x) { return x; }
  SN_HD static double Round(double c) { return c; }
  SN_HD static double RoundDouble(double d) { return d; }
};

template <>
struct Element<float16> {
  using Compute = float;
  static constexpr DType kDType = DType::kFloat16;
  static constexpr const char* kName = "float16";
  static constexpr uint8_t kDLPackCode = 2;
  static constexpr const char* kNpyDescr = "f2";
  static constexpr const char* kSafetensors = "F16";
  SN_HD static float Widen(float16 x) { return numerics::HalfToFloat(x.bits); }
  SN_HD static float16 Round(float c) { return float16{numerics::FloatToHalf(c)}; }
  SN_HD static float16 RoundDouble(double d) { return float16{numerics::DoubleToHalf(d)}; }
};

template <>
struct Element<bfloat16> {
  using Compute = float;
  static constexpr DType kDType = DType::kBFloat16;
  static constexpr const char* kName = "bfloat16";
  static constexpr uint8_t kDLPackCode = 4;
  // NumPy cannot name bfloat16: ml_dtypes' name for it (tools/formats/npy.h
  // also reads its '<V2' files on request).
  static constexpr const char* kNpyDescr = "bfloat16";
  static constexpr const char* kSafetensors = "BF16";
  SN_HD static float Widen(bfloat16 x) { return numerics::BFloat16ToFloat(x.bits); }
  SN_HD static bfloat16 Round(float c) { return bfloat16{numerics::FloatToBFloat16(c)}; }
  SN_HD static bfloat16 RoundDouble(double d) { return bfloat16{numerics::DoubleToBFloat16(d)}; }
};

// The storage types, in the order of the DType enumerators.
using StorageTypes = TypeList<float, double, float16, bfloat16>;

// Stored narrower than its arithmetic type (float16, bfloat16): a product
// must be rounded to odd first to be rounded once (numerics.h).
template <class T>
inline constexpr bool kNarrow = sizeof(T) < sizeof(typename Element<T>::Compute);

// Bitwise equality of two stored values (memcmp is not device code).
template <class T>
SN_HD bool SameBits(const T& a, const T& b) {
  using Bits = std::conditional_t<
      sizeof(T) == 1, uint8_t,
      std::conditional_t<sizeof(T) == 2, uint16_t, std::conditional_t<sizeof(T) == 4, uint32_t, uint64_t>>>;
  static_assert(sizeof(Bits) == sizeof(T), "storage types are 1, 2, 4 or 8 bytes");
  Bits x, y;
  memcpy(&x, &a, sizeof x);
  memcpy(&y, &b, sizeof y);
  return x == y;
}

// ---------------------------------------------------------------------------
// Index types.

template <class I>
struct IndexElement;

template <>
struct IndexElement<int32_t> {
  static constexpr IndexType kIndexType = IndexType::kInt32;
  static constexpr const char* kName = "int32";
};

template <>
struct IndexElement<int64_t> {
  static constexpr IndexType kIndexType = IndexType::kInt64;
  static constexpr const char* kName = "int64";
};

using IndexTypes = TypeList<int32_t, int64_t>;

// ---------------------------------------------------------------------------
// The run-time switch: calls fn(Tag<T>{}) for the type of `dtype` (or
// `type`) and returns true; returns false, calling nothing, for a value
// outside the enumeration.

template <class Fn, class... Ts>
constexpr bool VisitStorage(TypeList<Ts...>, DType dtype, Fn&& fn) {
  return ((dtype == Element<Ts>::kDType ? (fn(Tag<Ts>{}), true) : false) || ...);
}

template <class Fn>
constexpr bool VisitDType(DType dtype, Fn&& fn) {
  return VisitStorage(StorageTypes{}, dtype, fn);
}

template <class Fn, class... Is>
constexpr bool VisitIndex(TypeList<Is...>, IndexType type, Fn&& fn) {
  return ((type == IndexElement<Is>::kIndexType ? (fn(Tag<Is>{}), true) : false) || ...);
}

template <class Fn>
constexpr bool VisitIndexType(IndexType type, Fn&& fn) {
  return VisitIndex(IndexTypes{}, type, fn);
}

// Both at once: fn(Tag<T>{}, Tag<I>{}).
template <class Fn>
constexpr bool VisitDTypeAndIndex(DType dtype, IndexType type, Fn&& fn) {
  bool ok = false;
  VisitDType(dtype, [&](auto t) { ok = VisitIndexType(type, [&](auto i) { fn(t, i); }); });
  return ok;
}

// ---------------------------------------------------------------------------
// The same facts as run-time tables, for code that looks a type up by a name
// or a code (the Python binding, the file formats, messages).

struct DTypeInfo {
  DType dtype;
  const char* name;
  size_t size;
  uint8_t dlpack_code;
  const char* npy_descr;
  const char* safetensors;
};

template <class... Ts>
constexpr std::array<DTypeInfo, sizeof...(Ts)> DTypeInfos(TypeList<Ts...>) {
  return {DTypeInfo{Element<Ts>::kDType, Element<Ts>::kName, sizeof(Ts), Element<Ts>::kDLPackCode,
                    Element<Ts>::kNpyDescr, Element<Ts>::kSafetensors}...};
}

inline constexpr auto kDTypeInfos = DTypeInfos(StorageTypes{});

struct IndexTypeInfo {
  IndexType type;
  const char* name;
  size_t size;
};

template <class... Is>
constexpr std::array<IndexTypeInfo, sizeof...(Is)> IndexTypeInfos(TypeList<Is...>) {
  return {IndexTypeInfo{IndexElement<Is>::kIndexType, IndexElement<Is>::kName, sizeof(Is)}...};
}

inline constexpr auto kIndexTypeInfos = IndexTypeInfos(IndexTypes{});

// The entry of a value, or null for a value outside the enumeration.
constexpr const DTypeInfo* FindDType(DType dtype) {
  for (const DTypeInfo& info : kDTypeInfos) {
    if (info.dtype == dtype) return &info;
  }
  return nullptr;
}

constexpr const IndexTypeInfo* FindIndexType(IndexType type) {
  for (const IndexTypeInfo& info : kIndexTypeInfos) {
    if (info.type == type) return &info;
  }
  return nullptr;
}

// Bytes of one element; 0 for a value outside the enumeration.
constexpr size_t ElementSize(DType dtype) {
  const DTypeInfo* info = FindDType(dtype);
  return info != nullptr ? info->size : 0;
}

constexpr size_t IndexSize(IndexType type) {
  const IndexTypeInfo* info = FindIndexType(type);
  return info != nullptr ? info->size : 0;
}

// The storage type with this DLPack (code, bits), this .npy descr (byte
// order removed) or this .safetensors name; null when none is.
constexpr const DTypeInfo* FindDTypeByDLPack(uint8_t code, unsigned bits) {
  for (const DTypeInfo& info : kDTypeInfos) {
    if (info.dlpack_code == code && 8 * info.size == bits) return &info;
  }
  return nullptr;
}

constexpr const DTypeInfo* FindDTypeByNpyDescr(std::string_view descr) {
  for (const DTypeInfo& info : kDTypeInfos) {
    if (descr == info.npy_descr) return &info;
  }
  return nullptr;
}

constexpr const DTypeInfo* FindDTypeBySafetensors(std::string_view name) {
  for (const DTypeInfo& info : kDTypeInfos) {
    if (name == info.safetensors) return &info;
  }
  return nullptr;
}

// The storage types' names, narrowest first.
inline std::array<const char*, kDTypeInfos.size()> DTypeNamesBySize() {
  std::array<const DTypeInfo*, kDTypeInfos.size()> sorted{};
  for (std::size_t i = 0; i < sorted.size(); ++i) sorted[i] = &kDTypeInfos[i];
  std::stable_sort(sorted.begin(), sorted.end(),
                   [](const DTypeInfo* a, const DTypeInfo* b) { return a->size < b->size; });
  std::array<const char*, kDTypeInfos.size()> names{};
  for (std::size_t i = 0; i < names.size(); ++i) names[i] = sorted[i]->name;
  return names;
}

// Those names for messages: "float16, bfloat16, float32 and float64" with
// last_join " and ".
inline std::string DTypeNameList(const char* last_join) {
  const auto names = DTypeNamesBySize();
  std::string list;
  for (std::size_t i = 0; i < names.size(); ++i) {
    if (i > 0) list += i + 1 == names.size() ? last_join : ", ";
    list += names[i];
  }
  return list;
}

}  // namespace sparsenorm

#endif  // SPARSENORM_COMMON_ELEMENT_TYPES_H_
