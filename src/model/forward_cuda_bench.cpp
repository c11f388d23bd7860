// Prompt and generation speed of CudaForward, as llama-bench reports them: pp<N> (one prompt of
// N tokens from an empty context) and tg<N> (N one-token steps from an empty context), tokens/s,
// each with the tensor-core prompt path and the decode graph on and off, the decode rate after
// the prompt, and the weight bytes read per second of decoding. --kernels times the matrix
// kernels alone on layer 0's feed-forward matrices; --gemm-q8 times the decode products (matvec
// of 1 and 4 tokens, gemm_q8 of 8 to 32) on Llama-7B's and TinyLlama's shapes, no model needed.
//   cuda_bench (MODEL.gguf | --synth PRESET [--type F16|Q8_0|Q4_0] [--dir DIR] | --gemm-q8)
//              [--pp 512] [--tg 128] [--reps 3] [--kernels] [--make-only]
#include <cuda_runtime.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <span>
#include <string>
#include <vector>

#include "kernels/cuda/ops.h"
#include "model/device_forward.h"
#include "model/forward_cuda.h"
#include "model/model.h"
#include "model/quantize.h"
#include "model/synth.h"

namespace pensieve {
namespace {

struct Args {
  std::string model;
  std::string synth;
  std::string type = "F16";
  std::string dir = "/tmp";
  int64_t pp = 512;
  int64_t tg = 128;
  int reps = 3;
  bool kernels = false;
  bool make_only = false;  // write the synthetic model files and stop
  bool gemm_q8 = false;
};

[[noreturn]] void die(const std::string& what) {
  std::fprintf(stderr, "cuda_bench: %s\n", what.c_str());
  std::exit(1);
}

Args parse(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) die(arg + " needs a value");
      return argv[++i];
    };
    if (arg == "--synth") {
      a.synth = value();
    } else if (arg == "--type") {
      a.type = value();
    } else if (arg == "--dir") {
      a.dir = value();
    } else if (arg == "--pp") {
      a.pp = std::stoll(value());
    } else if (arg == "--tg") {
      a.tg = std::stoll(value());
    } else if (arg == "--reps") {
      a.reps = std::stoi(value());
    } else if (arg == "--kernels") {
      a.kernels = true;
    } else if (arg == "--make-only") {
      a.make_only = true;
    } else if (arg == "--gemm-q8") {
      a.gemm_q8 = true;
    } else if (!arg.empty() && arg[0] != '-' && a.model.empty()) {
      a.model = arg;
    } else {
      die("unknown argument " + arg);
    }
  }
  if (!a.gemm_q8 && a.model.empty() == a.synth.empty()) die("give a GGUF path or --synth PRESET");
  return a;
}

// The model file: the path given, or a synthetic preset written (and quantized) under dir.
std::string model_file(const Args& a) {
  if (!a.model.empty()) return a.model;
  SynthOptions o;
  o.preset = a.synth;
  o.output_path = a.dir + "/" + a.synth + "-F16.gguf";
  o.shared_dir = PENSIEVE_SHARED_DIR;
  if (!std::filesystem::exists(o.output_path)) {
    if (auto made = synth_model(o); !made) die(made.error().message);
  }
  if (a.type == "F16") return o.output_path;
  const std::string out = a.dir + "/" + a.synth + "-" + a.type + ".gguf";
  if (!std::filesystem::exists(out)) {
    if (auto q = quantize_model({o.output_path, out, a.type, 0}); !q) die(q.error().message);
  }
  return out;
}

double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

std::unique_ptr<CudaForward> make(const Model& m, int64_t n_ctx, const CudaForwardOptions& o) {
  auto fwd = CudaForward::create(m.hparams(), m.weights(), n_ctx, o);
  if (!fwd) die(fwd.error().message);
  return std::move(*fwd);
}

std::vector<int32_t> prompt_tokens(int64_t n, int64_t n_vocab) {
  std::vector<int32_t> ids(static_cast<size_t>(n));
  for (size_t i = 0; i < ids.size(); ++i) {
    ids[i] = static_cast<int32_t>(1 + static_cast<int64_t>(i) * 7919 % (n_vocab - 1));
  }
  return ids;
}

// The best of `reps` prompts of n tokens from an empty context, tokens/s; the first run warms up.
double prompt_rate(CudaForward& fwd, const std::vector<int32_t>& ids, int reps) {
  double best = 1e30;
  for (int r = 0; r <= reps; ++r) {
    fwd.reset();
    const double t0 = now_s();
    if (auto l = fwd.eval(ids); !l) die(l.error().message);
    if (r > 0) best = std::min(best, now_s() - t0);
  }
  return static_cast<double>(ids.size()) / best;
}

// n greedy steps from the current context, tokens/s.
double decode_rate(CudaForward& fwd, int64_t n) {
  int32_t token = 1;
  const double t0 = now_s();
  for (int64_t i = 0; i < n; ++i) {
    auto logits = fwd.eval(std::span<const int32_t>(&token, 1));
    if (!logits) die(logits.error().message);
    token =
        static_cast<int32_t>(std::max_element(logits->begin(), logits->end()) - logits->begin());
  }
  return static_cast<double>(n) / (now_s() - t0);
}

// Milliseconds per call of `launch(stream)` on the GPU: 20 calls captured in a graph (as the
// decode step runs), the graph replayed 5 times after a warm-up.
template <class F>
double time_ms(F launch) {
  cudaStream_t stream = nullptr;
  cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking);
  for (int i = 0; i < 3; ++i) launch(stream);
  cudaStreamBeginCapture(stream, cudaStreamCaptureModeRelaxed);
  for (int i = 0; i < 20; ++i) launch(stream);
  cudaGraph_t graph = nullptr;
  cudaGraphExec_t exec = nullptr;
  cudaStreamEndCapture(stream, &graph);
  cudaGraphInstantiate(&exec, graph, 0);
  cudaGraphLaunch(exec, stream);
  cudaEvent_t start, stop;
  cudaEventCreate(&start);
  cudaEventCreate(&stop);
  cudaEventRecord(start, stream);
  for (int i = 0; i < 5; ++i) cudaGraphLaunch(exec, stream);
  cudaEventRecord(stop, stream);
  cudaEventSynchronize(stop);
  float ms = 0;
  cudaEventElapsedTime(&ms, start, stop);
  cudaEventDestroy(start);
  cudaEventDestroy(stop);
  cudaGraphExecDestroy(exec);
  cudaGraphDestroy(graph);
  cudaStreamDestroy(stream);
  return ms / 100;
}

template <class T>
T* device_alloc(size_t n) {
  void* p = nullptr;
  if (cudaMalloc(&p, n * sizeof(T)) != cudaSuccess) die("cudaMalloc");
  cudaMemset(p, 0, n * sizeof(T));
  return static_cast<T*>(p);
}

Matrix upload(const Matrix& host) {
  const size_t bytes = host.row_bytes * static_cast<size_t>(host.n_rows);
  auto* d = device_alloc<uint8_t>(bytes);
  cudaMemcpy(d, host.data, bytes, cudaMemcpyHostToDevice);
  cuda::to_device_layout(host.type, d, host.row_bytes, host.n_rows, host.n_cols, nullptr);
  return {host.type, host.n_cols, host.n_rows, host.row_bytes, d};
}

// Copies of a matrix on the device, enough that taking them in turn reads at least 256 MB: more
// than the L2 cache holds, so a product reads its weights from device memory as decoding does.
struct Copies {
  std::vector<Matrix> m;
  size_t next = 0;
  const Matrix* take() { return &m[next++ % m.size()]; }
};
Copies upload_copies(const Matrix& host) {
  const double bytes = static_cast<double>(host.row_bytes) * static_cast<double>(host.n_rows);
  const int n = std::clamp(static_cast<int>(256e6 / bytes) + 1, 2, 64);
  Copies c;
  for (int i = 0; i < n; ++i) c.m.push_back(upload(host));
  return c;
}

// The small kernels of a decode step, and attention over n_tokens of a prompt both ways.
void bench_step_kernels(const Model& m, int64_t n_tokens, float* x, cuda::Q8Act xq) {
  const Hparams& hp = m.hparams();
  const LayerWeights& l = m.weights().layers[0];
  const Matrix wq = upload(l.wq);
  const Matrix wk = upload(l.wk);
  const Matrix wv = upload(l.wv);
  auto* norm_w = device_alloc<float>(static_cast<size_t>(hp.n_embd));
  auto* y = device_alloc<float>(static_cast<size_t>(n_tokens * hp.n_head * hp.head_dim));
  const int64_t n_ctx = n_tokens + 256;
  auto* k_cache = device_alloc<uint16_t>(static_cast<size_t>(n_ctx * hp.n_embd_kv()));
  auto* v_cache = device_alloc<uint16_t>(static_cast<size_t>(n_ctx * hp.n_embd_kv()));
  const double t_norm =
      time_ms([&](cudaStream_t st) { cuda::rms_norm_q8(x, norm_w, hp.n_embd, 1e-5f, y, xq, st); });
  cuda::MatvecJob qkv;
  qkv.n_w = 3;
  qkv.w[0] = &wq;
  qkv.w[1] = &wk;
  qkv.w[2] = &wv;
  qkv.y[0] = qkv.y[1] = qkv.y[2] = y;
  qkv.x = x;
  qkv.xq = xq;
  const double t_qkv = time_ms([&](cudaStream_t st) { cuda::matvec(qkv, st); });
  auto attend = [&](int64_t tokens, int64_t first_pos, bool tc) {
    cuda::AttentionJob a;
    a.q = x;
    a.out = y;
    a.k_cache = k_cache;
    a.v_cache = v_cache;
    a.n_tokens = tokens;
    a.first_pos = first_pos;
    a.n_head = hp.n_head;
    a.n_head_kv = hp.n_head_kv;
    a.head_dim = hp.head_dim;
    a.scale = 0.125f;
    a.tensor_cores = tc;
    return time_ms([&](cudaStream_t st) { cuda::attention(a, st); });
  };
  std::printf(
      "  rms_norm_q8 %lld: %.1f us; q/k/v matvec: %.1f us; one-token attention at "
      "position 128: %.1f us, at %lld: %.1f us\n",
      static_cast<long long>(hp.n_embd), t_norm * 1e3, t_qkv * 1e3, attend(1, 128, false) * 1e3,
      static_cast<long long>(n_tokens + 128), attend(1, n_tokens + 128, false) * 1e3);
  std::printf("  attention of a %lld-token prompt: scalar %.1f us, tensor cores %.1f us\n",
              static_cast<long long>(n_tokens), attend(n_tokens, 0, false) * 1e3,
              attend(n_tokens, 0, true) * 1e3);
}

// Layer 0's gate/up/down alone: decode products (GB/s of weights), dequantization and the
// tensor-core product of n_tokens (TFLOP/s).
void bench_kernels(const Model& m, int64_t n_tokens) {
  const LayerWeights& l = m.weights().layers[0];
  Copies gates = upload_copies(l.ffn_gate);
  Copies ups = upload_copies(l.ffn_up);
  Copies downs = upload_copies(l.ffn_down);
  const Matrix& gate = gates.m[0];
  const Matrix& down = downs.m[0];
  const int64_t widest = std::max(gate.n_cols, down.n_cols);
  auto* x = device_alloc<float>(static_cast<size_t>(n_tokens * widest));
  auto* y = device_alloc<float>(static_cast<size_t>(n_tokens * std::max(gate.n_rows, down.n_rows)));
  cuda::Q8Act xq{device_alloc<int8_t>(static_cast<size_t>(widest)),
                 device_alloc<float2>(static_cast<size_t>(widest / 32))};
  auto bytes = [](const Matrix& w) { return static_cast<double>(w.row_bytes) * w.n_rows; };
  // Each call takes the next copies, so the weights come from device memory.
  auto run = [&](std::initializer_list<Copies*> w, cuda::MatvecOut out) {
    return time_ms([&](cudaStream_t st) {
      cuda::MatvecJob job;
      job.n_w = static_cast<int>(w.size());
      for (size_t i = 0; i < w.size(); ++i) {
        job.w[i] = w.begin()[i]->take();
        job.y[i] = y;
      }
      job.x = x;
      job.xq = xq;
      job.out = out;
      cuda::matvec(job, st);
    });
  };
  const double t_gate = run({&gates}, cuda::MatvecOut::kStore);
  const double t_glu = run({&gates, &ups}, cuda::MatvecOut::kSwiglu);
  const double t_down = run({&downs}, cuda::MatvecOut::kAdd);
  std::printf(
      "  matvec %s %lldx%lld: %.1f us, %.0f GB/s; gate+up+SwiGLU %.1f us, %.0f GB/s; "
      "down+add %.1f us, %.0f GB/s\n",
      std::string(ggml_type_name(gate.type)).c_str(), static_cast<long long>(gate.n_rows),
      static_cast<long long>(gate.n_cols), t_gate * 1e3, bytes(gate) / t_gate / 1e6, t_glu * 1e3,
      2 * bytes(gate) / t_glu / 1e6, t_down * 1e3, bytes(down) / t_down / 1e6);
  const double t_q =
      time_ms([&](cudaStream_t st) { cuda::quantize_q8(x, 1, down.n_cols, xq, st); });
  auto* w16 = device_alloc<uint16_t>(static_cast<size_t>(gate.n_rows * gate.n_cols));
  auto* x16 = device_alloc<uint16_t>(static_cast<size_t>(n_tokens * widest));
  const double t_deq = time_ms([&](cudaStream_t st) { cuda::dequantize_f16(gate, w16, st); });
  const double t_mm = time_ms([&](cudaStream_t st) {
    cuda::gemm_f16(x16, w16, n_tokens, gate.n_rows, gate.n_cols, y, false, st);
  });
  const double t_mm_down = time_ms([&](cudaStream_t st) {
    cuda::gemm_f16(x16, w16, n_tokens, down.n_rows, down.n_cols, y, true, st);
  });
  const double t_old = time_ms([&](cudaStream_t st) { cuda::matmul(gate, x, n_tokens, y, st); });
  const double flops = 2.0 * static_cast<double>(n_tokens) * gate.n_rows * gate.n_cols;
  std::printf("  quantize %lld: %.1f us; dequantize gate to F16: %.1f us (%.0f GB/s written)\n",
              static_cast<long long>(down.n_cols), t_q * 1e3, t_deq * 1e3,
              2.0 * gate.n_rows * gate.n_cols / t_deq / 1e6);
  std::printf(
      "  gemm_f16 %lld x %lld x %lld: %.1f us, %.1f TFLOP/s; as down %lld x %lld x %lld: "
      "%.1f us, %.1f TFLOP/s; tiled F32 matmul: %.1f us, %.1f TFLOP/s\n",
      static_cast<long long>(n_tokens), static_cast<long long>(gate.n_rows),
      static_cast<long long>(gate.n_cols), t_mm * 1e3, flops / t_mm / 1e9,
      static_cast<long long>(n_tokens), static_cast<long long>(down.n_rows),
      static_cast<long long>(down.n_cols), t_mm_down * 1e3, flops / t_mm_down / 1e9, t_old * 1e3,
      flops / t_old / 1e9);
  bench_step_kernels(m, n_tokens, x, xq);
  const cudaError_t err = cudaDeviceSynchronize();
  if (err != cudaSuccess) die(std::string("kernels: ") + cudaGetErrorString(err));
}

// Decode products of 1 to 32 tokens on matrices of random bytes of Llama-7B's and TinyLlama's
// shapes (timing only: scales may be any value), and the gate+up+SwiGLU pair of one token:
// microseconds and GB/s of weights read. F16 has no 8-bit product (gemm_q8).
void bench_gemm_q8() {
  struct Shape {
    int64_t rows, cols;
    bool gate;  // a feed-forward gate's shape: also timed as the SwiGLU pair
  };
  const Shape shapes[] = {{4096, 4096, false}, {11008, 4096, true}, {4096, 11008, false},
                          {2560, 2048, false}, {5632, 2048, true},  {2048, 5632, false}};
  const GgmlType types[] = {GgmlType::kQ4_0, GgmlType::kQ8_0, GgmlType::kQ4_K, GgmlType::kQ6_K,
                            GgmlType::kF16};
  const int64_t max_tokens = cuda::kGemmQ8MaxTokens;
  auto* x = device_alloc<float>(static_cast<size_t>(max_tokens * 11008));
  auto* y = device_alloc<float>(static_cast<size_t>(max_tokens * 11008));
  std::vector<int8_t> codes(static_cast<size_t>(max_tokens * 11008));
  uint32_t seed = 12345;
  auto next = [&seed] { return seed = seed * 1664525u + 1013904223u; };
  for (auto& c : codes) c = static_cast<int8_t>(next() >> 24);
  cuda::Q8Act xq{device_alloc<int8_t>(codes.size()), device_alloc<float2>(codes.size() / 32)};
  cudaMemcpy(xq.qs, codes.data(), codes.size(), cudaMemcpyHostToDevice);
  const std::vector<float2> ds(codes.size() / 32, float2{0.01f, 0.5f});
  cudaMemcpy(xq.ds, ds.data(), ds.size() * sizeof(float2), cudaMemcpyHostToDevice);
  for (const GgmlType type : types) {
    for (const Shape& shape : shapes) {
      const size_t row_bytes = ggml_row_bytes(ggml_type_traits(type), shape.cols);
      std::vector<uint8_t> bytes(row_bytes * static_cast<size_t>(shape.rows));
      for (auto& b : bytes) b = static_cast<uint8_t>(next() >> 24);
      if (type == GgmlType::kF16) {  // finite halves: random bits make NaNs and infinities
        for (size_t i = 1; i < bytes.size(); i += 2) bytes[i] &= 0x3F;
      }
      Copies w = upload_copies({type, shape.cols, shape.rows, row_bytes, bytes.data()});
      const double gb = static_cast<double>(bytes.size()) / 1e9;
      std::printf("  %s %lldx%lld:", std::string(ggml_type_name(type)).c_str(),
                  static_cast<long long>(shape.rows), static_cast<long long>(shape.cols));
      for (const int64_t n : {1, 4}) {
        const double ms = time_ms([&](cudaStream_t st) {
          cuda::MatvecJob job;
          job.w[0] = w.take();
          job.y[0] = y;
          job.x = x;
          job.xq = xq;
          job.n_tokens = n;
          cuda::matvec(job, st);
        });
        std::printf(" matvec %lld %.1f us %.0f GB/s;", static_cast<long long>(n), ms * 1e3,
                    gb / ms * 1e3);
      }
      if (shape.gate) {
        const double ms = time_ms([&](cudaStream_t st) {
          cuda::MatvecJob job;
          job.n_w = 2;
          job.w[0] = w.take();
          job.w[1] = w.take();
          job.y[0] = job.y[1] = y;
          job.x = x;
          job.xq = xq;
          job.out = cuda::MatvecOut::kSwiglu;
          cuda::matvec(job, st);
        });
        std::printf(" swiglu 1 %.1f us %.0f GB/s;", ms * 1e3, 2 * gb / ms * 1e3);
      }
      for (const int64_t n : {8, 16, 32}) {
        if (type == GgmlType::kF16) break;
        const double ms =
            time_ms([&](cudaStream_t st) { cuda::gemm_q8(*w.take(), xq, n, y, false, st); });
        std::printf(" q8 %lld %.1f us %.0f GB/s;", static_cast<long long>(n), ms * 1e3,
                    gb / ms * 1e3);
      }
      std::printf("\n");
      for (const Matrix& m : w.m) cudaFree(const_cast<uint8_t*>(m.data));
    }
  }
  const cudaError_t err = cudaDeviceSynchronize();
  if (err != cudaSuccess) die(std::string("gemm_q8: ") + cudaGetErrorString(err));
}

int run(const Args& a) {
  if (a.gemm_q8) {
    bench_gemm_q8();
    return 0;
  }
  const std::string path = model_file(a);
  if (a.make_only) return 0;
  auto loaded = Model::load(path);
  if (!loaded) die(loaded.error().message);
  const Model& m = **loaded;
  const Hparams& hp = m.hparams();
  auto info = cuda_device_info(0);
  if (!info) die(info.error().message);
  const double weights_gb = static_cast<double>(m.weights_bytes()) / 1e9;
  std::printf("%s: %s, %.2f GB of weights; %s, %.0f GB/s copy bandwidth\n", path.c_str(),
              std::string(ggml_type_name(m.weights().layers[0].ffn_gate.type)).c_str(), weights_gb,
              info->name.c_str(), info->bandwidth_gb_per_s);
  if (a.kernels) bench_kernels(m, a.pp);
  const int64_t n_ctx = a.pp + a.tg + 8;
  const auto ids = prompt_tokens(a.pp, hp.n_vocab);
  CudaForwardOptions fast;
  fast.max_batch = a.pp;
  CudaForwardOptions plain = fast;
  plain.gemm_min_tokens = a.pp + 1;
  plain.decode_graph = false;
  auto slow = make(m, n_ctx, plain);
  {
    const double pp = prompt_rate(*slow, ids, a.reps);
    slow->reset();
    decode_rate(*slow, 8);  // warm up
    slow->reset();
    const double tg = decode_rate(*slow, a.tg);
    std::printf("  F32 prompt kernels, no graph:  pp%lld %9.1f tok/s   tg%lld %7.1f tok/s\n",
                static_cast<long long>(a.pp), pp, static_cast<long long>(a.tg), tg);
  }
  auto fwd = make(m, n_ctx, fast);
  const double pp = prompt_rate(*fwd, ids, a.reps);
  fwd->reset();
  decode_rate(*fwd, 8);  // captures the graph
  fwd->reset();
  const double tg = decode_rate(*fwd, a.tg);
  fwd->reset();
  if (auto l = fwd->eval(ids); !l) die(l.error().message);
  const double tg_after = decode_rate(*fwd, a.tg);
  std::printf(
      "  tensor cores, decode graph:    pp%lld %9.1f tok/s   tg%lld %7.1f tok/s "
      "(%.0f GB/s of weights, %.0f%% of the copy bandwidth); tg%lld after pp%lld: "
      "%.1f tok/s\n",
      static_cast<long long>(a.pp), pp, static_cast<long long>(a.tg), tg, weights_gb * tg,
      100.0 * weights_gb * tg / info->bandwidth_gb_per_s, static_cast<long long>(a.tg),
      static_cast<long long>(a.pp), tg_after);
  // Where the tensor cores start to pay: short prompts both ways.
  fwd.reset();
  CudaForwardOptions tc = fast;
  tc.gemm_min_tokens = 2;
  auto with = make(m, n_ctx, tc);
  for (int64_t n : {4, 8, 16, 32, 64}) {
    if (n > a.pp) break;
    const std::vector<int32_t> few(ids.begin(), ids.begin() + n);
    std::printf("    pp%lld: tensor cores %.1f tok/s, F32 kernels %.1f tok/s\n",
                static_cast<long long>(n), prompt_rate(*with, few, a.reps),
                prompt_rate(*slow, few, a.reps));
  }
  return 0;
}

}  // namespace
}  // namespace pensieve

int main(int argc, char** argv) { return pensieve::run(pensieve::parse(argc, argv)); }
