// What the split-phase primitives of the row operator (core/sharded.cc) and
// of the optimizer step (core/sharded_step.cc) share: a part made from a
// kernel's norm, the tests that a part is a valid finite one or a valid
// combined one, and the
// digest's mixing of 64-bit words.
#ifndef SPARSENORM_CORE_SHARDED_PARTS_H_
#define SPARSENORM_CORE_SHARDED_PARTS_H_

#include <cfloat>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>

#include "common/decision.h"
#include "core/status.h"
#include "sparsenorm/sharded.h"

namespace sparsenorm::detail {

inline bool IsFinitePart(const NormPart& part) {
  return part.scale >= 0.0 && part.scale <= DBL_MAX && part.sum >= 0.0 && part.sum <= DBL_MAX;
}

// combined[i], as a caller hands it to an apply phase: NaN (a row some
// shard found non-finite) or a valid finite part; anything else is the
// caller's mistake, an error before anything is written.
inline Status CheckCombinedPart(const NormPart& q, std::size_t i) {
  if (std::isnan(q.scale) || IsFinitePart(q)) return Status::Ok();
  return InvalidArgument("combined[", i, "] = (", FormatDouble(q.scale), ", ", FormatDouble(q.sum),
                         ") is not a combined norm: the scale must be NaN or finite and >= 0, "
                         "the sum finite and >= 0.");
}

// A shard's part from its norm as a kernel computed it: (norm, 1), so that
// one shard's combined norm is the norm itself, bit for bit.
inline NormPart PartOf(const VectorNorm& n) {
  if (!n.finite) return NormPart{std::numeric_limits<double>::quiet_NaN(), 0.0};
  if (n.value == 0.0) return NormPart{0.0, 0.0};
  return NormPart{n.value, 1.0};
}

// splitmix64's finalizer: every input bit affects every output bit.
inline std::uint64_t Mix(std::uint64_t x) {
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ull;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

inline std::uint64_t Fold(std::uint64_t h, std::uint64_t v) { return Mix(h ^ Mix(v + 0x9e3779b97f4a7c15ull)); }

inline std::uint64_t DoubleWord(double d) {
  std::uint64_t u;
  std::memcpy(&u, &d, sizeof u);
  return u;
}

}  // namespace sparsenorm::detail

#endif  // SPARSENORM_CORE_SHARDED_PARTS_H_
