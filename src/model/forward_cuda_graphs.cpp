// The decode steps as captured CUDA graphs: everything a step reads from the host goes to device
// memory first (the token and position of a one-token eval, eval_batch's uploaded inputs), so one
// capture serves every later step of its shape. One graph for eval(), one per number of
// sequences for eval_batch() (kMaxBatchGraphs at most, the least recently used dropped first);
// all are dropped with the weights they read.
#include <cuda_runtime.h>

#include <algorithm>

#include "model/cuda_status.h"
#include "model/forward_cuda.h"

namespace pensieve {

// The token and its position go to device memory, then the captured step runs; the first call
// captures it.
Expected<void> CudaForward::run_graph_step(int32_t token) {
  step_host_[0] = token;
  step_host_[1] = static_cast<int32_t>(n_past_);
  PV_TRY_VOID(cuda_ok(
      cudaMemcpyAsync(step_, step_host_, 2 * sizeof(int32_t), cudaMemcpyHostToDevice, stream_),
      "uploading the step's token"));
  if (graph_ == nullptr) {
    PV_TRY_VOID(cuda_ok(cudaStreamBeginCapture(stream_, cudaStreamCaptureModeRelaxed),
                        "capturing the decode step"));
    run_chunk(step_, 1, KvPlace{0, step_ + 1});
    logits_of(x_);
    cudaGraph_t graph = nullptr;
    PV_TRY_VOID(cuda_ok(cudaStreamEndCapture(stream_, &graph), "capturing the decode step"));
    const cudaError_t made = cudaGraphInstantiate(&graph_, graph, 0);
    cudaGraphDestroy(graph);
    if (made != cudaSuccess) graph_ = nullptr;
    PV_TRY_VOID(cuda_ok(made, "instantiating the decode step"));
  }
  return cuda_ok(cudaGraphLaunch(graph_, stream_), "launching the decode step");
}

void CudaForward::drop_graphs() {
  if (graph_ != nullptr) cudaGraphExecDestroy(graph_);
  graph_ = nullptr;
  for (const BatchGraph& g : batch_graphs_) cudaGraphExecDestroy(g.exec);
  batch_graphs_.clear();
}

Expected<void> CudaForward::run_batch_graph(int64_t n) {
  auto it = std::find_if(batch_graphs_.begin(), batch_graphs_.end(),
                         [n](const BatchGraph& g) { return g.n_segments == n; });
  if (it != batch_graphs_.end()) {
    std::rotate(it, it + 1, batch_graphs_.end());  // the most recently used goes last
  } else {
    PV_TRY_VOID(cuda_ok(cudaStreamBeginCapture(stream_, cudaStreamCaptureModeRelaxed),
                        "capturing a batched step"));
    run_batch(n, n);
    cudaGraph_t graph = nullptr;
    PV_TRY_VOID(cuda_ok(cudaStreamEndCapture(stream_, &graph), "capturing a batched step"));
    cudaGraphExec_t exec = nullptr;
    const cudaError_t made = cudaGraphInstantiate(&exec, graph, 0);
    cudaGraphDestroy(graph);
    PV_TRY_VOID(cuda_ok(made, "instantiating a batched step"));
    if (batch_graphs_.size() == kMaxBatchGraphs) {
      cudaGraphExecDestroy(batch_graphs_.front().exec);
      batch_graphs_.erase(batch_graphs_.begin());
    }
    batch_graphs_.push_back({n, exec});
  }
  return cuda_ok(cudaGraphLaunch(batch_graphs_.back().exec, stream_), "launching a batched step");
}

}  // namespace pensieve
