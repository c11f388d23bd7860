// A loaded model: the mapped GGUF file, its hyperparameters and its bound weights.
#pragma once

#include <memory>
#include <string>

#include "core/result.h"
#include "gguf/reader.h"
#include "model/hparams.h"
#include "model/weights.h"

namespace pensieve {

class Model {
 public:
  // Maps, validates and binds; errors name the file and the tensor or key at fault.
  static Expected<std::unique_ptr<Model>> load(const std::string& path);

  const GgufFile& file() const { return *file_; }
  const Hparams& hparams() const { return hparams_; }
  const ModelWeights& weights() const { return weights_; }

 private:
  Model() = default;
  std::unique_ptr<GgufFile> file_;
  Hparams hparams_;
  ModelWeights weights_;
};

}  // namespace pensieve
