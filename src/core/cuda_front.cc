#include "core/cuda_front.h"

#include <string>

#include "core/backend.h"
#include "core/messages.h"
#include "core/status.h"

namespace sparsenorm::detail {

Status CheckDeviceOptions(const NormalizeOptions& options) {
  if (options.backend == Backend::kReference) {
    return Status(StatusCode::kUnsupported,
                  "options.backend = kReference selects the CPU reference implementation, which "
                  "cannot run on device memory; use Backend::kAuto, or copy the data to the host "
                  "and call the CPU function.");
  }
  return Status::Ok();
}

Status CheckDevicePointer(const void* p, const char* name) {
  cuda::dev::PointerKind kind;
  if (Finding f = cuda::dev::InspectPointer(p, &kind)) {
    const std::string what = StrCat("inspecting ", name);
    f.what = what.c_str();
    return StatusOf(f);
  }
  if (!kind.device_addressable) {
    return InvalidArgument(name, " = ", p,
                           " is host memory that the device cannot address; pass memory from "
                           "cudaMalloc, cudaMallocAsync, cudaMallocManaged or mapped "
                           "cudaHostAlloc.");
  }
  if (kind.device != kind.current_device) {
    return InvalidArgument(name, " is memory of device ", kind.device, " but the current device is ",
                           kind.current_device, "; call cudaSetDevice first.");
  }
  return Status::Ok();
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

}  // namespace sparsenorm::detail
