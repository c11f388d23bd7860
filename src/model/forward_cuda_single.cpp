// CudaForward's single-sequence pass (Forward): the sequence's K and V in the cache's first n_ctx
// rows, prompts in chunks of max_batch tokens, one-token steps replayed from a CUDA graph, and
// the last token's logits back to the host.
#include <cuda_runtime.h>

#include <algorithm>

#include "model/cuda_status.h"
#include "model/forward_cuda.h"

namespace pensieve {
namespace {

size_t sz(int64_t n) { return static_cast<size_t>(n); }

}  // namespace

Expected<std::span<const float>> CudaForward::eval(std::span<const int32_t> tokens) {
  if (!whole_model()) return only_part_of_model(layers(), hp_.n_layer);
  PV_TRY_VOID(check_eval(tokens, n_past_, n_ctx_, hp_.n_vocab));
  if (weights_mem_ == nullptr) {
    return make_error(ErrorCode::kUnavailable, "cuda: the weights were released; restore them");
  }
  PV_TRY_VOID(cuda_ok(cudaSetDevice(device_), "selecting the device"));
  best_segments_ = 0;  // the pass overwrites their logits
  if (tokens.size() == 1 && decode_graph_) {
    PV_TRY_VOID(run_graph_step(tokens[0]));
    PV_TRY_VOID(read_logits());
    n_past_ += 1;
    return std::span<const float>(logits_, sz(hp_.n_vocab));
  }
  int64_t pos = n_past_;
  int64_t last = 0;  // tokens in the last chunk
  for (size_t begin = 0; begin < tokens.size(); begin += sz(max_batch_)) {
    const size_t n = std::min(sz(max_batch_), tokens.size() - begin);
    PV_TRY_VOID(cuda_ok(cudaMemcpyAsync(ids_, tokens.data() + begin, n * sizeof(int32_t),
                                        cudaMemcpyHostToDevice, stream_),
                        "uploading token ids"));
    run_chunk(ids_, static_cast<int64_t>(n), KvPlace{pos});
    pos += static_cast<int64_t>(n);
    last = static_cast<int64_t>(n);
  }
  logits_of(x_ + (last - 1) * hp_.n_embd);  // the last token's only
  PV_TRY_VOID(read_logits());
  n_past_ = pos;
  return std::span<const float>(logits_, sz(hp_.n_vocab));
}

Expected<void> CudaForward::read_logits() {
  PV_TRY_VOID(cuda_ok(cudaGetLastError(), "launching the forward pass"));
  PV_TRY_VOID(cuda_ok(cudaMemcpyAsync(logits_, logits_dev_, sz(hp_.n_vocab) * sizeof(float),
                                      cudaMemcpyDeviceToHost, stream_),
                      "reading logits"));
  return cuda_ok(cudaStreamSynchronize(stream_), "running the forward pass");
}

}  // namespace pensieve
