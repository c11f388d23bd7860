// `pensieve pull REPO [FILE]`: downloads a GGUF file from the Hugging Face hub into the models
// directory (<models_dir>/<owner>/<repo>/<file>), resumably, checked against the hub's sha256.
#include <unistd.h>

#include <cstdio>
#include <memory>
#include <string>

#include <fmt/format.h>

#include "hub/choose.h"
#include "hub/download.h"
#include "hub/models_dir.h"
#include "hub/progress.h"
#include "tools/commands.h"
#include "tools/model_settings.h"

namespace pensieve::cli {
namespace {

struct PullArgs {
  std::string repo;
  std::string file;
  std::string revision = "main";
  ModelSettingsFlags settings;
  bool quiet = false;
};

int fail(const std::string& message) {
  std::fprintf(stderr, "%s\n", message.c_str());
  return 1;
}

// FILE when given; else the repository's GGUF files and the rule in hub/choose.h.
Expected<std::string> pick_file(const hub::HubClient& hub, const PullArgs& args) {
  if (!args.file.empty()) return args.file;
  PV_TRY(auto files, hub.list_files(args.repo, args.revision));
  PV_TRY(hub::GgufChoice choice, hub::choose_gguf(args.repo, files));
  if (choice.candidates.size() > 1) {
    std::fprintf(stderr, "pull: %s has %zu GGUF files:\n", args.repo.c_str(),
                 choice.candidates.size());
    for (const hub::RepoFile& f : choice.candidates) {
      std::fprintf(stderr, "  %s %-60s %s\n", f.path == choice.chosen.path ? "*" : " ",
                   f.path.c_str(), f.size_bytes ? hub::format_bytes(*f.size_bytes).c_str() : "");
    }
    std::fprintf(stderr,
                 "pull: taking %s (Q4_K_M, else Q4_0, else the smallest); name another as "
                 "`pensieve pull %s FILE`\n",
                 choice.chosen.path.c_str(), args.repo.c_str());
  }
  return choice.chosen.path;
}

int run_pull(const PullArgs& args) {
  auto settings = resolve_model_settings(args.settings);
  if (!settings) return fail(settings.error().message);
  if (settings->models_dir.empty()) {
    return fail("pull: no models directory: set --models-dir, PENSIEVE_MODELS_DIR or HOME");
  }
  hub::HubClient hub(hub::hub_options_from_env());
  auto file = pick_file(hub, args);
  if (!file) return fail(file.error().message);
  const std::string dest = hub::model_file_path(settings->models_dir, args.repo, *file);
  const bool tty = ::isatty(STDERR_FILENO) == 1;
  hub::ProgressMeter meter(stderr, tty);
  hub::DownloadOptions options;
  if (!args.quiet) {
    options.on_progress = [&meter](const hub::DownloadProgress& p) { meter.update(p); };
    std::fprintf(stderr, "pull: %s/%s from %s\n", args.repo.c_str(), file->c_str(),
                 hub.options().endpoint.c_str());
  }
  auto result = hub::download_file(hub, args.repo, *file, args.revision, dest, options);
  meter.finish();
  if (!result) return fail(result.error().message);
  if (result->already_present) {
    std::fprintf(stderr, "pull: already downloaded (%s)\n",
                 hub::format_bytes(result->size_bytes).c_str());
  } else {
    std::fprintf(stderr, "pull: %s, sha256 %s%s\n", hub::format_bytes(result->size_bytes).c_str(),
                 result->sha256.c_str(),
                 result->verified ? " (verified)" : " (the hub gave no hash to check)");
  }
  std::printf("%s\n", dest.c_str());
  return 0;
}

}  // namespace

void register_pull(CLI::App& app, Handler* run) {
  auto* cmd = app.add_subcommand(
      "pull",
      "Download a GGUF model from the Hugging Face hub into the models directory (resumable, "
      "sha256-checked). Endpoint: PENSIEVE_HF_ENDPOINT, HF_ENDPOINT or huggingface.co; token: "
      "HF_TOKEN");
  auto args = std::make_shared<PullArgs>();
  cmd->add_option("repo", args->repo, "repository, owner/name")->required();
  cmd->add_option("file", args->file,
                  "file in the repository (default: its GGUF file; among several Q4_K_M, else "
                  "Q4_0, else the smallest)");
  cmd->add_option("--revision", args->revision, "branch, tag or commit (default main)");
  cmd->add_flag("-q,--quiet", args->quiet, "no progress");
  add_model_settings_flags(cmd, &args->settings);
  cmd->callback([args, run] { *run = [args] { return run_pull(*args); }; });
}

}  // namespace pensieve::cli
