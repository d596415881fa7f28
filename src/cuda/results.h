// What the device reported in a header (cuda/launch.h), as the Finding every
// backend reports (core/backend.h): host code, no CUDA runtime, so that the
// tests can run it on headers that the host replay of the device checks
// filled in (tests/cuda/emulate.h), GPU or not.
#ifndef SPARSENORM_CUDA_RESULTS_H_
#define SPARSENORM_CUDA_RESULTS_H_

#include "core/backend.h"
#include "cuda/launch.h"

namespace sparsenorm::cuda::detail {

Finding RowsFinding(const RowsHeader& header);

// The first failed check in the CPU backend's order of reports; kNone when
// every check passed.
Finding MatrixFinding(const MatrixHeader& header);

}  // namespace sparsenorm::cuda::detail

#endif  // SPARSENORM_CUDA_RESULTS_H_
