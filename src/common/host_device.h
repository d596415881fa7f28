// SN_HD marks a function that the host compiler and nvcc both compile, so
// that the CPU code, the CUDA kernels and the host-side tests of the kernels
// run one definition. Headers that use it are C++17 and include no CUDA
// header: under nvcc the device bodies are chosen with __CUDA_ARCH__.
#ifndef SPARSENORM_COMMON_HOST_DEVICE_H_
#define SPARSENORM_COMMON_HOST_DEVICE_H_

#if defined(__CUDACC__)
#define SN_HD __host__ __device__ __forceinline__
#else
#define SN_HD inline
#endif

#endif  // SPARSENORM_COMMON_HOST_DEVICE_H_
