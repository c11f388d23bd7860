// Byte sizes as operators write them ("512MiB", "3GB", "1073741824"): one parser shared by the
// config, the memory tiers and the CLI so that "3GB" means the same thing everywhere.
#pragma once

#include <cstdint>
#include <string_view>

#include "core/result.h"

namespace pensieve {

// Parses a whole number with an optional unit: B, KB, MB, GB, TB (powers of 1000) or KiB, MiB,
// GiB, TiB (powers of 1024), case-insensitive, blanks allowed around and between number and unit.
// Errors (kInvalidArgument) read "byte size '<text>' <problem>" so callers can prefix their
// operation: "config: byte size '3XB' is not a byte size (...)".
Expected<int64_t> parse_byte_size(std::string_view text);

}  // namespace pensieve
