// One bad input, one message, whatever the backend.
//
// Host-side errors (options, shapes, strides, null pointers, overlap) go
// through the checks every front end makes: each case is run through the CPU
// front end, the reference backend and, where the library has the CUDA
// backend, the CUDA front end (these checks come before anything touches a
// device, so they run without a GPU), and the messages must be equal.
//
// Device-side errors (index values, sparse structure, NaN/infinity under the
// error policy) are found by the kernels: their checks are replayed on the
// host (emulate.h), the header they would write is decoded as the CUDA
// backend decodes it (cuda/results.h), and the message must equal the CPU's
// and the reference's for the same input.

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "core/messages.h"
#include "cuda/launch.h"
#include "cuda/results.h"
#include "emulate.h"
#include "matrix/matrix_test_util.h"
#include "sparsenorm/matrix.h"
#include "sparsenorm/rows.h"
#include "test_util.h"

#if defined(SPARSENORM_WITH_CUDA)
#include "sparsenorm/cuda.h"
#endif

namespace sparsenorm {
namespace {

using testing::BuildSparse;
using testing::Order;
using testing::TestSparse;
using testing::TestTable;
using testing::Triplet;

NormalizeOptions Reference(NormalizeOptions o) {
  o.backend = Backend::kReference;
  return o;
}

MatrixOptions Reference(MatrixOptions o) {
  o.norm.backend = Backend::kReference;
  return o;
}

// ---------------------------------------------------------------------------
// Host-side errors.

struct RowsCase {
  std::string what;
  std::function<void(Table*, ConstTable*, Indices*, NormalizeOptions*)> spoil;
  bool out_of_place = false;
};

TEST(Messages, HostSideRowErrorsReadTheSameOnEveryFrontEnd) {
  TestTable table(DType::kFloat32, 6, 4), other(DType::kFloat32, 6, 4);
  const std::vector<std::int64_t> list = {1, 3};
  const std::vector<RowsCase> cases = {
      {"mode", [](Table*, ConstTable*, Indices*, NormalizeOptions* o) { o->mode = static_cast<NormMode>(7); }},
      {"target", [](Table*, ConstTable*, Indices*, NormalizeOptions* o) { o->target = -1; }},
      {"p", [](Table*, ConstTable*, Indices*, NormalizeOptions* o) { o->p = 0; }},
      {"eps", [](Table*, ConstTable*, Indices*, NormalizeOptions* o) { o->eps = std::nan(""); }},
      {"policy", [](Table*, ConstTable*, Indices*, NormalizeOptions* o) { o->non_finite = static_cast<NonFinitePolicy>(4); }},
      {"threads", [](Table*, ConstTable*, Indices*, NormalizeOptions* o) { o->num_threads = -2; }},
      {"dtype", [](Table* t, ConstTable*, Indices*, NormalizeOptions*) { t->dtype = static_cast<DType>(9); }},
      {"rows", [](Table* t, ConstTable*, Indices*, NormalizeOptions*) { t->rows = -1; }},
      {"stride", [](Table* t, ConstTable*, Indices*, NormalizeOptions*) { t->row_stride = 2; }},
      {"null table", [](Table* t, ConstTable*, Indices*, NormalizeOptions*) { t->data = nullptr; }},
      {"overflow", [](Table* t, ConstTable*, Indices*, NormalizeOptions*) { t->rows = std::int64_t{1} << 62; }},
      {"index type", [](Table*, ConstTable*, Indices* i, NormalizeOptions*) { i->type = static_cast<IndexType>(5); }},
      {"index size", [](Table*, ConstTable*, Indices* i, NormalizeOptions*) { i->size = -3; }},
      {"null indices", [](Table*, ConstTable*, Indices* i, NormalizeOptions*) { i->data = nullptr; }},
      {"shape mismatch", [](Table*, ConstTable* in, Indices*, NormalizeOptions*) { in->cols = 3; }, true},
      {"dtype mismatch", [](Table*, ConstTable* in, Indices*, NormalizeOptions*) { in->dtype = DType::kFloat64; }, true},
      {"overlap", [&](Table* out, ConstTable* in, Indices*, NormalizeOptions*) {
         in->data = static_cast<const unsigned char*>(out->data) + 4;
       }, true},
  };
  for (const RowsCase& c : cases) {
    Table out = table.view();
    ConstTable in = c.out_of_place ? other.const_view() : ConstTable(out);
    Indices indices{std::span<const std::int64_t>(list)};
    NormalizeOptions o;
    c.spoil(&out, &in, &indices, &o);
    const Status cpu = c.out_of_place ? NormalizeRows(in, out, indices, o) : NormalizeRows(out, indices, o);
    const Status ref = c.out_of_place ? NormalizeRows(in, out, indices, Reference(o))
                                      : NormalizeRows(out, indices, Reference(o));
    ASSERT_FALSE(cpu.ok()) << c.what;
    EXPECT_EQ(ref.code(), cpu.code()) << c.what;
    EXPECT_EQ(ref.message(), cpu.message()) << c.what;
#if defined(SPARSENORM_WITH_CUDA)
    const Status dev = c.out_of_place ? cuda::NormalizeRowsAsync(in, out, indices, o, nullptr, 0, nullptr)
                                      : cuda::NormalizeRowsAsync(out, indices, o, nullptr, 0, nullptr);
    EXPECT_EQ(dev.code(), cpu.code()) << c.what;
    EXPECT_EQ(dev.message(), cpu.message()) << c.what;
#endif
  }
}

TEST(Messages, HostSideMatrixErrorsReadTheSameOnEveryFrontEnd) {
  std::mt19937_64 rng(501);
  const std::vector<Triplet> triplets = {{0, 1, 1.0}, {1, 0, 2.0}, {2, 3, 3.0}, {3, 2, 4.0}};
  std::vector<std::int64_t> subset = {0, 2};
  const std::vector<std::pair<std::string, std::function<void(SparseMatrix*, MatrixOptions*)>>> sparse_cases = {
      {"axis", [](SparseMatrix*, MatrixOptions* o) { o->axis = 2; }},
      {"prune", [](SparseMatrix*, MatrixOptions* o) { o->prune_below = -0.5; }},
      {"target", [](SparseMatrix*, MatrixOptions* o) { o->norm.target = HUGE_VAL; }},
      {"subset type", [&](SparseMatrix*, MatrixOptions* o) {
         o->subset = Indices(subset.data(), static_cast<IndexType>(3), 2);
       }},
      {"subset null", [](SparseMatrix*, MatrixOptions* o) { o->subset = Indices(nullptr, IndexType::kInt64, 2); }},
      {"format", [](SparseMatrix* m, MatrixOptions*) { m->format = static_cast<SparseFormat>(6); }},
      {"dtype", [](SparseMatrix* m, MatrixOptions*) { m->dtype = static_cast<DType>(8); }},
      {"index type", [](SparseMatrix* m, MatrixOptions*) { m->index_type = static_cast<IndexType>(4); }},
      {"nnz", [](SparseMatrix* m, MatrixOptions*) { m->nnz = -1; }},
      {"null values", [](SparseMatrix* m, MatrixOptions*) { m->values = nullptr; }},
      {"null indptr", [](SparseMatrix* m, MatrixOptions*) { m->indptr = nullptr; }},
      {"huge nnz", [](SparseMatrix* m, MatrixOptions*) { m->nnz = std::int64_t{1} << 62; }},
  };
  for (SparseFormat format : {SparseFormat::kCSR, SparseFormat::kCOO}) {
    const TestSparse base = BuildSparse(format, 4, 5, triplets, DType::kFloat32, IndexType::kInt64, Order::kSorted, rng);
    for (const auto& [what, spoil] : sparse_cases) {
      if (format == SparseFormat::kCOO && what == "null indptr") continue;
      TestSparse a = base;
      MatrixOptions o;
      SparseMatrix m = *a.view();
      spoil(&m, &o);
      SparseMatrix m_ref = m;
      const Status cpu = NormalizeMatrix(&m, o);
      const Status ref = NormalizeMatrix(&m_ref, Reference(o));
      ASSERT_FALSE(cpu.ok()) << what;
      EXPECT_EQ(ref.code(), cpu.code()) << what;
      EXPECT_EQ(ref.message(), cpu.message()) << what;
#if defined(SPARSENORM_WITH_CUDA)
      SparseMatrix m_dev = m;
      const Status dev = cuda::NormalizeMatrixAsync(m_dev, o, nullptr, 0, nullptr);
      EXPECT_EQ(dev.code(), cpu.code()) << what;
      EXPECT_EQ(dev.message(), cpu.message()) << what;
#endif
    }
  }
  TestTable dense(DType::kFloat16, 5, 3);
  const std::vector<std::pair<std::string, std::function<void(Table*, MatrixOptions*)>>> dense_cases = {
      {"axis", [](Table*, MatrixOptions* o) { o->axis = -1; }},
      {"eps", [](Table*, MatrixOptions* o) { o->norm.eps = -1; }},
      {"stride", [](Table* t, MatrixOptions*) { t->row_stride = 1; }},
      {"cols", [](Table* t, MatrixOptions*) { t->cols = -4; }},
      {"null", [](Table* t, MatrixOptions*) { t->data = nullptr; }},
  };
  for (const auto& [what, spoil] : dense_cases) {
    Table t = dense.view();
    MatrixOptions o;
    spoil(&t, &o);
    const Status cpu = NormalizeMatrix(t, o);
    const Status ref = NormalizeMatrix(t, Reference(o));
    ASSERT_FALSE(cpu.ok()) << what;
    EXPECT_EQ(ref.message(), cpu.message()) << what;
#if defined(SPARSENORM_WITH_CUDA)
    const Status dev = cuda::NormalizeMatrixAsync(t, o, nullptr, 0, nullptr);
    EXPECT_EQ(dev.code(), cpu.code()) << what;
    EXPECT_EQ(dev.message(), cpu.message()) << what;
#endif
  }
}

// ---------------------------------------------------------------------------
// Device-side errors, through the host replay of the device's checks.

std::string RowsReplayMessage(const TestTable& t, const std::vector<std::int64_t>& list, bool nonfinite_error) {
  cuda::detail::RowsHeader h{};
  VisitDType(t.dtype, [&](auto tag) {
    using T = TypeOf<decltype(tag)>;
    h = cuda::emulate::ReplayRowChecks<cuda::num::DeviceTraits<T>>(
        static_cast<const T*>(t.data()), t.rows, t.cols, t.stride, list.data(), IndexType::kInt64,
        static_cast<std::int64_t>(list.size()), nonfinite_error);
  });
  return sparsenorm::detail::StatusOf(cuda::detail::RowsFinding(h)).message();
}

void ExpectSameRowsMessage(const TestTable& base, const std::vector<std::int64_t>& list, bool nonfinite_error,
                           const std::string& fragment) {
  NormalizeOptions o;
  o.non_finite = nonfinite_error ? NonFinitePolicy::kError : NonFinitePolicy::kSkip;
  TestTable a = base, b = base;
  const Status cpu = NormalizeRows(a.view(), Indices(std::span<const std::int64_t>(list)), o);
  const Status ref = NormalizeRows(b.view(), Indices(std::span<const std::int64_t>(list)), Reference(o));
  ASSERT_FALSE(cpu.ok());
  EXPECT_NE(cpu.message().find(fragment), std::string::npos) << cpu.message();
  EXPECT_EQ(ref.message(), cpu.message());
  EXPECT_EQ(RowsReplayMessage(base, list, nonfinite_error), cpu.message());
}

TEST(Messages, DeviceSideRowErrorsReadAsOnTheCpu) {
  std::mt19937_64 rng(502);
  for (DType dtype : testing::kAllDTypes) {
    TestTable t(dtype, 40, 9);
    testing::FillRandom(&t, rng);
    ExpectSameRowsMessage(t, {3, 40, 7, -2, 41}, false, "indices[1] = 40");
    ExpectSameRowsMessage(t, {3, 7, -2, 5}, false, "indices[2] = -2");
    t.Set(7, 4, std::nan(""));
    t.Set(12, 0, HUGE_VAL);
    ExpectSameRowsMessage(t, {3, 12, 7, 7}, true, "row 12 (indices[1])");
    TestTable empty(dtype, 0, 9);
    ExpectSameRowsMessage(empty, {0}, false, "no index is valid");
  }
}

// The launch description the CUDA front end would build, over host arrays.
cuda::detail::MatrixLaunch LaunchOf(TestSparse* s, const MatrixOptions& o) {
  using cuda::detail::Format;
  SparseMatrix* m = s->view();
  cuda::detail::MatrixLaunch job;
  job.format = m->format == SparseFormat::kCSR ? Format::kCSR : m->format == SparseFormat::kCSC ? Format::kCSC : Format::kCOO;
  job.axis = o.axis;
  job.rows = m->rows;
  job.cols = m->cols;
  job.nnz = m->nnz;
  job.values = m->values;
  job.dtype = m->dtype;
  job.index_type = m->index_type;
  job.indptr = m->indptr;
  job.indices = m->indices;
  job.row = m->row;
  job.col = m->col;
  if (o.subset.has_value()) {
    job.subset = o.subset->data;
    job.subset_type = o.subset->type;
    job.subset_size = o.subset->size;
  }
  job.nonfinite_error = o.norm.non_finite == NonFinitePolicy::kError;
  return job;
}

cuda::detail::MatrixLaunch LaunchOf(TestTable* t, const MatrixOptions& o) {
  cuda::detail::MatrixLaunch job;
  job.format = cuda::detail::Format::kDense;
  job.axis = o.axis;
  job.rows = t->rows;
  job.cols = t->cols;
  job.row_stride = t->stride;
  job.values = t->data();
  job.dtype = t->dtype;
  if (o.subset.has_value()) {
    job.subset = o.subset->data;
    job.subset_type = o.subset->type;
    job.subset_size = o.subset->size;
  }
  job.nonfinite_error = o.norm.non_finite == NonFinitePolicy::kError;
  return job;
}

std::string MatrixReplayMessage(const cuda::detail::MatrixLaunch& job) {
  cuda::detail::MatrixHeader h{};
  VisitDType(job.dtype, [&](auto tag) {
    h = cuda::emulate::ReplayMatrixChecks<cuda::num::DeviceTraits<TypeOf<decltype(tag)>>>(job);
  });
  return sparsenorm::detail::StatusOf(cuda::detail::MatrixFinding(h)).message();
}

template <class M>
void ExpectSameMatrixMessage(const M& base, const MatrixOptions& o, const std::string& fragment) {
  M a = base, b = base, c = base;
  const Status cpu = NormalizeMatrix(a.view(), o);
  const Status ref = NormalizeMatrix(b.view(), Reference(o));
  ASSERT_FALSE(cpu.ok()) << fragment;
  EXPECT_NE(cpu.message().find(fragment), std::string::npos) << cpu.message();
  EXPECT_EQ(ref.message(), cpu.message());
  EXPECT_EQ(MatrixReplayMessage(LaunchOf(&c, o)), cpu.message());
}

TEST(Messages, DeviceSideMatrixErrorsReadAsOnTheCpu) {
  std::mt19937_64 rng(503);
  testing::RandomSpec spec;
  spec.density = 0.4;
  spec.empty_vectors = false;
  const std::vector<Triplet> triplets = testing::RandomTriplets(12, 9, spec, rng);
  for (IndexType itype : {IndexType::kInt32, IndexType::kInt64}) {
    const TestSparse csr = BuildSparse(SparseFormat::kCSR, 12, 9, triplets, DType::kFloat32, itype, Order::kSorted, rng);
    const TestSparse csc = BuildSparse(SparseFormat::kCSC, 12, 9, triplets, DType::kFloat64, itype, Order::kSorted, rng);
    const TestSparse coo = BuildSparse(SparseFormat::kCOO, 12, 9, triplets, DType::kBFloat16, itype, Order::kSorted, rng);
    MatrixOptions o;

    TestSparse s = csr;
    s.indptr.Set(0, 1);
    ExpectSameMatrixMessage(s, o, "matrix.indptr[0] = 1");
    s = csr;
    s.indptr.Set(6, s.indptr.Get(5) - 1);
    ExpectSameMatrixMessage(s, o, "must not decrease (row 5");
    s = csc;
    s.indptr.Set(9, s.nnz - 1);
    ExpectSameMatrixMessage(s, o, "matrix.nnz = ");
    s = csc;
    s.indices.Set(5, 12);
    s.indices.Set(9, -1);
    ExpectSameMatrixMessage(s, o, "matrix.indices[5] = 12 (an entry of column");
    s = csr;
    s.indices.Set(s.nnz - 1, 9);
    ExpectSameMatrixMessage(s, o, "is out of range for 9 columns");

    // The subset is reported before the indices, after the pointers.
    std::vector<std::int64_t> subset = {2, 9, 1};
    MatrixOptions with_subset;
    with_subset.subset = Indices(std::span<const std::int64_t>(subset));
    s = csr;
    s.indices.Set(2, 40);
    ExpectSameMatrixMessage(s, with_subset, "options.subset[1] = 9");

    // COO: the lower position first, the row when both are bad.
    s = coo;
    s.col.Set(3, 9);
    s.row.Set(5, 12);
    ExpectSameMatrixMessage(s, o, "matrix.col[3] = 9");
    s = coo;
    s.col.Set(4, 99);
    s.row.Set(4, -7);
    ExpectSameMatrixMessage(s, o, "matrix.row[4] = -7");
  }

  // NaN or infinity under NonFinitePolicy::kError: the lowest vector, on
  // every path (contiguous, scattered, COO, dense columns and rows).
  MatrixOptions strict;
  strict.norm.non_finite = NonFinitePolicy::kError;
  for (int axis : {0, 1}) {
    strict.axis = axis;
    for (SparseFormat format : {SparseFormat::kCSR, SparseFormat::kCSC, SparseFormat::kCOO}) {
      TestSparse s = BuildSparse(format, 12, 9, triplets, DType::kFloat16, IndexType::kInt32, Order::kSorted, rng);
      const std::int64_t k1 = s.nnz / 2, k2 = s.nnz - 2;
      reference::StoreRounded(s.values.data(), s.dtype, k1, std::nan(""));
      reference::StoreRounded(s.values.data(), s.dtype, k2, -HUGE_VAL);
      const auto [r1, c1] = s.Coord(k1);
      const auto [r2, c2] = s.Coord(k2);
      const std::int64_t first = axis == 0 ? std::min(c1, c2) : std::min(r1, r2);
      ExpectSameMatrixMessage(s, strict, std::string(axis == 0 ? "column " : "row ") + std::to_string(first) +
                                             " holds NaN or infinity");
    }
    TestTable dense(DType::kFloat32, 10, 7);
    testing::FillRandom(&dense, rng);
    dense.Set(6, 5, std::nan(""));
    dense.Set(2, 6, HUGE_VAL);
    ExpectSameMatrixMessage(dense, strict, axis == 0 ? "column 5 holds" : "row 2 holds");
    std::vector<std::int64_t> subset = {0, 12};
    MatrixOptions dense_subset;
    dense_subset.axis = axis;
    dense_subset.subset = Indices(std::span<const std::int64_t>(subset));
    ExpectSameMatrixMessage(dense, dense_subset, "options.subset[1] = 12");
  }
}

}  // namespace
}  // namespace sparsenorm
