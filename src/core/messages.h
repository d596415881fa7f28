// The one formatter of what backends find: a Finding (core/backend.h) as the
// Status the caller sees. The CPU, the reference and the CUDA backend report
// the same bad input with the same finding, hence in the same words.
#ifndef SPARSENORM_CORE_MESSAGES_H_
#define SPARSENORM_CORE_MESSAGES_H_

#include <cstdint>

#include "core/backend.h"
#include "sparsenorm/types.h"

namespace sparsenorm::detail {

// Ok for FindingKind::kNone.
Status StatusOf(const Finding& finding);

// list[position] = value outside [0, limit); `what` names one of the limit's
// items ("table row", "column").
Status IndexOutOfRange(const char* list, std::int64_t position, std::int64_t value,
                       std::int64_t limit, const char* what);

}  // namespace sparsenorm::detail

#endif  // SPARSENORM_CORE_MESSAGES_H_
