// Row index lists for `sparsenorm rows --indices FILE`: a .npy file holding
// a 1-D array of integers, or a text file with one integer per line.
//
// Text: each line holds one decimal integer, optionally surrounded by spaces
// or tabs; blank lines and lines starting with '#' are skipped; a final
// newline is optional. Anything else (two numbers on a line, "1.0", "0x10",
// a value beyond 64 bits) is refused with its line number.
//
// Both readers check every index against [0, rows) and name the first one
// outside it (the position in the array, or the line of the text file).
#ifndef SPARSENORM_TOOLS_FORMATS_INDICES_H_
#define SPARSENORM_TOOLS_FORMATS_INDICES_H_

#include <cstdint>
#include <span>
#include <vector>

namespace sparsenorm::formats {

std::vector<std::int64_t> ParseIndexText(std::span<const std::uint8_t> text, std::int64_t rows);

// The file is a .npy file (magic checked by the caller or here).
std::vector<std::int64_t> ParseIndexNpy(std::span<const std::uint8_t> file, std::int64_t rows);

}  // namespace sparsenorm::formats

#endif  // SPARSENORM_TOOLS_FORMATS_INDICES_H_
