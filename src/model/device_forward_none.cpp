// A build without the CUDA backend: every device request says so.
#include "model/device_forward.h"

namespace pensieve {
namespace {

Error no_cuda() {
  return Error{ErrorCode::kUnavailable,
               "this pensieve was built without CUDA (configure with -DPENSIEVE_CUDA=ON)"};
}

}  // namespace

bool cuda_built() { return false; }

Expected<std::unique_ptr<Forward>> make_cuda_forward(const Hparams&, const ModelWeights&, int64_t,
                                                     const DeviceForwardOptions&) {
  return Unexpected<Error>(no_cuda());
}

Expected<CudaBatchForward> make_cuda_batch_forward(const Hparams&, const ModelWeights&, int64_t,
                                                   const DeviceForwardOptions&) {
  return Unexpected<Error>(no_cuda());
}

Expected<DeviceMemoryPlan> cuda_memory_plan(const Hparams&, const ModelWeights&, int64_t,
                                            const DeviceForwardOptions&) {
  return Unexpected<Error>(no_cuda());
}

Expected<CudaDeviceInfo> cuda_device_info(int) { return Unexpected<Error>(no_cuda()); }

}  // namespace pensieve
