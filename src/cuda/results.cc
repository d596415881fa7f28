#include "cuda/results.h"

#include "common/element_types.h"
#include "core/optim_backend.h"

namespace sparsenorm::cuda::detail {

Finding RowsFinding(const RowsHeader& h) {
  if (h.bad.found()) return RowIndexFinding(h.bad.position(), h.bad_value, h.rows);
  if (h.nonfinite.found()) return NonFiniteRowFinding(h.nonfinite.position(), h.nonfinite_value);
  return {};
}

StepLaunch StepLaunchOf(const StepProblem& p) {
  StepLaunch job;
  const auto element = static_cast<std::int64_t>(ElementSize(p.dtype));
  const auto arithmetic = static_cast<std::int64_t>(p.dtype == DType::kFloat64 ? 8 : 4);
  job.table = {p.table.data, p.table.stride_bytes / element};
  job.rows = p.rows;
  job.cols = p.cols;
  job.dtype = p.dtype;
  job.grad = p.grad;
  job.grad_stride = p.grad_stride_bytes / static_cast<std::int64_t>(ElementSize(p.grad_dtype));
  job.grad_dtype = p.grad_dtype;
  job.indices = p.indices;
  job.index_type = p.index_type;
  job.num_indices = p.num_indices;
  for (int i = 0; i < 2; ++i) job.state[i] = {p.state[i].data, p.state[i].stride_bytes / arithmetic};
  job.rule = p.rule;
  job.has_constraint = p.has_constraint;
  job.constraint = p.constraint;
  job.stochastic = p.stochastic;
  job.seed = p.seed;
  job.step = p.step;
  job.nonfinite_error = p.nonfinite_error;
  return job;
}

Finding StepFinding(const StepHeader& h) {
  if (h.bad.found()) return RowIndexFinding(h.bad.position(), h.bad_value, h.rows);
  if (h.nonfinite.found()) return NonFiniteGradientFinding(h.nonfinite.position(), h.nonfinite_row);
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
