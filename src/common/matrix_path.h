// How the vectors a matrix normalization works on lie in memory: the one
// classification the front end makes (core/validate.cc) and every backend
// follows. C++17: the CUDA launchers use it too.
#ifndef SPARSENORM_COMMON_MATRIX_PATH_H_
#define SPARSENORM_COMMON_MATRIX_PATH_H_

#include <stdint.h>

namespace sparsenorm {

enum class MatrixPath : uint8_t {
  kContiguous,    // each vector one run: dense rows, CSR rows, CSC columns
  kDenseColumns,  // columns of a dense row-major matrix
  kScattered,     // CSR columns, CSC rows: entries found through the minor indices
  kCoo,           // COO: the entries' order decides (CPU: grouped or as CSR/CSC;
                  // CUDA: scattered)
};

}  // namespace sparsenorm

#endif  // SPARSENORM_COMMON_MATRIX_PATH_H_
