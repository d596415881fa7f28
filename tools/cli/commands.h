// The subcommands of the sparsenorm tool. Each Add* function registers its
// subcommand, options and help text on the CLI11 app and returns the
// function that runs it once the command line has been parsed.
#ifndef SPARSENORM_TOOLS_CLI_COMMANDS_H_
#define SPARSENORM_TOOLS_CLI_COMMANDS_H_

#include <functional>

#include <CLI/CLI.hpp>

#include "cli/common.h"

namespace sparsenorm::cli {

using Runner = std::function<void()>;

Runner AddRowsCommand(CLI::App& app, const Global& g);
Runner AddMatrixCommand(CLI::App& app, const Global& g);
Runner AddStatsCommand(CLI::App& app, const Global& g);
Runner AddBenchCommand(CLI::App& app, const Global& g);

}  // namespace sparsenorm::cli

#endif  // SPARSENORM_TOOLS_CLI_COMMANDS_H_
