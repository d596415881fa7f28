#include "common/element_types.h"
#include "sparsenorm/types.h"

namespace sparsenorm {

const char* StatusCodeName(StatusCode code) noexcept {
  switch (code) {
    case StatusCode::kOk:
      return "ok";
    case StatusCode::kInvalidArgument:
      return "invalid argument";
    case StatusCode::kOutOfRange:
      return "out of range";
    case StatusCode::kUnsupported:
      return "unsupported";
    case StatusCode::kNonFinite:
      return "non-finite value";
    case StatusCode::kOutOfMemory:
      return "out of memory";
    case StatusCode::kDeviceError:
      return "device error";
  }
  return "unknown";
}

const char* DTypeName(DType dtype) noexcept {
  const DTypeInfo* info = FindDType(dtype);
  return info != nullptr ? info->name : "unknown";
}

std::size_t DTypeSize(DType dtype) noexcept { return ElementSize(dtype); }

const char* IndexTypeName(IndexType type) noexcept {
  const IndexTypeInfo* info = FindIndexType(type);
  return info != nullptr ? info->name : "unknown";
}

}  // namespace sparsenorm
