// sparsenorm._core: the compiled half of the Python package.
//
// Each function takes DLPack capsules (the Python layer calls __dlpack__ and
// picks the stream), views them as the core's Table/Indices without copying,
// releases the GIL for the computation and turns a failed Status into the
// Python exception of its kind, with the core's message:
//   kInvalidArgument -> ValueError      kOutOfRange  -> IndexError
//   kUnsupported     -> TypeError       kNonFinite   -> NonFiniteError (a ValueError)
//   kOutOfMemory     -> MemoryError     kDeviceError -> RuntimeError
// The public signatures, defaults and docstrings live in the Python files.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common/element_types.h"
#include "dlpack_import.h"
#include "sparsenorm/matrix.h"
#include "sparsenorm/optim.h"
#include "sparsenorm/rows.h"
#include "sparsenorm/sharded.h"
#include "sparsenorm/sharded_step.h"
#include "sparsenorm/types.h"
#include "sparsenorm/version.h"

#if SPARSENORM_PYTHON_CUDA
#include "cuda_seam.h"
#endif

namespace sparsenorm::python {
namespace {

PyObject* non_finite_error = nullptr;

[[noreturn]] void Raise(const Status& s) {
  PyObject* type = PyExc_RuntimeError;
  switch (s.code()) {
    case StatusCode::kInvalidArgument: type = PyExc_ValueError; break;
    case StatusCode::kOutOfRange: type = PyExc_IndexError; break;
    case StatusCode::kUnsupported: type = PyExc_TypeError; break;
    case StatusCode::kNonFinite: type = non_finite_error; break;
    case StatusCode::kOutOfMemory: type = PyExc_MemoryError; break;
    default: break;
  }
  PyErr_SetString(type, s.message().c_str());
  throw py::error_already_set();
}

NormalizeOptions Options(int mode, double target, double p, double eps, int non_finite,
                         int num_threads, int backend) {
  NormalizeOptions o;
  o.mode = static_cast<NormMode>(mode);
  o.target = target;
  o.p = p;
  o.eps = eps;
  o.non_finite = static_cast<NonFinitePolicy>(non_finite);
  o.num_threads = num_threads;
  o.backend = static_cast<Backend>(backend);
  return o;
}

#if !SPARSENORM_PYTHON_CUDA
[[noreturn]] void NoCuda(const Imported& a) {
  throw py::type_error(a.name() + " is on CUDA device " + std::to_string(a.device_id()) +
                       ", but this sparsenorm module was built without CUDA support.");
}
#endif

void SameDevice(const Imported& a, const Imported& b) {
  if (a.place() != b.place() || (a.place() == Place::kCuda && a.device_id() != b.device_id())) {
    auto where = [](const Imported& x) {
      return x.place() == Place::kHost ? std::string("in CPU memory")
                                       : "on CUDA device " + std::to_string(x.device_id());
    };
    throw py::type_error(a.name() + " is " + where(a) + " but " + b.name() + " is " + where(b) +
                         "; pass both on the same device.");
  }
}

py::tuple RowStatsTuple(const RowStats& s) {
  return py::make_tuple(s.indices_seen, s.distinct_rows, s.rows_scaled, s.nonfinite_rows);
}

// `seconds`, when not null, receives the time of the core call alone.
py::tuple NormalizeRowsImpl(py::handle table_capsule, py::handle indices_capsule, int mode,
                            double target, double p, double eps, int non_finite, int num_threads,
                            int backend, std::int64_t stream, double* seconds) {
  Imported table_array(table_capsule, "table");
  Imported index_array(indices_capsule, "indices");
  const Table table = AsTable(table_array, /*allow_transpose=*/false, nullptr);
  SameDevice(table_array, index_array);
  const NormalizeOptions options =
      Options(mode, target, p, eps, non_finite, num_threads, backend);
  RowStats stats;
  Status status;
  if (table_array.place() == Place::kHost) {
    std::vector<std::int64_t> gathered;
    const Indices indices = AsIndices(index_array, &gathered);
    py::gil_scoped_release release;
    const auto start = std::chrono::steady_clock::now();
    status = NormalizeRows(table, indices, options, &stats);
    if (seconds != nullptr) {
      *seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    }
  } else {
#if SPARSENORM_PYTHON_CUDA
    const Indices indices = AsIndices(index_array, nullptr);  // device memory: no gather
    py::gil_scoped_release release;
    status = NormalizeRowsOnDevice(table_array.device_id(), stream, table, indices, options,
                                   &stats);
#else
    static_cast<void>(stream);
    NoCuda(table_array);
#endif
  }
  if (!status.ok()) Raise(status);
  return RowStatsTuple(stats);
}

py::tuple NormalizeRowsPy(py::handle table_capsule, py::handle indices_capsule, int mode,
                          double target, double p, double eps, int non_finite, int num_threads,
                          int backend, std::int64_t stream) {
  return NormalizeRowsImpl(table_capsule, indices_capsule, mode, target, p, eps, non_finite,
                           num_threads, backend, stream, nullptr);
}

// For bench/compare_python.py: the C++ call's own time, measured around
// NormalizeRows alone, beside what it returns.
py::tuple TimedNormalizeRowsPy(py::handle table_capsule, py::handle indices_capsule,
                               double target) {
  double seconds = 0.0;
  py::tuple stats = NormalizeRowsImpl(table_capsule, indices_capsule, 0, target, 2.0, 1e-12, 0,
                                      0, 0, -1, &seconds);
  return py::make_tuple(seconds, stats);
}

py::tuple MatrixStatsTuple(const MatrixStats& s) {
  return py::make_tuple(s.vectors, s.vectors_scaled, s.zero_vectors, s.nonfinite_vectors,
                        s.pruned, s.nnz_before, s.nnz_after);
}

MatrixOptions MakeMatrixOptions(int axis, int mode, double target, double p, double eps,
                                int non_finite, int num_threads, int backend,
                                double prune_below) {
  MatrixOptions m;
  m.norm = Options(mode, target, p, eps, non_finite, num_threads, backend);
  m.axis = axis;
  m.prune_below = prune_below;
  return m;
}

py::tuple NormalizeDensePy(py::handle matrix_capsule, py::handle subset_capsule, int axis,
                           int mode, double target, double p, double eps, int non_finite,
                           int num_threads, int backend, double prune_below,
                           std::int64_t stream) {
  Imported matrix_array(matrix_capsule, "X");
  bool transposed = false;
  const Table matrix = AsTable(matrix_array, /*allow_transpose=*/true, &transposed);
  MatrixOptions options = MakeMatrixOptions(axis, mode, target, p, eps, non_finite, num_threads,
                                            backend, prune_below);
  // A column-major X is the row-major transpose: the other axis of it.
  if (transposed && (axis == 0 || axis == 1)) options.axis = 1 - axis;
  std::unique_ptr<Imported> subset_array;
  std::vector<std::int64_t> gathered;
  if (!subset_capsule.is_none()) {
    subset_array = std::make_unique<Imported>(subset_capsule, "subset");
    SameDevice(matrix_array, *subset_array);
    options.subset = AsIndices(*subset_array,
                               matrix_array.place() == Place::kHost ? &gathered : nullptr);
  }
  MatrixStats stats;
  Status status;
  if (matrix_array.place() == Place::kHost) {
    py::gil_scoped_release release;
    status = NormalizeMatrix(matrix, options, &stats);
  } else {
#if SPARSENORM_PYTHON_CUDA
    py::gil_scoped_release release;
    status = NormalizeMatrixOnDevice(matrix_array.device_id(), stream, matrix, options, &stats);
#else
    static_cast<void>(stream);
    NoCuda(matrix_array);
#endif
  }
  if (!status.ok()) Raise(status);
  return MatrixStatsTuple(stats);
}

// A SciPy matrix's arrays as a SparseMatrix, with the options and the
// subset: sparsenorm.normalize and the sharded calls of
// sparsenorm.distributed import them alike. CSR/CSC: first = indptr,
// second = indices. COO: first = row, second = col.
struct ImportedSparseMatrix {
  Imported values_array;
  Imported first_array;
  Imported second_array;
  SparseMatrix matrix;
  MatrixOptions options;
  std::unique_ptr<Imported> subset_array;
  std::vector<std::int64_t> subset_storage;

  ImportedSparseMatrix(int format, std::int64_t rows, std::int64_t cols, std::int64_t nnz,
                       py::handle values_capsule, py::handle first_capsule,
                       py::handle second_capsule, py::handle subset_capsule, int axis, int mode,
                       double target, double p, double eps, int non_finite, int num_threads,
                       int backend, double prune_below)
      : values_array(values_capsule, "X.data"),
        first_array(first_capsule, format == static_cast<int>(SparseFormat::kCOO) ? "X.row" : "X.indptr"),
        second_array(second_capsule, format == static_cast<int>(SparseFormat::kCOO) ? "X.col" : "X.indices") {
    const bool coo = format == static_cast<int>(SparseFormat::kCOO);
    if (format < 0 || format > 2) throw py::value_error("unknown sparse format code.");
    for (const Imported* a : {&values_array, &first_array, &second_array}) {
      if (a->place() != Place::kHost) {
        throw py::type_error(a->name() + " is not in CPU memory; sparse matrices are handled "
                             "on the CPU.");
      }
    }
    SparseMatrix& m = matrix;
    m.format = static_cast<SparseFormat>(format);
    m.rows = rows;
    m.cols = cols;
    m.nnz = nnz;
    const Table values = AsValues(values_array, nnz);
    m.values = values.data;
    m.dtype = values.dtype;
    const std::int64_t pointers = (m.format == SparseFormat::kCSR ? rows : cols) + 1;
    const Indices first = AsIndexArray(first_array, coo ? nnz : pointers);
    const Indices second = AsIndexArray(second_array, nnz);
    if (first.type != second.type) {
      throw py::type_error(first_array.name() + " is " + first_array.DTypeText() + " but " +
                           second_array.name() + " is " + second_array.DTypeText() +
                           "; both index arrays must have the same dtype.");
    }
    m.index_type = first.type;
    if (coo) {
      m.row = const_cast<void*>(first.data);
      m.col = const_cast<void*>(second.data);
    } else {
      m.indptr = const_cast<void*>(first.data);
      m.indices = const_cast<void*>(second.data);
    }
    options = MakeMatrixOptions(axis, mode, target, p, eps, non_finite, num_threads, backend,
                                prune_below);
    if (!subset_capsule.is_none()) {
      subset_array = std::make_unique<Imported>(subset_capsule, "subset");
      SameDevice(values_array, *subset_array);
      options.subset = AsIndices(*subset_array, &subset_storage);
    }
  }
};

py::tuple NormalizeSparsePy(int format, std::int64_t rows, std::int64_t cols, std::int64_t nnz,
                            py::handle values_capsule, py::handle first_capsule,
                            py::handle second_capsule, py::handle subset_capsule, int axis,
                            int mode, double target, double p, double eps, int non_finite,
                            int num_threads, int backend, double prune_below) {
  ImportedSparseMatrix imported(format, rows, cols, nnz, values_capsule, first_capsule,
                                second_capsule, subset_capsule, axis, mode, target, p, eps,
                                non_finite, num_threads, backend, prune_below);
  MatrixStats stats;
  Status status;
  {
    py::gil_scoped_release release;
    status = NormalizeMatrix(&imported.matrix, imported.options, &stats);
  }
  if (!status.ok()) Raise(status);
  return MatrixStatsTuple(stats);
}

// Many tables in one call (NormalizeRowsMany), on the CPU: one capsule per
// table and one per index list, one target per table, the other options
// shared.
py::list NormalizeRowsManyPy(py::list table_capsules, py::list index_capsules,
                             std::vector<double> targets, int mode, double p, double eps,
                             int non_finite, int num_threads, int backend) {
  const std::size_t n = table_capsules.size();
  if (index_capsules.size() != n || targets.size() != n) {
    throw py::value_error("normalize_rows_many: one index list and one target per table.");
  }
  std::vector<std::unique_ptr<Imported>> arrays;
  std::vector<std::vector<std::int64_t>> gathered(n);
  std::vector<RowsBatchEntry> entries(n);
  for (std::size_t k = 0; k < n; ++k) {
    // (Appended piece by piece: GCC 12 warns falsely on "literal" + string.)
    std::string which = std::to_string(k);
    which.insert(which.begin(), '[');
    which.push_back(']');
    arrays.push_back(std::make_unique<Imported>(table_capsules[k], std::string("tables") += which));
    const Imported& table = *arrays.back();
    arrays.push_back(std::make_unique<Imported>(index_capsules[k], std::string("indices") += which));
    const Imported& index = *arrays.back();
    if (table.place() != Place::kHost) {
      throw py::type_error(table.name() + " is on CUDA device " + std::to_string(table.device_id()) +
                           "; many tables in one call run on the CPU only in this version.");
    }
    SameDevice(table, index);
    entries[k].table = AsTable(table, /*allow_transpose=*/false, nullptr);
    entries[k].indices = AsIndices(index, &gathered[k]);
    entries[k].options = Options(mode, targets[k], p, eps, non_finite, num_threads, backend);
  }
  std::vector<RowStats> stats(n);
  Status status;
  {
    py::gil_scoped_release release;
    status = NormalizeRowsMany(entries, stats);
  }
  if (!status.ok()) {
    // The core names entries[k] (and entries[k].table); here they are the
    // caller's tables[k] and indices[k].
    std::string m = status.message();
    for (const std::string from : {".table and ", ".table share"}) {
      for (std::size_t at = m.find(from); at != std::string::npos; at = m.find(from)) {
        m.erase(at, 6);
      }
    }
    for (std::size_t at = m.find("entries["); at != std::string::npos; at = m.find("entries[")) {
      m.replace(at, 8, "tables[");
    }
    Raise(Status(status.code(), m));
  }
  py::list out;
  for (const RowStats& s : stats) out.append(RowStatsTuple(s));
  return out;
}

// One table's optimizer step, imported from Python: the arrays stay
// imported (and their owners alive) as long as this lives. `state` is a
// tuple of the capsules of the state tables the kind uses (Adagrad's and
// row-wise Adagrad's sum, the latter as rows x 1; Adam's exp_avg,
// exp_avg_sq); `indices` None means a dense gradient. `numbers` are, in
// order: lr, eps, weight_decay, lr_decay, beta1, beta2, constraint target,
// constraint p, constraint eps; `codes`: kind, weight_decay_mode,
// caffe2_sign, step, constraint kind, rounding, seed, non_finite,
// num_threads, backend.
struct ImportedStep {
  std::vector<std::unique_ptr<Imported>> arrays;
  std::vector<std::int64_t> gathered;
  StepBatchEntry entry;

  ImportedStep(py::handle table_capsule, py::tuple state_capsules, py::handle indices_capsule,
               py::handle grad_capsule, const std::vector<double>& numbers,
               const std::vector<std::int64_t>& codes) {
    if (numbers.size() != 9 || codes.size() != 10) {
      throw py::value_error("optimizer_step: wrong option count (the package's Python layer packs them).");
    }
    OptimizerOptions& o = entry.options;
    o.lr = numbers[0];
    o.eps = numbers[1];
    o.weight_decay = numbers[2];
    o.lr_decay = numbers[3];
    o.beta1 = numbers[4];
    o.beta2 = numbers[5];
    o.constraint.target = numbers[6];
    o.constraint.p = numbers[7];
    o.constraint.eps = numbers[8];
    o.kind = static_cast<OptimizerKind>(codes[0]);
    o.weight_decay_mode = static_cast<WeightDecayMode>(codes[1]);
    o.caffe2_sign = codes[2] != 0;
    o.step = codes[3];
    o.constraint.kind = static_cast<ConstraintKind>(codes[4]);
    o.rounding = static_cast<Rounding>(codes[5]);
    o.seed = static_cast<std::uint64_t>(codes[6]);
    o.non_finite = static_cast<NonFinitePolicy>(codes[7]);
    o.num_threads = static_cast<int>(codes[8]);
    o.backend = static_cast<Backend>(codes[9]);

    const Imported& table = Import(table_capsule, "table");
    entry.table = AsTable(table, /*allow_transpose=*/false, nullptr);
    entry.dense = indices_capsule.is_none();
    const Imported& grad = Import(grad_capsule, entry.dense ? "gradient" : "values");
    entry.values = AsTable(grad, /*allow_transpose=*/false, nullptr);
    SameDevice(table, grad);
    static const char* const kStateNames[2][2] = {{"state sum", ""}, {"exp_avg", "exp_avg_sq"}};
    const bool adam = o.kind == OptimizerKind::kAdam;
    Table* slots[2] = {adam ? &entry.state.exp_avg : &entry.state.sum, &entry.state.exp_avg_sq};
    if (state_capsules.size() > 2) throw py::value_error("optimizer_step: at most two state tables.");
    for (std::size_t i = 0; i < state_capsules.size(); ++i) {
      const Imported& state = Import(state_capsules[i], kStateNames[adam ? 1 : 0][i]);
      SameDevice(table, state);
      *slots[i] = AsTable(state, /*allow_transpose=*/false, nullptr);
    }
    const Imported* index = nullptr;
    if (!entry.dense) {
      index = &Import(indices_capsule, "indices");
      SameDevice(table, *index);
    }
    on_device = table.place() != Place::kHost;
    device_id = table.device_id();
#if !SPARSENORM_PYTHON_CUDA
    if (on_device) NoCuda(table);
#endif
    // Device memory is read where it is: no gather.
    if (index != nullptr) entry.indices = AsIndices(*index, on_device ? nullptr : &gathered);
  }

  bool on_device = false;
  int device_id = 0;

 private:
  const Imported& Import(py::handle capsule, const char* name) {
    arrays.push_back(std::make_unique<Imported>(capsule, name));
    return *arrays.back();
  }
};

// On CUDA arrays the step is enqueued on `stream` (the arrays' owner's
// current stream) and waited for, so that its errors raise here.
py::tuple OptimizerStepPy(py::handle table_capsule, py::tuple state_capsules,
                          py::handle indices_capsule, py::handle grad_capsule,
                          std::vector<double> numbers, std::vector<std::int64_t> codes,
                          std::int64_t stream) {
  const ImportedStep step(table_capsule, state_capsules, indices_capsule, grad_capsule, numbers, codes);
  const StepBatchEntry& e = step.entry;
  RowStats stats;
  Status status;
  {
    py::gil_scoped_release release;
    if (!step.on_device) {
      status = e.dense ? OptimizerStepDense(e.table, e.state, e.values, e.options, &stats)
                       : OptimizerStep(e.table, e.state, e.indices, e.values, e.options, &stats);
    } else {
#if SPARSENORM_PYTHON_CUDA
      status = OptimizerStepOnDevice(step.device_id, stream, e, &stats);
#endif
    }
  }
#if !SPARSENORM_PYTHON_CUDA
  static_cast<void>(stream);
#endif
  if (!status.ok()) Raise(status);
  return RowStatsTuple(stats);
}

// Many tables' steps in one call (OptimizerStepMany): `steps` is a list of
// tuples with optimizer_step's arguments. Messages start with "entries[k]: "
// (or name two entries that share memory); the Python layer names the
// parameters.
py::list OptimizerStepManyPy(py::list steps) {
  std::vector<std::unique_ptr<ImportedStep>> imported;
  std::vector<StepBatchEntry> entries;
  for (py::handle item : steps) {
    const py::tuple t = py::reinterpret_borrow<py::tuple>(item);
    if (t.size() != 6) throw py::value_error("optimizer_step_many: each step is a tuple of six.");
    // What importing finds wrong (a layout, a dtype) names the entry too.
    const std::string entry = "entries[" + std::to_string(entries.size()) + "]: ";
    try {
      imported.push_back(std::make_unique<ImportedStep>(t[0], t[1].cast<py::tuple>(), t[2], t[3],
                                                        t[4].cast<std::vector<double>>(),
                                                        t[5].cast<std::vector<std::int64_t>>()));
    } catch (const py::type_error& e) {
      throw py::type_error(entry + e.what());
    } catch (const py::value_error& e) {
      throw py::value_error(entry + e.what());
    } catch (py::error_already_set& e) {
      if (!e.matches(PyExc_Exception)) throw;
      const std::string message = entry + py::str(e.value()).cast<std::string>();
      PyErr_SetString(e.type().ptr(), message.c_str());
      throw py::error_already_set();
    }
    if (imported.back()->on_device) {
      throw py::type_error("entries[" + std::to_string(entries.size()) + "].table is on CUDA device " +
                           std::to_string(imported.back()->device_id) +
                           "; many tables in one step run on the CPU only in this version (call "
                           "optimizer_step per table on CUDA).");
    }
    entries.push_back(imported.back()->entry);
  }
  std::vector<RowStats> stats(entries.size());
  Status status;
  {
    py::gil_scoped_release release;
    status = OptimizerStepMany(entries, stats);
  }
  if (!status.ok()) Raise(status);
  py::list out;
  for (const RowStats& s : stats) out.append(RowStatsTuple(s));
  return out;
}

// The split-phase row operator (sparsenorm/sharded.h) for
// sparsenorm.distributed, which moves the parts through the caller's
// communicator (mpi4py, torch.distributed). Host tables only. Small arrays
// (rows, parts) travel as bytes and buffers: int64 rows, float64
// (scale, sum) pairs.

py::bytes BytesOf(const void* data, std::size_t size) {
  return py::bytes(static_cast<const char*>(data), size);
}

void RequireHost(const Imported& a) {
  if (a.place() != Place::kHost) {
    throw py::type_error(a.name() + " is on CUDA device " + std::to_string(a.device_id()) +
                         "; sparsenorm.distributed works on arrays in CPU memory.");
  }
}

Table HostTable(const Imported& a) {
  RequireHost(a);
  return AsTable(a, /*allow_transpose=*/false, nullptr);
}

// A C-contiguous buffer of `count` elements of `format` ("q" int64, "d" float64).
const void* BufferData(const py::buffer_info& b, const char* format, std::size_t item,
                       std::int64_t count, const char* name) {
  if (b.itemsize != static_cast<py::ssize_t>(item) || b.format.find_first_of(format) == std::string::npos ||
      b.size != count) {
    throw py::value_error(std::string(name) + " must hold " + std::to_string(count) + " " +
                          (item == 8 && format[0] == 'd' ? "float64" : "int64") + " values; got " +
                          std::to_string(b.size) + " of format '" + b.format + "'.");
  }
  py::ssize_t expected = static_cast<py::ssize_t>(item);
  for (py::ssize_t d = b.ndim - 1; d >= 0; --d) {
    if (b.shape[d] > 1 && b.strides[d] != expected) {
      throw py::value_error(std::string(name) + " must be C-contiguous.");
    }
    expected *= b.shape[d];
  }
  return b.ptr;
}

// (rows, parts): the distinct indexed rows, ascending, and the partial norm
// of this slice's part of each, as bytes.
py::tuple RowNormPartsPy(py::handle table_capsule, py::handle indices_capsule, int mode,
                         double target, double p, double eps, int non_finite, int num_threads,
                         int backend) {
  Imported table_array(table_capsule, "table");
  Imported index_array(indices_capsule, "indices");
  const Table table = HostTable(table_array);
  SameDevice(table_array, index_array);
  std::vector<std::int64_t> gathered;
  const Indices indices = AsIndices(index_array, &gathered);
  const NormalizeOptions options = Options(mode, target, p, eps, non_finite, num_threads, backend);
  std::vector<std::int64_t> rows;
  std::vector<NormPart> parts;
  Status status;
  {
    py::gil_scoped_release release;
    status = RowNormParts(ConstTable(table), indices, options, &rows, &parts);
  }
  if (!status.ok()) Raise(status);
  return py::make_tuple(BytesOf(rows.data(), rows.size() * sizeof(std::int64_t)),
                        BytesOf(parts.data(), parts.size() * sizeof(NormPart)));
}

// Combines the gathered parts (`shards` blocks of rows.size() pairs each, in
// rank order) and applies them to this slice; the statistics tuple.
py::tuple ApplyRowNormPartsPy(py::handle table_capsule, py::buffer rows_buffer,
                              py::buffer gathered_buffer, int shards, int mode, double target,
                              double p, double eps, int non_finite, int num_threads, int backend) {
  Imported table_array(table_capsule, "table");
  const Table table = HostTable(table_array);
  const py::buffer_info rows_info = rows_buffer.request();
  const py::buffer_info gathered_info = gathered_buffer.request();
  const std::int64_t n = rows_info.size;
  if (shards < 1) throw py::value_error("shards must be >= 1; got " + std::to_string(shards) + ".");
  const auto* rows = static_cast<const std::int64_t*>(BufferData(rows_info, "qlL", 8, n, "rows"));
  const auto* gathered =
      static_cast<const NormPart*>(BufferData(gathered_info, "d", 8, 2 * n * shards, "gathered"));
  const NormalizeOptions options = Options(mode, target, p, eps, non_finite, num_threads, backend);
  RowStats stats;
  Status status;
  {
    py::gil_scoped_release release;
    std::vector<NormPart> combined;
    status = CombineGatheredParts(
        std::span<const NormPart>(gathered, static_cast<std::size_t>(n * shards)), shards, p, &combined);
    if (status.ok()) {
      status = ApplyRowNorms(table, std::span<const std::int64_t>(rows, static_cast<std::size_t>(n)),
                             combined, options, &stats);
    }
  }
  if (!status.ok()) Raise(status);
  return RowStatsTuple(stats);
}

// `shards` blocks of n parts each, combined in block order (rank order):
// the n combined parts as bytes. For the two-step exchange, where a process
// combines one chunk of the rows.
py::bytes CombineNormPartsPy(py::buffer gathered_buffer, int shards, double p) {
  if (shards < 1) throw py::value_error("shards must be >= 1; got " + std::to_string(shards) + ".");
  const py::buffer_info info = gathered_buffer.request();
  const auto* gathered = static_cast<const NormPart*>(BufferData(info, "d", 8, info.size, "gathered"));
  std::vector<NormPart> combined;
  const Status status =
      CombineGatheredParts(std::span<const NormPart>(gathered, static_cast<std::size_t>(info.size / 2)),
                           shards, p, &combined);
  if (!status.ok()) Raise(status);
  return BytesOf(combined.data(), combined.size() * sizeof(NormPart));
}

// The local rows a row shard owns among the global indices, as int64 bytes.
py::bytes OwnedRowIndicesPy(py::handle indices_capsule, std::int64_t global_rows,
                            std::int64_t local_rows, std::int64_t row_offset, bool cyclic, int rank,
                            int world) {
  Imported index_array(indices_capsule, "indices");
  if (index_array.place() != Place::kHost) {
    throw py::type_error("sparsenorm.distributed takes indices in CPU memory.");
  }
  std::vector<std::int64_t> gathered;
  const Indices indices = AsIndices(index_array, &gathered);
  RowOwnership o;
  o.global_rows = global_rows;
  o.local_rows = local_rows;
  o.row_offset = row_offset;
  o.cyclic = cyclic;
  o.rank = rank;
  o.world = world;
  std::vector<std::int64_t> local;
  const Status status = OwnedRowIndices(indices, o, &local);
  if (!status.ok()) Raise(status);
  return BytesOf(local.data(), local.size() * sizeof(std::int64_t));
}

// A dense matrix slice's parts (sparsenorm.distributed.normalize), as bytes
// of float64 (scale, sum) pairs; a column-major slice is its row-major
// transpose on the other axis, as in normalize_dense.
struct ImportedMatrixSlice {
  Imported array;
  Table matrix;
  MatrixOptions options;
  std::unique_ptr<Imported> subset_array;
  std::vector<std::int64_t> subset_storage;

  ImportedMatrixSlice(py::handle matrix_capsule, py::handle subset_capsule, int axis, int mode,
                      double target, double p, double eps, int non_finite, int num_threads,
                      int backend, double prune_below)
      : array(matrix_capsule, "X") {
    RequireHost(array);
    bool transposed = false;
    matrix = AsTable(array, /*allow_transpose=*/true, &transposed);
    options = MakeMatrixOptions(axis, mode, target, p, eps, non_finite, num_threads, backend,
                                prune_below);
    if (transposed && (axis == 0 || axis == 1)) options.axis = 1 - axis;
    if (!subset_capsule.is_none()) {
      subset_array = std::make_unique<Imported>(subset_capsule, "subset");
      options.subset = AsIndices(*subset_array, &subset_storage);
    }
  }
};

py::bytes MatrixNormPartsPy(py::handle matrix_capsule, py::handle subset_capsule, int axis,
                            int mode, double target, double p, double eps, int non_finite,
                            int num_threads, int backend, double prune_below) {
  const ImportedMatrixSlice slice(matrix_capsule, subset_capsule, axis, mode, target, p, eps,
                                  non_finite, num_threads, backend, prune_below);
  std::vector<NormPart> parts;
  Status status;
  {
    py::gil_scoped_release release;
    status = MatrixNormParts(ConstTable(slice.matrix), slice.options, &parts);
  }
  if (!status.ok()) Raise(status);
  return BytesOf(parts.data(), parts.size() * sizeof(NormPart));
}

// What an all-gather of the matrix parts delivered: `shards` blocks of n
// (scale, sum) pairs, n the same for every block. The buffer must outlive
// the span.
std::span<const NormPart> GatheredParts(py::buffer gathered_buffer, int shards) {
  if (shards < 1) throw py::value_error("shards must be >= 1; got " + std::to_string(shards) + ".");
  const py::buffer_info info = gathered_buffer.request();
  if (info.size % (2 * shards) != 0) {
    throw py::value_error("gathered must hold shards x n (scale, sum) pairs; got " +
                          std::to_string(info.size) + " values for " + std::to_string(shards) +
                          " shards.");
  }
  const std::int64_t n = info.size / (2 * shards);
  const auto* gathered = static_cast<const NormPart*>(BufferData(info, "d", 8, 2 * n * shards, "gathered"));
  return std::span<const NormPart>(gathered, static_cast<std::size_t>(n * shards));
}

// Combines the gathered parts (`shards` blocks, rank order) and applies
// them to this slice; the MatrixStats tuple.
py::tuple ApplyMatrixNormPartsPy(py::handle matrix_capsule, py::handle subset_capsule,
                                 py::buffer gathered_buffer, int shards, int axis, int mode,
                                 double target, double p, double eps, int non_finite,
                                 int num_threads, int backend, double prune_below) {
  const ImportedMatrixSlice slice(matrix_capsule, subset_capsule, axis, mode, target, p, eps,
                                  non_finite, num_threads, backend, prune_below);
  const Table& matrix = slice.matrix;
  const MatrixOptions& options = slice.options;
  const std::span<const NormPart> gathered = GatheredParts(gathered_buffer, shards);
  MatrixStats stats;
  Status status;
  {
    py::gil_scoped_release release;
    std::vector<NormPart> combined;
    status = CombineGatheredParts(gathered, shards, p, &combined);
    if (status.ok()) status = ApplyMatrixNorms(matrix, options, combined, &stats);
  }
  if (!status.ok()) Raise(status);
  return MatrixStatsTuple(stats);
}

// A sparse slice's parts (a CSR block of rows on axis 0, a CSC block of
// columns on axis 1), as bytes of float64 (scale, sum) pairs.
py::bytes SparseMatrixNormPartsPy(int format, std::int64_t rows, std::int64_t cols,
                                  std::int64_t nnz, py::handle values_capsule,
                                  py::handle first_capsule, py::handle second_capsule,
                                  py::handle subset_capsule, int axis, int mode, double target,
                                  double p, double eps, int non_finite, int num_threads,
                                  int backend, double prune_below) {
  const ImportedSparseMatrix slice(format, rows, cols, nnz, values_capsule, first_capsule,
                                   second_capsule, subset_capsule, axis, mode, target, p, eps,
                                   non_finite, num_threads, backend, prune_below);
  std::vector<NormPart> parts;
  Status status;
  {
    py::gil_scoped_release release;
    status = MatrixNormParts(slice.matrix, slice.options, &parts);
  }
  if (!status.ok()) Raise(status);
  return BytesOf(parts.data(), parts.size() * sizeof(NormPart));
}

// Combines the gathered parts (`shards` blocks, rank order) and applies
// them to this sparse slice; the MatrixStats tuple (nnz_after: the entries
// kept, first in the arrays, when pruning).
py::tuple ApplySparseMatrixNormPartsPy(int format, std::int64_t rows, std::int64_t cols,
                                       std::int64_t nnz, py::handle values_capsule,
                                       py::handle first_capsule, py::handle second_capsule,
                                       py::handle subset_capsule, py::buffer gathered_buffer,
                                       int shards, int axis, int mode, double target, double p,
                                       double eps, int non_finite, int num_threads, int backend,
                                       double prune_below) {
  ImportedSparseMatrix slice(format, rows, cols, nnz, values_capsule, first_capsule,
                             second_capsule, subset_capsule, axis, mode, target, p, eps,
                             non_finite, num_threads, backend, prune_below);
  const std::span<const NormPart> gathered = GatheredParts(gathered_buffer, shards);
  MatrixStats stats;
  Status status;
  {
    py::gil_scoped_release release;
    std::vector<NormPart> combined;
    status = CombineGatheredParts(gathered, shards, p, &combined);
    if (status.ok()) status = ApplyMatrixNorms(&slice.matrix, slice.options, combined, &stats);
  }
  if (!status.ok()) Raise(status);
  return MatrixStatsTuple(stats);
}

// ---------------------------------------------------------------------------
// The optimizer step on a column-sharded table (sparsenorm/sharded_step.h)
// for sparsenorm.distributed: each phase over one step imported as
// optimizer_step imports it (CPU arrays, a sparse gradient), with the
// slice's place in the global columns; the Python layer exchanges through
// the caller's communicator. Rows, sums and parts travel as bytes of int64
// and float64.

struct ShardedStepArguments {
  ImportedStep step;
  ColumnSlice columns;

  ShardedStepArguments(py::handle table, py::tuple states, py::handle indices, py::handle values,
                       const std::vector<double>& numbers, const std::vector<std::int64_t>& codes,
                       std::int64_t col_offset, std::int64_t global_cols)
      : step(table, states, indices, values, numbers, codes), columns{col_offset, global_cols} {
    if (step.entry.dense) throw py::value_error("indices: the column-sharded step takes a sparse gradient.");
    if (step.on_device) throw py::type_error("sparsenorm.distributed's optimizer step takes arrays in CPU memory.");
  }
};

// None, or a C-contiguous float64 buffer: its values.
std::span<const double> Doubles(const py::object& buffer, py::buffer_info* info, const char* name) {
  if (buffer.is_none()) return {};
  *info = py::reinterpret_borrow<py::buffer>(buffer).request();
  const auto* data = static_cast<const double*>(BufferData(*info, "d", 8, info->size, name));
  return std::span<const double>(data, static_cast<std::size_t>(info->size));
}

py::tuple ColumnShardedStepSquaresPy(py::handle table, py::tuple states, py::handle indices, py::handle values,
                                     std::vector<double> numbers, std::vector<std::int64_t> codes,
                                     std::int64_t col_offset, std::int64_t global_cols) {
  const ShardedStepArguments a(table, states, indices, values, numbers, codes, col_offset, global_cols);
  const StepBatchEntry& e = a.step.entry;
  std::vector<std::int64_t> rows;
  std::vector<double> squares;
  Status status;
  {
    py::gil_scoped_release release;
    status = ColumnShardedStepSquares(e.table, e.state, e.indices, e.values, e.options, a.columns, &rows, &squares);
  }
  if (!status.ok()) Raise(status);
  return py::make_tuple(BytesOf(rows.data(), rows.size() * sizeof(std::int64_t)),
                        BytesOf(squares.data(), squares.size() * sizeof(double)));
}

// `shards` blocks of n sums each, added in block (rank) order: n float64.
py::bytes CombineStepSquaresPy(py::buffer gathered_buffer, int shards) {
  const py::buffer_info info = gathered_buffer.request();
  const auto* gathered = static_cast<const double*>(BufferData(info, "d", 8, info.size, "gathered"));
  std::vector<double> combined;
  const Status status = CombineGatheredSquares(
      std::span<const double>(gathered, static_cast<std::size_t>(info.size)), shards, &combined);
  if (!status.ok()) Raise(status);
  return BytesOf(combined.data(), combined.size() * sizeof(double));
}

py::tuple ColumnShardedStepPartsPy(py::handle table, py::tuple states, py::handle indices, py::handle values,
                                   std::vector<double> numbers, std::vector<std::int64_t> codes,
                                   std::int64_t col_offset, std::int64_t global_cols, py::object squares) {
  const ShardedStepArguments a(table, states, indices, values, numbers, codes, col_offset, global_cols);
  const StepBatchEntry& e = a.step.entry;
  py::buffer_info squares_info;
  const std::span<const double> sums = Doubles(squares, &squares_info, "squares");
  std::vector<std::int64_t> rows;
  std::vector<NormPart> parts;
  Status status;
  {
    py::gil_scoped_release release;
    status = ColumnShardedStepParts(e.table, e.state, e.indices, e.values, e.options, a.columns, sums, &rows, &parts);
  }
  if (!status.ok()) Raise(status);
  return py::make_tuple(BytesOf(rows.data(), rows.size() * sizeof(std::int64_t)),
                        BytesOf(parts.data(), parts.size() * sizeof(NormPart)));
}

// Combines the gathered parts (`shards` blocks in rank order) with the
// constraint's p and applies them; the statistics tuple.
py::tuple ApplyColumnShardedStepPy(py::handle table, py::tuple states, py::handle indices, py::handle values,
                                   std::vector<double> numbers, std::vector<std::int64_t> codes,
                                   std::int64_t col_offset, std::int64_t global_cols, py::object squares,
                                   py::buffer gathered_buffer, int shards) {
  const ShardedStepArguments a(table, states, indices, values, numbers, codes, col_offset, global_cols);
  const StepBatchEntry& e = a.step.entry;
  py::buffer_info squares_info;
  const std::span<const double> sums = Doubles(squares, &squares_info, "squares");
  const py::buffer_info info = gathered_buffer.request();
  const auto* gathered = static_cast<const NormPart*>(BufferData(info, "d", 8, info.size, "gathered"));
  RowStats stats;
  Status status;
  {
    py::gil_scoped_release release;
    std::vector<NormPart> combined;
    status = CombineGatheredParts(std::span<const NormPart>(gathered, static_cast<std::size_t>(info.size / 2)),
                                  shards, e.options.constraint.p, &combined);
    if (status.ok()) {
      status = ApplyColumnShardedStep(e.table, e.state, e.indices, e.values, e.options, a.columns, sums, combined,
                                      &stats);
    }
  }
  if (!status.ok()) Raise(status);
  return RowStatsTuple(stats);
}

}  // namespace
}  // namespace sparsenorm::python

PYBIND11_MODULE(_core, m) {
  namespace sp = sparsenorm::python;
  namespace py = pybind11;
  m.doc() = "Compiled core of sparsenorm; use the functions of the sparsenorm package.";
  sp::non_finite_error =
      PyErr_NewExceptionWithDoc("sparsenorm.NonFiniteError",
                                "A vector held NaN or infinity and non_finite='error' was "
                                "given; nothing was modified.",
                                PyExc_ValueError, nullptr);
  if (sp::non_finite_error == nullptr) throw py::error_already_set();
  m.attr("NonFiniteError") = py::handle(sp::non_finite_error);

  m.attr("__version__") = SPARSENORM_VERSION_STRING;
  m.attr("HAS_CUDA") = static_cast<bool>(SPARSENORM_PYTHON_CUDA);
  // The storage types' names, narrowest first (src/common/element_types.h).
  py::list dtypes;
  for (const char* name : sparsenorm::DTypeNamesBySize()) dtypes.append(name);
  m.attr("DTYPES") = py::tuple(dtypes);
  m.def("default_thread_count", &sparsenorm::DefaultThreadCount);
  m.def("simd_target", &sparsenorm::ActiveSimdTarget);
  m.def("normalize_rows", &sp::NormalizeRowsPy);
  m.def("timed_normalize_rows", &sp::TimedNormalizeRowsPy);
  m.def("normalize_dense", &sp::NormalizeDensePy);
  m.def("normalize_sparse", &sp::NormalizeSparsePy);
  m.def("normalize_rows_many", &sp::NormalizeRowsManyPy);
  m.def("optimizer_step", &sp::OptimizerStepPy, py::arg("table"), py::arg("state"),
        py::arg("indices"), py::arg("grad"), py::arg("numbers"), py::arg("codes"),
        py::arg("stream") = 0);
  m.def("optimizer_step_many", &sp::OptimizerStepManyPy);
  m.def("row_norm_parts", &sp::RowNormPartsPy);
  m.def("apply_row_norm_parts", &sp::ApplyRowNormPartsPy);
  m.def("owned_row_indices", &sp::OwnedRowIndicesPy);
  m.def("combine_norm_parts", &sp::CombineNormPartsPy);
  m.def("matrix_norm_parts", &sp::MatrixNormPartsPy);
  m.def("apply_matrix_norm_parts", &sp::ApplyMatrixNormPartsPy);
  m.def("sparse_matrix_norm_parts", &sp::SparseMatrixNormPartsPy);
  m.def("apply_sparse_matrix_norm_parts", &sp::ApplySparseMatrixNormPartsPy);
  m.def("column_sharded_step_squares", &sp::ColumnShardedStepSquaresPy);
  m.def("combine_step_squares", &sp::CombineStepSquaresPy);
  m.def("column_sharded_step_parts", &sp::ColumnShardedStepPartsPy);
  m.def("apply_column_sharded_step", &sp::ApplyColumnShardedStepPy);
}
