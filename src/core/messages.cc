#include "core/messages.h"

#include "core/status.h"
#include "core/validate.h"

namespace sparsenorm::detail {
namespace {

const char* FormatName(SparseFormat f) {
  switch (f) {
    case SparseFormat::kCSR:
      return "CSR";
    case SparseFormat::kCSC:
      return "CSC";
    case SparseFormat::kCOO:
      return "COO";
  }
  return "unknown";
}

// CSR: segments are rows, minor indices columns; CSC the other way round.
const char* SegmentName(SparseFormat f) { return f == SparseFormat::kCSC ? "column" : "row"; }
const char* MinorName(SparseFormat f) { return f == SparseFormat::kCSC ? "row" : "column"; }

Status NonFinite(const std::string& what, const char* option) {
  return Status(StatusCode::kNonFinite,
                StrCat(what, " holds NaN or infinity and ", option,
                       " is kError; nothing was modified."));
}

}  // namespace

Status IndexOutOfRange(const char* list, std::int64_t position, std::int64_t value,
                       std::int64_t limit, const char* what) {
  if (limit == 0) {
    return OutOfRange(list, "[", position, "] = ", value, " is out of range: the ", what,
                      " count is 0, so no index is valid.");
  }
  return OutOfRange(list, "[", position, "] = ", value, " is out of range for ", limit, " ",
                    what, "s (valid indices are 0 to ", limit - 1, ").");
}

Status StatusOf(const Finding& f) {
  switch (f.kind) {
    case FindingKind::kNone:
      return Status::Ok();
    case FindingKind::kOutOfMemory:
      return OutOfMemory(f.what);
    case FindingKind::kDeviceError:
      return Status(f.device_out_of_memory ? StatusCode::kOutOfMemory : StatusCode::kDeviceError,
                    StrCat("CUDA error while ", f.what, ": ", f.device_name, " (", f.device_text,
                           ")."));
    case FindingKind::kRowIndex:
      return IndexOutOfRange("indices", f.position, f.value, f.limit, "table row");
    case FindingKind::kNonFiniteRow:
      return NonFinite(StrCat("row ", f.value, " (indices[", f.position, "])"),
                       "options.non_finite");
    case FindingKind::kNonFiniteGradient:
      return NonFinite(StrCat("gradient row ", f.position, " (for table row ", f.value, ")"),
                       "options.non_finite");
    case FindingKind::kSubsetIndex:
      return IndexOutOfRange("options.subset", f.position, f.value, f.limit, VectorName(f.axis));
    case FindingKind::kNonFiniteVector:
      return NonFinite(StrCat(VectorName(f.axis), " ", f.value), "options.non_finite");
    case FindingKind::kIndptrStart:
      return InvalidArgument("matrix.indptr[0] = ", f.value,
                             " but index pointers must start at 0.");
    case FindingKind::kIndptrDecrease:
      return InvalidArgument("matrix.indptr[", f.position, "] = ", f.value,
                             " is less than matrix.indptr[", f.position - 1, "] = ", f.extra,
                             ": index pointers must not decrease (", SegmentName(f.format), " ",
                             f.position - 1, " would have a negative length).");
    case FindingKind::kIndptrEnd:
      return InvalidArgument("matrix.indptr[", f.position, "] = ", f.value, " but matrix.nnz = ",
                             f.extra, ": the last index pointer of a ", FormatName(f.format),
                             " matrix with ", f.position, " ", SegmentName(f.format),
                             "s must equal the number of stored entries.");
    case FindingKind::kMinorIndex: {
      const std::string where = StrCat("matrix.indices[", f.position, "] = ", f.value,
                                       " (an entry of ", SegmentName(f.format), " ", f.extra, ")");
      if (f.limit == 0) {
        return OutOfRange(where, " is out of range: the matrix has 0 ", MinorName(f.format), "s.");
      }
      return OutOfRange(where, " is out of range for ", f.limit, " ", MinorName(f.format),
                        "s (valid indices are 0 to ", f.limit - 1, ").");
    }
    case FindingKind::kCooRow:
      return IndexOutOfRange("matrix.row", f.position, f.value, f.limit, "row");
    case FindingKind::kCooCol:
      return IndexOutOfRange("matrix.col", f.position, f.value, f.limit, "column");
    case FindingKind::kUnsortedIndices:
      return Unsupported("matrix.indices[", f.position, "] = ", f.value,
                         " does not exceed matrix.indices[", f.position - 1, "] = ", f.extra,
                         " within one ", SegmentName(f.format),
                         ": the CUDA backend needs the indices of each ", FormatName(f.format), " ",
                         SegmentName(f.format),
                         " strictly increasing (sorted, no duplicates); call sum_duplicates() "
                         "(SciPy, CuPy) first. Nothing was modified.");
    case FindingKind::kUnsortedCoo:
      return Unsupported("entry ", f.position, " (row ", f.value, ", col ", f.extra,
                         ") does not come after entry ", f.position - 1, " (row ", f.aux[0],
                         ", col ", f.aux[1],
                         ") in row-major nor in column-major order: the CUDA backend needs COO "
                         "entries strictly increasing by (row, col) or by (col, row), without "
                         "duplicates; call sum_duplicates() (SciPy, CuPy) first. Nothing was "
                         "modified.");
  }
  return Status(StatusCode::kInvalidArgument, "unknown finding.");
}

}  // namespace sparsenorm::detail
