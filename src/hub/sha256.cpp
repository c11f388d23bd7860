#include "hub/sha256.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include <openssl/evp.h>

namespace pensieve::hub {

struct Sha256::Context {
  EVP_MD_CTX* md = nullptr;
};

Sha256::Sha256() : ctx_(std::make_unique<Context>()) {
  ctx_->md = EVP_MD_CTX_new();
  PV_CHECK(ctx_->md != nullptr, "sha256: EVP_MD_CTX_new failed");
  reset();
}

Sha256::~Sha256() { EVP_MD_CTX_free(ctx_->md); }

void Sha256::reset() {
  PV_CHECK(EVP_DigestInit_ex(ctx_->md, EVP_sha256(), nullptr) == 1,
           "sha256: EVP_DigestInit_ex failed");
}

void Sha256::update(std::string_view bytes) {
  if (bytes.empty()) return;
  PV_CHECK(EVP_DigestUpdate(ctx_->md, bytes.data(), bytes.size()) == 1,
           "sha256: EVP_DigestUpdate failed");
}

std::string Sha256::hex_digest() {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  PV_CHECK(EVP_DigestFinal_ex(ctx_->md, digest, &n) == 1, "sha256: EVP_DigestFinal_ex failed");
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(2 * n);
  for (unsigned int i = 0; i < n; ++i) {
    out += kHex[digest[i] >> 4];
    out += kHex[digest[i] & 15];
  }
  reset();
  return out;
}

Expected<void> hash_file_prefix(const std::string& path, int64_t n_bytes, Sha256* hash) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    return make_error(ErrorCode::kIo, "pull: cannot open {}: {}", path, std::strerror(errno));
  }
  std::vector<char> buffer(1 << 20);
  int64_t left = n_bytes;
  while (left > 0) {
    const size_t want = static_cast<size_t>(std::min<int64_t>(left, buffer.size()));
    const ssize_t got = ::read(fd, buffer.data(), want);
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) {
      const int err = got < 0 ? errno : 0;
      ::close(fd);
      return make_error(ErrorCode::kIo, "pull: cannot read {}: {}", path,
                        err ? std::strerror(err) : "unexpected end of file");
    }
    hash->update(std::string_view(buffer.data(), static_cast<size_t>(got)));
    left -= got;
  }
  ::close(fd);
  return {};
}

bool is_sha256_hex(std::string_view text) {
  if (text.size() != 64) return false;
  for (char c : text) {
    const bool hex = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
    if (!hex) return false;
  }
  return true;
}

}  // namespace pensieve::hub
