// Keep-alive's view of the model: weights that can give their memory back while the engine is
// idle and be brought back before the next sequence runs. Only the engine thread calls these.
#pragma once

#include <cstdint>
#include <functional>
#include <utility>

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

// Weights on a GPU, whose host copy is given back once uploaded: release() frees the device
// copy; restore() brings the host pages back, uploads them, and gives the host pages back again.
class DeviceResidency final : public WeightResidency {
 public:
  using Step = std::function<Expected<void>()>;
  DeviceResidency(Model& model, Step release_device, Step restore_device, int64_t device_bytes)
      : model_(model),
        release_device_(std::move(release_device)),
        restore_device_(std::move(restore_device)),
        device_bytes_(device_bytes) {}
  Expected<void> release() override { return release_device_(); }
  Expected<void> restore() override;
  int64_t bytes() const override { return device_bytes_; }

 private:
  Model& model_;
  Step release_device_;
  Step restore_device_;
  int64_t device_bytes_;
};

}  // namespace pensieve
