#include "formats/error.h"

#include <cstdio>

namespace sparsenorm::formats {

std::string Quote(std::string_view text, std::size_t max_chars) {
  std::string out = "'";
  std::size_t shown = 0;
  for (const char c : text) {
    if (shown == max_chars) {
      out += "...";
      break;
    }
    const auto u = static_cast<unsigned char>(c);
    if (c == '\'' || c == '\\') {
      out += '\\';
      out += c;
    } else if (u < 0x20 || u >= 0x7f) {
      char hex[8];
      std::snprintf(hex, sizeof hex, "\\x%02x", u);
      out += hex;
    } else {
      out += c;
    }
    ++shown;
  }
  out += '\'';
  return out;
}

}  // namespace sparsenorm::formats
