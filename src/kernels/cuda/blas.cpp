// cuBLAS through dlopen: the five entry points the tensor-core products use, looked up once per
// process. Row-major c[m, n] = a[m, k] b[n, k]^T is, in cuBLAS's column-major terms,
// c^T[n, m] = b[n, k] (b read transposed from its k x n column-major view) times a^T[k, m].
#include <cublas_api.h>
#include <dlfcn.h>

#include <cstdlib>
#include <limits>
#include <mutex>
#include <string>
#include <type_traits>
#include <vector>

#include "kernels/cuda/ops.h"

namespace pensieve::cuda {

struct Blas::Library {
  cublasStatus_t (*create)(cublasHandle_t*) = nullptr;
  cublasStatus_t (*destroy)(cublasHandle_t) = nullptr;
  cublasStatus_t (*set_stream)(cublasHandle_t, cudaStream_t) = nullptr;
  cublasStatus_t (*set_workspace)(cublasHandle_t, void*, size_t) = nullptr;
  cublasStatus_t (*get_version)(cublasHandle_t, int*) = nullptr;
  cublasStatus_t (*gemm_ex)(cublasHandle_t, cublasOperation_t, cublasOperation_t, int, int, int,
                            const void*, const void*, cudaDataType, int, const void*, cudaDataType,
                            int, const void*, void*, cudaDataType, int, cublasComputeType_t,
                            cublasGemmAlgo_t) = nullptr;
  std::string error;  // why loading failed; empty when it worked
};

namespace {

// The library, loaded on first use and kept for the process (unloading cuBLAS is not supported
// while its handles may live).
const Blas::Library& library() {
  static Blas::Library lib;
  static std::once_flag once;
  std::call_once(once, [] {
    // The loader's path first, then the toolkit's usual places.
    std::vector<std::string> candidates = {"libcublas.so.13"};
    for (const char* var : {"CUDA_HOME", "CUDA_PATH"}) {
      if (const char* dir = std::getenv(var); dir != nullptr && *dir != '\0') {
        candidates.push_back(std::string(dir) + "/lib64/libcublas.so.13");
      }
    }
    candidates.push_back("/usr/local/cuda/lib64/libcublas.so.13");
    void* so = nullptr;
    for (const std::string& path : candidates) {
      if ((so = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL)) != nullptr) break;
    }
    if (so == nullptr) {
      const char* e = dlerror();
      lib.error = e != nullptr ? e : "libcublas.so.13 not found";
      return;
    }
    auto find = [&](auto& fn, const char* name) {
      fn = reinterpret_cast<std::remove_reference_t<decltype(fn)>>(dlsym(so, name));
      if (fn == nullptr && lib.error.empty()) lib.error = std::string("no symbol ") + name;
    };
    find(lib.create, "cublasCreate_v2");
    find(lib.destroy, "cublasDestroy_v2");
    find(lib.set_stream, "cublasSetStream_v2");
    find(lib.set_workspace, "cublasSetWorkspace_v2");
    find(lib.get_version, "cublasGetVersion_v2");
    find(lib.gemm_ex, "cublasGemmEx");
  });
  return lib;
}

bool fits_int(int64_t v) { return v >= 0 && v <= std::numeric_limits<int>::max(); }

}  // namespace

std::unique_ptr<Blas> Blas::create(cudaStream_t stream, void* workspace, std::string* why) {
  const Library& lib = library();
  if (!lib.error.empty()) {
    if (why != nullptr) *why = lib.error;
    return nullptr;
  }
  cublasHandle_t handle = nullptr;
  if (const cublasStatus_t s = lib.create(&handle); s != CUBLAS_STATUS_SUCCESS) {
    if (why != nullptr) *why = "cublasCreate failed with status " + std::to_string(s);
    return nullptr;
  }
  std::unique_ptr<Blas> blas(new Blas());
  blas->lib_ = &lib;
  blas->handle_ = handle;
  if (lib.set_stream(handle, stream) != CUBLAS_STATUS_SUCCESS ||
      lib.set_workspace(handle, workspace, kBlasWorkspaceBytes) != CUBLAS_STATUS_SUCCESS ||
      lib.get_version(handle, &blas->version_) != CUBLAS_STATUS_SUCCESS) {
    if (why != nullptr) *why = "cuBLAS refused its stream or workspace";
    return nullptr;
  }
  return blas;
}

Blas::~Blas() {
  if (handle_ != nullptr) lib_->destroy(static_cast<cublasHandle_t>(handle_));
}

bool Blas::gemm_f16(const uint16_t* a, const uint16_t* b, int64_t m, int64_t n, int64_t k, float* c,
                    bool accumulate) const {
  if (m == 0 || n == 0) return true;
  if (!fits_int(m) || !fits_int(n) || !fits_int(k)) return false;
  const float alpha = 1.0f;
  const float beta = accumulate ? 1.0f : 0.0f;
  const cublasStatus_t s =
      lib_->gemm_ex(static_cast<cublasHandle_t>(handle_), CUBLAS_OP_T, CUBLAS_OP_N,
                    static_cast<int>(n), static_cast<int>(m), static_cast<int>(k), &alpha, b,
                    CUDA_R_16F, static_cast<int>(k), a, CUDA_R_16F, static_cast<int>(k), &beta, c,
                    CUDA_R_32F, static_cast<int>(n), CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT);
  return s == CUBLAS_STATUS_SUCCESS;
}

}  // namespace pensieve::cuda
