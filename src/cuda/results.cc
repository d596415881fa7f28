#include "cuda/results.h"

namespace sparsenorm::cuda::detail {

Finding RowsFinding(const RowsHeader& h) {
  if (h.bad.found()) return RowIndexFinding(h.bad.position(), h.bad_value, h.rows);
  if (h.nonfinite.found()) return NonFiniteRowFinding(h.nonfinite.position(), h.nonfinite_value);
  return {};
}

Finding MatrixFinding(const MatrixHeader& h) {
  const auto format = static_cast<Format>(h.format);
  const bool coo = format == Format::kCOO;
  Finding f;
  f.axis = static_cast<int>(h.axis);
  f.format = format == Format::kCSC ? SparseFormat::kCSC
             : coo                  ? SparseFormat::kCOO
                                    : SparseFormat::kCSR;
  for (int c = 0; c < kCheckCount; ++c) {
    if (!CheckFailed(h, c, coo)) continue;
    f.position = h.check[c].position();
    f.value = h.value[c];
    f.extra = h.extra[c];
    switch (c) {
      case kCheckIndptrStart:
        f.kind = FindingKind::kIndptrStart;
        return f;
      case kCheckIndptrDecrease:
        f.kind = FindingKind::kIndptrDecrease;
        return f;
      case kCheckIndptrEnd:
        f.kind = FindingKind::kIndptrEnd;
        f.extra = h.nnz;
        return f;
      case kCheckSubsetIndex:
        f.kind = FindingKind::kSubsetIndex;
        f.limit = h.axis == 0 ? h.cols : h.rows;
        return f;
      case kCheckMinorIndex:
        if (coo) {
          // A column out of range at a lower position is reported first, as
          // the CPU backend does (the row when both are at one entry).
          if (CheckFailed(h, kCheckCooCol, coo) && h.check[kCheckCooCol].position() < f.position) continue;
          f.kind = FindingKind::kCooRow;
          f.limit = h.rows;
          return f;
        }
        f.kind = FindingKind::kMinorIndex;
        f.limit = format == Format::kCSR ? h.cols : h.rows;
        return f;
      case kCheckCooCol:
        f.kind = FindingKind::kCooCol;
        f.limit = h.cols;
        return f;
      case kCheckUnsorted:
        f.kind = coo ? FindingKind::kUnsortedCoo : FindingKind::kUnsortedIndices;
        f.aux[0] = h.coo_previous[0];
        f.aux[1] = h.coo_previous[1];
        return f;
      case kCheckNonFinite:
        f.kind = FindingKind::kNonFiniteVector;
        return f;
      default:
        break;
    }
  }
  return Finding{};
}

}  // namespace sparsenorm::cuda::detail
