// libFuzzer target: the safetensors header and offset checks. Any input must
// either parse into tensors that tile the data section exactly, or throw
// FormatError.
#include <cstdint>
#include <cstdlib>

#include "formats/error.h"
#include "formats/safetensors.h"

using namespace sparsenorm::formats;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  SafetensorsFile f;
  try {
    f = ParseSafetensors({data, size});
  } catch (const FormatError&) {
    return 0;
  }
  std::uint64_t cursor = f.data_start;
  for (const SafetensorsTensor& t : f.tensors) {
    if (t.begin != cursor || t.end < t.begin || t.end > size) std::abort();
    std::uint64_t count = 1;
    for (const std::int64_t d : t.shape) {
      if (d < 0) std::abort();
      count *= static_cast<std::uint64_t>(d);
    }
    if (t.itemsize != 0 && count * t.itemsize != t.end - t.begin) std::abort();
    if (t.float_type && t.itemsize == 0) std::abort();
    if (f.Find(t.name) == nullptr) std::abort();
    if (t.end > t.begin) {
      volatile std::uint8_t last = data[t.end - 1];
      (void)last;
    }
    cursor = t.end;
  }
  if (cursor != size) std::abort();
  return 0;
}
