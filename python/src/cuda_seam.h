// The seam between the Python module and the CUDA backend. Compiled only
// with -DSPARSENORM_PYTHON_CUDA=ON, which needs a cuda_seam.cc (listed in
// python/CMakeLists.txt) that forwards these calls to the CUDA backend's
// launchers. Everything on the Python side is in place already: device
// checks, index lists moved to the table's device, and the stream rule (the
// current stream of the library that owns the array, obtained in
// python/sparsenorm/_arrays.py and passed to its __dlpack__).
//
// Contract for the implementation:
//   - run on device `device_id` (make it current for the call, restore after);
//   - enqueue all work on `stream`, a cudaStream_t passed as an integer
//     (0 is the legacy default stream); the data and index pointers are
//     device (or managed) memory of that device;
//   - validate everything before writing anything, exactly as the CPU path;
//   - fill *stats (this may synchronize `stream`; say so in the docstrings);
//   - never throw; the GIL is released while these run.
#ifndef SPARSENORM_PYTHON_CUDA_SEAM_H_
#define SPARSENORM_PYTHON_CUDA_SEAM_H_

#include <cstdint>

#include "sparsenorm/types.h"

namespace sparsenorm {
struct MatrixOptions;
struct MatrixStats;
struct StepBatchEntry;
}  // namespace sparsenorm

namespace sparsenorm::python {

Status NormalizeRowsOnDevice(int device_id, std::int64_t stream, Table table, Indices indices,
                             const NormalizeOptions& options, RowStats* stats) noexcept;

Status NormalizeMatrixOnDevice(int device_id, std::int64_t stream, Table matrix,
                               const MatrixOptions& options, MatrixStats* stats) noexcept;

// One table's optimizer step (entry.dense: a dense gradient), waited for.
Status OptimizerStepOnDevice(int device_id, std::int64_t stream, const StepBatchEntry& entry,
                             RowStats* stats) noexcept;

}  // namespace sparsenorm::python

#endif  // SPARSENORM_PYTHON_CUDA_SEAM_H_
