// Where a command's result goes, and writing it there safely.
#ifndef SPARSENORM_TOOLS_CLI_OUTPUT_H_
#define SPARSENORM_TOOLS_CLI_OUTPUT_H_

#include <functional>
#include <string>

#include <nlohmann/json.hpp>

#include "cli/common.h"
#include "formats/file.h"

namespace sparsenorm::cli {

struct OutputPlan {
  std::string target;           // the file that will hold the result
  bool replaces_input = false;  // target is the input file itself
  bool in_place = false;
};

// -o OUT, else the input itself; --in-place excludes -o.
OutputPlan PlanOutput(const std::string& input, const std::string& output, bool in_place);

// Refuses --in-place for formats whose bytes cannot change in place (or that
// the command cannot modify in place), and an -o whose extension names a
// format other than the input's: the output keeps the input's format.
void CheckOutputKind(const OutputPlan& plan, FileKind kind, bool in_place_ok);

// Creates the temporary file beside plan.target, lets `write` fill it (with
// a progress bar over `total` bytes), then commits it: fsync, rename over
// the target, fsync of the directory. Any exception removes the temporary.
void WriteAtomically(const Global& g, const OutputPlan& plan, std::uint64_t total,
                     const std::function<void(formats::AtomicWriter&)>& write);

// One JSON object on stdout (file names that are not UTF-8 are replaced
// character by character rather than failing).
void PrintJson(const nlohmann::json& j);

// True when the bytes start with the .npy magic string.
bool IsNpy(std::span<const std::uint8_t> bytes);

}  // namespace sparsenorm::cli

#endif  // SPARSENORM_TOOLS_CLI_OUTPUT_H_
