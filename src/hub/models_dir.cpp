#include "hub/models_dir.h"

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <map>

#include "gguf/reader.h"

namespace pensieve::hub {
namespace {

namespace fs = std::filesystem;

std::string join_names(const std::vector<const LocalModel*>& models) {
  std::string out;
  for (const LocalModel* m : models) out += (out.empty() ? "" : ", ") + m->name;
  return out;
}

bool ends_with_gguf(std::string_view name) {
  if (name.size() < 5) return false;
  std::string ext(name.substr(name.size() - 5));
  for (char& c : ext) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return ext == ".gguf";
}

}  // namespace

std::string default_models_dir() {
  const char* xdg = std::getenv("XDG_DATA_HOME");
  if (xdg != nullptr && *xdg == '/') return std::string(xdg) + "/pensieve/models";
  const char* home = std::getenv("HOME");
  if (home != nullptr && *home != '\0') return std::string(home) + "/.local/share/pensieve/models";
  return "";
}

std::string models_dir_or_default(const std::string& configured) {
  return configured.empty() ? default_models_dir() : configured;
}

std::string model_file_path(const std::string& models_dir, const std::string& repo,
                            const std::string& file) {
  return (fs::path(models_dir) / repo / file).string();
}

Expected<std::vector<LocalModel>> list_local_models(const std::string& dir) {
  std::vector<LocalModel> models;
  std::error_code ec;
  if (dir.empty()) {
    return make_error(ErrorCode::kInvalidArgument,
                      "models: no models directory: set models_dir (PENSIEVE_MODELS_DIR) or HOME");
  }
  if (!fs::exists(dir, ec)) return models;
  if (!fs::is_directory(dir, ec)) {
    return make_error(ErrorCode::kInvalidArgument, "models: {} is not a directory", dir);
  }
  fs::recursive_directory_iterator it(dir, fs::directory_options::skip_permission_denied, ec);
  for (; !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    const fs::directory_entry& entry = *it;
    if (!ends_with_gguf(entry.path().filename().string())) continue;
    std::error_code file_ec;
    if (!entry.is_regular_file(file_ec)) continue;
    LocalModel model;
    model.path = entry.path().string();
    model.name = entry.path().lexically_relative(dir).string();
    model.size_bytes = static_cast<int64_t>(entry.file_size(file_ec));
    models.push_back(std::move(model));
  }
  if (ec) return make_error(ErrorCode::kIo, "models: cannot read {}: {}", dir, ec.message());
  std::sort(models.begin(), models.end(),
            [](const LocalModel& a, const LocalModel& b) { return a.name < b.name; });
  return models;
}

Expected<std::string> find_local_model(const std::vector<LocalModel>& models,
                                       const std::string& name, const std::string& dir) {
  for (const LocalModel& m : models) {
    if (m.name == name) return m.path;
  }
  // A repository, then a bare file name: unique matches only.
  auto matches = [&](auto&& pred) {
    std::vector<const LocalModel*> found;
    for (const LocalModel& m : models) {
      if (pred(m)) found.push_back(&m);
    }
    return found;
  };
  for (auto found : {matches([&](const LocalModel& m) { return m.name.starts_with(name + "/"); }),
                     matches([&](const LocalModel& m) {
                       return fs::path(m.name).filename().string() == name;
                     })}) {
    if (found.size() == 1) return found.front()->path;
    if (found.size() > 1) {
      return make_error(ErrorCode::kInvalidArgument,
                        "serve: default model '{}' matches {} models in {}: {}; name one of them",
                        name, found.size(), dir, join_names(found));
    }
  }
  std::error_code ec;
  if (fs::is_regular_file(name, ec)) return name;
  return make_error(ErrorCode::kNotFound,
                    "serve: default model '{}' is neither a model in {} (see `pensieve list`) nor "
                    "a file",
                    name, dir);
}

Expected<std::string> default_serve_model(const std::string& default_model,
                                          const std::string& models_dir) {
  if (models_dir.empty() && !default_model.empty()) {
    return find_local_model({}, default_model, "(no models directory)");
  }
  PV_TRY(std::vector<LocalModel> models, list_local_models(models_dir));
  if (!default_model.empty()) return find_local_model(models, default_model, models_dir);
  if (models.size() == 1) return models.front().path;
  if (models.empty()) {
    return make_error(ErrorCode::kInvalidArgument,
                      "serve: no model given and none downloaded. Pass --model FILE.gguf (or set "
                      "PENSIEVE_MODEL), or download one with `pensieve pull OWNER/REPO` (for "
                      "example a Q4_K_M GGUF of Qwen2.5, Llama 3.2 or Phi-3) into {}",
                      models_dir);
  }
  std::vector<const LocalModel*> all;
  for (const LocalModel& m : models) all.push_back(&m);
  return make_error(ErrorCode::kInvalidArgument,
                    "serve: no model given and {} models in {}. Pass --model FILE.gguf, or set "
                    "default_model (--default-model, PENSIEVE_DEFAULT_MODEL) to one of: {}",
                    models.size(), models_dir, join_names(all));
}

Expected<ModelSummary> read_model_summary(const std::string& path) {
  PV_TRY(auto file, GgufFile::open(path));
  ModelSummary summary;
  summary.architecture = std::string(file->get_string_or("general.architecture", ""));
  if (const GgufValue* type = file->find("general.file_type")) {
    if (auto id = type->as_uint()) summary.quant = std::string(file_type_name(*id));
  }
  if (summary.quant.empty()) {
    // The type holding the most bytes of weights.
    std::map<GgmlType, uint64_t> bytes;
    for (const GgufTensorInfo& t : file->tensors()) bytes[t.type] += t.n_bytes;
    uint64_t most = 0;
    for (const auto& [type, n] : bytes) {
      if (n > most) {
        most = n;
        summary.quant = std::string(ggml_type_name(type));
      }
    }
  }
  return summary;
}

std::string_view file_type_name(uint64_t file_type) {
  static const std::map<uint64_t, std::string_view> kNames = {
      {0, "F32"},      {1, "F16"},      {2, "Q4_0"},    {3, "Q4_1"},    {7, "Q8_0"},
      {8, "Q5_0"},     {9, "Q5_1"},     {10, "Q2_K"},   {11, "Q3_K_S"}, {12, "Q3_K_M"},
      {13, "Q3_K_L"},  {14, "Q4_K_S"},  {15, "Q4_K_M"}, {16, "Q5_K_S"}, {17, "Q5_K_M"},
      {18, "Q6_K"},    {19, "IQ2_XXS"}, {20, "IQ2_XS"}, {21, "Q2_K_S"}, {22, "IQ3_XS"},
      {23, "IQ3_XXS"}, {24, "IQ1_S"},   {25, "IQ4_NL"}, {26, "IQ3_S"},  {27, "IQ3_M"},
      {28, "IQ2_S"},   {29, "IQ2_M"},   {30, "IQ4_XS"}, {31, "IQ1_M"},  {32, "BF16"},
  };
  auto it = kNames.find(file_type);
  return it == kNames.end() ? std::string_view() : it->second;
}

}  // namespace pensieve::hub
