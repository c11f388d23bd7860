// A seeded random source with the same sequence on every platform (the standard distributions
// are implementation-defined, so draws are made here from raw 64-bit output).
#pragma once

#include <cstdint>
#include <random>

namespace pensieve {

class Rng {
 public:
  explicit Rng(uint64_t seed) : engine_(seed) {}
  // Uniform in [0, 1) with 53 bits.
  double uniform() { return static_cast<double>(engine_() >> 11) * 0x1.0p-53; }

 private:
  std::mt19937_64 engine_;
};

}  // namespace pensieve
