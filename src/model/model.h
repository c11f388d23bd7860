// A loaded model: the mapped GGUF file, its hyperparameters and its bound weights.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "core/result.h"
#include "gguf/mmap_file.h"
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

  // Keep-alive unloading. Only the tensor data section goes: metadata (which the tokenizer and
  // chat template point into) stays. The weight pointers stay valid, but until restore_weights()
  // the tensors read as zeros (kResident) or are paged in on demand (kMapped), so nothing may
  // evaluate the model meanwhile. Call both from the thread that runs the model.
  // After an error from release_weights() the weights count as released (some pages may be
  // gone); restore_weights() makes them whole again.
  Expected<void> release_weights();
  // Errors: the file changed on disk since it was loaded (the weights stay released), or reading
  // it failed.
  Expected<void> restore_weights();
  bool weights_resident() const { return resident_; }
  // Bytes of the tensor data section: what release_weights() gives back.
  int64_t weights_bytes() const;

 private:
  Model() = default;
  MmapFile map_;
  std::unique_ptr<GgufFile> file_;  // parsed from map_'s bytes
  Hparams hparams_;
  ModelWeights weights_;
  bool resident_ = true;
};

}  // namespace pensieve
