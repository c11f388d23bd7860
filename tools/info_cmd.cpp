// `pensieve info MODEL.gguf`: what a model file holds and what it will cost in memory.
#include <cstdio>
#include <string>

#include <fmt/format.h>

#include "gguf/reader.h"
#include "tools/commands.h"

namespace pensieve::cli {
namespace {

std::string human_bytes(uint64_t bytes) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = static_cast<double>(bytes);
  int u = 0;
  while (v >= 1024 && u < 4) {
    v /= 1024;
    ++u;
  }
  return u == 0 ? fmt::format("{} B", bytes) : fmt::format("{:.2f} {}", v, units[u]);
}

void print_hparams(const GgufFile& file, std::string_view arch) {
  const std::string a(arch);
  struct Key {
    const char* label;
    std::string key;
  };
  const Key keys[] = {
      {"context length", a + ".context_length"},
      {"embedding length", a + ".embedding_length"},
      {"feed-forward length", a + ".feed_forward_length"},
      {"layers", a + ".block_count"},
      {"attention heads", a + ".attention.head_count"},
      {"KV heads", a + ".attention.head_count_kv"},
      {"RoPE dimensions", a + ".rope.dimension_count"},
      {"RoPE freq base", a + ".rope.freq_base"},
      {"RMS norm epsilon", a + ".attention.layer_norm_rms_epsilon"},
      {"vocab size", a + ".vocab_size"},
  };
  for (const Key& k : keys) {
    const GgufValue* v = file.find(k.key);
    if (v == nullptr) continue;
    if (auto u = v->as_uint()) {
      fmt::print("  {:<22}{}\n", k.label, *u);
    } else if (auto f = v->as_float()) {
      fmt::print("  {:<22}{:g}\n", k.label, *f);
    }
  }
}

// Bytes of K and V for one token of context with an F16 cache.
uint64_t kv_bytes_per_token(const GgufFile& file, std::string_view arch) {
  const std::string a(arch);
  const uint64_t n_layer = file.get_uint_or(a + ".block_count", 0);
  const uint64_t n_embd = file.get_uint_or(a + ".embedding_length", 0);
  const uint64_t n_head = file.get_uint_or(a + ".attention.head_count", 0);
  const uint64_t n_head_kv = file.get_uint_or(a + ".attention.head_count_kv", n_head);
  if (n_head == 0) return 0;
  const uint64_t head_dim_k = file.get_uint_or(a + ".attention.key_length", n_embd / n_head);
  const uint64_t head_dim_v = file.get_uint_or(a + ".attention.value_length", n_embd / n_head);
  return n_layer * n_head_kv * (head_dim_k + head_dim_v) * 2;
}

int run_info(const std::string& path, bool show_metadata) {
  auto opened = GgufFile::open(path);
  if (!opened) {
    std::fprintf(stderr, "%s\n", opened.error().message.c_str());
    return 1;
  }
  const GgufFile& file = **opened;
  const std::string_view arch = file.get_string_or("general.architecture", "(none)");
  fmt::print("file            {}\n", path);
  fmt::print("GGUF version    {}\n", file.version());
  fmt::print("file size       {} ({} bytes)\n", human_bytes(file.size_bytes()), file.size_bytes());
  fmt::print("name            {}\n", file.get_string_or("general.name", "(none)"));
  fmt::print("architecture    {}\n", arch);
  print_hparams(file, arch);
  const GgufValue* tokens = file.find("tokenizer.ggml.tokens");
  fmt::print("tokenizer       {} (pre-tokenizer {}, {} tokens)\n",
             file.get_string_or("tokenizer.ggml.model", "(none)"),
             file.get_string_or("tokenizer.ggml.pre", "default"), tokens ? tokens->size() : 0);
  fmt::print("chat template   {}\n",
             file.find("tokenizer.chat_template") ? "present" : "absent (plain prompt format)");
  fmt::print("weights memory  {} in {} tensors\n", human_bytes(file.tensor_bytes_total()),
             file.tensors().size());
  const uint64_t kv = kv_bytes_per_token(file, arch);
  if (kv != 0) {
    fmt::print("KV cache        {} per token of context (F16)\n", human_bytes(kv));
  }
  if (show_metadata) {
    fmt::print("\nmetadata\n");
    for (const GgufKv& kv_pair : file.metadata()) {
      const GgufValue& v = kv_pair.value;
      std::string shown;
      if (v.is_array()) {
        shown = fmt::format("[{} x {}]", v.size(), gguf_value_type_name(v.element_type()));
      } else if (auto s = v.as_string()) {
        shown = s->size() > 60 ? fmt::format("\"{}...\" ({} bytes)", s->substr(0, 60), s->size())
                               : fmt::format("\"{}\"", *s);
      } else if (auto b = v.as_bool()) {
        shown = *b ? "true" : "false";
      } else if (auto i = v.as_int()) {
        shown = fmt::format("{}", *i);
      } else if (auto f = v.as_float()) {
        shown = fmt::format("{:g}", *f);
      }
      fmt::print("  {:<44}{}\n", kv_pair.key, shown);
    }
  }
  if (!file.tensors().empty()) {
    fmt::print("\n{:<36}{:<8}{:<24}{:>14}\n", "tensor", "type", "shape", "bytes");
    for (const GgufTensorInfo& t : file.tensors()) {
      fmt::print("{:<36}{:<8}{:<24}{:>14}\n", t.name, ggml_type_name(t.type), t.shape_string(),
                 t.n_bytes);
    }
  }
  return 0;
}

}  // namespace

void register_info(CLI::App& app, Handler* run) {
  auto* cmd = app.add_subcommand("info", "Show a GGUF model's architecture, tensors and memory");
  auto path = std::make_shared<std::string>();
  auto metadata = std::make_shared<bool>(false);
  cmd->add_option("model", *path, "GGUF file")->required();
  cmd->add_flag("--metadata", *metadata, "Also list every metadata key");
  cmd->callback([=] { *run = [=] { return run_info(*path, *metadata); }; });
}

}  // namespace pensieve::cli
