// sparsenorm: the command-line tool. Renormalizes rows and columns of tables
// and matrices stored in .npy, .safetensors, .npz and .mtx files, shows the
// distribution of their norms, and benchmarks the library. See docs/CLI.md.
//
// Errors: one line on stderr, "sparsenorm: error: <sentence>", and a
// non-zero exit status (1 bad input or failure, 2 bad command line).
// Nothing is written on failure.
#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <new>
#include <stdexcept>

#include "cli/commands.h"
#include "formats/error.h"
#include "formats/file.h"
#include "sparsenorm/rows.h"
#include "sparsenorm/version.h"

namespace {

using namespace sparsenorm::cli;

int Fail(const std::string& message, int code) {
  std::string line = message;
  for (char& c : line) {
    if (c == '\n' || c == '\r') c = ' ';
  }
  fmt::print(stderr, "sparsenorm: error: {}\n", line);
  return code;
}

std::string Version() {
  return fmt::format("sparsenorm {} (SIMD: {}; threads: {})", SPARSENORM_VERSION_STRING,
                     sparsenorm::ActiveSimdTarget(), sparsenorm::DefaultThreadCount());
}

}  // namespace

int main(int argc, char** argv) {
  sparsenorm::formats::InstallTempFileCleanup();
  Global g;
  CLI::App app("Renormalize the rows and columns of tables and matrices in .npy, .safetensors, "
               ".npz and .mtx files; show their norms; benchmark the library.",
               "sparsenorm");
  app.set_version_flag("--version", Version());
  app.require_subcommand(1);
  app.fallthrough();  // global options may follow the command
  app.add_flag("-q,--quiet", g.quiet, "no progress bar and no notes on stderr");
  app.add_flag("--json", g.json, "print the results as one JSON object");
  app.add_option("--threads", g.threads, "threads (0: every core)")->check(CLI::NonNegativeNumber);
  const std::pair<const char*, Runner> commands[] = {
      {"rows", AddRowsCommand(app, g)},
      {"matrix", AddMatrixCommand(app, g)},
      {"stats", AddStatsCommand(app, g)},
      {"bench", AddBenchCommand(app, g)},
  };
  app.footer(R"(Examples (sparsenorm COMMAND --help shows more):
  sparsenorm stats emb.npy --max-norm 1
  sparsenorm rows emb.npy --indices batch.txt --max-norm 1
  sparsenorm matrix W.npz --axis 0 -o W_normalized.npz
  sparsenorm bench

Results replace their target atomically (a new file, flushed, renamed into
place) unless --in-place is given. Exit status: 0 success, 1 failure (bad
file, bad value, I/O error), 2 bad command line.)");

  // CLI11 would report an unknown command as a missing one.
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--threads") {
      ++i;
      continue;
    }
    if (arg.empty() || arg[0] == '-') continue;
    bool known = false;
    for (const auto& command : commands) known = known || arg == command.first;
    if (!known) {
      return Fail("unknown command " + sparsenorm::formats::Quote(arg) +
                      " (the commands are rows, matrix, stats and bench; see sparsenorm --help).",
                  kExitUsage);
    }
    break;
  }

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // --help and --version arrive here too, with exit code 0.
    if (e.get_exit_code() == 0) return app.exit(e);
    return Fail(std::string(e.what()) + " (see sparsenorm --help)", kExitUsage);
  }

  try {
    for (const auto& [name, run] : commands) {
      if (app.got_subcommand(name)) run();
    }
    return 0;
  } catch (const Error& e) {
    return Fail(e.what(), e.exit_code());
  } catch (const sparsenorm::formats::FormatError& e) {
    return Fail(e.what(), kExitFailure);
  } catch (const std::bad_alloc&) {
    return Fail("out of memory.", kExitFailure);
  } catch (const std::length_error&) {
    return Fail("a size in the input is too large to hold in memory.", kExitFailure);
  } catch (const std::exception& e) {
    return Fail(e.what(), kExitFailure);
  }
}
