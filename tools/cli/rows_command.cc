// sparsenorm rows: the row operator (sparsenorm::NormalizeRows) on a 2-D
// table of a .npy or .safetensors file.
#include <fmt/format.h>

#include <nlohmann/json.hpp>
#include <numeric>
#include <optional>

#include "cli/commands.h"
#include "cli/output.h"
#include "formats/error.h"
#include "formats/file.h"
#include "formats/indices.h"
#include "sparsenorm/rows.h"

namespace sparsenorm::cli {
namespace {

using formats::Quote;

struct RowsArgs {
  std::string file;
  std::string tensor;
  std::string indices;
  bool all = false;
  std::optional<double> max_norm;
  std::optional<double> constant_norm;
  std::string p = "2";
  double eps = 1e-12;
  bool fail_on_nonfinite = false;
  std::string output;
  bool in_place = false;
  bool npy_bfloat16 = false;
};

std::vector<std::int64_t> LoadIndices(const RowsArgs& a, std::int64_t rows) {
  if (a.all) {
    try {
      std::vector<std::int64_t> all(static_cast<std::size_t>(rows));
      std::iota(all.begin(), all.end(), std::int64_t{0});
      return all;
    } catch (const std::exception&) {  // bad_alloc, or length_error past max_size
      throw Error("not enough memory for the index list of --all (" + std::to_string(rows) + " rows).");
    }
  }
  const formats::MappedFile f = formats::MappedFile::OpenRead(a.indices);
  const auto bytes = f.bytes();
  const bool npy = IsNpy(bytes);
  try {
    return npy ? formats::ParseIndexNpy(bytes, rows) : formats::ParseIndexText(bytes, rows);
  } catch (const formats::FormatError& e) {
    throw Error(Quote(a.indices, 4096) + ": " + e.what());
  }
}

void Run(const Global& g, const RowsArgs& a) {
  const auto start = std::chrono::steady_clock::now();
  NormalizeOptions o;
  if (a.max_norm) {
    o.mode = NormMode::kMaxNorm;
    o.target = *a.max_norm;
  } else if (a.constant_norm) {
    o.mode = NormMode::kConstantNorm;
    o.target = *a.constant_norm;
  } else {
    throw Error("give the target norm with --max-norm T or --constant-norm T.", kExitUsage);
  }
  if (!a.all && a.indices.empty()) {
    throw Error("name the rows with --indices FILE or --all.", kExitUsage);
  }
  o.p = ParseP(a.p);
  o.eps = a.eps;
  o.non_finite = a.fail_on_nonfinite ? NonFinitePolicy::kError : NonFinitePolicy::kSkip;
  o.num_threads = g.threads;
  // The library checks the options before it touches anything; asking it
  // now, on an empty table, refuses a bad value before any file is read.
  if (Status s = NormalizeRows(Table{}, Indices{}, o); !s.ok()) throw Error(s.message(), kExitUsage);

  const std::string qfile = Quote(a.file, 4096);
  OutputPlan plan = PlanOutput(a.file, a.output, a.in_place);
  formats::MappedFile input = a.in_place ? formats::MappedFile::OpenReadWrite(a.file)
                                         : formats::MappedFile::OpenRead(a.file);
  const FileKind kind = DetectKind(a.file, input.bytes());
  CheckOutputKind(plan, kind, /*in_place_ok=*/true);
  TableRef t;
  try {
    t = LocateTable(kind, input.bytes(), a.tensor, a.npy_bfloat16);
  } catch (const formats::FormatError& e) {
    throw Error(qfile + ": " + e.what());
  }
  if (t.fortran_order) {
    throw Error(qfile + " holds a Fortran-order (column-major) array, whose rows are not "
                "contiguous; save it with np.ascontiguousarray first.");
  }
  const std::vector<std::int64_t> indices = LoadIndices(a, t.rows);
  const Indices index_view(std::span<const std::int64_t>(indices.data(), indices.size()));

  RowStats stats;
  std::string written;
  if (a.in_place) {
    const std::size_t element = DTypeSize(t.dtype);
    if (t.offset % element != 0) {
      throw Error(qfile + ": the table starts at byte " + std::to_string(t.offset) +
                  ", not a multiple of its element size " + std::to_string(element) +
                  ", so it cannot be modified in place; run without --in-place.");
    }
    Table table{input.mutable_bytes().data() + t.offset, t.dtype, t.rows, t.cols, 0};
    Status s;
    Progress::Run(g, "normalizing", [&] { s = NormalizeRows(table, index_view, o, &stats); });
    if (!s.ok()) throw Error(qfile + ": " + s.message());
    input.Sync();
    written = "modified in place";
  } else {
    AlignedBuffer copy(t.bytes);
    CopyWithProgress(g, "reading", copy.data, input.bytes().data() + t.offset, t.bytes);
    Table table{copy.data, t.dtype, t.rows, t.cols, 0};
    Status s;
    Progress::Run(g, "normalizing", [&] { s = NormalizeRows(table, index_view, o, &stats); });
    if (!s.ok()) throw Error(qfile + ": " + s.message());
    const auto bytes = input.bytes();
    WriteAtomically(g, plan, bytes.size(), [&](formats::AtomicWriter& w) {
      w.Write(bytes.data(), t.offset);
      w.Write(copy.data, t.bytes);
      w.Write(bytes.data() + t.offset + t.bytes, bytes.size() - t.offset - t.bytes);
    });
    written = plan.replaces_input ? "replaced atomically" : "written atomically";
  }

  const double seconds = SecondsSince(start);
  if (g.json) {
    nlohmann::json j = {{"command", "rows"},
                        {"file", a.file},
                        {"tensor", t.name},
                        {"dtype", DTypeName(t.dtype)},
                        {"rows", t.rows},
                        {"cols", t.cols},
                        {"indices_seen", stats.indices_seen},
                        {"distinct_rows", stats.distinct_rows},
                        {"rows_scaled", stats.rows_scaled},
                        {"nonfinite_rows", stats.nonfinite_rows},
                        {"output", plan.target},
                        {"in_place", a.in_place},
                        {"seconds", seconds}};
    PrintJson(j);
    return;
  }
  fmt::print("{}{}: {}\n", a.file, t.name.empty() ? "" : " [" + t.name + "]", t.description);
  fmt::print("  indices      {} ({} distinct rows)\n", stats.indices_seen, stats.distinct_rows);
  fmt::print("  rows scaled  {}\n", stats.rows_scaled);
  fmt::print("  non-finite   {} rows left unchanged\n", stats.nonfinite_rows);
  fmt::print("  output       {} ({})\n", plan.target, written);
  fmt::print("  time         {:.3f} s\n", seconds);
}

}  // namespace

Runner AddRowsCommand(CLI::App& app, const Global& g) {
  auto args = std::make_shared<RowsArgs>();
  CLI::App* cmd = app.add_subcommand(
      "rows", "Renormalize the rows of a 2-D table (.npy or .safetensors) named by an index list.");
  cmd->add_option("FILE", args->file, "a .npy file or a .safetensors file")->required()->type_name("");
  cmd->add_option("--tensor", args->tensor, "the tensor of a .safetensors file (needed when it holds several)")
      ->type_name("NAME");
  auto* idx = cmd->add_option("--indices", args->indices,
                              "row indices: a .npy file of integers or a text file, one per line")
                  ->type_name("IDX");
  auto* all = cmd->add_flag("--all", args->all, "every row");
  idx->excludes(all);
  auto* mx = cmd->add_option("--max-norm", args->max_norm,
                             "scale rows whose norm exceeds T down to norm T")
                 ->type_name("T");
  auto* cn = cmd->add_option("--constant-norm", args->constant_norm,
                             "scale every nonzero row to norm T")
                 ->type_name("T");
  mx->excludes(cn);
  cmd->add_option("-p", args->p, "the norm order: a positive number or inf")->capture_default_str()->type_name("P");
  cmd->add_option("--eps", args->eps, "added to the norm in the scale T / (norm + eps)")
      ->capture_default_str()
      ->type_name("E");
  cmd->add_flag("--fail-on-nonfinite", args->fail_on_nonfinite,
                "fail (writing nothing) when a named row holds NaN or infinity; by default such "
                "rows are left as they are and counted");
  auto* out = cmd->add_option("-o,--output", args->output,
                              "write the result to OUT (replaced atomically); default: replace FILE atomically")
                 ->type_name("OUT");
  auto* ip = cmd->add_flag("--in-place", args->in_place,
                           "modify FILE through a memory map instead (not atomic; see docs/CLI.md)");
  out->excludes(ip);
  cmd->add_flag("--npy-bfloat16", args->npy_bfloat16,
                "read a .npy array of dtype V2 (how np.save stores ml_dtypes.bfloat16) as bfloat16");
  cmd->footer(R"(Examples:
  sparsenorm rows emb.npy --indices batch.txt --max-norm 1
      rows of emb.npy listed in batch.txt whose L2 norm exceeds 1 are scaled to norm 1;
      emb.npy is replaced atomically
  sparsenorm rows model.safetensors --tensor embed.weight --all --constant-norm 1 -o unit.safetensors
      every row of one tensor scaled to unit norm, written to a new file
  sparsenorm rows emb.npy --indices ids.npy --max-norm 5 -p inf --in-place
      max-abs norm, modified in place through a memory map)");
  return [args, &g] { Run(g, *args); };
}

}  // namespace sparsenorm::cli
