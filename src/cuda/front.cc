#include "cuda/front.h"

#include <cuda_runtime_api.h>

#include <cstdint>

#include "core/validate.h"
#include "sparsenorm/cuda.h"

namespace sparsenorm::cuda::detail {

using sparsenorm::detail::InvalidArgument;
using sparsenorm::detail::StrCat;

Status DeviceError(int cuda_error, const char* what) {
  const auto e = static_cast<cudaError_t>(cuda_error);
  const StatusCode code = e == cudaErrorMemoryAllocation ? StatusCode::kOutOfMemory : StatusCode::kDeviceError;
  return Status(code, StrCat("CUDA error while ", what, ": ", cudaGetErrorName(e), " (",
                             cudaGetErrorString(e), ")."));
}

Status ValidateDeviceOptions(const NormalizeOptions& options) {
  if (Status s = sparsenorm::detail::ValidateOptions(options); !s.ok()) return s;
  if (options.backend == Backend::kReference) {
    return Status(StatusCode::kUnsupported,
                  "options.backend = kReference selects the CPU reference implementation, which "
                  "cannot run on device memory; use Backend::kAuto, or copy the data to the host "
                  "and call the CPU function.");
  }
  return Status::Ok();
}

Status CheckDevicePointer(const void* p, const char* name) {
  cudaPointerAttributes attr{};
  const cudaError_t e = cudaPointerGetAttributes(&attr, p);
  if (e != cudaSuccess) {
    cudaGetLastError();  // not sticky: do not let it surface at the next launch
    return DeviceError(e, StrCat("inspecting ", name).c_str());
  }
  switch (attr.type) {
    case cudaMemoryTypeDevice:
    case cudaMemoryTypeManaged: {
      int device = -1;
      if (cudaGetDevice(&device) == cudaSuccess && attr.type == cudaMemoryTypeDevice &&
          attr.device != device) {
        return InvalidArgument(name, " is memory of device ", attr.device,
                               " but the current device is ", device,
                               "; call cudaSetDevice first.");
      }
      return Status::Ok();
    }
    case cudaMemoryTypeHost:
      if (attr.devicePointer != nullptr) return Status::Ok();
      [[fallthrough]];
    default:
      return InvalidArgument(name, " = ", p,
                             " is host memory that the device cannot address; pass memory from "
                             "cudaMalloc, cudaMallocAsync, cudaMallocManaged or mapped "
                             "cudaHostAlloc.");
  }
}

Status CheckScratch(const void* scratch, std::size_t scratch_bytes, std::size_t needed) {
  if (scratch == nullptr) {
    return InvalidArgument("scratch is null; allocate the size the ScratchBytes function "
                           "returns (", needed, " bytes for this call).");
  }
  if (scratch_bytes < needed) {
    return InvalidArgument("scratch_bytes = ", scratch_bytes, " is too small: this call needs ",
                           needed, " bytes.");
  }
  if (reinterpret_cast<std::uintptr_t>(scratch) % 16 != 0) {
    return InvalidArgument("scratch = ", scratch, " is not 16-byte aligned.");
  }
  return CheckDevicePointer(scratch, "scratch");
}

bool Aligned16(const void* p, std::int64_t stride_bytes, std::int64_t row_bytes) {
  return (reinterpret_cast<std::uintptr_t>(p) % 16) == 0 && stride_bytes % 16 == 0 &&
         row_bytes % 16 == 0;
}

num::NormParams DeviceParams(const NormalizeOptions& options) {
  num::NormParams p{};
  p.mode = options.mode == NormMode::kMaxNorm ? 0 : 1;
  p.target = options.target;
  p.eps = options.eps;
  p.p = options.p;
  p.kind = num::KindOf(options.p);
  return p;
}

}  // namespace sparsenorm::cuda::detail

namespace sparsenorm::cuda {

int DeviceCount() noexcept {
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess) {
    cudaGetLastError();
    return 0;
  }
  return count;
}

}  // namespace sparsenorm::cuda
