#include "sparsenorm/caffe2.h"

#include <cmath>

#include "core/status.h"
#include "core/validate.h"

namespace sparsenorm::caffe2 {

template <typename T>
SparseNormalizeOp<T>::SparseNormalizeOp(bool use_max_norm, float norm)
    : use_max_norm_(use_max_norm), norm_(norm) {
  // Caffe2: CAFFE_ENFORCE_GE(norm_, 0, "norm should be bigger than 0").
  if (!(norm >= 0.0f) || std::isinf(norm)) {
    argument_status_ = detail::InvalidArgument(
        "SparseNormalize argument norm = ", detail::FormatDouble(norm),
        " is invalid: it must be a finite number >= 0.");
  }
}

template <typename T>
Status SparseNormalizeOp<T>::Run(T* param, std::int64_t rows, std::int64_t block_size,
                                 Indices indices, const void* grad, std::int64_t grad_numel,
                                 RowStats* stats) const noexcept {
  if (!argument_status_.ok()) return argument_status_;
  if (grad == nullptr && grad_numel != 0) {
    return detail::InvalidArgument("SparseNormalize input grad is null but grad_numel = ",
                                   grad_numel, ".");
  }
  if (grad != nullptr) {
    std::int64_t expected = 0;
    const bool fits = !__builtin_mul_overflow(indices.size, block_size, &expected);
    if (!fits || grad_numel != expected) {
      return detail::InvalidArgument(
          "SparseNormalize input grad has ", grad_numel,
          " elements; it must have indices.size() * D = ", indices.size, " * ", block_size,
          fits ? detail::StrCat(" = ", expected) : std::string(" (overflows int64)"),
          " elements.");
    }
  }
  return NormalizeRows(MakeTable(param, rows, block_size), indices,
                       Caffe2Options(use_max_norm_, norm_), stats);
}

template class SparseNormalizeOp<float>;
template class SparseNormalizeOp<float16>;

}  // namespace sparsenorm::caffe2
