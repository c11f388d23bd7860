#include "model/model.h"

namespace pensieve {

Expected<std::unique_ptr<Model>> Model::load(const std::string& path, MmapFile::Mode mode) {
  std::unique_ptr<Model> model(new Model());
  PV_TRY(model->map_, MmapFile::open(path, mode));
  PV_TRY(model->file_, GgufFile::parse(model->map_.bytes(), path));
  PV_TRY(model->hparams_, read_hparams(*model->file_));
  PV_TRY(model->weights_, bind_weights(*model->file_, model->hparams_));
  return model;
}

int64_t Model::weights_bytes() const {
  return static_cast<int64_t>(file_->size_bytes() - file_->data_offset());
}

Expected<void> Model::release_weights() {
  if (!resident_) return {};
  resident_ = false;
  return map_.release_pages(file_->data_offset(), static_cast<size_t>(weights_bytes()));
}

Expected<void> Model::restore_weights() {
  if (resident_) return {};
  if (!map_.same_file_on_disk()) {
    return make_error(ErrorCode::kInvalidFormat,
                      "model: {} changed on disk since it was loaded; restart the server to load "
                      "the new file",
                      map_.path());
  }
  PV_TRY_VOID(map_.restore_pages(file_->data_offset(), static_cast<size_t>(weights_bytes())));
  resident_ = true;
  return {};
}

}  // namespace pensieve
