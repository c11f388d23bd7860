// `pensieve synth PRESET -o FILE`: a random-weight GGUF with a real model's shapes.
#include <cstdio>
#include <memory>
#include <string>

#include <fmt/format.h>

#include "model/synth.h"
#include "tools/commands.h"

namespace pensieve::cli {
namespace {

int run_synth(const SynthOptions& options, const std::string& type_name) {
  auto type = ggml_type_from_name(type_name);
  if (!type) {
    std::fprintf(stderr, "synth: unknown weight type '%s'\n", type_name.c_str());
    return 2;
  }
  SynthOptions o = options;
  o.type = *type;
  auto done = synth_model(o);
  if (!done) {
    std::fprintf(stderr, "%s\n", done.error().message.c_str());
    return 1;
  }
  const SynthPreset* p = find_synth_preset(o.preset);
  fmt::print("wrote {} ({} {}, {} layers)\n", o.output_path, p->name, ggml_type_name(o.type),
             p->n_layer);
  if (!p->note.empty()) fmt::print("note: {}\n", p->note);
  return 0;
}

}  // namespace

void register_synth(CLI::App& app, Handler* run) {
  auto* cmd = app.add_subcommand("synth", "Write a random-weight GGUF with a real model's shapes");
  auto options = std::make_shared<SynthOptions>();
  auto type = std::make_shared<std::string>("F16");
  std::string presets;
  for (const SynthPreset& p : synth_presets()) {
    presets += (presets.empty() ? "" : ", ") + std::string(p.name);
  }
  cmd->add_option("preset", options->preset, "One of: " + presets)->required();
  cmd->add_option("-o,--output", options->output_path, "Output GGUF file")->required();
  cmd->add_option("--vocab", options->vocab_path,
                  "Vocabulary GGUF to copy the tokenizer from (default: the preset's file in "
                  "../shared/vocab)");
  cmd->add_option("--type", *type, "Weight type: F16 (default), BF16 or F32");
  cmd->add_option("--seed", options->seed, "Random seed");
  cmd->callback([=] { *run = [=] { return run_synth(*options, *type); }; });
}

}  // namespace pensieve::cli
