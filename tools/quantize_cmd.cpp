// `pensieve quantize IN OUT TYPE`: convert a model's weight matrices to another type or mix.
#include <cstdio>
#include <memory>

#include <fmt/format.h>

#include "model/quantize.h"
#include "tools/commands.h"

namespace pensieve::cli {

void register_quantize(CLI::App& app, Handler* run) {
  auto* cmd = app.add_subcommand("quantize", "Convert a GGUF model's weights to another type");
  auto o = std::make_shared<QuantizeOptions>();
  cmd->add_option("input", o->input_path, "Input GGUF")->required();
  cmd->add_option("output", o->output_path, "Output GGUF")->required();
  cmd->add_option("type", o->target,
                  "F16 BF16 F32 Q4_0 Q4_1 Q5_0 Q5_1 Q8_0 Q2_K Q3_K Q4_K Q5_K Q6_K, or a mix: "
                  "Q3_K_M Q4_K_M Q5_K_M")
      ->required();
  cmd->add_option("-t,--threads", o->n_threads, "Threads (default: all cores)");
  cmd->callback([=] {
    *run = [=] {
      auto summary = quantize_model(*o);
      if (!summary) {
        std::fprintf(stderr, "%s\n", summary.error().message.c_str());
        return 1;
      }
      fmt::print("wrote {} ({}): {} matrices converted, {} tensors kept", o->output_path, o->target,
                 summary->n_quantized, summary->n_kept);
      if (summary->n_fallbacks > 0) {
        fmt::print(", {} matrices in a legacy type (rows not a multiple of 256)",
                   summary->n_fallbacks);
      }
      fmt::print("; {:.1f} MiB -> {:.1f} MiB\n", summary->input_bytes / 1048576.0,
                 summary->output_bytes / 1048576.0);
      return 0;
    };
  });
}

}  // namespace pensieve::cli
