#include "tools/model_settings.h"

#include <optional>

#include "hub/models_dir.h"
#include "server/config.h"

namespace pensieve::cli {

void add_model_settings_flags(CLI::App* cmd, ModelSettingsFlags* flags) {
  cmd->add_option("--models-dir", flags->models_dir,
                  "models directory [env PENSIEVE_MODELS_DIR] (default "
                  "$XDG_DATA_HOME/pensieve/models or ~/.local/share/pensieve/models)");
  cmd->add_option("--default-model", flags->default_model,
                  "the model serve uses without --model [env PENSIEVE_DEFAULT_MODEL]");
  cmd->add_option("--config", flags->config_path, "TOML file of settings (lowest precedence)");
}

Expected<ModelSettings> resolve_model_settings(const ModelSettingsFlags& flags) {
  // Only these two settings matter here: the others (a host that would need an API key, say)
  // are serve's to validate.
  server::SettingLookup from_file;
  if (!flags.config_path.empty()) {
    PV_TRY(from_file, server::toml_lookup(flags.config_path));
  }
  const server::SettingLookup from_env = server::environment_lookup();
  auto pick = [&](std::string_view key, const std::string& flag) -> std::string {
    if (!flag.empty()) return flag;
    if (auto v = from_env(key)) return *v;
    if (from_file) {
      if (auto v = from_file(key)) return *v;
    }
    return "";
  };
  return ModelSettings{hub::models_dir_or_default(pick("models_dir", flags.models_dir)),
                       pick("default_model", flags.default_model)};
}

}  // namespace pensieve::cli
