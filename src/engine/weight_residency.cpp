#include "engine/weight_residency.h"

#include "model/model.h"

namespace pensieve {

Expected<void> ModelResidency::release() { return model_.release_weights(); }
Expected<void> ModelResidency::restore() { return model_.restore_weights(); }
int64_t ModelResidency::bytes() const { return model_.weights_bytes(); }

}  // namespace pensieve
