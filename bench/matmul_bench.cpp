// Matrix products at TinyLlama's shapes (W as n_rows x n_cols: 2048x2048 attention, 5632x2048
// gate/up, 2048x5632 down, 32000x2048 output) for every weight type, 1 and 2 threads:
//   decode   one token; weights rotate through copies totalling 1 GiB so they stream from
//            DRAM as in real generation; bytes/s counts weight bytes read.
//   prompt   512 tokens against one matrix; FLOP/s counts 2 * rows * cols * tokens.
//   stream   a plain read of 1 GiB: the memory bandwidth decode is measured against.
// --isa=scalar|avx2|avx512 measures a lower dispatch level than the best.
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include <benchmark/benchmark.h>

#include "core/thread_pool.h"
#include "kernels/cpu/matmul.h"
#include "kernels/ref/quants.h"

namespace pensieve::cpu {
namespace {

constexpr size_t kRotateBytes = size_t{1} << 30;
constexpr int64_t kPromptTokens = 512;

struct Shape {
  int64_t n_rows, n_cols;
};
constexpr Shape kShapes[] = {{2048, 2048}, {5632, 2048}, {2048, 5632}, {32000, 2048}};
constexpr GgmlType kTypes[] = {GgmlType::kQ4_0, GgmlType::kQ4_K, GgmlType::kQ8_0, GgmlType::kF32,
                               GgmlType::kF16,  GgmlType::kBF16, GgmlType::kQ4_1, GgmlType::kQ5_0,
                               GgmlType::kQ5_1, GgmlType::kQ2_K, GgmlType::kQ3_K, GgmlType::kQ5_K,
                               GgmlType::kQ6_K};

// The dispatch level to measure: the best one, or --isa=scalar|avx2|avx512.
Isa bench_isa = best_isa();

ThreadPool& pool(int n_threads) {
  static ThreadPool one(1), two(2);
  return n_threads == 1 ? one : two;
}

// n_copies back-to-back copies of one quantized matrix; one set kept alive at a time.
struct Weights {
  GgmlType type{};
  Shape shape{};
  size_t matrix_bytes = 0;
  int n_copies = 0;
  std::unique_ptr<uint8_t[]> data;
  Matrix copy(int i) const {
    return Matrix{type, shape.n_cols, shape.n_rows, matrix_bytes / shape.n_rows,
                  data.get() + matrix_bytes * static_cast<size_t>(i)};
  }
};

const Weights& weights(GgmlType type, Shape shape, size_t min_total_bytes) {
  static Weights w;
  const size_t row_bytes = ggml_row_bytes(ggml_type_traits(type), shape.n_cols);
  const size_t matrix_bytes = row_bytes * shape.n_rows;
  const int n_copies =
      std::max(1, static_cast<int>((min_total_bytes + matrix_bytes - 1) / matrix_bytes));
  if (w.data && w.type == type && w.shape.n_rows == shape.n_rows &&
      w.shape.n_cols == shape.n_cols && w.n_copies >= n_copies) {
    return w;
  }
  w = Weights{type, shape, matrix_bytes, n_copies, nullptr};
  w.data = std::make_unique<uint8_t[]>(matrix_bytes * n_copies);
  // 64 distinct quantized rows of typical values, repeated.
  std::mt19937 rng(42);
  std::normal_distribution<float> dist(0.0f, 0.02f);
  std::vector<float> row(static_cast<size_t>(shape.n_cols));
  const int64_t n_distinct = std::min<int64_t>(64, shape.n_rows);
  for (int64_t r = 0; r < n_distinct; ++r) {
    for (float& v : row) v = dist(rng);
    ref::quantize_row(type, row.data(), w.data.get() + row_bytes * r, shape.n_cols);
  }
  for (int64_t r = n_distinct; r < shape.n_rows; ++r) {
    std::memcpy(w.data.get() + row_bytes * r, w.data.get() + row_bytes * (r % n_distinct),
                row_bytes);
  }
  for (int i = 1; i < n_copies; ++i) {
    std::memcpy(w.data.get() + matrix_bytes * i, w.data.get(), matrix_bytes);
  }
  return w;
}

std::vector<float> activations(int64_t n) {
  std::mt19937 rng(7);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  std::vector<float> x(static_cast<size_t>(n));
  for (float& v : x) v = dist(rng);
  return x;
}

void run_matmul(benchmark::State& state, GgmlType type, Shape shape, int n_threads,
                int64_t n_tokens) {
  const bool decode = n_tokens == 1;
  const Weights& w = weights(type, shape, decode ? kRotateBytes : 0);
  const std::vector<float> x = activations(n_tokens * shape.n_cols);
  std::vector<float> y(static_cast<size_t>(n_tokens * shape.n_rows));
  MatmulWorkspace ws(n_tokens, shape.n_cols);
  ThreadPool& p = pool(n_threads);
  int next = 0;
  for (auto _ : state) {
    matmul(w.copy(next), x.data(), n_tokens, y.data(), p, ws, bench_isa);
    next = (next + 1) % w.n_copies;
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * w.matrix_bytes));
  state.SetItemsProcessed(state.iterations() * n_tokens);
  state.counters["FLOP/s"] =
      benchmark::Counter(2.0 * static_cast<double>(shape.n_rows * shape.n_cols * n_tokens),
                         benchmark::Counter::kIsIterationInvariantRate);
  state.SetLabel(std::string(isa_name(matmul_isa(type, bench_isa))));
}

// Sums 64-bit words (integers, so the compiler vectorizes without reassociating floats), with a
// software prefetch ahead like the decode kernels use.
uint64_t sum_words(const uint64_t* p, size_t n) {
  uint64_t a = 0, b = 0, c = 0, d = 0;
  for (size_t i = 0; i + 8 <= n; i += 8) {
    __builtin_prefetch(p + i + 128);
    a += p[i] + p[i + 4];
    b += p[i + 1] + p[i + 5];
    c += p[i + 2] + p[i + 6];
    d += p[i + 3] + p[i + 7];
  }
  return a + b + c + d;
}

void stream_read(benchmark::State& state, int n_threads) {
  const size_t n_words = kRotateBytes / 8;
  static std::unique_ptr<uint64_t[]> buffer;
  if (!buffer) {
    buffer = std::make_unique<uint64_t[]>(n_words);
    for (size_t i = 0; i < n_words; ++i) buffer[i] = i;
  }
  ThreadPool& p = pool(n_threads);
  uint64_t sums[2] = {};
  for (auto _ : state) {
    p.run([&](int index, int n) {
      const size_t chunk = n_words / static_cast<size_t>(n);
      sums[index] += sum_words(buffer.get() + chunk * index, chunk);
    });
    benchmark::DoNotOptimize(sums);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * kRotateBytes));
}

void register_all() {
  for (int n_threads : {1, 2}) {
    benchmark::RegisterBenchmark(("stream_read/threads:" + std::to_string(n_threads)).c_str(),
                                 stream_read, n_threads)
        ->UseRealTime()
        ->Unit(benchmark::kMillisecond);
  }
  for (const char* mode : {"decode", "prompt512"}) {
    const int64_t n_tokens = std::string(mode) == "decode" ? 1 : kPromptTokens;
    for (GgmlType type : kTypes) {
      for (Shape shape : kShapes) {
        for (int n_threads : {1, 2}) {
          const std::string name = std::string(mode) + "/" + std::string(ggml_type_name(type)) +
                                   "/" + std::to_string(shape.n_rows) + "x" +
                                   std::to_string(shape.n_cols) +
                                   "/threads:" + std::to_string(n_threads);
          benchmark::RegisterBenchmark(name.c_str(), run_matmul, type, shape, n_threads, n_tokens)
              ->UseRealTime()
              ->Unit(benchmark::kMicrosecond);
        }
      }
    }
  }
}

}  // namespace
}  // namespace pensieve::cpu

int main(int argc, char** argv) {
  using namespace pensieve::cpu;
  // Takes --isa=NAME out of the arguments before Google Benchmark sees them.
  int kept = 1;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    bool matched = false;
    for (Isa isa : kAllIsas) {
      if (arg == "--isa=" + std::string(isa_name(isa))) {
        if (!isa_supported(isa)) {
          std::fprintf(stderr, "matmul_bench: %s is not supported here\n", arg.c_str() + 6);
          return 1;
        }
        bench_isa = isa;
        matched = true;
      }
    }
    if (!matched) argv[kept++] = argv[i];
  }
  argc = kept;
  register_all();
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
