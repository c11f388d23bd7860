// The models directory: where `pensieve pull` stores files (<dir>/<owner>/<repo>/<file>), what
// `pensieve list` shows, and how `pensieve serve` picks a model when none is given.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"

namespace pensieve::hub {

// $XDG_DATA_HOME/pensieve/models, else $HOME/.local/share/pensieve/models ("" when neither is
// set).
std::string default_models_dir();
// `configured` when not empty, else default_models_dir().
std::string models_dir_or_default(const std::string& configured);

// <models_dir>/<owner>/<repo>/<file> (the file may have folders of its own).
std::string model_file_path(const std::string& models_dir, const std::string& repo,
                            const std::string& file);

struct LocalModel {
  std::string name;  // relative to the models directory: "owner/repo/file.gguf"
  std::string path;  // models directory + "/" + name
  int64_t size_bytes = 0;
};

// Every *.gguf regular file under `dir`, sorted by name; part files are not listed. A directory
// that does not exist holds no models.
Expected<std::vector<LocalModel>> list_local_models(const std::string& dir);

// What `name` (a default_model setting) means, tried in order: a model's full name
// ("owner/repo/file.gguf"), a repository ("owner/repo") or a file name ("file.gguf") that only
// one model has, or the path of an existing file. Errors (kNotFound, kInvalidArgument for an
// ambiguous name) start with "serve: ".
Expected<std::string> find_local_model(const std::vector<LocalModel>& models,
                                       const std::string& name, const std::string& dir);

// The model `pensieve serve` uses when no --model is given: default_model when set, else the
// only model in the models directory. Errors name `pensieve pull` and --model.
Expected<std::string> default_serve_model(const std::string& default_model,
                                          const std::string& models_dir);

// What a GGUF header says about the file, for listings; empty fields when absent.
struct ModelSummary {
  std::string architecture;  // general.architecture
  std::string quant;         // general.file_type's name ("Q4_K_M"), else the main tensor type
};
Expected<ModelSummary> read_model_summary(const std::string& path);

// llama.cpp's general.file_type ids: 15 -> "Q4_K_M"; "" for unknown ids.
std::string_view file_type_name(uint64_t file_type);

}  // namespace pensieve::hub
