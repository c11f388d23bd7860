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

// Weights on a GPU. With the whole model there (HostCopy::kReleased) the host copy is given back
// once uploaded: release() frees the device copy; restore() brings the host pages back, uploads
// them, and gives the host pages back again. With the model split between the CPU and the GPU
// (HostCopy::kKept) the CPU's layers read the host copy: release() gives back both copies and
// restore() brings back both.
class DeviceResidency final : public WeightResidency {
 public:
  using Step = std::function<Expected<void>()>;
  enum class HostCopy { kReleased, kKept };
  DeviceResidency(Model& model, Step release_device, Step restore_device, int64_t device_bytes,
                  HostCopy host = HostCopy::kReleased)
      : model_(model),
        release_device_(std::move(release_device)),
        restore_device_(std::move(restore_device)),
        device_bytes_(device_bytes),
        host_(host) {}
  Expected<void> release() override;
  Expected<void> restore() override;
  // The device copy's bytes, and the host's when the split keeps it.
  int64_t bytes() const override;

 private:
  Model& model_;
  Step release_device_;
  Step restore_device_;
  int64_t device_bytes_;
  HostCopy host_;
};

}  // namespace pensieve
