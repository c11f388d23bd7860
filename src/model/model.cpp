#include "model/model.h"

namespace pensieve {

Expected<std::unique_ptr<Model>> Model::load(const std::string& path, MmapFile::Mode mode) {
  std::unique_ptr<Model> model(new Model());
  PV_TRY(model->file_, GgufFile::open(path, mode));
  PV_TRY(model->hparams_, read_hparams(*model->file_));
  PV_TRY(model->weights_, bind_weights(*model->file_, model->hparams_));
  return model;
}

}  // namespace pensieve
