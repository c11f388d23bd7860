// SHA-256 of a byte stream (OpenSSL's EVP), to check downloads against the hub's LFS hashes.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "core/result.h"

namespace pensieve::hub {

class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;

  void update(std::string_view bytes);
  // Starts over as if nothing had been hashed.
  void reset();
  // The digest of everything hashed since the last reset, as 64 lowercase hex digits. The hash
  // starts over afterwards.
  std::string hex_digest();

 private:
  struct Context;
  std::unique_ptr<Context> ctx_;
};

// Hashes the first `n_bytes` of `path` into *hash (for a resumed download's existing part).
Expected<void> hash_file_prefix(const std::string& path, int64_t n_bytes, Sha256* hash);

// True for 64 hex digits (either case): what an LFS file's etag is.
bool is_sha256_hex(std::string_view text);

}  // namespace pensieve::hub
