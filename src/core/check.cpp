#include "core/check.h"

#include <cstdio>
#include <cstdlib>

namespace pensieve::detail {

void check_failed(const char* file, int line, const char* condition, const std::string& message) {
  std::fprintf(stderr, "pensieve: check failed at %s:%d: %s %s\n", file, line, condition,
               message.c_str());
  std::fflush(stderr);
  std::abort();
}

}  // namespace pensieve::detail
