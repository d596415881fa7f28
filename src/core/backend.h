// The backends as the front end sees them: one function per operator and
// backend, over the problems and plans of core/problem.h. Each backend
// implements its part in its own folder and includes nothing of another
// backend:
//
//   cpu::        src/cpu/        multi-threaded SIMD kernels (Highway, OpenMP)
//   reference::  src/reference/  the scalar oracle: serial, long double sums,
//                                no SIMD; what every fast path is tested against
//   cuda::dev::  src/cuda/       the CUDA kernels (built with SPARSENORM_CUDA)
//
// Contract for every function: the problem is validated as core/problem.h
// says; the function checks what only it reads (index values, sparse
// structure, NaN/infinity under the error policy) before it writes any
// caller data, and on a finding writes none. The statistics are written
// only when the finding is kNone.
#ifndef SPARSENORM_CORE_BACKEND_H_
#define SPARSENORM_CORE_BACKEND_H_

#include <cstddef>
#include <cstdint>

#include "core/problem.h"
#include "sparsenorm/matrix.h"
#include "sparsenorm/types.h"

namespace sparsenorm {

namespace cpu {

// The thread count a call with num_threads == 0 may use: SPARSENORM_NUM_THREADS
// or OMP_NUM_THREADS when set, else every processor this process may run on.
int AvailableThreads();

// The SIMD instruction set the kernels dispatch to on this CPU, e.g. "AVX2".
const char* SimdTarget();

Finding NormalizeRows(const RowsProblem& problem, const RowsPlan& plan, RowStats* stats);
Finding NormalizeDenseMatrix(const DenseMatrixProblem& problem, const MatrixPlan& plan,
                             MatrixStats* stats);
// With pruning, the arrays are compacted and matrix.nnz of the caller's
// SparseMatrix is the front end's to update from stats->nnz_after.
Finding NormalizeSparseMatrix(const SparseMatrixProblem& problem, const MatrixPlan& plan,
                              MatrixStats* stats);

}  // namespace cpu

namespace reference {

Finding NormalizeRows(const RowsProblem& problem, RowStats* stats);
Finding NormalizeDenseMatrix(const DenseMatrixProblem& problem, MatrixStats* stats);
Finding NormalizeSparseMatrix(const SparseMatrixProblem& problem, MatrixStats* stats);

}  // namespace reference

namespace cuda::dev {

// Where `p` points: whether the current device can address it (device,
// managed, or mapped host memory) and, for device memory, which device owns
// it. A finding (kDeviceError) when the runtime cannot say.
struct PointerKind {
  bool device_addressable = false;
  int device = -1;          // the device that owns it (the current one for managed or mapped memory)
  int current_device = -1;  // the caller's current device
};
Finding InspectPointer(const void* p, PointerKind* kind);

std::size_t RowsScratchBytes(const RowsProblem& problem);
Finding EnqueueRows(const RowsProblem& problem, void* scratch, void* stream);
// Waits for the stream; the outcome the device recorded in `scratch`.
// kNone with *valid = false when scratch holds no row-operator outcome.
Finding RowsOutcome(const void* scratch, void* stream, bool* valid, RowStats* stats);

std::size_t DenseMatrixScratchBytes(const DenseMatrixProblem& problem);
std::size_t SparseMatrixScratchBytes(const SparseMatrixProblem& problem);
Finding EnqueueDenseMatrix(const DenseMatrixProblem& problem, void* scratch, void* stream);
Finding EnqueueSparseMatrix(const SparseMatrixProblem& problem, void* scratch, void* stream);
// As RowsOutcome; *nnz_after is the entry count after pruning (sparse).
Finding MatrixOutcome(const void* scratch, void* stream, bool* valid, MatrixStats* stats,
                      bool* sparse, std::int64_t* nnz_after);

// Stream-ordered scratch memory from the device's default pool; `what` is
// the operator, for the message.
Finding AllocateScratch(std::size_t bytes, void* stream, const char* what, void** scratch);
void FreeScratch(void* scratch, void* stream);

int DeviceCount();

}  // namespace cuda::dev

}  // namespace sparsenorm

#endif  // SPARSENORM_CORE_BACKEND_H_
