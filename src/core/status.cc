#include "core/status.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>

namespace sparsenorm::detail {

Status OutOfMemory(const char* what) {
  return Status(StatusCode::kOutOfMemory, StrCat("could not allocate ", what, "."));
}

std::string FormatDouble(double v) {
  if (std::isnan(v)) return "nan";
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  char buf[32];
  for (int precision = 6; precision <= 17; ++precision) {
    std::snprintf(buf, sizeof buf, "%.*g", precision, v);
    if (std::strtod(buf, nullptr) == v) break;
  }
  return buf;
}

}  // namespace sparsenorm::detail
