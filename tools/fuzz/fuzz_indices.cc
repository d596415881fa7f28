// libFuzzer target: index lists, as text and as .npy. Any input must either
// give indices inside [0, rows) or throw FormatError.
#include <cstdint>
#include <cstdlib>

#include "formats/error.h"
#include "formats/indices.h"

using namespace sparsenorm::formats;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  constexpr std::int64_t kRows = 1000;
  for (const bool npy : {false, true}) {
    try {
      const auto indices = npy ? ParseIndexNpy({data, size}, kRows) : ParseIndexText({data, size}, kRows);
      for (const std::int64_t i : indices) {
        if (i < 0 || i >= kRows) std::abort();
      }
    } catch (const FormatError&) {
    }
  }
  return 0;
}
