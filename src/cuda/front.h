// Host-side helpers shared by the CUDA front ends (rows_cuda.cc,
// matrix_cuda.cc): option and pointer checks, CUDA errors as Status.
#ifndef SPARSENORM_CUDA_FRONT_H_
#define SPARSENORM_CUDA_FRONT_H_

#include <cstddef>
#include <cstdint>

#include "cuda/device_numerics.h"
#include "sparsenorm/types.h"

namespace sparsenorm::cuda::detail {

// A failed CUDA runtime call as kDeviceError (kOutOfMemory for allocation
// failures); `what` says what was being done.
Status DeviceError(int cuda_error, const char* what);

// ValidateOptions plus the device's own restriction (no reference backend).
Status ValidateDeviceOptions(const NormalizeOptions& options);

// `p` (not null) must be memory the current device can address. `name` is
// how the message refers to it, e.g. "table.data".
Status CheckDevicePointer(const void* p, const char* name);

// Scratch memory: not null, 16-byte aligned, at least `needed` bytes.
Status CheckScratch(const void* scratch, std::size_t scratch_bytes, std::size_t needed);

// Whether [p, p + bytes) is a run of 16-byte aligned pieces: the rows of a
// table with this stride can then be moved 16 bytes at a time.
bool Aligned16(const void* p, std::int64_t stride_bytes, std::int64_t row_bytes);

num::NormParams DeviceParams(const NormalizeOptions& options);

}  // namespace sparsenorm::cuda::detail

#endif  // SPARSENORM_CUDA_FRONT_H_
