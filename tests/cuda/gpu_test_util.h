// Helpers for the GPU tests: a fixture that skips without a device, device
// buffers, and the host replay of a row-operator call.
#ifndef SPARSENORM_TESTS_CUDA_GPU_TEST_UTIL_H_
#define SPARSENORM_TESTS_CUDA_GPU_TEST_UTIL_H_

#include <cuda_runtime_api.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <vector>

#include "core/validate.h"
#include "cuda/device_math.h"
#include "emulate.h"
#include "sparsenorm/cuda.h"
#include "test_util.h"

namespace sparsenorm::testing {

// Every GPU test derives from this: without a device it reports itself
// skipped (ctest then lists it as "Skipped", not "Passed").
class GpuTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (cuda::DeviceCount() == 0) GTEST_SKIP() << "no CUDA device: GPU test skipped";
  }
};

// Device memory holding a copy of host bytes.
class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  explicit DeviceBuffer(std::size_t bytes) { Allocate(bytes); }
  explicit DeviceBuffer(const std::vector<unsigned char>& host) {
    Allocate(host.size());
    Upload(host.data(), host.size());
  }
  template <class T>
  explicit DeviceBuffer(const std::vector<T>& host) {
    Allocate(host.size() * sizeof(T));
    Upload(host.data(), host.size() * sizeof(T));
  }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  ~DeviceBuffer() {
    if (p_ != nullptr) cudaFree(p_);
  }

  bool ok() const { return p_ != nullptr || bytes_ == 0; }
  void* get() const { return p_; }
  template <class T>
  T* as() const {
    return static_cast<T*>(p_);
  }
  std::size_t bytes() const { return bytes_; }

  void Upload(const void* host, std::size_t bytes, std::size_t offset = 0) {
    if (bytes == 0) return;  // an empty buffer has no pointer to copy to
    ASSERT_EQ(cudaMemcpy(static_cast<char*>(p_) + offset, host, bytes, cudaMemcpyHostToDevice), cudaSuccess);
  }
  std::vector<unsigned char> Download() const {
    std::vector<unsigned char> out(bytes_);
    if (bytes_ == 0) return out;
    EXPECT_EQ(cudaMemcpy(out.data(), p_, bytes_, cudaMemcpyDeviceToHost), cudaSuccess);
    return out;
  }
  template <class T>
  std::vector<T> DownloadAs() const {
    std::vector<T> out(bytes_ / sizeof(T));
    EXPECT_EQ(cudaMemcpy(out.data(), p_, out.size() * sizeof(T), cudaMemcpyDeviceToHost), cudaSuccess);
    return out;
  }

 private:
  void Allocate(std::size_t bytes) {
    bytes_ = bytes;
    if (bytes == 0) return;
    if (cudaMalloc(&p_, bytes) != cudaSuccess) {
      cudaGetLastError();
      p_ = nullptr;
    }
  }
  void* p_ = nullptr;
  std::size_t bytes_ = 0;
};

// A TestTable mirrored on the device (padding and tail sentinels included).
struct DeviceTable {
  TestTable host;
  DeviceBuffer dev;
  explicit DeviceTable(const TestTable& t) : host(t), dev(t.bytes) {}
  Table view() {
    return Table{dev.get(), host.dtype, host.rows, host.cols, host.stride == host.cols ? 0 : host.stride};
  }
  ConstTable const_view() const {
    return ConstTable(dev.get(), host.dtype, host.rows, host.cols, host.stride == host.cols ? 0 : host.stride);
  }
  // The device contents as a TestTable.
  TestTable Fetch() const {
    TestTable t = host;
    t.bytes = dev.Download();
    return t;
  }
};

// Whether the launcher moves 16 bytes at a time for this table.
inline bool Vectorized(const void* data, std::int64_t stride, std::int64_t cols, DType dtype) {
  const auto es = static_cast<std::int64_t>(DTypeSize(dtype));
  return reinterpret_cast<std::uintptr_t>(data) % 16 == 0 && (stride * es) % 16 == 0 && (cols * es) % 16 == 0;
}

template <class Tr>
void EmulateRowsT(TestTable* t, const std::vector<std::int64_t>& rows, bool vectorized, const NormalizeOptions& o) {
  auto* base = static_cast<typename Tr::Storage*>(t->data());
  for (std::int64_t r : rows) {
    cuda::emulate::ProcessRow<Tr>(base + r * t->stride, t->cols, vectorized, detail::RuleOf(o));
  }
}

// The device's result for in-place NormalizeRows over these distinct rows.
inline void EmulateRows(TestTable* t, const std::vector<std::int64_t>& distinct_rows, bool vectorized,
                        const NormalizeOptions& o) {
  VisitDType(t->dtype, [&](auto tag) {
    EmulateRowsT<cuda::num::DeviceTraits<TypeOf<decltype(tag)>>>(t, distinct_rows, vectorized, o);
  });
}

// Tolerance against the CPU path and the reference, in storage ulps: the
// sums run in another order, as on the CPU against the reference.
inline double DeviceUlpTolerance(DType dtype, double p) { return NormUlpTolerance(dtype, p); }

}  // namespace sparsenorm::testing

#endif  // SPARSENORM_TESTS_CUDA_GPU_TEST_UTIL_H_
