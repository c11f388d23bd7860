// `pensieve memory [--watch [--interval S]] [--json]`: the machine's memory as pensieve sees it
// (tier, usable and available memory, swap, cgroup, pressure) and the pensieve servers running.
#include <signal.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "core/duration.h"
#include "memory/budget.h"
#include "memory/registry.h"
#include "memory/system_memory.h"
#include "memory/tiers.h"
#include "tools/commands.h"

namespace pensieve::cli {
namespace {

struct MemoryFlags {
  bool watch = false;
  double interval_s = 2.0;
  bool json = false;
};

// One check: the machine and each registered server with its current footprint.
struct Check {
  memory::MemorySnapshot machine;
  memory::Tier tier = memory::Tier::kSafe;
  struct Instance {
    memory::InstanceEntry entry;
    std::optional<memory::ProcessMemory> usage;  // nullopt when its status cannot be read
  };
  std::vector<Instance> instances;
};

Expected<Check> check_once() {
  memory::LinuxMemorySource source;
  Check check;
  PV_TRY(check.machine, source.read());
  check.tier = memory::classify(check.machine, memory::TierThresholds{});
  memory::InstanceRegistry registry(memory::default_runtime_dir());
  for (memory::InstanceEntry& entry : registry.list()) {
    auto usage = memory::read_process_memory(entry.pid);
    check.instances.push_back(
        {std::move(entry), usage ? std::optional<memory::ProcessMemory>(*usage) : std::nullopt});
  }
  return check;
}

template <class T>
nlohmann::json or_null(const std::optional<T>& value) {
  return value ? nlohmann::json(*value) : nlohmann::json(nullptr);
}

std::string to_json(const Check& c) {
  const memory::MemorySnapshot& m = c.machine;
  nlohmann::json instances = nlohmann::json::array();
  for (const Check::Instance& i : c.instances) {
    instances.push_back({
        {"pid", i.entry.pid},
        {"host", i.entry.host},
        {"port", i.entry.port},
        {"model", i.entry.model},
        {"rss_anon_bytes", i.usage ? nlohmann::json(i.usage->rss_anon_bytes) : nullptr},
        {"swap_bytes", i.usage ? nlohmann::json(i.usage->swap_bytes) : nullptr},
        {"budget_bytes", i.entry.budget_bytes},
        {"started_at", i.entry.started_at},
    });
  }
  nlohmann::json object = {
      {"time", format_rfc3339_utc(std::time(nullptr))},
      {"tier", std::string(memory::tier_name(c.tier))},
      {"available_bytes", m.usable_bytes()},
      {"mem_available_bytes", m.available_bytes},
      {"total_bytes", m.total_bytes},
      {"swap_total_bytes", m.swap_total_bytes},
      {"swap_used_bytes", std::max<int64_t>(0, m.swap_total_bytes - m.swap_free_bytes)},
      {"cgroup_limit_bytes", or_null(m.cgroup_limit_bytes)},
      {"cgroup_usage_bytes", or_null(m.cgroup_usage_bytes)},
      {"psi_some_avg10", or_null(m.psi_some_avg10)},
      {"psi_full_avg10", or_null(m.psi_full_avg10)},
      {"instances", std::move(instances)},
  };
  // Model names need not be UTF-8; replace what JSON cannot hold rather than throw.
  return object.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

std::string instances_table(const std::vector<Check::Instance>& instances) {
  if (instances.empty()) return "instances    none\n";
  std::vector<std::string> addresses;
  size_t address_width = 7, model_width = 5;  // "ADDRESS", "MODEL"
  for (const Check::Instance& i : instances) {
    addresses.push_back(fmt::format("{}:{}", i.entry.host, i.entry.port));
    address_width = std::max(address_width, addresses.back().size());
    model_width = std::max(model_width, i.entry.model.size());
  }
  std::string text = fmt::format("instances    {}\n", instances.size());
  text += fmt::format("  {:>8}  {:<{}}  {:<{}}  {:>10}  {:>10}  {:>10}\n", "PID", "ADDRESS",
                      address_width, "MODEL", model_width, "RSSANON", "SWAP", "BUDGET");
  for (size_t n = 0; n < instances.size(); ++n) {
    const Check::Instance& i = instances[n];
    text += fmt::format("  {:>8}  {:<{}}  {:<{}}  {:>10}  {:>10}  {:>10}\n", i.entry.pid,
                        addresses[n], address_width, i.entry.model, model_width,
                        i.usage ? memory::format_bytes(i.usage->rss_anon_bytes) : std::string("-"),
                        i.usage ? memory::format_bytes(i.usage->swap_bytes) : std::string("-"),
                        memory::format_bytes(i.entry.budget_bytes));
  }
  return text;
}

std::string to_text(const Check& c) {
  using memory::format_bytes;
  const memory::MemorySnapshot& m = c.machine;
  std::string text = fmt::format("tier         {}\n", memory::tier_name(c.tier));
  text += fmt::format("available    {} usable (MemAvailable {})\n", format_bytes(m.usable_bytes()),
                      format_bytes(m.available_bytes));
  text += fmt::format("total        {}\n", format_bytes(m.total_bytes));
  text += fmt::format("swap used    {} of {}\n",
                      format_bytes(std::max<int64_t>(0, m.swap_total_bytes - m.swap_free_bytes)),
                      format_bytes(m.swap_total_bytes));
  text += m.cgroup_limit_bytes ? fmt::format("cgroup       limit {}, usage {}\n",
                                             format_bytes(*m.cgroup_limit_bytes),
                                             format_bytes(m.cgroup_usage_bytes.value_or(0)))
                               : std::string("cgroup       none\n");
  if (m.psi_some_avg10 || m.psi_full_avg10) {
    text += fmt::format("pressure     some {:.2f}%, full {:.2f}% (avg10)\n",
                        m.psi_some_avg10.value_or(0), m.psi_full_avg10.value_or(0));
  } else {
    text += "pressure     not reported by this kernel\n";
  }
  return text + instances_table(c.instances);
}

volatile sig_atomic_t g_stop = 0;
void on_stop_signal(int) { g_stop = 1; }

// Sleeps up to `seconds`, returning early (false) once SIGINT or SIGTERM arrived.
bool sleep_unless_stopped(double seconds) {
  const auto deadline = std::chrono::steady_clock::now() +
                        std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                            std::chrono::duration<double>(seconds));
  while (!g_stop) {
    const auto left = deadline - std::chrono::steady_clock::now();
    if (left <= std::chrono::steady_clock::duration::zero()) return true;
    std::this_thread::sleep_for(
        std::min<std::chrono::steady_clock::duration>(left, std::chrono::milliseconds(100)));
  }
  return false;
}

int run_memory(const MemoryFlags& flags) {
  if (flags.watch) {
    struct sigaction action {};
    action.sa_handler = on_stop_signal;
    ::sigemptyset(&action.sa_mask);
    ::sigaction(SIGINT, &action, nullptr);
    ::sigaction(SIGTERM, &action, nullptr);
  }
  for (bool first = true;; first = false) {
    auto check = check_once();
    if (!check) {
      std::fprintf(stderr, "%s\n", check.error().message.c_str());
      return 1;
    }
    if (flags.json) {
      std::printf("%s\n", to_json(*check).c_str());
    } else {
      if (flags.watch)
        std::printf("%s%s\n", first ? "" : "\n", format_rfc3339_utc(std::time(nullptr)).c_str());
      std::printf("%s", to_text(*check).c_str());
    }
    std::fflush(stdout);
    if (!flags.watch || !sleep_unless_stopped(flags.interval_s)) return 0;
  }
}

constexpr double kMaxIntervalS = 86400;

// Seconds in (0, kMaxIntervalS], fractions allowed; "" when valid, else the reason.
std::string check_interval(const std::string& text) {
  char* end = nullptr;
  const double seconds = std::strtod(text.c_str(), &end);
  if (text.empty() || end != text.c_str() + text.size() || !std::isfinite(seconds) ||
      seconds <= 0 || seconds > kMaxIntervalS) {
    return fmt::format("'{}' is not a number of seconds greater than 0 and at most {}", text,
                       kMaxIntervalS);
  }
  return "";
}

}  // namespace

void register_memory(CLI::App& app, Handler* run) {
  auto* cmd = app.add_subcommand(
      "memory", "Show the memory tier, available memory, swap and the pensieve servers running");
  auto flags = std::make_shared<MemoryFlags>();
  CLI::Option* watch = cmd->add_flag("--watch", flags->watch, "Repeat the check until Ctrl-C");
  cmd->add_option("--interval", flags->interval_s, "Seconds between checks with --watch (2)")
      ->check(CLI::Validator(check_interval, "SECONDS", "positive seconds"))
      ->needs(watch);
  cmd->add_flag("--json", flags->json, "One JSON object per check, one per line");
  cmd->callback([flags, run] { *run = [flags] { return run_memory(*flags); }; });
}

}  // namespace pensieve::cli
