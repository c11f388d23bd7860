// Keep-alive's view of the model: weights that can give their memory back while the engine is
// idle and be brought back before the next sequence runs. Only the engine thread calls these.
#pragma once

#include <cstdint>

#include "core/result.h"

namespace pensieve {

class Model;

class WeightResidency {
 public:
  virtual ~WeightResidency() = default;
  virtual Expected<void> release() = 0;
  virtual Expected<void> restore() = 0;
  // The bytes release() gives back (for logs and metrics).
  virtual int64_t bytes() const = 0;
};

// A Model's tensor data (see Model::release_weights).
class ModelResidency final : public WeightResidency {
 public:
  explicit ModelResidency(Model& model) : model_(model) {}
  Expected<void> release() override;
  Expected<void> restore() override;
  int64_t bytes() const override;

 private:
  Model& model_;
};

}  // namespace pensieve
