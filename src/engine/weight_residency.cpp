#include "engine/weight_residency.h"

#include "model/model.h"

namespace pensieve {

Expected<void> ModelResidency::release() { return model_.release_weights(); }
Expected<void> ModelResidency::restore() { return model_.restore_weights(); }
int64_t ModelResidency::bytes() const { return model_.weights_bytes(); }

Expected<void> DeviceResidency::release() {
  Expected<void> device = release_device_();
  if (host_ == HostCopy::kKept) {
    Expected<void> host = model_.release_weights();
    if (device && !host) return host;
  }
  return device;
}

int64_t DeviceResidency::bytes() const {
  return device_bytes_ + (host_ == HostCopy::kKept ? model_.weights_bytes() : 0);
}

Expected<void> DeviceResidency::restore() {
  PV_TRY_VOID(model_.restore_weights());
  Expected<void> uploaded = restore_device_();
  if (host_ == HostCopy::kKept) return uploaded;
  // The host pages go back either way: the device copy is the one the pass reads.
  Expected<void> released = model_.release_weights();
  if (!uploaded) return uploaded;
  return released;
}

}  // namespace pensieve
