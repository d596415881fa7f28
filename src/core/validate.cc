#include "core/validate.h"

#include <cmath>
#include <limits>

#include "common/element_types.h"
#include "core/status.h"

namespace sparsenorm::detail {

Status ValidateOptions(const NormalizeOptions& o) {
  if (o.mode != NormMode::kMaxNorm && o.mode != NormMode::kConstantNorm) {
    return InvalidArgument("options.mode = ", static_cast<int>(o.mode),
                           " is not a NormMode (0 = max-norm, 1 = constant-norm).");
  }
  if (!(o.target >= 0.0) || std::isinf(o.target)) {
    return InvalidArgument("options.target = ", FormatDouble(o.target),
                           " is invalid: the target norm must be a finite number >= 0.");
  }
  if (!(o.p > 0.0)) {
    return InvalidArgument("options.p = ", FormatDouble(o.p),
                           " is invalid: the norm order must be > 0 (infinity selects max |x|).");
  }
  if (!(o.eps >= 0.0) || std::isinf(o.eps)) {
    return InvalidArgument("options.eps = ", FormatDouble(o.eps),
                           " is invalid: eps must be a finite number >= 0.");
  }
  if (o.non_finite != NonFinitePolicy::kSkip && o.non_finite != NonFinitePolicy::kError) {
    return InvalidArgument("options.non_finite = ", static_cast<int>(o.non_finite),
                           " is not a NonFinitePolicy (0 = skip, 1 = error).");
  }
  if (o.num_threads < 0) {
    return InvalidArgument("options.num_threads = ", o.num_threads,
                           " is invalid: use 0 for every core or a positive count.");
  }
  if (o.backend != Backend::kAuto && o.backend != Backend::kReference) {
    return InvalidArgument("options.backend = ", static_cast<int>(o.backend),
                           " is not a Backend (0 = auto, 1 = reference).");
  }
  return Status::Ok();
}

NormRule RuleOf(const NormalizeOptions& o) {
  return NormRule{o.mode == NormMode::kMaxNorm, o.target, o.eps, o.p, KindOf(o.p)};
}

Status CheckLayout(const void* data, DType dtype, std::int64_t rows, std::int64_t cols,
                   std::int64_t row_stride, const char* name, CheckedLayout* out) {
  const std::size_t element_size = ElementSize(dtype);
  if (element_size == 0) {
    return Unsupported(name, ".dtype = ", static_cast<int>(dtype), " is not a supported dtype (",
                       DTypeNameList(", "), ").");
  }
  if (rows < 0) return InvalidArgument(name, ".rows = ", rows, " is negative.");
  if (cols < 0) return InvalidArgument(name, ".cols = ", cols, " is negative.");
  if (row_stride < 0) return InvalidArgument(name, ".row_stride = ", row_stride, " is negative.");
  const std::int64_t stride = row_stride == 0 ? cols : row_stride;
  if (stride < cols) {
    return InvalidArgument(name, ".row_stride = ", row_stride, " is smaller than ", name,
                           ".cols = ", cols, ": rows would overlap.");
  }
  std::int64_t extent = 0;
  if (rows > 0 && cols > 0) {
    std::int64_t last_row_start = 0;
    std::int64_t bytes = 0;
    if (__builtin_mul_overflow(rows - 1, stride, &last_row_start) ||
        __builtin_add_overflow(last_row_start, cols, &extent) ||
        __builtin_mul_overflow(extent, static_cast<std::int64_t>(element_size), &bytes)) {
      return InvalidArgument(name, " of ", rows, " rows x ", cols, " columns with row stride ",
                             stride, " and ", element_size,
                             "-byte elements spans more bytes than a 64-bit offset can address.");
    }
    extent = bytes;
  }
  if (data == nullptr && extent > 0) {
    return InvalidArgument(name, ".data is null but the ", name, " has ", rows, " x ", cols,
                           " elements.");
  }
  if (out != nullptr) *out = CheckedLayout{stride, element_size, extent};
  return Status::Ok();
}

Status CheckIndexList(const void* data, IndexType type, std::int64_t size, const char* name) {
  if (IndexSize(type) == 0) {
    return Unsupported(name, " has index type code ", static_cast<int>(type),
                       ", which is neither int32 (0) nor int64 (1).");
  }
  if (size < 0) return InvalidArgument(name, ".size = ", size, " is negative.");
  if (data == nullptr && size > 0) {
    return InvalidArgument(name, ".data is null but ", name, ".size = ", size, ".");
  }
  return Status::Ok();
}

bool Overlaps(const void* a, std::int64_t a_bytes, const void* b, std::int64_t b_bytes) {
  if (a_bytes <= 0 || b_bytes <= 0) return false;
  const auto pa = reinterpret_cast<std::uintptr_t>(a);
  const auto pb = reinterpret_cast<std::uintptr_t>(b);
  return pa < pb + static_cast<std::uintptr_t>(b_bytes) &&
         pb < pa + static_cast<std::uintptr_t>(a_bytes);
}

Status PrepareRows(const ConstTable& in, const Table& out, const Indices& indices,
                   const NormalizeOptions& options, bool out_of_place, RowsProblem* problem,
                   RowsExtents* extents) {
  if (Status s = ValidateOptions(options); !s.ok()) return s;
  const char* out_name = out_of_place ? "output" : "table";
  CheckedLayout out_layout;
  if (Status s = CheckLayout(out.data, out.dtype, out.rows, out.cols, out.row_stride, out_name,
                             &out_layout);
      !s.ok()) {
    return s;
  }
  CheckedLayout in_layout = out_layout;
  bool in_place = true;
  if (out_of_place) {
    if (Status s = CheckLayout(in.data, in.dtype, in.rows, in.cols, in.row_stride, "input",
                               &in_layout);
        !s.ok()) {
      return s;
    }
    if (in.dtype != out.dtype || in.rows != out.rows || in.cols != out.cols) {
      return InvalidArgument("input is ", in.rows, " x ", in.cols, " ", DTypeName(in.dtype),
                             " but output is ", out.rows, " x ", out.cols, " ",
                             DTypeName(out.dtype), ": they must have the same shape and dtype.");
    }
    in_place = in.data == out.data && in_layout.stride == out_layout.stride;
    if (!in_place &&
        Overlaps(in.data, in_layout.extent_bytes, out.data, out_layout.extent_bytes)) {
      return InvalidArgument(
          "input and output overlap in memory without being the same table; pass the same "
          "table for in-place use or separate memory.");
    }
  }
  if (Status s = CheckIndexList(indices.data, indices.type, indices.size, "indices"); !s.ok()) {
    return s;
  }
  const auto element = static_cast<std::int64_t>(out_layout.element_size);
  RowsProblem& p = *problem;
  p.in = static_cast<const unsigned char*>(in_place ? out.data : in.data);
  p.out = static_cast<unsigned char*>(out.data);
  p.in_stride_bytes = in_layout.stride * element;
  p.out_stride_bytes = out_layout.stride * element;
  p.rows = out.rows;
  p.cols = out.cols;
  p.row_bytes = out.cols * element;
  p.dtype = out.dtype;
  p.in_place = in_place;
  p.indices = indices.data;
  p.index_type = indices.type;
  p.num_indices = indices.size;
  p.rule = RuleOf(options);
  p.nonfinite_error = options.non_finite == NonFinitePolicy::kError;
  if (extents != nullptr) {
    extents->in_bytes = in_layout.extent_bytes;
    extents->out_bytes = out_layout.extent_bytes;
    extents->index_bytes = indices.size * static_cast<std::int64_t>(IndexSize(indices.type));
  }
  return Status::Ok();
}

// ---------------------------------------------------------------------------
// Matrices.

const char* VectorName(int axis) { return axis == 0 ? "column" : "row"; }

namespace {

Status ValidateMatrixOptions(const MatrixOptions& o) {
  if (Status s = ValidateOptions(o.norm); !s.ok()) return s;
  if (o.axis != 0 && o.axis != 1) {
    return InvalidArgument("options.axis = ", o.axis,
                           " is invalid: use 0 to normalize columns or 1 to normalize rows.");
  }
  if (!(o.prune_below >= 0.0)) {
    return InvalidArgument("options.prune_below = ", FormatDouble(o.prune_below),
                           " is invalid: the pruning threshold must be >= 0 (0 disables it).");
  }
  if (o.subset.has_value()) {
    return CheckIndexList(o.subset->data, o.subset->type, o.subset->size, "options.subset");
  }
  return Status::Ok();
}

MatrixCommon CommonOf(const MatrixOptions& o, std::int64_t rows, std::int64_t cols) {
  MatrixCommon c;
  c.rule = RuleOf(o.norm);
  c.nonfinite_error = o.norm.non_finite == NonFinitePolicy::kError;
  c.axis = o.axis;
  c.vectors = o.axis == 0 ? cols : rows;
  c.prune_below = o.prune_below;
  c.has_subset = o.subset.has_value();
  if (c.has_subset) c.subset = *o.subset;
  return c;
}

Status CheckArray(const void* p, std::int64_t count, std::size_t element_size, const char* name,
                  const char* what) {
  std::int64_t bytes = 0;
  if (__builtin_mul_overflow(count, static_cast<std::int64_t>(element_size), &bytes)) {
    return InvalidArgument("matrix.", name, " would hold ", count, " ", what, " of ", element_size,
                           " bytes, more bytes than a 64-bit offset can address.");
  }
  if (p == nullptr && count > 0) {
    return InvalidArgument("matrix.", name, " is null but must hold ", count, " ", what, ".");
  }
  return Status::Ok();
}

Status CheckSparseShape(const SparseMatrix& m) {
  if (m.format != SparseFormat::kCSR && m.format != SparseFormat::kCSC &&
      m.format != SparseFormat::kCOO) {
    return Unsupported("matrix.format = ", static_cast<int>(m.format),
                       " is not a SparseFormat (0 = CSR, 1 = CSC, 2 = COO).");
  }
  const std::size_t value_size = ElementSize(m.dtype);
  if (value_size == 0) {
    return Unsupported("matrix.dtype = ", static_cast<int>(m.dtype), " is not a supported dtype (",
                       DTypeNameList(", "), ").");
  }
  const std::size_t index_size = IndexSize(m.index_type);
  if (index_size == 0) {
    return Unsupported("matrix.index_type = ", static_cast<int>(m.index_type),
                       " is neither int32 (0) nor int64 (1).");
  }
  if (m.rows < 0) return InvalidArgument("matrix.rows = ", m.rows, " is negative.");
  if (m.cols < 0) return InvalidArgument("matrix.cols = ", m.cols, " is negative.");
  if (m.nnz < 0) return InvalidArgument("matrix.nnz = ", m.nnz, " is negative.");
  if (Status s = CheckArray(m.values, m.nnz, value_size, "values", "values"); !s.ok()) return s;
  if (m.format == SparseFormat::kCOO) {
    if (Status s = CheckArray(m.row, m.nnz, index_size, "row", "row indices"); !s.ok()) return s;
    return CheckArray(m.col, m.nnz, index_size, "col", "column indices");
  }
  const std::int64_t segments = m.format == SparseFormat::kCSR ? m.rows : m.cols;
  if (segments == std::numeric_limits<std::int64_t>::max()) {
    return InvalidArgument("matrix.", m.format == SparseFormat::kCSR ? "rows" : "cols", " = ",
                           segments, " leaves no room for its index pointers.");
  }
  if (Status s = CheckArray(m.indptr, segments + 1, index_size, "indptr", "index pointers");
      !s.ok()) {
    return s;
  }
  return CheckArray(m.indices, m.nnz, index_size, "indices", "indices");
}

}  // namespace

Status PrepareDenseMatrix(const Table& m, const MatrixOptions& o, DenseMatrixProblem* problem) {
  if (Status s = ValidateMatrixOptions(o); !s.ok()) return s;
  CheckedLayout layout;
  if (Status s = CheckLayout(m.data, m.dtype, m.rows, m.cols, m.row_stride, "matrix", &layout);
      !s.ok()) {
    return s;
  }
  DenseMatrixProblem& p = *problem;
  p.data = static_cast<unsigned char*>(m.data);
  p.stride_bytes = layout.stride * static_cast<std::int64_t>(layout.element_size);
  p.extent_bytes = layout.extent_bytes;
  p.rows = m.rows;
  p.cols = m.cols;
  p.dtype = m.dtype;
  p.common = CommonOf(o, m.rows, m.cols);
  p.common.path = o.axis == 1 ? MatrixPath::kContiguous : MatrixPath::kDenseColumns;
  return Status::Ok();
}

Status PrepareSparseMatrix(const SparseMatrix* m, const MatrixOptions& o,
                           SparseMatrixProblem* problem) {
  if (m == nullptr) return InvalidArgument("matrix is null: pass a SparseMatrix to normalize.");
  if (Status s = ValidateMatrixOptions(o); !s.ok()) return s;
  if (Status s = CheckSparseShape(*m); !s.ok()) return s;
  SparseMatrixProblem& p = *problem;
  p.matrix = *m;
  p.common = CommonOf(o, m->rows, m->cols);
  switch (m->format) {
    case SparseFormat::kCSR:
      p.segments = m->rows;
      p.minor_dim = m->cols;
      p.common.path = o.axis == 1 ? MatrixPath::kContiguous : MatrixPath::kScattered;
      break;
    case SparseFormat::kCSC:
      p.segments = m->cols;
      p.minor_dim = m->rows;
      p.common.path = o.axis == 0 ? MatrixPath::kContiguous : MatrixPath::kScattered;
      break;
    case SparseFormat::kCOO:
      p.common.path = MatrixPath::kCoo;
      break;
  }
  return Status::Ok();
}

}  // namespace sparsenorm::detail
