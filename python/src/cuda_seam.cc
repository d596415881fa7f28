// The Python module's CUDA path: the two calls of cuda_seam.h forwarded to
// the CUDA backend (include/sparsenorm/cuda.h) on the array's own device and
// the stream the Python side obtained from the array's owner.
#include "cuda_seam.h"

#include <cuda_runtime_api.h>

#include <string>

#include "sparsenorm/cuda.h"
#include "sparsenorm/matrix.h"
#include "sparsenorm/optim.h"

namespace sparsenorm::python {
namespace {

// Makes `device_id` current for the lifetime of the guard and restores the
// caller's device afterwards, so that a call on an array on device 1 does not
// move the thread's PyTorch/CuPy work off device 0.
class DeviceGuard {
 public:
  explicit DeviceGuard(int device_id) {
    cudaError_t e = cudaGetDevice(&previous_);
    if (e == cudaSuccess && previous_ != device_id) {
      e = cudaSetDevice(device_id);
      restore_ = e == cudaSuccess;
    }
    if (e != cudaSuccess) {
      status_ = Status(StatusCode::kDeviceError,
                       "could not make CUDA device " + std::to_string(device_id) +
                           " current: " + cudaGetErrorString(e) + ".");
    }
  }
  ~DeviceGuard() {
    if (restore_) static_cast<void>(cudaSetDevice(previous_));
  }
  DeviceGuard(const DeviceGuard&) = delete;
  DeviceGuard& operator=(const DeviceGuard&) = delete;

  const Status& status() const { return status_; }

 private:
  int previous_ = 0;
  bool restore_ = false;
  Status status_;
};

cuda::StreamHandle AsStream(std::int64_t stream) {
  return reinterpret_cast<cuda::StreamHandle>(static_cast<std::intptr_t>(stream));
}

}  // namespace

Status NormalizeRowsOnDevice(int device_id, std::int64_t stream, Table table, Indices indices,
                             const NormalizeOptions& options, RowStats* stats) noexcept {
  DeviceGuard guard(device_id);
  if (!guard.status().ok()) return guard.status();
  return cuda::NormalizeRows(table, indices, options, stats, AsStream(stream));
}

Status NormalizeMatrixOnDevice(int device_id, std::int64_t stream, Table matrix,
                               const MatrixOptions& options, MatrixStats* stats) noexcept {
  DeviceGuard guard(device_id);
  if (!guard.status().ok()) return guard.status();
  return cuda::NormalizeMatrix(matrix, options, stats, AsStream(stream));
}

Status OptimizerStepOnDevice(int device_id, std::int64_t stream, const StepBatchEntry& e,
                             RowStats* stats) noexcept {
  DeviceGuard guard(device_id);
  if (!guard.status().ok()) return guard.status();
  return e.dense ? cuda::OptimizerStepDense(e.table, e.state, e.values, e.options, stats, AsStream(stream))
                 : cuda::OptimizerStep(e.table, e.state, e.indices, e.values, e.options, stats,
                                       AsStream(stream));
}

}  // namespace sparsenorm::python
