// CudaForward as a BatchForward: the tokens of every segment go through the layers as one
// chunk; each token's position and its sequence's block table travel to the device in one
// upload, and rope_store_kv and attention read the pool through them. Nothing else of a step
// depends on the host, so a decode step (one token a sequence) replays a CUDA graph
// (forward_cuda_graphs.cpp). As a LayerStage, a range past layer 0 starts from hidden states
// uploaded into x_, and one that ends before the model's end sends x_ back instead of logits.
#include <cuda_runtime.h>

#include <algorithm>
#include <cstddef>
#include <cstring>

#include "kernels/cuda/ops.h"
#include "model/cuda_status.h"
#include "model/forward_cuda.h"

namespace pensieve {
namespace {

size_t sz(int64_t n) { return static_cast<size_t>(n); }

}  // namespace

Expected<std::span<const float>> CudaForward::eval_batch(std::span<const BatchSegment> segments) {
  if (!whole_model()) return only_part_of_model(layers(), hp_.n_layer);
  return eval_layers(segments, {});
}

Expected<std::span<const int32_t>> CudaForward::eval_batch_greedy(
    std::span<const BatchSegment> segments) {
  if (!whole_model()) return only_part_of_model(layers(), hp_.n_layer);
  return eval_layers_greedy(segments, {});
}

Expected<std::span<const float>> CudaForward::eval_layers(std::span<const BatchSegment> segments,
                                                          std::span<const float> hidden) {
  PV_TRY(const int64_t n_segments, launch_batch(segments, hidden));
  if (end_layer_ < hp_.n_layer) {  // the next stage takes every token's hidden state
    const size_t n_states = sz(step_tokens_ * hp_.n_embd);
    PV_TRY_VOID(cuda_ok(cudaMemcpyAsync(hidden_host_, x_, n_states * sizeof(float),
                                        cudaMemcpyDeviceToHost, stream_),
                        "reading hidden states"));
    PV_TRY_VOID(cuda_ok(cudaStreamSynchronize(stream_), "running the forward pass"));
    return std::span<const float>(hidden_host_, n_states);
  }
  const size_t n_logits = sz(n_segments * hp_.n_vocab);
  PV_TRY_VOID(cuda_ok(cudaMemcpyAsync(logits_, logits_dev_, n_logits * sizeof(float),
                                      cudaMemcpyDeviceToHost, stream_),
                      "reading logits"));
  PV_TRY_VOID(cuda_ok(cudaStreamSynchronize(stream_), "running the forward pass"));
  return std::span<const float>(logits_, n_logits);
}

Expected<std::span<const int32_t>> CudaForward::eval_layers_greedy(
    std::span<const BatchSegment> segments, std::span<const float> hidden) {
  if (end_layer_ < hp_.n_layer) {
    return make_error(ErrorCode::kInvalidArgument,
                      "forward: layers [{}, {}) of {} have no logits to pick from", first_layer_,
                      end_layer_, hp_.n_layer);
  }
  PV_TRY(const int64_t n_segments, launch_batch(segments, hidden));
  cuda::argmax_rows(logits_dev_, n_segments, hp_.n_vocab, greedy_dev_, stream_);
  PV_TRY_VOID(cuda_ok(cudaGetLastError(), "picking the greedy tokens"));
  return read_picks(n_segments);
}

Expected<std::span<const int32_t>> CudaForward::eval_batch_drawn(
    std::span<const BatchSegment> segments, std::span<const TokenDraw> draws) {
  if (!whole_model()) return only_part_of_model(layers(), hp_.n_layer);
  return eval_layers_drawn(segments, {}, draws);
}

Expected<std::span<const int32_t>> CudaForward::eval_layers_drawn(
    std::span<const BatchSegment> segments, std::span<const float> hidden,
    std::span<const TokenDraw> draws) {
  if (end_layer_ < hp_.n_layer) {
    return make_error(ErrorCode::kInvalidArgument,
                      "forward: layers [{}, {}) of {} have no logits to draw from", first_layer_,
                      end_layer_, hp_.n_layer);
  }
  PV_TRY_VOID(check_draws(segments, draws));
  PV_TRY(const int64_t n_segments, launch_batch(segments, hidden));
  for (size_t i = 0; i < draws.size(); ++i) {
    draws_host_[2 * i] = draws[i].temperature;
    draws_host_[2 * i + 1] = draws[i].uniform;
  }
  PV_TRY_VOID(cuda_ok(cudaMemcpyAsync(draws_dev_, draws_host_, 2 * draws.size() * sizeof(double),
                                      cudaMemcpyHostToDevice, stream_),
                      "uploading the draws"));
  cuda::draw_rows(logits_dev_, n_segments, hp_.n_vocab, draws_dev_, greedy_dev_, stream_);
  PV_TRY_VOID(cuda_ok(cudaGetLastError(), "drawing the tokens"));
  return read_picks(n_segments);
}

Expected<std::span<const TokenLogit>> CudaForward::eval_batch_best(
    std::span<const BatchSegment> segments, int64_t k, std::span<double> exp_sums) {
  if (!whole_model()) return only_part_of_model(layers(), hp_.n_layer);
  return eval_layers_best(segments, {}, k, exp_sums);
}

// The pairs best_rows writes, an index and a value's bits, are TokenLogit's.
static_assert(sizeof(TokenLogit) == 2 * sizeof(int32_t) && offsetof(TokenLogit, logit) == 4);
static_assert(BatchForward::kMaxBestTokens == cuda::kBestRowsMax);

Expected<std::span<const TokenLogit>> CudaForward::eval_layers_best(
    std::span<const BatchSegment> segments, std::span<const float> hidden, int64_t k,
    std::span<double> exp_sums) {
  if (end_layer_ < hp_.n_layer) {
    return make_error(ErrorCode::kInvalidArgument,
                      "forward: layers [{}, {}) of {} have no logits to select from", first_layer_,
                      end_layer_, hp_.n_layer);
  }
  PV_TRY_VOID(check_best_count(k, hp_.n_vocab));
  if (!exp_sums.empty() && exp_sums.size() != segments.size()) {
    return make_error(ErrorCode::kInvalidArgument, "forward: {} sums for {} segments",
                      exp_sums.size(), segments.size());
  }
  PV_TRY(const int64_t n_segments, launch_batch(segments, hidden));
  const bool sums = !exp_sums.empty();
  cuda::best_rows(logits_dev_, n_segments, hp_.n_vocab, k, best_dev_,
                  sums ? exp_sums_dev_ : nullptr, stream_);
  PV_TRY_VOID(cuda_ok(cudaGetLastError(), "selecting the best tokens"));
  const size_t n_pairs = sz(n_segments * k);
  PV_TRY_VOID(cuda_ok(cudaMemcpyAsync(best_host_, best_dev_, n_pairs * sizeof(TokenLogit),
                                      cudaMemcpyDeviceToHost, stream_),
                      "reading the best tokens"));
  if (sums) {
    PV_TRY_VOID(
        cuda_ok(cudaMemcpyAsync(exp_sums_host_, exp_sums_dev_, sz(n_segments) * sizeof(double),
                                cudaMemcpyDeviceToHost, stream_),
                "reading the sums of exponentials"));
  }
  PV_TRY_VOID(cuda_ok(cudaStreamSynchronize(stream_), "running the forward pass"));
  if (sums) std::copy_n(exp_sums_host_, n_segments, exp_sums.begin());
  best_segments_ = n_segments;
  return std::span<const TokenLogit>(best_host_, n_pairs);
}

// The rows stay in logits_dev_ until the next step. The first row asked for brings the step's
// rows to the host together (a flat distribution leaves every sampler short at once).
Expected<std::span<const float>> CudaForward::best_step_row(int64_t segment) {
  if (segment < 0 || segment >= best_segments_) {
    return make_error(ErrorCode::kInvalidArgument,
                      "forward: row {} of a best-token step of {} segments", segment,
                      best_segments_);
  }
  const size_t n_vocab = sz(hp_.n_vocab);
  if (!best_rows_on_host_) {
    PV_TRY_VOID(
        cuda_ok(cudaMemcpyAsync(logits_, logits_dev_, sz(best_segments_) * n_vocab * sizeof(float),
                                cudaMemcpyDeviceToHost, stream_),
                "reading the rows of logits"));
    PV_TRY_VOID(cuda_ok(cudaStreamSynchronize(stream_), "reading the rows of logits"));
    best_rows_on_host_ = true;
  }
  return std::span<const float>(logits_ + sz(segment) * n_vocab, n_vocab);
}

Expected<std::span<const int32_t>> CudaForward::read_picks(int64_t n_segments) {
  PV_TRY_VOID(cuda_ok(cudaMemcpyAsync(greedy_host_, greedy_dev_, sz(n_segments) * sizeof(int32_t),
                                      cudaMemcpyDeviceToHost, stream_),
                      "reading the picks"));
  PV_TRY_VOID(cuda_ok(cudaStreamSynchronize(stream_), "running the forward pass"));
  return std::span<const int32_t>(greedy_host_, sz(n_segments));
}

Expected<int64_t> CudaForward::launch_batch(std::span<const BatchSegment> segments,
                                            std::span<const float> hidden) {
  best_segments_ = 0;  // the step overwrites their logits
  best_rows_on_host_ = false;
  PV_TRY(const int64_t n_tokens,
         check_batch(segments, {n_ctx_, kv_blocks_, hp_.n_vocab, max_batch_, max_segments_}));
  const size_t want = first_layer_ == 0 ? 0 : sz(n_tokens * hp_.n_embd);
  if (hidden.size() != want) {
    return make_error(ErrorCode::kInvalidArgument,
                      "forward: layers from {} take {} hidden-state values for {} tokens, not {}",
                      first_layer_, want, n_tokens, hidden.size());
  }
  if (weights_mem_ == nullptr) {
    return make_error(ErrorCode::kUnavailable, "cuda: the weights were released; restore them");
  }
  const auto n_segments = static_cast<int64_t>(segments.size());
  // The host side of batch_ints_: ids, positions and table offsets per token, then the last
  // row of each segment, then the block tables one after another.
  int32_t* ids = batch_host_;
  int32_t* positions = ids + max_batch_;
  int32_t* offsets = positions + max_batch_;
  int32_t* last = offsets + max_batch_;
  int32_t* tables = last + max_segments_;
  int64_t t = 0;
  int64_t table_at = 0;
  for (int64_t s = 0; s < n_segments; ++s) {
    const BatchSegment& seg = segments[sz(s)];
    const auto n = static_cast<int64_t>(seg.tokens.size());
    const int64_t blocks = (seg.first_pos + n + kKvBlockPositions - 1) / kKvBlockPositions;
    std::memcpy(tables + table_at, seg.block_table.data(), sz(blocks) * sizeof(int32_t));
    for (int64_t i = 0; i < n; ++i, ++t) {
      ids[t] = seg.tokens[sz(i)];
      positions[t] = static_cast<int32_t>(seg.first_pos + i);
      offsets[t] = static_cast<int32_t>(table_at);
    }
    last[s] = static_cast<int32_t>(t - 1);
    table_at += blocks;
  }
  const int64_t n_ints = (tables - batch_host_) + table_at;
  PV_TRY_VOID(cuda_ok(cudaSetDevice(device_), "selecting the device"));
  PV_TRY_VOID(cuda_ok(cudaMemcpyAsync(batch_ints_, batch_host_, sz(n_ints) * sizeof(int32_t),
                                      cudaMemcpyHostToDevice, stream_),
                      "uploading the batch"));
  if (!hidden.empty()) {  // x_ starts as the stage before left it; the graphs read it from there
    PV_TRY_VOID(cuda_ok(cudaMemcpyAsync(x_, hidden.data(), hidden.size() * sizeof(float),
                                        cudaMemcpyHostToDevice, stream_),
                        "uploading hidden states"));
  }
  step_tokens_ = n_tokens;
  // cuBLAS products stay out of the graphs.
  const bool blas = blas_ != nullptr && blas_min_tokens_ > 0 && n_tokens >= blas_min_tokens_;
  if (decode_graph_ && n_tokens == n_segments && !blas) {
    PV_TRY_VOID(run_batch_graph(n_segments));
  } else {
    run_batch(n_tokens, n_segments);
  }
  PV_TRY_VOID(cuda_ok(cudaGetLastError(), "launching the forward pass"));
  return n_segments;
}

void CudaForward::run_batch(int64_t n_tokens, int64_t n_segments) {
  const int32_t* dev = batch_ints_;
  KvPlace place;
  place.positions = dev + max_batch_;
  place.table_offsets = dev + 2 * max_batch_;
  place.block_tables = dev + 3 * max_batch_ + max_segments_;
  run_chunk(dev, n_tokens, place);
  if (end_layer_ == hp_.n_layer) logits_of_rows(dev + 3 * max_batch_, n_segments);
}

int64_t CudaForward::discard_blocks(std::span<const int32_t> /*blocks*/) { return 0; }

}  // namespace pensieve
