// What the programs under tests/mpi share: each runs under mpirun (tests/
// CMakeLists.txt), counts its failed checks per rank, and fails when any
// rank failed. Tables are plain row-major vectors of float or double that
// every rank builds from the same seed.
#ifndef SPARSENORM_TESTS_MPI_MPI_TEST_UTIL_H_
#define SPARSENORM_TESTS_MPI_MPI_TEST_UTIL_H_

#include <mpi.h>

#include <cstdint>
#include <cstdio>
#include <vector>

#include "sparsenorm/types.h"

namespace sparsenorm::mpi_test {

inline int g_rank = 0;
inline int g_size = 1;
inline int g_failures = 0;

#define CHECK(cond, ...)                                                            \
  do {                                                                              \
    if (!(cond)) {                                                                  \
      ++::sparsenorm::mpi_test::g_failures;                                         \
      std::fprintf(stderr, "rank %d, %s:%d: CHECK(%s) failed: ",                    \
                   ::sparsenorm::mpi_test::g_rank, __FILE__, __LINE__, #cond);      \
      std::fprintf(stderr, __VA_ARGS__);                                            \
      std::fprintf(stderr, "\n");                                                   \
    }                                                                               \
  } while (0)

inline void Start(int* argc, char*** argv) {
  MPI_Init(argc, argv);
  MPI_Comm_rank(MPI_COMM_WORLD, &g_rank);
  MPI_Comm_size(MPI_COMM_WORLD, &g_size);
}

// The exit status: 0 when no rank failed a check.
inline int Finish() {
  int failures = g_failures;
  MPI_Allreduce(MPI_IN_PLACE, &failures, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
  if (g_rank == 0) std::printf("%d ranks: %d failed checks\n", g_size, failures);
  MPI_Finalize();
  return failures == 0 ? 0 : 1;
}

// A row-major table of T (float or double).
template <class T>
struct Dense {
  std::int64_t rows = 0, cols = 0;
  std::vector<T> v;
  Dense() = default;
  // One element more than the table holds, so that even an empty table has
  // a pointer to pass.
  Dense(std::int64_t r, std::int64_t c) : rows(r), cols(c), v(static_cast<std::size_t>(r * c) + 1) {}
  T& at(std::int64_t r, std::int64_t c) { return v[static_cast<std::size_t>(r * cols + c)]; }
  const T& at(std::int64_t r, std::int64_t c) const { return v[static_cast<std::size_t>(r * cols + c)]; }
  Table view() { return MakeTable(v.data(), rows, cols); }
  ConstTable const_view() const { return ConstTable(MakeTable(const_cast<T*>(v.data()), rows, cols)); }
  // Columns [c0, c1) of every row.
  Dense Columns(std::int64_t c0, std::int64_t c1) const {
    Dense s(rows, c1 - c0);
    for (std::int64_t r = 0; r < rows; ++r) {
      for (std::int64_t c = c0; c < c1; ++c) s.at(r, c - c0) = at(r, c);
    }
    return s;
  }
};

}  // namespace sparsenorm::mpi_test

#endif  // SPARSENORM_TESTS_MPI_MPI_TEST_UTIL_H_
