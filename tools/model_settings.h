// The models_dir and default_model settings for `pull` and `list`, resolved like serve's
// (--models-dir / --default-model, then PENSIEVE_* variables, then --config FILE, then defaults).
#pragma once

#include <string>

#include <CLI/CLI.hpp>

#include "core/result.h"

namespace pensieve::cli {

struct ModelSettingsFlags {
  std::string models_dir;
  std::string default_model;
  std::string config_path;
};

struct ModelSettings {
  std::string models_dir;     // with the default filled in ("" when there is none)
  std::string default_model;  // as configured ("" when not set)
};

void add_model_settings_flags(CLI::App* cmd, ModelSettingsFlags* flags);
Expected<ModelSettings> resolve_model_settings(const ModelSettingsFlags& flags);

}  // namespace pensieve::cli
