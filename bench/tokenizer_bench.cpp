// Tokenizer throughput on about 1 MiB of mixed text (the vocab test strings, English prose and
// code, shuffled deterministically), with the phi-3 (SentencePiece) and gpt-2 (byte-level BPE)
// vocabularies: one call on the whole text, and the same text in prompt-sized 4 KiB calls.
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include <benchmark/benchmark.h>

#include "gguf/reader.h"
#include "tokenizer/tokenizer.h"

namespace pensieve {
namespace {

constexpr size_t kCorpusBytes = size_t{1} << 20;
constexpr size_t kPromptBytes = 4096;

const char* const kProse[] = {
    "The lighthouse keeper climbed the spiral stairs every evening at dusk, counting the steps "
    "under his breath as his father had done before him. There were one hundred and twelve of "
    "them, worn smooth in the middle by a century of boots.",
    "Researchers measured the growth of the seedlings over six weeks. Plants that received "
    "filtered light grew 23% taller on average than those in direct sun, although their leaves "
    "were noticeably thinner and paler.",
    "If you are planning a trip in late autumn, pack layers: mornings can be close to freezing "
    "while afternoons often reach 15 degrees. Trains run hourly, and tickets bought online are "
    "usually cheaper than at the station.",
    "She wasn't sure whether the letter had been delayed or simply forgotten; either way, it "
    "arrived three months late, its envelope soft from handling and stamped twice by offices "
    "she had never heard of.",
    "Q: How do I reset my password?\nA: Open Settings, choose Account, then select \"Reset "
    "password\". You'll receive an e-mail with a link that stays valid for 24 hours.",
};

const char* const kCode[] = {
    "int sum_of_squares(const std::vector<int>& values) {\n  int total = 0;\n  for (int v : "
    "values) {\n    total += v * v;\n  }\n  return total;\n}\n",
    "def parse_config(path):\n    with open(path, encoding=\"utf-8\") as f:\n        lines = "
    "[l.strip() for l in f if l.strip() and not l.startswith(\"#\")]\n    return "
    "dict(l.split(\"=\", "
    "1) for l in lines)\n",
    "{\n  \"name\": \"example\",\n  \"version\": \"1.4.2\",\n  \"dependencies\": {\n    "
    "\"left-pad\": "
    "\"^1.3.0\",\n    \"lodash\": \"4.17.21\"\n  }\n}\n",
    "SELECT user_id, COUNT(*) AS n_orders\nFROM orders\nWHERE created_at >= '2024-01-01'\nGROUP BY "
    "user_id\nHAVING COUNT(*) > 3\nORDER BY n_orders DESC;\n",
};

std::vector<std::string> vocab_test_strings() {
  std::ifstream in(std::string(PENSIEVE_SHARED_DIR) + "/vocab/ggml-vocab-phi-3.gguf.inp",
                   std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string raw = ss.str();
  const std::string sep = "\n__ggml_vocab_test__\n";
  std::vector<std::string> out;
  for (size_t pos = 0; pos < raw.size();) {
    const size_t next = raw.find(sep, pos);
    if (next == std::string::npos) break;
    out.push_back(raw.substr(pos, next - pos));
    pos = next + sep.size();
  }
  return out;
}

// Deterministic: a fixed linear congruential generator picks the pieces and the numbers.
const std::string& corpus() {
  static const std::string text = [] {
    std::vector<std::string> pool = vocab_test_strings();
    for (const char* p : kProse) pool.insert(pool.end(), 4, p);  // prose and code dominate
    for (const char* c : kCode) pool.insert(pool.end(), 3, c);
    uint64_t state = 42;
    auto next = [&] {
      state = state * 6364136223846793005ull + 1442695040888963407ull;
      return static_cast<uint32_t>(state >> 33);
    };
    std::string out;
    while (out.size() < kCorpusBytes) {
      out += pool[next() % pool.size()];
      out += next() % 3 == 0 ? " (" + std::to_string(next() % 100000) + ")\n" : "\n";
    }
    out.resize(kCorpusBytes);
    return out;
  }();
  return text;
}

const Tokenizer& tokenizer(const std::string& name) {
  static std::map<std::string, std::unique_ptr<Tokenizer>> cache;
  auto& slot = cache[name];
  if (!slot) {
    auto file =
        GgufFile::open(std::string(PENSIEVE_SHARED_DIR) + "/vocab/ggml-vocab-" + name + ".gguf");
    if (!file) {
      std::fprintf(stderr, "%s\n", file.error().message.c_str());
      std::abort();
    }
    auto t = Tokenizer::from_gguf(**file);
    if (!t) {
      std::fprintf(stderr, "%s\n", t.error().message.c_str());
      std::abort();
    }
    slot = std::move(t).value();
  }
  return *slot;
}

void BM_EncodeWhole(benchmark::State& state, const std::string& name) {
  const Tokenizer& t = tokenizer(name);
  const std::string& text = corpus();
  size_t n_tokens = 0;
  for (auto _ : state) {
    const std::vector<int32_t> ids = t.encode(text, EncodeOptions{});
    n_tokens = ids.size();
    benchmark::DoNotOptimize(ids.data());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * text.size()));
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * n_tokens));
  state.counters["tokens"] = static_cast<double>(n_tokens);
}

void BM_EncodePrompts(benchmark::State& state, const std::string& name) {
  const Tokenizer& t = tokenizer(name);
  const std::string_view text = corpus();
  for (auto _ : state) {
    for (size_t pos = 0; pos < text.size(); pos += kPromptBytes) {
      const std::vector<int32_t> ids = t.encode(text.substr(pos, kPromptBytes), EncodeOptions{});
      benchmark::DoNotOptimize(ids.data());
    }
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * text.size()));
}

void BM_Decode(benchmark::State& state, const std::string& name) {
  const Tokenizer& t = tokenizer(name);
  const std::vector<int32_t> ids = t.encode(corpus(), EncodeOptions{});
  for (auto _ : state) {
    const std::string text = t.decode(ids, true);
    benchmark::DoNotOptimize(text.data());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * corpus().size()));
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * ids.size()));
}

void register_all() {
  for (const std::string name : {"phi-3", "gpt-2"}) {
    benchmark::RegisterBenchmark(("encode_1MiB/" + name).c_str(), BM_EncodeWhole, name)
        ->Unit(benchmark::kMillisecond);
    benchmark::RegisterBenchmark(("encode_4KiB_prompts/" + name).c_str(), BM_EncodePrompts, name)
        ->Unit(benchmark::kMillisecond);
    benchmark::RegisterBenchmark(("decode_1MiB/" + name).c_str(), BM_Decode, name)
        ->Unit(benchmark::kMillisecond);
  }
}

}  // namespace
}  // namespace pensieve

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  pensieve::register_all();
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
