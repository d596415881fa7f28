// Arrays received through DLPack, checked against what the core API accepts.
//
// The Python layer calls the producer's __dlpack__() and hands the capsule
// to C++. Taking it renames the capsule to "used_dltensor" (the protocol's
// way of saying the consumer now owns the DLManagedTensor) and the deleter
// runs when the Imported object dies, with the GIL held: NumPy's deleter
// decrements a Python reference count.
//
// Nothing here copies the caller's data. An array whose layout the core
// cannot address is refused with TypeError; only index lists, which the
// library never writes, may be gathered into a contiguous buffer.
#ifndef SPARSENORM_PYTHON_DLPACK_IMPORT_H_
#define SPARSENORM_PYTHON_DLPACK_IMPORT_H_

#include <dlpack/dlpack.h>
#include <pybind11/pybind11.h>

#include <cstdint>
#include <string>
#include <vector>

#include "sparsenorm/types.h"

namespace sparsenorm::python {

namespace py = pybind11;

enum class Place : std::uint8_t { kHost, kCuda };

class Imported {
 public:
  // `name` is how messages refer to the array ("table", "indices", ...).
  Imported(py::handle capsule, std::string name);
  ~Imported();
  Imported(const Imported&) = delete;
  Imported& operator=(const Imported&) = delete;

  const DLTensor& tensor() const { return managed_->dl_tensor; }
  const std::string& name() const { return name_; }
  // Where the memory is; TypeError for a device sparsenorm does not handle.
  Place place() const;
  int device_id() const { return managed_->dl_tensor.device.device_id; }
  std::int64_t numel() const;
  // First element, byte_offset applied.
  void* data() const;
  // "shape (3, 4)" / "strides (4, 1)" for messages.
  std::string ShapeText() const;
  std::string StridesText() const;
  std::string DTypeText() const;

 private:
  DLManagedTensor* managed_ = nullptr;
  std::string name_;
};

// A 2-D floating-point array as a core Table. With allow_transpose, an array
// whose columns (not rows) are contiguous is returned transposed and
// *transposed is set (the caller swaps the axis); otherwise such an array is
// a TypeError.
Table AsTable(const Imported& a, bool allow_transpose, bool* transposed);

// A 1-D contiguous array of any supported float dtype (sparse values).
Table AsValues(const Imported& a, std::int64_t expected_size);

// An integer index list of any shape, flattened in C order. A contiguous one
// is used where it lies; any other is gathered into *storage (read only by
// the library, so the copy is invisible to the caller), or refused with
// TypeError when storage is null (device memory, which the host cannot walk).
Indices AsIndices(const Imported& a, std::vector<std::int64_t>* storage);

// A 1-D contiguous int32/int64 array, used where it lies because the
// library may write it (sparse index arrays under pruning).
Indices AsIndexArray(const Imported& a, std::int64_t expected_size);

}  // namespace sparsenorm::python

#endif  // SPARSENORM_PYTHON_DLPACK_IMPORT_H_
