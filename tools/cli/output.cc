#include "cli/output.h"

#include <fmt/format.h>

#include "formats/error.h"

namespace sparsenorm::cli {

OutputPlan PlanOutput(const std::string& input, const std::string& output, bool in_place) {
  OutputPlan plan;
  plan.in_place = in_place;
  if (in_place) {
    if (!output.empty()) throw Error("--in-place and -o exclude each other.", kExitUsage);
    plan.target = input;
    plan.replaces_input = true;
    return plan;
  }
  plan.target = output.empty() ? input : output;
  plan.replaces_input = output.empty() || formats::SameFile(input, output);
  return plan;
}

void CheckOutputKind(const OutputPlan& plan, FileKind kind, bool in_place_ok) {
  if (plan.in_place && !in_place_ok) {
    const char* why = kind == FileKind::kNpz
                          ? "a .npz archive is compressed and checksummed, so its bytes cannot change in place"
                      : kind == FileKind::kMtx
                          ? "a .mtx file is text, whose length changes with its values"
                          : "this command cannot modify this format in place";
    throw Error(std::string("--in-place is not possible here: ") + why +
                    "; run without --in-place (the file is then replaced atomically).",
                kExitUsage);
  }
  FileKind named;
  if (!plan.replaces_input && KindFromExtension(plan.target, &named) && named != kind) {
    throw Error("the output " + formats::Quote(plan.target, 4096) + " names a " + KindName(named) +
                    " file but the input is a " + KindName(kind) +
                    " file; the output keeps the input's format.",
                kExitUsage);
  }
}

void WriteAtomically(const Global& g, const OutputPlan& plan, std::uint64_t total,
                     const std::function<void(formats::AtomicWriter&)>& write) {
  formats::AtomicWriter w(plan.target);
  {
    Progress progress(g, "writing", total);
    w.set_progress([&](std::uint64_t done) { progress.Update(done); });
    write(w);
  }
  const std::string warning = w.Commit();
  if (!warning.empty()) Note(g, "warning: " + warning);
}

void PrintJson(const nlohmann::json& j) {
  fmt::print("{}\n", j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace));
}

bool IsNpy(std::span<const std::uint8_t> b) {
  static constexpr std::uint8_t kMagic[6] = {0x93, 'N', 'U', 'M', 'P', 'Y'};
  return b.size() >= 6 && std::equal(std::begin(kMagic), std::end(kMagic), b.begin());
}

}  // namespace sparsenorm::cli
