// `pensieve list`: the GGUF models in the models directory, with size, architecture and
// quantization (from each file's header), and which one `pensieve serve` uses without --model.
#include <cstdio>
#include <memory>
#include <string>

#include <fmt/format.h>

#include "hub/models_dir.h"
#include "hub/progress.h"
#include "tools/commands.h"
#include "tools/model_settings.h"

namespace pensieve::cli {
namespace {

int run_list(const ModelSettingsFlags& flags) {
  auto settings = resolve_model_settings(flags);
  if (!settings) {
    std::fprintf(stderr, "%s\n", settings.error().message.c_str());
    return 1;
  }
  auto models = hub::list_local_models(settings->models_dir);
  if (!models) {
    std::fprintf(stderr, "list: %s\n", models.error().message.c_str());
    return 1;
  }
  if (models->empty()) {
    fmt::print("no models in {}; download one with `pensieve pull OWNER/REPO`\n",
               settings->models_dir);
    return 0;
  }
  // The default: default_model when set (a warning when it names nothing), else the only model.
  std::string default_path;
  if (!settings->default_model.empty()) {
    auto found = hub::find_local_model(*models, settings->default_model, settings->models_dir);
    if (found) {
      default_path = *found;
    } else {
      std::fprintf(stderr, "list: %s\n", found.error().message.c_str());
    }
  } else if (models->size() == 1) {
    default_path = models->front().path;
  }
  fmt::print("models in {}\n", settings->models_dir);
  fmt::print("  {:<60} {:>10}  {:<10} {}\n", "name", "size", "arch", "quant");
  for (const hub::LocalModel& m : *models) {
    // Headers are mapped, not read: cheap even for large files.
    auto summary = hub::read_model_summary(m.path);
    const std::string arch = summary ? summary->architecture : "(unreadable)";
    const std::string quant = summary ? summary->quant : "";
    fmt::print("{} {:<60} {:>10}  {:<10} {}\n", m.path == default_path ? "*" : " ", m.name,
               hub::format_bytes(m.size_bytes), arch.empty() ? "?" : arch, quant);
  }
  if (!default_path.empty()) {
    fmt::print("* served by `pensieve serve` without --model\n");
  } else if (models->size() > 1) {
    fmt::print(
        "no default: `pensieve serve` needs --model, or default_model (--default-model, "
        "PENSIEVE_DEFAULT_MODEL) set to one of these names\n");
  }
  return 0;
}

}  // namespace

void register_list(CLI::App& app, Handler* run) {
  auto* cmd = app.add_subcommand("list", "List the GGUF models in the models directory");
  auto flags = std::make_shared<ModelSettingsFlags>();
  add_model_settings_flags(cmd, flags.get());
  cmd->callback([flags, run] { *run = [flags] { return run_list(*flags); }; });
}

}  // namespace pensieve::cli
