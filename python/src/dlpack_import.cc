#include "dlpack_import.h"

#include <Python.h>

#include <sstream>
#include <utility>

#include "common/element_types.h"

namespace sparsenorm::python {
namespace {

const char* DeviceName(int type) {
  switch (type) {
    case kDLCPU: return "cpu";
    case kDLCUDA: return "cuda";
    case kDLCUDAHost: return "cuda_host";
    case kDLOpenCL: return "opencl";
    case kDLVulkan: return "vulkan";
    case kDLMetal: return "metal";
    case kDLVPI: return "vpi";
    case kDLROCM: return "rocm";
    case kDLROCMHost: return "rocm_host";
    case kDLExtDev: return "ext_dev";
    case kDLCUDAManaged: return "cuda_managed";
    default: return "unknown";
  }
}

std::string Join(const std::int64_t* v, int n) {
  std::ostringstream out;
  out << "(";
  for (int i = 0; i < n; ++i) out << (i ? ", " : "") << v[i];
  if (n == 1) out << ",";
  out << ")";
  return out.str();
}

// Element strides of a tensor; DLPack allows a null pointer for C order.
std::vector<std::int64_t> StridesOf(const DLTensor& t) {
  std::vector<std::int64_t> s(static_cast<std::size_t>(t.ndim));
  if (t.strides != nullptr) {
    for (int i = 0; i < t.ndim; ++i) s[i] = t.strides[i];
  } else {
    std::int64_t step = 1;
    for (int i = t.ndim - 1; i >= 0; --i) {
      s[i] = step;
      step *= t.shape[i];
    }
  }
  return s;
}

// C order, ignoring the strides of dimensions of size 1 (which producers set
// freely) and of empty arrays.
bool IsCContiguous(const DLTensor& t) {
  if (t.strides == nullptr) return true;
  std::int64_t step = 1;
  for (int i = t.ndim - 1; i >= 0; --i) {
    if (t.shape[i] == 0) return true;
    if (t.shape[i] != 1 && t.strides[i] != step) return false;
    step *= t.shape[i];
  }
  return true;
}

// The element traits carry DLPack's type codes as plain numbers (the
// library does not depend on dlpack.h): they must be DLPack's.
static_assert(Element<float>::kDLPackCode == kDLFloat && Element<bfloat16>::kDLPackCode == kDLBfloat,
              "src/common/element_types.h disagrees with dlpack.h");

bool FloatDType(const DLDataType& d, DType* out) {
  if (d.lanes != 1) return false;
  const DTypeInfo* info = FindDTypeByDLPack(d.code, d.bits);
  if (info == nullptr) return false;
  *out = info->dtype;
  return true;
}

bool IndexDType(const DLDataType& d, IndexType* out) {
  if (d.lanes != 1 || d.code != kDLInt) return false;
  for (const IndexTypeInfo& info : kIndexTypeInfos) {
    if (8 * info.size == d.bits) {
      *out = info.type;
      return true;
    }
  }
  return false;
}

void CheckAligned(const Imported& a, std::size_t element_size) {
  if (reinterpret_cast<std::uintptr_t>(a.data()) % element_size != 0) {
    throw py::type_error(a.name() + "'s data at address " +
                         std::to_string(reinterpret_cast<std::uintptr_t>(a.data())) +
                         " is not aligned to its " + std::to_string(element_size) +
                         "-byte elements; sparsenorm needs naturally aligned elements.");
  }
}

DType FloatOrThrow(const Imported& a) {
  DType dtype;
  if (!FloatDType(a.tensor().dtype, &dtype)) {
    throw py::type_error(a.name() + " has dtype " + a.DTypeText() +
                         "; sparsenorm handles " + DTypeNameList(" and ") + ".");
  }
  return dtype;
}

IndexType IndexOrThrow(const Imported& a) {
  IndexType type;
  if (!IndexDType(a.tensor().dtype, &type)) {
    throw py::type_error(a.name() + " has dtype " + a.DTypeText() +
                         "; index arrays must hold int32 or int64 values.");
  }
  return type;
}

void CheckLength(const Imported& a, std::int64_t expected_size) {
  if (a.tensor().ndim != 1) {
    throw py::value_error(a.name() + " must be 1-D; got " + a.ShapeText() + ".");
  }
  if (expected_size >= 0 && a.tensor().shape[0] != expected_size) {
    throw py::value_error(a.name() + " has " + std::to_string(a.tensor().shape[0]) +
                          " elements; " + std::to_string(expected_size) + " were expected.");
  }
  if (!IsCContiguous(a.tensor())) {
    throw py::type_error(a.name() + " has " + a.StridesText() +
                         " instead of contiguous elements; sparsenorm works in the array "
                         "itself and does not make hidden copies.");
  }
}

}  // namespace

Imported::Imported(py::handle capsule, std::string name) : name_(std::move(name)) {
  if (!PyCapsule_IsValid(capsule.ptr(), "dltensor")) {
    throw py::type_error(name_ + " did not arrive as an unused DLPack capsule.");
  }
  managed_ = static_cast<DLManagedTensor*>(PyCapsule_GetPointer(capsule.ptr(), "dltensor"));
  if (managed_ == nullptr || PyCapsule_SetName(capsule.ptr(), "used_dltensor") != 0) {
    managed_ = nullptr;
    throw py::error_already_set();
  }
}

Place Imported::place() const {
  const DLDevice& d = tensor().device;
  if (d.device_type == kDLCPU || d.device_type == kDLCUDAHost) return Place::kHost;
  if (d.device_type == kDLCUDA || d.device_type == kDLCUDAManaged) return Place::kCuda;
  throw py::type_error(name_ + " lives on a " + DeviceName(d.device_type) +
                       " device (DLPack device type " + std::to_string(d.device_type) +
                       "); sparsenorm handles CPU memory and CUDA devices.");
}

Imported::~Imported() {
  if (managed_ != nullptr && managed_->deleter != nullptr) managed_->deleter(managed_);
}

std::int64_t Imported::numel() const {
  std::int64_t n = 1;
  for (int i = 0; i < tensor().ndim; ++i) n *= tensor().shape[i];
  return n;
}

void* Imported::data() const {
  return static_cast<char*>(tensor().data) + tensor().byte_offset;
}

std::string Imported::ShapeText() const {
  return "shape " + Join(tensor().shape, tensor().ndim);
}

std::string Imported::StridesText() const {
  const std::vector<std::int64_t> s = StridesOf(tensor());
  return "element strides " + Join(s.data(), tensor().ndim);
}

std::string Imported::DTypeText() const {
  const DLDataType& d = tensor().dtype;
  std::string base;
  switch (d.code) {
    case kDLInt: base = "int"; break;
    case kDLUInt: base = "uint"; break;
    case kDLFloat: base = "float"; break;
    case kDLBfloat: base = "bfloat"; break;
    case kDLComplex: base = "complex"; break;
    default: base = "code" + std::to_string(d.code) + "_"; break;
  }
  std::string text = base + std::to_string(d.bits);
  if (d.lanes != 1) text += "x" + std::to_string(d.lanes);
  return text;
}

Table AsTable(const Imported& a, bool allow_transpose, bool* transposed) {
  const DLTensor& t = a.tensor();
  const DType dtype = FloatOrThrow(a);
  if (t.ndim != 2) {
    throw py::value_error(a.name() + " must be a 2-D array (rows x columns); got " +
                          a.ShapeText() + ".");
  }
  const std::vector<std::int64_t> s = StridesOf(t);
  const std::int64_t rows = t.shape[0], cols = t.shape[1];
  // Strides of size-1 dimensions carry no information; producers set them freely.
  const bool rows_contiguous = cols <= 1 || s[1] == 1;
  const bool rows_apart = rows <= 1 || s[0] >= cols;
  const bool cols_contiguous = rows <= 1 || s[0] == 1;
  const bool cols_apart = cols <= 1 || s[1] >= rows;
  if (transposed != nullptr) *transposed = false;
  Table table;
  table.data = a.data();
  table.dtype = dtype;
  if (rows_contiguous && rows_apart) {
    table.rows = rows;
    table.cols = cols;
    table.row_stride = rows <= 1 ? 0 : s[0];
  } else if (allow_transpose && cols_contiguous && cols_apart) {
    table.rows = cols;
    table.cols = rows;
    table.row_stride = cols <= 1 ? 0 : s[1];
    *transposed = true;
  } else {
    throw py::type_error(
        a.name() + " of " + a.ShapeText() + " has " + a.StridesText() + ": " +
        (allow_transpose ? "neither its rows nor its columns are"
                         : "its rows are not") +
        " contiguous and non-overlapping. sparsenorm modifies the array in place and does "
        "not work on a hidden copy; pass an array whose " +
        (allow_transpose ? "rows or columns" : "rows") +
        " are contiguous (a C-ordered array, or a slice of one).");
  }
  if (rows == 0 || cols == 0) table.row_stride = 0;
  CheckAligned(a, DTypeSize(dtype));
  return table;
}

Table AsValues(const Imported& a, std::int64_t expected_size) {
  const DType dtype = FloatOrThrow(a);
  CheckLength(a, expected_size);
  CheckAligned(a, DTypeSize(dtype));
  return Table{a.data(), dtype, 1, a.tensor().shape[0], 0};
}

Indices AsIndexArray(const Imported& a, std::int64_t expected_size) {
  const IndexType type = IndexOrThrow(a);
  CheckLength(a, expected_size);
  CheckAligned(a, IndexSize(type));
  return Indices(a.data(), type, a.tensor().shape[0]);
}

Indices AsIndices(const Imported& a, std::vector<std::int64_t>* storage) {
  const IndexType type = IndexOrThrow(a);
  const DLTensor& t = a.tensor();
  const std::int64_t n = a.numel();
  if (IsCContiguous(t)) {
    CheckAligned(a, IndexSize(type));
    return Indices(a.data(), type, n);
  }
  if (storage == nullptr) {
    throw py::type_error(a.name() + " of " + a.ShapeText() + " has " + a.StridesText() +
                         "; index arrays in device memory must be contiguous.");
  }
  // A strided index array: walk it in C order with a multi-index.
  const std::vector<std::int64_t> s = StridesOf(t);
  storage->resize(static_cast<std::size_t>(n));
  std::vector<std::int64_t> at(static_cast<std::size_t>(t.ndim), 0);
  std::int64_t offset = 0;
  for (std::int64_t k = 0; k < n; ++k) {
    VisitIndexType(type, [&](auto i) { (*storage)[k] = static_cast<const TypeOf<decltype(i)>*>(a.data())[offset]; });
    for (int d = t.ndim - 1; d >= 0; --d) {
      offset += s[d];
      if (++at[d] < t.shape[d]) break;
      offset -= s[d] * t.shape[d];
      at[d] = 0;
    }
  }
  return Indices(storage->data(), IndexType::kInt64, n);
}

}  // namespace sparsenorm::python
