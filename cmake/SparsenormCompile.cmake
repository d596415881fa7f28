# Compile settings applied to the project's own targets, one function each,
# per compiler: nothing here is set for the whole directory, so a project
# that adds sparsenorm with add_subdirectory keeps its own flags.

# Warnings for a target's C++ (and, where it has any, CUDA host) sources.
# PEDANTIC adds -Wpedantic (not for code that includes pybind11 or
# Highway's per-target headers in ways it flags).
function(sparsenorm_warnings target)
  cmake_parse_arguments(ARG "PEDANTIC" "" "" ${ARGN})
  set(_gnu -Wall -Wextra)
  if(ARG_PEDANTIC)
    list(APPEND _gnu -Wpedantic)
  endif()
  target_compile_options(${target} PRIVATE
    "$<$<COMPILE_LANG_AND_ID:CXX,GNU,Clang,AppleClang>:${_gnu}>"
    $<$<COMPILE_LANG_AND_ID:CXX,MSVC>:/W4>
    $<$<COMPILE_LANGUAGE:CUDA>:-Xcompiler=-Wall>)
endfunction()

# No contraction of a*b+c into a fused multiply-add behind our back: the
# kernels choose their fused operations explicitly (fmaf, MulAdd), and the
# exact-product rounding and the host replay of the device arithmetic rely
# on it (src/common/numerics.h). nvcc: --fmad=false likewise.
function(sparsenorm_strict_fp target)
  target_compile_options(${target} PRIVATE
    $<$<COMPILE_LANG_AND_ID:CXX,GNU,Clang,AppleClang>:-ffp-contract=off>
    $<$<COMPILE_LANG_AND_ID:CXX,MSVC>:/fp:precise>
    $<$<COMPILE_LANGUAGE:CUDA>:--fmad=false>)
endfunction()

# A target that links the CUDA kernels' objects: its own sources are C++20,
# but CMake takes a target's CUDA dialect from its C++ one unless told, and
# nvcc as CMake 3.25 knows it has no C++20; the kernels are C++17.
function(sparsenorm_links_cuda_objects target)
  set_target_properties(${target} PROPERTIES CUDA_STANDARD 17 CUDA_STANDARD_REQUIRED ON)
endfunction()
