// libFuzzer target: the .npy header parser. Any input must either parse into
// a header whose data lie inside the input, or throw FormatError; anything
// else (a crash, a sanitizer report, another exception) is a bug. A parsed
// header must survive a round trip through the writer.
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>

#include "formats/error.h"
#include "formats/npy.h"

using namespace sparsenorm::formats;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  NpyHeader h;
  try {
    h = ParseNpyHeader({data, size}, {.void2_is_bfloat16 = size % 2 == 1});
  } catch (const FormatError&) {
    return 0;
  }
  if (h.data_offset > size || h.data_bytes != size - h.data_offset) std::abort();
  if (h.data_bytes > 0) {
    volatile std::uint8_t last = data[h.data_offset + h.data_bytes - 1];
    (void)last;
  }
  // Round trip: the header the writer makes for the same array parses back
  // to the same description.
  if (h.data_bytes <= 4096) {
    std::string file = MakeNpyHeader(h.descr, h.fortran_order, h.shape);
    if (file.size() % 64 != 0) std::abort();
    file.append(reinterpret_cast<const char*>(data + h.data_offset), h.data_bytes);
    const NpyHeader again = ParseNpyHeader(
        {reinterpret_cast<const std::uint8_t*>(file.data()), file.size()}, {.void2_is_bfloat16 = size % 2 == 1});
    if (again.descr != h.descr || again.shape != h.shape || again.fortran_order != h.fortran_order ||
        again.itemsize != h.itemsize || again.count != h.count) {
      std::abort();
    }
  }
  return 0;
}
