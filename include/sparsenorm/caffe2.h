// A facade shaped like Caffe2's SparseNormalize operator, for code ported
// from Caffe2. It forwards to NormalizeRows with Caffe2Options().
//
// Caffe2 schema, reproduced:
//   inputs:    param (N x D, updated in place), indices (int32 or int64),
//              grad (optional; not used, its size must be indices.size() * D)
//   arguments: use_max_norm (bool, default true), norm (float, default 1.0,
//              must be >= 0)
//   per indexed row x:  n = ||x||_2;  if use_max_norm and n <= norm: skip;
//                       x *= norm / (n + 1e-12)
//
// Differences from Caffe2, all deliberate: indices are bounds-checked before
// anything is written, a repeated index is applied once, rows holding NaN or
// infinity are left alone, and the work runs on every core.
#ifndef SPARSENORM_CAFFE2_H_
#define SPARSENORM_CAFFE2_H_

#include <cstdint>

#include "sparsenorm/export.h"
#include "sparsenorm/rows.h"
#include "sparsenorm/types.h"

namespace sparsenorm::caffe2 {

template <typename T>
class SPARSENORM_API SparseNormalizeOp {
 public:
  // Mirrors the operator's constructor, which enforces norm >= 0. A bad
  // argument is remembered and returned by every Run().
  explicit SparseNormalizeOp(bool use_max_norm = true, float norm = 1.0f);

  // param: `rows` x `block_size` elements, densely packed. grad may be null
  // (the optional third input is absent); otherwise it must hold exactly
  // grad_numel == indices.size * block_size elements.
  Status Run(T* param, std::int64_t rows, std::int64_t block_size, Indices indices,
             const void* grad = nullptr, std::int64_t grad_numel = 0,
             RowStats* stats = nullptr) const noexcept;

  bool use_max_norm() const noexcept { return use_max_norm_; }
  float norm() const noexcept { return norm_; }
  const Status& argument_status() const noexcept { return argument_status_; }

 private:
  bool use_max_norm_;
  float norm_;
  Status argument_status_;
};

extern template class SparseNormalizeOp<float>;
extern template class SparseNormalizeOp<float16>;

// Caffe2 registered the float16 variant under this name.
using Float16SparseNormalize = SparseNormalizeOp<float16>;

}  // namespace sparsenorm::caffe2

#endif  // SPARSENORM_CAFFE2_H_
