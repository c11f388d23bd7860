# The CUDA backend's toolchain (PENSIEVE_CUDA=ON): nvcc, the target GPU architectures and the
# flags every .cu file is built with. Included before the src/ folders are added.

# Hopper (H100, H200) unless set otherwise, e.g. -DCMAKE_CUDA_ARCHITECTURES="80;90". It must be
# in the cache before CUDA is enabled, or CMake picks the compiler's default.
set(CMAKE_CUDA_ARCHITECTURES 90 CACHE STRING "GPU architectures the CUDA kernels are built for")
set(CMAKE_CUDA_STANDARD 17)  # CMake 3.25 knows no C++20 flag for nvcc
set(CMAKE_CUDA_STANDARD_REQUIRED ON)
set(CMAKE_CUDA_EXTENSIONS OFF)
# The static runtime: binaries need only the driver (libcuda) on the machine that runs them.
set(CMAKE_CUDA_RUNTIME_LIBRARY Static)
if(CCACHE_PROGRAM)
  set(CMAKE_CUDA_COMPILER_LAUNCHER ${CCACHE_PROGRAM})
endif()
enable_language(CUDA)
find_package(CUDAToolkit REQUIRED)

# Warnings for nvcc: its own, and the host compiler's on the host half of each .cu file.
add_library(pensieve_cuda_flags INTERFACE)
target_compile_options(pensieve_cuda_flags INTERFACE
  $<$<COMPILE_LANGUAGE:CUDA>:-Xcompiler=-Wall,-Wextra,-Wshadow>)
if(PENSIEVE_WERROR)
  target_compile_options(pensieve_cuda_flags INTERFACE
    $<$<COMPILE_LANGUAGE:CUDA>:--Werror=all-warnings -Xcompiler=-Werror>)
endif()
