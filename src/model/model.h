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
  // Loads, validates and binds; errors name the file and the tensor or key at fault. Weights
  // are resident in huge pages by default (decode runs ~1.3x faster than from a file mapping,
  // see gguf/mmap_file.h); kMapped maps the file instead.
  static Expected<std::unique_ptr<Model>> load(const std::string& path,
                                               MmapFile::Mode mode = MmapFile::Mode::kResident);

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
