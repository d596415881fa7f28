// What the device reported in a header (cuda/launch.h), as the Finding every
// backend reports (core/backend.h), and the step's problem as a launch: host
// code, no CUDA runtime, so that the tests can run it on headers that the
// host replay of the device checks filled in (tests/cuda/emulate.h,
// emulate_step.h), GPU or not.
#ifndef SPARSENORM_CUDA_RESULTS_H_
#define SPARSENORM_CUDA_RESULTS_H_

#include "core/backend.h"
#include "core/optim_backend.h"
#include "cuda/launch.h"

namespace sparsenorm::cuda::detail {

Finding RowsFinding(const RowsHeader& header);

// The first failed check in the CPU backend's order of reports; kNone when
// every check passed.
Finding MatrixFinding(const MatrixHeader& header);

// A step as the kernels take it: strides in elements (of each array's own
// type; the state tables' is the arithmetic type). Here rather than beside
// the runtime calls so that the host replay of the kernels
// (tests/cuda/emulate_step.h) runs on the very launch the device gets.
StepLaunch StepLaunchOf(const StepProblem& problem);

// An index out of range first (the lowest position), then, under the error
// policy, the first gradient row holding NaN or infinity: the CPU's order.
Finding StepFinding(const StepHeader& header);

}  // namespace sparsenorm::cuda::detail

#endif  // SPARSENORM_CUDA_RESULTS_H_
