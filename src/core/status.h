// Building Status values: every message of the library is a full sentence
// that names the offending value and where it was found. Only the front end
// (src/core/) makes them; backends report typed findings (core/backend.h)
// that core/messages.cc turns into these sentences.
#ifndef SPARSENORM_CORE_STATUS_H_
#define SPARSENORM_CORE_STATUS_H_

#include <sstream>
#include <string>

#include "sparsenorm/types.h"

namespace sparsenorm::detail {

// Concatenates the arguments with operator<< (doubles with 17 digits; use
// FormatDouble for the shortest form that reads back as the same value).
template <class... Args>
std::string StrCat(const Args&... args) {
  std::ostringstream out;
  out.precision(17);
  (out << ... << args);
  return out.str();
}

template <class... Args>
Status InvalidArgument(const Args&... args) {
  return Status(StatusCode::kInvalidArgument, StrCat(args...));
}
template <class... Args>
Status OutOfRange(const Args&... args) {
  return Status(StatusCode::kOutOfRange, StrCat(args...));
}
template <class... Args>
Status Unsupported(const Args&... args) {
  return Status(StatusCode::kUnsupported, StrCat(args...));
}

// "could not allocate <what>."
Status OutOfMemory(const char* what);

// Formats a double compactly: 1, 0.5, 1e-12, nan, inf.
std::string FormatDouble(double v);

}  // namespace sparsenorm::detail

#endif  // SPARSENORM_CORE_STATUS_H_
