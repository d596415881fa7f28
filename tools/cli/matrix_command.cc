// sparsenorm matrix: whole-matrix normalization (sparsenorm::NormalizeMatrix)
// of a dense .npy (or .safetensors) matrix, a SciPy .npz sparse matrix or a
// Matrix Market coordinate file.
#include <fmt/format.h>

#include <cmath>
#include <nlohmann/json.hpp>
#include <optional>

#include "cli/commands.h"
#include "cli/output.h"
#include "formats/error.h"
#include "formats/file.h"
#include "formats/mtx.h"
#include "formats/npz.h"
#include "sparsenorm/matrix.h"

namespace sparsenorm::cli {
namespace {

using formats::Quote;

struct MatrixArgs {
  std::string file;
  std::string tensor;
  int axis = -1;
  std::string norm = "l2";
  std::optional<double> max_norm;
  std::optional<double> constant_norm;
  double eps = 0.0;
  double prune = 0.0;
  bool fail_on_nonfinite = false;
  std::string output;
  bool in_place = false;
  bool npy_bfloat16 = false;
};

MatrixOptions MakeOptions(const Global& g, const MatrixArgs& a) {
  MatrixOptions o;
  if (a.axis != 0 && a.axis != 1) throw Error("--axis must be 0 (columns) or 1 (rows).", kExitUsage);
  o.axis = a.axis;
  if (a.norm == "l1") {
    o.norm.p = 1;
  } else if (a.norm == "l2") {
    o.norm.p = 2;
  } else if (a.norm == "max") {
    o.norm.p = kInfinity;
  } else {
    throw Error("--norm must be l1, l2 or max, not " + Quote(a.norm) + ".", kExitUsage);
  }
  if (a.max_norm) {
    o.norm.mode = NormMode::kMaxNorm;
    o.norm.target = *a.max_norm;
  } else {
    o.norm.mode = NormMode::kConstantNorm;
    o.norm.target = a.constant_norm.value_or(1.0);
  }
  o.norm.eps = a.eps;
  o.norm.non_finite = a.fail_on_nonfinite ? NonFinitePolicy::kError : NonFinitePolicy::kSkip;
  o.norm.num_threads = g.threads;
  o.prune_below = a.prune;
  // The library's limits, checked here so that a bad value is refused in
  // the words of the flag that gave it, before a file is read (and --prune
  // also at infinity, which would remove every finite value); the library's
  // own check below catches the rest.
  if (!std::isfinite(o.norm.target) || o.norm.target < 0) {
    throw Error("the target norm must be finite and >= 0, not " + fmt::format("{}", o.norm.target) + ".",
                kExitUsage);
  }
  if (!std::isfinite(o.norm.eps) || o.norm.eps < 0) {
    throw Error("--eps must be finite and >= 0, not " + fmt::format("{}", o.norm.eps) + ".", kExitUsage);
  }
  if (!(o.prune_below >= 0) || !std::isfinite(o.prune_below)) {
    throw Error("--prune must be finite and >= 0, not " + fmt::format("{}", o.prune_below) + ".",
                kExitUsage);
  }
  if (Status s = NormalizeMatrix(Table{}, o); !s.ok()) throw Error(s.message(), kExitUsage);
  return o;
}

IndexType IndexTypeOf(const formats::NpyBuffer& a) {
  return a.header.itemsize == 4 ? IndexType::kInt32 : IndexType::kInt64;
}

void RequireAligned(const formats::NpyBuffer& a, const char* name) {
  if (reinterpret_cast<std::uintptr_t>(a.data()) % a.header.itemsize != 0) {
    throw Error(std::string("the data of ") + name + " start at byte " +
                std::to_string(a.header.data_offset) + " of its member, not a multiple of its " +
                std::to_string(a.header.itemsize) + "-byte elements (NumPy always aligns them).");
  }
}

// Two index arrays of one matrix as the library wants them: one index type.
// Arrays of different widths are widened to int64 for the call and narrowed
// back afterwards (values only shrink, so they fit).
class IndexPair {
 public:
  IndexPair(formats::NpyBuffer* a, formats::NpyBuffer* b) : a_(a), b_(b) {
    if (a->header.itemsize == b->header.itemsize) {
      type = IndexTypeOf(*a);
      pa = a->data();
      pb = b->data();
      return;
    }
    type = IndexType::kInt64;
    wa_.resize(static_cast<std::size_t>(a->length()));
    wb_.resize(static_cast<std::size_t>(b->length()));
    for (std::size_t i = 0; i < wa_.size(); ++i) wa_[i] = formats::IntegerAt(*a, static_cast<std::int64_t>(i));
    for (std::size_t i = 0; i < wb_.size(); ++i) wb_[i] = formats::IntegerAt(*b, static_cast<std::int64_t>(i));
    pa = wa_.data();
    pb = wb_.data();
  }
  void NarrowBack() {
    if (wa_.empty() && wb_.empty()) return;
    Store(a_, wa_);
    Store(b_, wb_);
  }
  IndexType type;
  void* pa;
  void* pb;

 private:
  static void Store(formats::NpyBuffer* dst, const std::vector<std::int64_t>& src) {
    for (std::size_t i = 0; i < src.size(); ++i) {
      if (dst->header.itemsize == 4) {
        const auto v = static_cast<std::int32_t>(src[i]);
        std::memcpy(dst->data() + 4 * i, &v, 4);
      } else {
        std::memcpy(dst->data() + 8 * i, &src[i], 8);
      }
    }
  }
  formats::NpyBuffer* a_;
  formats::NpyBuffer* b_;
  std::vector<std::int64_t> wa_, wb_;
};

struct Result {
  MatrixStats stats;
  std::string shape;
  std::string written;
};

Result RunDense(const Global& g, const MatrixArgs& a, const MatrixOptions& options, FileKind kind,
                formats::MappedFile& input, const OutputPlan& plan) {
  const std::string qfile = Quote(a.file, 4096);
  TableRef t;
  try {
    t = LocateTable(kind, input.bytes(), a.tensor, a.npy_bfloat16);
  } catch (const formats::FormatError& e) {
    throw Error(qfile + ": " + e.what());
  }
  MatrixOptions o = options;
  std::int64_t rows = t.rows, cols = t.cols;
  if (t.fortran_order) {
    // A column-major (rows, cols) array is the row-major (cols, rows)
    // transpose: normalize the other axis of that.
    std::swap(rows, cols);
    o.axis = 1 - o.axis;
  }
  Result r;
  r.shape = t.description + (t.fortran_order ? " (Fortran order)" : "");
  if (plan.in_place) {
    if (t.offset % DTypeSize(t.dtype) != 0) {
      throw Error(qfile + ": the matrix starts at byte " + std::to_string(t.offset) +
                  ", not a multiple of its element size, so it cannot be modified in place; "
                  "run without --in-place.");
    }
    Table m{input.mutable_bytes().data() + t.offset, t.dtype, rows, cols, 0};
    Status s;
    Progress::Run(g, "normalizing", [&] { s = NormalizeMatrix(m, o, &r.stats); });
    if (!s.ok()) throw Error(qfile + ": " + s.message());
    input.Sync();
    r.written = "modified in place";
    return r;
  }
  AlignedBuffer copy(t.bytes);
  CopyWithProgress(g, "reading", copy.data, input.bytes().data() + t.offset, t.bytes);
  Table m{copy.data, t.dtype, rows, cols, 0};
  Status s;
  Progress::Run(g, "normalizing", [&] { s = NormalizeMatrix(m, o, &r.stats); });
  if (!s.ok()) throw Error(qfile + ": " + s.message());
  const auto bytes = input.bytes();
  WriteAtomically(g, plan, bytes.size(), [&](formats::AtomicWriter& w) {
    w.Write(bytes.data(), t.offset);
    w.Write(copy.data, t.bytes);
    w.Write(bytes.data() + t.offset + t.bytes, bytes.size() - t.offset - t.bytes);
  });
  r.written = plan.replaces_input ? "replaced atomically" : "written atomically";
  return r;
}

Result RunNpz(const Global& g, const MatrixArgs& a, const MatrixOptions& o,
              formats::MappedFile& input, const OutputPlan& plan) {
  const std::string qfile = Quote(a.file, 4096);
  if (!a.tensor.empty()) throw Error("--tensor applies to .safetensors files only.", kExitUsage);
  formats::SparseNpz m;
  try {
    m = formats::ReadSparseNpz(input.bytes(), {.void2_is_bfloat16 = a.npy_bfloat16});
  } catch (const formats::FormatError& e) {
    throw Error(qfile + ": " + e.what());
  }
  RequireAligned(m.data, "data.npy");
  const bool coo = m.format == SparseFormat::kCOO;
  formats::NpyBuffer* first = coo ? &m.row : &m.indptr;
  formats::NpyBuffer* second = coo ? &m.col : &m.indices;
  RequireAligned(*first, coo ? "row.npy" : "indptr.npy");
  RequireAligned(*second, coo ? "col.npy" : "indices.npy");
  IndexPair idx(first, second);

  SparseMatrix sm;
  sm.format = m.format;
  sm.rows = m.rows;
  sm.cols = m.cols;
  sm.nnz = m.nnz;
  sm.values = m.data.data();
  sm.dtype = *m.data.header.float_type;
  sm.index_type = idx.type;
  if (coo) {
    sm.row = idx.pa;
    sm.col = idx.pb;
  } else {
    sm.indptr = idx.pa;
    sm.indices = idx.pb;
  }
  Result r;
  r.shape = fmt::format("{} {} x {}, {} stored entries, {} values", m.format_name, m.rows, m.cols,
                        m.nnz, DTypeName(sm.dtype));
  Status s;
  Progress::Run(g, "normalizing", [&] { s = NormalizeMatrix(&sm, o, &r.stats); });
  if (!s.ok()) throw Error(qfile + ": " + s.message());
  idx.NarrowBack();
  std::uint64_t total = 0;
  for (const auto* b : {&m.data, &m.indices, &m.indptr, &m.row, &m.col}) total += b->size;
  WriteAtomically(g, plan, total, [&](formats::AtomicWriter& w) {
    formats::WriteSparseNpz(m, sm.nnz, [&](std::span<const std::uint8_t> piece) { w.Write(piece); });
  });
  r.written = plan.replaces_input ? "replaced atomically" : "written atomically";
  return r;
}

Result RunMtx(const Global& g, const MatrixArgs& a, const MatrixOptions& o,
              formats::MappedFile& input, const OutputPlan& plan) {
  const std::string qfile = Quote(a.file, 4096);
  if (!a.tensor.empty()) throw Error("--tensor applies to .safetensors files only.", kExitUsage);
  formats::MatrixMarket m;
  {
    Progress progress(g, "parsing", input.bytes().size());
    try {
      m = formats::ParseMatrixMarket(input.bytes(), [&](std::uint64_t done) { progress.Update(done); });
    } catch (const formats::FormatError& e) {
      throw Error(qfile + ": " + e.what());
    }
  }
  SparseMatrix sm;
  sm.format = SparseFormat::kCOO;
  sm.rows = m.rows;
  sm.cols = m.cols;
  sm.nnz = static_cast<std::int64_t>(m.values.size());
  sm.values = m.values.data();
  sm.dtype = DType::kFloat64;
  sm.index_type = IndexType::kInt64;
  sm.row = m.row.data();
  sm.col = m.col.data();
  Result r;
  r.shape = fmt::format("coordinate {} x {}, {} entries in the file, {} stored", m.rows, m.cols,
                        m.entries_in_file, sm.nnz);
  Status s;
  Progress::Run(g, "normalizing", [&] { s = NormalizeMatrix(&sm, o, &r.stats); });
  if (!s.ok()) throw Error(qfile + ": " + s.message());
  WriteAtomically(g, plan, 0, [&](formats::AtomicWriter& w) {
    formats::WriteMatrixMarket(m.rows, m.cols, sm.nnz, m.row.data(), m.col.data(), m.values.data(),
                               m.comments, [&](std::string_view piece) { w.Write(piece.data(), piece.size()); });
  });
  r.written = plan.replaces_input ? "replaced atomically" : "written atomically";
  return r;
}

void Run(const Global& g, const MatrixArgs& a) {
  const auto start = std::chrono::steady_clock::now();
  const MatrixOptions o = MakeOptions(g, a);
  const OutputPlan plan = PlanOutput(a.file, a.output, a.in_place);
  formats::MappedFile input = a.in_place ? formats::MappedFile::OpenReadWrite(a.file)
                                         : formats::MappedFile::OpenRead(a.file);
  const FileKind kind = DetectKind(a.file, input.bytes());
  const bool dense = kind == FileKind::kNpy || kind == FileKind::kSafetensors;
  CheckOutputKind(plan, kind, /*in_place_ok=*/dense);
  const Result r = dense                     ? RunDense(g, a, o, kind, input, plan)
                   : kind == FileKind::kNpz ? RunNpz(g, a, o, input, plan)
                                             : RunMtx(g, a, o, input, plan);
  const double seconds = SecondsSince(start);
  const MatrixStats& st = r.stats;
  if (g.json) {
    PrintJson({{"command", "matrix"},
               {"file", a.file},
               {"matrix", r.shape},
               {"axis", a.axis},
               {"vectors", st.vectors},
               {"vectors_scaled", st.vectors_scaled},
               {"zero_vectors", st.zero_vectors},
               {"nonfinite_vectors", st.nonfinite_vectors},
               {"pruned", st.pruned},
               {"nnz_before", st.nnz_before},
               {"nnz_after", st.nnz_after},
               {"output", plan.target},
               {"in_place", plan.in_place},
               {"seconds", seconds}});
    return;
  }
  fmt::print("{}: {}\n", a.file, r.shape);
  fmt::print("  {}          {} ({} scaled, {} zero, {} non-finite left unchanged)\n",
             a.axis == 0 ? "columns" : "rows   ", st.vectors, st.vectors_scaled, st.zero_vectors,
             st.nonfinite_vectors);
  if (o.prune_below > 0) {
    fmt::print("  pruned           {} values below {} ({} -> {} stored)\n", st.pruned, o.prune_below,
               st.nnz_before, st.nnz_after);
  }
  fmt::print("  output           {} ({})\n", plan.target, r.written);
  fmt::print("  time             {:.3f} s\n", seconds);
}

}  // namespace

Runner AddMatrixCommand(CLI::App& app, const Global& g) {
  auto args = std::make_shared<MatrixArgs>();
  CLI::App* cmd = app.add_subcommand(
      "matrix",
      "Normalize every column (--axis 0) or row (--axis 1) of a matrix: dense .npy, SciPy .npz "
      "(CSR, CSC, COO) or Matrix Market .mtx.");
  cmd->add_option("FILE", args->file, "a .npy, .npz, .mtx (or .safetensors) file")->required()->type_name("");
  cmd->add_option("--axis", args->axis, "0: normalize each column; 1: each row")->required()->type_name("0|1");
  cmd->add_option("--norm", args->norm, "l1, l2 or max (the p = 1, 2, inf norms)")->capture_default_str()->type_name("N");
  auto* mx = cmd->add_option("--max-norm", args->max_norm,
                             "only scale vectors whose norm exceeds T, down to T")
                 ->type_name("T");
  auto* cn = cmd->add_option("--constant-norm", args->constant_norm,
                             "scale every nonzero vector to norm T (the default, with T = 1)")
                 ->type_name("T");
  mx->excludes(cn);
  cmd->add_option("--eps", args->eps, "added to the norm in the scale T / (norm + eps)")->capture_default_str()->type_name("E");
  cmd->add_option("--prune", args->prune,
                  "afterwards, values with |w| < TAU become 0 (dense) or are removed (sparse)")
      ->type_name("TAU");
  cmd->add_flag("--fail-on-nonfinite", args->fail_on_nonfinite,
                "fail (writing nothing) when a vector holds NaN or infinity");
  cmd->add_option("--tensor", args->tensor, "the tensor of a .safetensors file")->type_name("NAME");
  auto* out = cmd->add_option("-o,--output", args->output,
                              "write the result to OUT; default: replace FILE atomically")
                 ->type_name("OUT");
  auto* ip = cmd->add_flag("--in-place", args->in_place,
                           "modify FILE through a memory map (dense .npy and .safetensors only)");
  out->excludes(ip);
  cmd->add_flag("--npy-bfloat16", args->npy_bfloat16, "read .npy dtype V2 as bfloat16 (see rows --help)");
  cmd->footer(R"(Examples:
  sparsenorm matrix W.npz --axis 0
      every column of a SciPy sparse matrix scaled to unit L2 norm, as
      sklearn.preprocessing.normalize(W, axis=0) does; W.npz replaced atomically
  sparsenorm matrix A.mtx --axis 1 --norm l1 -o A_rows.mtx
      rows of a Matrix Market matrix to unit L1 norm, into a new file
  sparsenorm matrix W.npy --axis 0 --max-norm 3 --prune 1e-4 --in-place
      columns with norm above 3 scaled to 3, tiny values zeroed, in place)");
  return [args, &g] { Run(g, *args); };
}

}  // namespace sparsenorm::cli
