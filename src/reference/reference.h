// The scalar oracle: every operator written for clarity, serial, in float64
// or better (long double sums), with the rounding rules of the public
// contract. Every fast path is tested against it; Backend::kReference and
// SPARSENORM_BACKEND=reference route public calls here.
//
// Arguments are assumed already validated by the front end.
#ifndef SPARSENORM_REFERENCE_REFERENCE_H_
#define SPARSENORM_REFERENCE_REFERENCE_H_

#include <cstdint>
#include <vector>

#include "sparsenorm/matrix.h"
#include "sparsenorm/types.h"

namespace sparsenorm::reference {

// Element `offset` of an array of `dtype`, widened exactly to double.
double Load(const void* data, DType dtype, std::int64_t offset);

// Stores `value` rounded once to `dtype` (nearest, ties to even).
void StoreRounded(void* data, DType dtype, std::int64_t offset, double value);

// ||x||_p computed with long double sums after dividing by max |x|.
// NaN when x holds NaN or infinity.
double Norm(const std::vector<double>& x, double p);

// Whether a finite vector with this norm is rescaled under `options`.
bool IsScaled(double norm, const NormalizeOptions& options);

// How a rescaled vector of `dtype` is multiplied: x -> 2^shift * x * factor
// with factor = target / (norm + eps), rounded to float32 for narrow dtypes
// when it is a normal float32 (rows.h). shift is nonzero only when that
// quotient overflows float64; then the power of two is taken out of it.
struct AppliedScale {
  double factor;
  int shift;
};
AppliedScale EffectiveScale(double norm, DType dtype, const NormalizeOptions& options);

// In place, each distinct indexed row once, in ascending row order.
RowStats NormalizeRows(const Table& table, const Indices& indices,
                       const NormalizeOptions& options);

// The first position of `indices` whose row holds NaN or infinity, or -1.
std::int64_t FirstNonFiniteRow(const ConstTable& table, const Indices& indices);

// Copies every row of `in` into `out` (same shape and dtype).
void CopyTable(const ConstTable& in, const Table& out);

// Matrix normalization (matrix.h), in place. Vectors are gathered one at a
// time; repeated sparse coordinates are summed in long double, in storage
// order, before the norm. With NonFinitePolicy::kError and a non-finite
// vector among those considered, nothing is written and first_nonfinite is
// the lowest such vector.
struct MatrixResult {
  MatrixStats stats;
  std::int64_t first_nonfinite = -1;
};
MatrixResult NormalizeDenseMatrix(const Table& matrix, const MatrixOptions& options);
MatrixResult NormalizeSparseMatrix(SparseMatrix* matrix, const MatrixOptions& options);

}  // namespace sparsenorm::reference

#endif  // SPARSENORM_REFERENCE_REFERENCE_H_
