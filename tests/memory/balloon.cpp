// pensieve_balloon: takes a fixed amount of anonymous memory away from the machine (or from the
// cgroup it runs in) so that the memory tests can push the server's governor into a tier.
// Usage: pensieve_balloon BYTES   (plain bytes, or with a KiB / MiB / GiB suffix)
// Prints "ballooned N bytes" once every page is touched, then holds the memory until stdin
// closes or SIGTERM/SIGINT arrives, and exits 0.
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string_view>

namespace {

volatile std::sig_atomic_t g_stop = 0;

void on_signal(int) { g_stop = 1; }

// "123", "512MiB", "2GiB", "64KiB" -> bytes; -1 for anything else (or an overflow).
int64_t parse_bytes(std::string_view text) {
  int64_t value = 0;
  size_t i = 0;
  for (; i < text.size() && text[i] >= '0' && text[i] <= '9'; ++i) {
    if (value > (INT64_MAX - 9) / 10) return -1;
    value = value * 10 + (text[i] - '0');
  }
  if (i == 0) return -1;
  const std::string_view suffix = text.substr(i);
  int shift = 0;
  if (suffix.empty()) {
    shift = 0;
  } else if (suffix == "KiB") {
    shift = 10;
  } else if (suffix == "MiB") {
    shift = 20;
  } else if (suffix == "GiB") {
    shift = 30;
  } else {
    return -1;
  }
  if (value > (INT64_MAX >> shift)) return -1;
  return value << shift;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s BYTES   (plain bytes, or with a KiB/MiB/GiB suffix)\n",
                 argv[0]);
    return 2;
  }
  const int64_t n_bytes = parse_bytes(argv[1]);
  if (n_bytes <= 0) {
    std::fprintf(stderr,
                 "balloon: size '%s' is not a positive number of bytes (e.g. 1048576, 512MiB)\n",
                 argv[1]);
    return 2;
  }

  struct sigaction action {};
  action.sa_handler = on_signal;
  sigemptyset(&action.sa_mask);
  action.sa_flags = 0;  // no SA_RESTART: a signal interrupts the read() below
  sigaction(SIGTERM, &action, nullptr);
  sigaction(SIGINT, &action, nullptr);

  void* memory = mmap(nullptr, static_cast<size_t>(n_bytes), PROT_READ | PROT_WRITE,
                      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (memory == MAP_FAILED) {
    std::fprintf(stderr, "balloon: cannot map %lld bytes: %s\n", static_cast<long long>(n_bytes),
                 std::strerror(errno));
    return 1;
  }
  // Distinct bytes per page, so that no kernel page merging can give the memory back.
  auto* bytes = static_cast<unsigned char*>(memory);
  const int64_t page = sysconf(_SC_PAGESIZE);
  for (int64_t offset = 0; offset < n_bytes && !g_stop; offset += page) {
    bytes[offset] = static_cast<unsigned char>(offset / page) | 1;
  }
  std::printf("ballooned %lld bytes\n", static_cast<long long>(n_bytes));
  std::fflush(stdout);

  char buffer[256];
  while (!g_stop) {
    const ssize_t n = read(STDIN_FILENO, buffer, sizeof buffer);
    if (n == 0) break;                   // stdin closed
    if (n < 0 && errno != EINTR) break;  // stdin unusable: nothing left to wait on
  }
  munmap(memory, static_cast<size_t>(n_bytes));
  return 0;
}
