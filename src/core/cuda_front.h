// What the CUDA front ends (rows_cuda.cc, matrix_cuda.cc) check beyond the
// checks every front end makes (core/validate.h): the device's own
// restrictions, where the memory lives, and the caller's scratch memory.
// Built with SPARSENORM_CUDA only.
#ifndef SPARSENORM_CORE_CUDA_FRONT_H_
#define SPARSENORM_CORE_CUDA_FRONT_H_

#include <cstddef>
#include <cstdint>

#include "sparsenorm/types.h"

namespace sparsenorm::detail {

// Backend::kReference is the CPU's oracle: not available on device memory.
Status CheckDeviceOptions(const NormalizeOptions& options);

// `p` (not null) must be memory the current device can address. `name` is
// how the message refers to it, e.g. "table.data".
Status CheckDevicePointer(const void* p, const char* name);

// Scratch memory: not null, 16-byte aligned, at least `needed` bytes, on the
// device.
Status CheckScratch(const void* scratch, std::size_t scratch_bytes, std::size_t needed);

}  // namespace sparsenorm::detail

#endif  // SPARSENORM_CORE_CUDA_FRONT_H_
