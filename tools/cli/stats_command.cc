// sparsenorm stats: the distribution of the row (or column) norms of a table
// or matrix, with a histogram drawn in the terminal.
//
// Norms are computed here in float64 (scaled by the largest magnitude, so
// that no finite vector overflows), not by the library: this command is for
// looking, and float64 is the plain reference. A vector's norm can differ
// from the library's float32 norm in the last bits, which matters only for
// the "above T" count of a norm within rounding of T.
#include <fmt/format.h>
#include <langinfo.h>

#include <algorithm>
#include <clocale>
#include <cmath>
#include <cstring>
#include <nlohmann/json.hpp>
#include <optional>

#include "cli/commands.h"
#include "cli/output.h"
#include "common/element_types.h"
#include "formats/error.h"
#include "formats/file.h"
#include "formats/mtx.h"
#include "formats/npz.h"

namespace sparsenorm::cli {
namespace {

using formats::Quote;

struct StatsArgs {
  std::string file;
  std::string tensor;
  int axis = 1;
  std::string p = "2";
  std::optional<double> above;
  int bins = 20;
  bool log_bins = false;
  bool npy_bfloat16 = false;
};

// The norm of one vector from its values, in float64. NaN when a value is
// not finite.
class NormAccumulator {
 public:
  explicit NormAccumulator(double p) : p_(p) {}
  double operator()(const double* v, std::size_t n) const {
    double big = 0;
    for (std::size_t k = 0; k < n; ++k) {
      if (!std::isfinite(v[k])) return std::numeric_limits<double>::quiet_NaN();
      big = std::max(big, std::fabs(v[k]));
    }
    if (big == 0 || std::isinf(p_)) return big;
    double sum = 0;
    for (std::size_t k = 0; k < n; ++k) {
      const double x = std::fabs(v[k]) / big;
      sum += p_ == 2 ? x * x : p_ == 1 ? x : std::pow(x, p_);
    }
    return big * (p_ == 2 ? std::sqrt(sum) : p_ == 1 ? sum : std::pow(sum, 1 / p_));
  }

 private:
  double p_;
};

struct Norms {
  std::int64_t vectors = 0;       // all of them
  std::int64_t nonfinite = 0;     // excluded from the distribution
  std::int64_t implicit_zero = 0; // empty sparse vectors, not in `finite`
  std::vector<double> finite;     // sorted
};

template <typename T, typename Widen>
void DenseNorms(const Global& g, const std::uint8_t* base, std::int64_t rows, std::int64_t cols,
                int axis, double p, Widen widen, Norms* out) {
  // Vectors of length 0 all have norm 0: counted, not stored (a header may
  // declare 2^62 of them over no data at all).
  const std::int64_t count = axis == 1 ? rows : cols, length = axis == 1 ? cols : rows;
  if (count == 0 || length == 0) {
    out->vectors = count;
    out->implicit_zero = count;
    return;
  }
  auto at = [&](std::int64_t r, std::int64_t c) {
    T x;
    std::memcpy(&x, base + static_cast<std::size_t>(r * cols + c) * sizeof(T), sizeof(T));
    return widen(x);
  };
  Progress progress(g, "norms", static_cast<std::uint64_t>(rows) * cols * sizeof(T) * (axis == 1 ? 1 : 2));
  const NormAccumulator norm(p);
  auto keep = [&](double n) {
    if (std::isnan(n)) {
      ++out->nonfinite;
    } else {
      out->finite.push_back(n);
    }
  };
  if (axis == 1) {
    out->vectors = rows;
    std::vector<double> values(static_cast<std::size_t>(cols));
    for (std::int64_t r = 0; r < rows; ++r) {
      for (std::int64_t c = 0; c < cols; ++c) values[static_cast<std::size_t>(c)] = at(r, c);
      keep(norm(values.data(), values.size()));
      if ((r & 1023) == 0) progress.Update(static_cast<std::uint64_t>(r) * cols * sizeof(T));
    }
    return;
  }
  // Column norms, streaming over rows twice (largest magnitude, then the
  // scaled sum) instead of striding down each column.
  out->vectors = cols;
  const auto n = static_cast<std::size_t>(cols);
  std::vector<double> big(n, 0.0), sum(n, 0.0);
  std::vector<char> bad(n, 0);
  for (std::int64_t r = 0; r < rows; ++r) {
    for (std::int64_t c = 0; c < cols; ++c) {
      const double x = at(r, c);
      if (!std::isfinite(x)) bad[static_cast<std::size_t>(c)] = 1;
      else big[static_cast<std::size_t>(c)] = std::max(big[static_cast<std::size_t>(c)], std::fabs(x));
    }
    if ((r & 1023) == 0) progress.Update(static_cast<std::uint64_t>(r) * cols * sizeof(T));
  }
  if (!std::isinf(p)) {
    for (std::int64_t r = 0; r < rows; ++r) {
      for (std::int64_t c = 0; c < cols; ++c) {
        const auto k = static_cast<std::size_t>(c);
        if (bad[k] || big[k] == 0) continue;
        const double x = std::fabs(at(r, c)) / big[k];
        sum[k] += p == 2 ? x * x : p == 1 ? x : std::pow(x, p);
      }
      if ((r & 1023) == 0) progress.Update(static_cast<std::uint64_t>(rows + r) * cols * sizeof(T));
    }
  }
  for (std::size_t k = 0; k < n; ++k) {
    if (bad[k]) {
      keep(std::numeric_limits<double>::quiet_NaN());
    } else if (big[k] == 0 || std::isinf(p)) {
      keep(big[k]);
    } else {
      keep(big[k] * (p == 2 ? std::sqrt(sum[k]) : p == 1 ? sum[k] : std::pow(sum[k], 1 / p)));
    }
  }
}

// Norms of sparse vectors from coordinates: repeated coordinates count as
// their sum, as they do for the library and for SciPy.
void SparseNorms(std::int64_t vectors, std::vector<std::int64_t> vec, std::vector<std::int64_t> other,
                 const std::function<double(std::size_t)>& value, double p, Norms* out) {
  out->vectors = vectors;
  std::vector<std::size_t> order(vec.size());
  for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
    return vec[a] != vec[b] ? vec[a] < vec[b] : other[a] < other[b];
  });
  const NormAccumulator norm(p);
  std::vector<double> values;
  std::int64_t nonempty = 0;
  for (std::size_t i = 0; i < order.size();) {
    const std::int64_t v = vec[order[i]];
    values.clear();
    while (i < order.size() && vec[order[i]] == v) {
      const std::int64_t o = other[order[i]];
      double sum = 0;
      while (i < order.size() && vec[order[i]] == v && other[order[i]] == o) sum += value(order[i++]);
      values.push_back(sum);
    }
    ++nonempty;
    const double n = norm(values.data(), values.size());
    if (std::isnan(n)) {
      ++out->nonfinite;
    } else {
      out->finite.push_back(n);
    }
  }
  out->implicit_zero = vectors - nonempty;
}

// NumPy's default (linear) quantile over implicit zeros followed by the
// sorted finite norms.
double Quantile(const Norms& n, double q) {
  const auto total = static_cast<std::int64_t>(n.finite.size()) + n.implicit_zero;
  const double h = static_cast<double>(total - 1) * q;
  // Past 2^53 vectors, (total - 1) * q rounds and may land on total: clamp.
  const std::int64_t lo = std::clamp<std::int64_t>(static_cast<std::int64_t>(std::floor(h)), 0, total - 1);
  const std::int64_t hi = std::min(lo + 1, total - 1);
  auto at = [&](std::int64_t i) {
    return i < n.implicit_zero ? 0.0 : n.finite[static_cast<std::size_t>(i - n.implicit_zero)];
  };
  return at(lo) + (h - static_cast<double>(lo)) * (at(hi) - at(lo));
}

bool Utf8Terminal() {
  std::setlocale(LC_CTYPE, "");
  const char* codeset = nl_langinfo(CODESET);
  return codeset != nullptr && std::strcmp(codeset, "UTF-8") == 0;
}

void Run(const Global& g, const StatsArgs& a) {
  if (a.axis != 0 && a.axis != 1) throw Error("--axis must be 0 (columns) or 1 (rows).", kExitUsage);
  if (a.bins < 1 || a.bins > 1000) throw Error("--bins must be between 1 and 1000.", kExitUsage);
  if (a.above && !(*a.above >= 0)) throw Error("--max-norm must be >= 0.", kExitUsage);
  const double p = ParseP(a.p);
  const std::string qfile = Quote(a.file, 4096);
  const formats::MappedFile input = formats::MappedFile::OpenRead(a.file);
  const FileKind kind = DetectKind(a.file, input.bytes());
  Norms norms;
  std::string what;
  try {
    if (kind == FileKind::kNpy || kind == FileKind::kSafetensors) {
      const TableRef t = LocateTable(kind, input.bytes(), a.tensor, a.npy_bfloat16);
      what = t.description + (t.fortran_order ? " (Fortran order)" : "");
      std::int64_t rows = t.rows, cols = t.cols;
      int axis = a.axis;
      if (t.fortran_order) {
        std::swap(rows, cols);
        axis = 1 - axis;
      }
      const std::uint8_t* base = input.bytes().data() + t.offset;
      VisitDType(t.dtype, [&](auto tag) {
        using T = TypeOf<decltype(tag)>;
        DenseNorms<T>(g, base, rows, cols, axis, p,
                      [](T x) { return static_cast<double>(Element<T>::Widen(x)); }, &norms);
      });
    } else if (kind == FileKind::kNpz) {
      if (!a.tensor.empty()) throw Error("--tensor applies to .safetensors files only.", kExitUsage);
      const formats::SparseNpz m = formats::ReadSparseNpz(input.bytes(), {.void2_is_bfloat16 = a.npy_bfloat16});
      what = fmt::format("{} {} x {}, {} stored entries, {} values", m.format_name, m.rows, m.cols, m.nnz,
                         DTypeName(*m.data.header.float_type));
      std::vector<std::int64_t> r(static_cast<std::size_t>(m.nnz)), c(r.size());
      if (m.format == SparseFormat::kCOO) {
        for (std::int64_t k = 0; k < m.nnz; ++k) {
          r[static_cast<std::size_t>(k)] = formats::IntegerAt(m.row, k);
          c[static_cast<std::size_t>(k)] = formats::IntegerAt(m.col, k);
        }
      } else {
        const bool csr = m.format == SparseFormat::kCSR;
        for (std::int64_t major = 0; major + 1 < m.indptr.length(); ++major) {
          for (std::int64_t k = formats::IntegerAt(m.indptr, major); k < formats::IntegerAt(m.indptr, major + 1); ++k) {
            const std::int64_t minor = formats::IntegerAt(m.indices, k);
            r[static_cast<std::size_t>(k)] = csr ? major : minor;
            c[static_cast<std::size_t>(k)] = csr ? minor : major;
          }
        }
      }
      const DType dt = *m.data.header.float_type;
      const std::uint8_t* values = m.data.data();
      auto value = [&](std::size_t k) { return ValueAt(values, dt, k); };
      if (a.axis == 1) {
        SparseNorms(m.rows, std::move(r), std::move(c), value, p, &norms);
      } else {
        SparseNorms(m.cols, std::move(c), std::move(r), value, p, &norms);
      }
    } else {
      if (!a.tensor.empty()) throw Error("--tensor applies to .safetensors files only.", kExitUsage);
      formats::MatrixMarket m = formats::ParseMatrixMarket(input.bytes());
      what = fmt::format("coordinate {} x {}, {} stored entries", m.rows, m.cols, m.values.size());
      const std::vector<double> values = std::move(m.values);
      auto value = [&](std::size_t k) { return values[k]; };
      if (a.axis == 1) {
        SparseNorms(m.rows, std::move(m.row), std::move(m.col), value, p, &norms);
      } else {
        SparseNorms(m.cols, std::move(m.col), std::move(m.row), value, p, &norms);
      }
    }
  } catch (const formats::FormatError& e) {
    throw Error(qfile + ": " + e.what());
  }
  std::sort(norms.finite.begin(), norms.finite.end());

  const std::int64_t finite = static_cast<std::int64_t>(norms.finite.size()) + norms.implicit_zero;
  const std::int64_t zero =
      norms.implicit_zero + (std::upper_bound(norms.finite.begin(), norms.finite.end(), 0.0) - norms.finite.begin());
  double mean = 0;
  for (const double n : norms.finite) mean += n;
  mean = finite > 0 ? mean / static_cast<double>(finite) : 0;
  std::int64_t above = 0;
  if (a.above) {
    above = norms.finite.end() - std::upper_bound(norms.finite.begin(), norms.finite.end(), *a.above);
  }
  static constexpr double kQ[] = {0, 0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99, 1};
  static constexpr const char* kQName[] = {"min", "p1", "p5", "p25", "median", "p75", "p95", "p99", "max"};

  // Histogram over the finite norms: linear bins from min to max, or, with
  // --log, logarithmic bins over the positive ones (zeros counted apart).
  std::vector<double> edges;
  std::vector<std::int64_t> counts(static_cast<std::size_t>(a.bins), 0);
  if (finite > 0) {
    const double lo_all = Quantile(norms, 0), hi = Quantile(norms, 1);
    const double lo = a.log_bins ? (zero < finite ? *std::upper_bound(norms.finite.begin(), norms.finite.end(), 0.0) : 1) : lo_all;
    for (int b = 0; b <= a.bins; ++b) {
      const double f = static_cast<double>(b) / a.bins;
      edges.push_back(a.log_bins ? lo * std::pow(hi / lo, f) : lo + (hi - lo) * f);
    }
    auto bin_of = [&](double n) {
      if (hi == lo) return 0;
      const double f = a.log_bins ? std::log(n / lo) / std::log(hi / lo) : (n - lo) / (hi - lo);
      return std::clamp(static_cast<int>(f * a.bins), 0, a.bins - 1);
    };
    if (!a.log_bins) counts[0] += norms.implicit_zero;
    for (const double n : norms.finite) {
      if (a.log_bins && n == 0) continue;
      ++counts[static_cast<std::size_t>(bin_of(n))];
    }
  }

  const char* noun = a.axis == 1 ? "row" : "column";
  if (g.json) {
    nlohmann::json q = nlohmann::json::object();
    for (std::size_t i = 0; i < std::size(kQ); ++i) q[kQName[i]] = finite > 0 ? nlohmann::json(Quantile(norms, kQ[i])) : nlohmann::json();
    nlohmann::json j = {{"command", "stats"},
                        {"file", a.file},
                        {"matrix", what},
                        {"axis", a.axis},
                        {"p", std::isinf(p) ? nlohmann::json("inf") : nlohmann::json(p)},
                        {"vectors", norms.vectors},
                        {"finite", finite},
                        {"nonfinite", norms.nonfinite},
                        {"zero", zero},
                        {"mean", finite > 0 ? nlohmann::json(mean) : nlohmann::json()},
                        {"quantiles", q},
                        {"histogram", {{"edges", edges}, {"counts", counts}, {"log", a.log_bins}}}};
    if (a.above) j["above"] = {{"threshold", *a.above}, {"count", above}};
    PrintJson(j);
    return;
  }
  fmt::print("{}: {}\n", a.file, what);
  fmt::print("{} norms (p = {}, computed in float64): {} {}s, {} zero, {} non-finite (left out below)\n",
             noun, p, norms.vectors, noun, zero, norms.nonfinite);
  if (finite == 0) return;
  for (std::size_t i = 0; i < std::size(kQ); ++i) {
    fmt::print("  {:<8} {:.6g}\n", kQName[i], Quantile(norms, kQ[i]));
  }
  fmt::print("  {:<8} {:.6g}\n", "mean", mean);
  if (a.above) {
    fmt::print("  above {:.6g}: {} {}s ({:.2f}%), which rows/matrix --max-norm {:.6g} would scale\n", *a.above,
               above, noun, 100.0 * above / finite, *a.above);
  }
  const std::int64_t most = *std::max_element(counts.begin(), counts.end());
  const bool utf8 = Utf8Terminal();
  fmt::print("histogram ({} bins{}):\n", a.bins, a.log_bins ? ", logarithmic" : "");
  if (a.log_bins && zero > 0) fmt::print("  {:>23}  {} zero norms\n", "", zero);
  for (int b = 0; b < a.bins; ++b) {
    const std::int64_t c = counts[static_cast<std::size_t>(b)];
    const int width = most == 0 ? 0 : static_cast<int>(std::lround(40.0 * static_cast<double>(c) / most));
    std::string bar;
    for (int i = 0; i < width; ++i) bar += utf8 ? "\u2588" : "#";
    if (width == 0 && c > 0) bar = utf8 ? "\u258f" : "|";
    fmt::print("  [{:>10.4g}, {:>10.4g}{} {:<40} {}\n", edges[static_cast<std::size_t>(b)],
               edges[static_cast<std::size_t>(b) + 1], b + 1 == a.bins ? "]" : ")", bar, c);
  }
}

}  // namespace

Runner AddStatsCommand(CLI::App& app, const Global& g) {
  auto args = std::make_shared<StatsArgs>();
  CLI::App* cmd = app.add_subcommand(
      "stats", "Show the distribution of the row (or column) norms of a table or matrix.");
  cmd->add_option("FILE", args->file, "a .npy, .safetensors, .npz or .mtx file")->required()->type_name("");
  cmd->add_option("--tensor", args->tensor, "the tensor of a .safetensors file")->type_name("NAME");
  cmd->add_option("--axis", args->axis, "1: row norms (the default); 0: column norms")->capture_default_str()->type_name("0|1");
  cmd->add_option("-p", args->p, "the norm order: a positive number or inf")->capture_default_str()->type_name("P");
  cmd->add_option("--max-norm", args->above, "also count the vectors whose norm exceeds T")->type_name("T");
  cmd->add_option("--bins", args->bins, "histogram bins")->capture_default_str()->type_name("N");
  cmd->add_flag("--log", args->log_bins, "logarithmic histogram bins");
  cmd->add_flag("--npy-bfloat16", args->npy_bfloat16, "read .npy dtype V2 as bfloat16 (see rows --help)");
  cmd->footer(R"(Examples:
  sparsenorm stats emb.npy --max-norm 1
      quantiles and histogram of the row L2 norms, and how many exceed 1
  sparsenorm stats model.safetensors --tensor embed.weight -p inf --log
      max-abs norms, logarithmic histogram
  sparsenorm stats W.npz --axis 0 --json
      column norms of a SciPy sparse matrix, as JSON)");
  return [args, &g] { Run(g, *args); };
}

}  // namespace sparsenorm::cli
