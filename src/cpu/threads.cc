// How many threads the CPU backend may use, and which SIMD target it runs.

#include <algorithm>
#include <cstdlib>

#include "core/backend.h"
#include "cpu/rows_cpu.h"

#if defined(_OPENMP)
#include <omp.h>
#endif

namespace sparsenorm::cpu {

// Deliberately not omp_get_max_threads(): a host such as PyTorch lowers that
// for its own work (to 1 on some machines), and the library would inherit it.
int AvailableThreads() {
  static const int threads = [] {
    for (const char* name : {"SPARSENORM_NUM_THREADS", "OMP_NUM_THREADS"}) {
      // OMP_NUM_THREADS may be a list ("4,2"); its first entry is ours.
      if (const char* v = std::getenv(name)) {
        const long n = std::strtol(v, nullptr, 10);
        if (n > 0) return static_cast<int>(std::min<long>(n, 1 << 16));
      }
    }
#if defined(_OPENMP)
    return std::max(1, omp_get_num_procs());
#else
    return 1;
#endif
  }();
  return threads;
}

const char* SimdTarget() { return DispatchedTargetName(); }

}  // namespace sparsenorm::cpu
