// The one error type of the file-format library, and the helper that puts
// untrusted text (names read from a file) into a message safely.
//
// The formats library is only used by the command-line tool and its fuzzers,
// so it reports errors by exception, as the CLI layer does (the core library
// returns Status instead).
#ifndef SPARSENORM_TOOLS_FORMATS_ERROR_H_
#define SPARSENORM_TOOLS_FORMATS_ERROR_H_

#include <stdexcept>
#include <string>
#include <string_view>

namespace sparsenorm::formats {

// A file that is malformed, truncated, oversized or inconsistent, or an I/O
// failure. what() is one sentence, without a trailing newline.
class FormatError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// `text` in single quotes, with control characters, quotes, backslashes and
// bytes >= 0x7f written as escapes, and cut after `max_chars` characters:
// a name read from a hostile file can neither break the one-line error
// message nor send escape sequences to the terminal.
std::string Quote(std::string_view text, std::size_t max_chars = 80);

}  // namespace sparsenorm::formats

#endif  // SPARSENORM_TOOLS_FORMATS_ERROR_H_
