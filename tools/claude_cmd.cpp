// `pensieve claude [OPTIONS] [--] [CLAUDE ARGS...]`: Claude Code on a local pensieve server. Reuses
// the pensieve answering on --port, or starts `pensieve serve` there in the background, then runs
// `claude` with only its own environment pointed at that server; its arguments pass unchanged.
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "hub/http_client.h"
#include "memory/registry.h"
#include "server/config.h"
#include "tools/commands.h"

namespace pensieve::cli {
namespace {

constexpr const char* kUsage = R"(Usage: pensieve claude [OPTIONS] [--] [CLAUDE ARGUMENTS...]

Runs Claude Code (`claude`, found on PATH) against a local pensieve server: the one already
answering on --port, or else `pensieve serve` started there in the background (it keeps running
after claude exits, for the next call, unless --stop-after). Only claude's environment changes:
ANTHROPIC_BASE_URL, ANTHROPIC_API_KEY, API_TIMEOUT_MS, the model variables and
CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC. The first argument that is not one of these options
(or everything after --) goes to claude unchanged; the exit status is claude's.

Options:
  --port N               the server's port (default PENSIEVE_PORT, else 7777); one per terminal
  -m, --model FILE       model for a server this command starts (serve's -m)
  -c, --ctx N            context for a server this command starts (serve's --ctx)
  --config FILE          TOML settings for a server this command starts (serve's --config)
  --api-key KEY          the server's key (default PENSIEVE_API_KEY, else the --config file's)
  --serve-arg ARG        one more argument for `pensieve serve` (repeat it: --serve-arg
                         --parallel --serve-arg 1); PENSIEVE_* variables reach serve as well
  --startup-timeout S    seconds to wait for a started server to answer (default 120)
  --stop-after           stop the server after claude exits, if this command started it
  -h, --help             this text
)";

struct Options {
  int port = 7777;
  std::vector<std::string> serve_args;
  std::string api_key;
  std::string config_path;
  bool stop_after = false;
  int startup_timeout_s = 120;
  std::vector<std::string> claude_args;
};

std::string g_name = "pensieve claude";  // "claude-local" when run through that script

int fail(const std::string& message) {
  std::fprintf(stderr, "%s: %s\n", g_name.c_str(), message.c_str());
  return 1;
}

std::optional<int> parse_int(std::string_view text, int lo, int hi) {
  int value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size() || value < lo || value > hi) {
    return std::nullopt;
  }
  return value;
}

// Reads pensieve's own options up to the first argument that is not one; the rest is claude's.
// Returns an error message, or "" when parsed; *help is set for -h/--help.
std::string parse_options(const std::vector<std::string>& args, Options* o, bool* help) {
  if (const char* env = std::getenv("PENSIEVE_PORT"); env != nullptr && *env != '\0') {
    auto port = parse_int(env, 1, 65535);
    if (!port) return std::string("PENSIEVE_PORT '") + env + "' is not a port in 1..65535";
    o->port = *port;
  }
  size_t i = 0;
  for (; i < args.size(); ++i) {
    std::string name = args[i];
    std::optional<std::string> inline_value;
    if (name == "--") {
      ++i;
      break;
    }
    if (const size_t eq = name.find('='); name.starts_with("--") && eq != std::string::npos) {
      inline_value = name.substr(eq + 1);
      name.resize(eq);
    }
    if (name == "-h" || name == "--help") {
      *help = true;
      return "";
    }
    if (name == "--stop-after") {
      o->stop_after = true;
      continue;
    }
    static const char* kValued[] = {"--port",    "-m",          "--model",
                                    "-c",        "--ctx",       "--config",
                                    "--api-key", "--serve-arg", "--startup-timeout"};
    if (std::find(std::begin(kValued), std::end(kValued), name) == std::end(kValued)) break;
    if (!inline_value && i + 1 >= args.size()) return name + " needs a value";
    const std::string value = inline_value ? *inline_value : args[++i];
    if (name == "--port") {
      auto port = parse_int(value, 1, 65535);
      if (!port) return "--port '" + value + "' is not a port in 1..65535";
      o->port = *port;
    } else if (name == "--startup-timeout") {
      auto seconds = parse_int(value, 1, 86400);
      if (!seconds) return "--startup-timeout '" + value + "' is not a number of seconds";
      o->startup_timeout_s = *seconds;
    } else if (name == "--serve-arg") {
      o->serve_args.push_back(value);
    } else {
      const std::string flag = name == "-m" ? "--model" : name == "-c" ? "--ctx" : name;
      o->serve_args.insert(o->serve_args.end(), {flag, value});
      if (name == "--api-key") o->api_key = value;
      if (name == "--config") o->config_path = value;
    }
  }
  o->claude_args.assign(args.begin() + static_cast<std::ptrdiff_t>(i), args.end());
  return "";
}

// The key claude sends: --api-key, else PENSIEVE_API_KEY, else the --config file's api_key.
std::string server_api_key(const Options& o) {
  if (!o.api_key.empty()) return o.api_key;
  if (auto env = server::environment_lookup()("api_key")) return *env;
  if (!o.config_path.empty()) {
    if (auto file = server::toml_lookup(o.config_path)) {
      if (auto key = (*file)("api_key")) return *key;
    }
  }
  return "";
}

// The first executable `name` in PATH's directories.
std::optional<std::string> find_on_path(const std::string& name) {
  const char* path = std::getenv("PATH");
  std::stringstream dirs(path != nullptr ? path : "");
  std::string dir;
  while (std::getline(dirs, dir, ':')) {
    const std::string candidate = (dir.empty() ? std::string(".") : dir) + "/" + name;
    struct stat st {};
    if (::stat(candidate.c_str(), &st) == 0 && S_ISREG(st.st_mode) &&
        ::access(candidate.c_str(), X_OK) == 0) {
      return candidate;
    }
  }
  return std::nullopt;
}

struct Probe {
  enum Kind { kNothing, kPensieve, kOther } kind = kNothing;
  std::string model;  // the served model id, for kPensieve
};

// GET /health: pensieve's answer is a JSON object with these fields (200, or 503 when memory is
// short); anything else answering is another program.
Probe probe(int port) {
  hub::HttpClientOptions options;
  options.connect_timeout_s = 2;
  options.stall_timeout_s = 5;
  hub::HttpClient client(options);
  hub::HttpRequest request;
  request.url = "http://127.0.0.1:" + std::to_string(port) + "/health";
  request.redirects = hub::Redirects::kNone;
  auto response = client.send(request);
  if (!response) return {};
  const auto body = nlohmann::json::parse(response->body, nullptr, false);
  if (body.is_object() && body.contains("status") && body.contains("accepting_requests") &&
      body.contains("kv_blocks") && body.value("model", nlohmann::json()).is_string()) {
    return {Probe::kPensieve, body["model"].get<std::string>()};
  }
  return {Probe::kOther, ""};
}

// Whether the server takes `key` (a 401 means it wants another one).
bool key_accepted(int port, const std::string& key) {
  hub::HttpClient client(hub::HttpClientOptions{});
  hub::HttpRequest request;
  request.url = "http://127.0.0.1:" + std::to_string(port) + "/v1/models";
  request.headers = {"x-api-key: " + key, "anthropic-version: 2023-06-01"};
  request.redirects = hub::Redirects::kNone;
  auto response = client.send(request);
  return !response || response->status != 401;
}

// The last `n_lines` lines of `path` from byte `from` on.
std::string log_tail(const std::string& path, std::streamoff from, int n_lines) {
  std::ifstream in(path, std::ios::binary);
  in.seekg(from);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  std::string out;
  const size_t first = lines.size() > static_cast<size_t>(n_lines) ? lines.size() - n_lines : 0;
  for (size_t i = first; i < lines.size(); ++i) out += "  " + lines[i] + "\n";
  return out.empty() ? "  (the log is empty)\n" : out;
}

// Starts `pensieve serve --port N ...` in its own session (a Ctrl-C in this terminal does not
// reach it), output appended to `log_path`. Returns its pid, or -1 with *error set.
pid_t start_server(const Options& o, const std::string& log_path, std::string* error) {
  const int log_fd = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (log_fd < 0) {
    *error = "cannot open the server log " + log_path + ": " + std::strerror(errno);
    return -1;
  }
  std::vector<std::string> args = {"pensieve", "serve", "--port", std::to_string(o.port)};
  args.insert(args.end(), o.serve_args.begin(), o.serve_args.end());
  std::string line = "--- " + g_name + ": starting";
  for (size_t i = 1; i < args.size(); ++i) line += " " + args[i];
  line += " ---\n";
  (void)!::write(log_fd, line.data(), line.size());
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::setsid();
    const int null_fd = ::open("/dev/null", O_RDONLY);
    ::dup2(null_fd, 0);
    ::dup2(log_fd, 1);
    ::dup2(log_fd, 2);
    std::vector<char*> argv;
    for (std::string& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    ::execv("/proc/self/exe", argv.data());
    std::fprintf(stderr, "cannot run /proc/self/exe: %s\n", std::strerror(errno));
    std::_Exit(127);
  }
  ::close(log_fd);
  if (pid < 0) *error = std::string("cannot start the server: ") + std::strerror(errno);
  return pid;
}

// Waits until the started server answers /health. Returns the served model id, or nullopt after
// printing why (its exit, or the timeout, with the end of its log).
std::optional<std::string> wait_for_server(const Options& o, pid_t pid, const std::string& log,
                                           std::streamoff log_start) {
  const auto deadline =
      std::chrono::steady_clock::now() + std::chrono::seconds(o.startup_timeout_s);
  while (true) {
    if (Probe p = probe(o.port); p.kind == Probe::kPensieve) return p.model;
    int status = 0;
    if (::waitpid(pid, &status, WNOHANG) == pid) {
      // Another `pensieve claude` may have started one on this port first: use it.
      if (Probe p = probe(o.port); p.kind == Probe::kPensieve) return p.model;
      fail("the server did not start on port " + std::to_string(o.port) + " (exit status " +
           std::to_string(WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status)) +
           "); the end of its log " + log + ":\n" + log_tail(log, log_start, 20));
      return std::nullopt;
    }
    if (std::chrono::steady_clock::now() >= deadline) {
      ::kill(pid, SIGTERM);
      ::waitpid(pid, &status, 0);
      fail("the server on port " + std::to_string(o.port) + " did not answer within " +
           std::to_string(o.startup_timeout_s) + " s (--startup-timeout) and was stopped; the " +
           "end of its log " + log + ":\n" + log_tail(log, log_start, 20));
      return std::nullopt;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
}

// Points this process's environment (inherited by claude only) at the server.
void point_environment(int port, const std::string& key, const std::string& model) {
  ::setenv("ANTHROPIC_BASE_URL", ("http://127.0.0.1:" + std::to_string(port)).c_str(), 1);
  ::setenv("ANTHROPIC_API_KEY", key.empty() ? "pensieve-local" : key.c_str(), 1);
  ::setenv("API_TIMEOUT_MS", "600000", 0);  // local prefill of a long prompt takes a while
  for (const char* name :
       {"ANTHROPIC_MODEL", "ANTHROPIC_DEFAULT_OPUS_MODEL", "ANTHROPIC_DEFAULT_SONNET_MODEL",
        "ANTHROPIC_DEFAULT_HAIKU_MODEL", "ANTHROPIC_SMALL_FAST_MODEL"}) {
    ::setenv(name, model.c_str(), 1);
  }
  ::setenv("CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC", "1", 1);
  // These would send the user's real token here, or the requests to another provider.
  for (const char* name : {"ANTHROPIC_AUTH_TOKEN", "CLAUDE_CODE_USE_BEDROCK",
                           "CLAUDE_CODE_USE_VERTEX", "CLAUDE_CODE_USE_FOUNDRY"}) {
    ::unsetenv(name);
  }
}

// Runs claude; its exit status (128 + signal when killed). Without a server to stop afterwards
// this process becomes claude (exec), so the terminal and signals are claude's alone.
int run_claude(const std::string& claude, const Options& o, pid_t stop_pid) {
  std::vector<std::string> args = o.claude_args;
  args.insert(args.begin(), "claude");
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  if (stop_pid <= 0) {
    ::execv(claude.c_str(), argv.data());
    fail("cannot run " + claude + ": " + std::strerror(errno));
    return 127;
  }
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::execv(claude.c_str(), argv.data());
    std::fprintf(stderr, "%s: cannot run %s: %s\n", g_name.c_str(), claude.c_str(),
                 std::strerror(errno));
    std::_Exit(127);
  }
  // Ctrl-C is claude's to handle; this process only waits for it.
  ::signal(SIGINT, SIG_IGN);
  ::signal(SIGQUIT, SIG_IGN);
  int status = 0;
  while (pid > 0 && ::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  ::kill(stop_pid, SIGTERM);
  int server_status = 0;
  ::waitpid(stop_pid, &server_status, 0);
  if (pid < 0) return fail(std::string("cannot start claude: ") + std::strerror(errno));
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

}  // namespace

int claude_main(std::string_view program, const std::vector<std::string>& args) {
  if (std::filesystem::path(program).filename() == "claude-local") g_name = "claude-local";
  Options o;
  bool help = false;
  if (std::string error = parse_options(args, &o, &help); !error.empty()) {
    fail(error + " (see --help)");
    return 2;
  }
  if (help) {
    std::fputs(kUsage, stdout);
    return 0;
  }
  // Before any server starts: without claude there is nothing to start it for.
  const std::optional<std::string> claude = find_on_path("claude");
  if (!claude) {
    fail(
        "'claude' was not found on PATH; install it with npm install -g @anthropic-ai/claude-code");
    return 127;
  }
  const std::string key = server_api_key(o);
  const std::string port = std::to_string(o.port);
  pid_t started = -1;
  Probe found = probe(o.port);
  if (found.kind == Probe::kOther) {
    return fail("port " + port + " is answered by a program that is not pensieve; choose " +
                "another with --port");
  }
  if (found.kind == Probe::kPensieve) {
    std::fprintf(stderr, "%s: using the pensieve server on port %s (model %s)\n", g_name.c_str(),
                 port.c_str(), found.model.c_str());
  } else {
    const std::string dir = memory::default_runtime_dir();
    std::error_code ec;
    std::filesystem::create_directories(dir, ec);
    ::chmod(dir.c_str(), 0700);
    const std::string log = dir + "/serve-" + port + ".log";
    std::error_code size_ec;
    const auto log_start = std::filesystem::exists(log, size_ec)
                               ? static_cast<std::streamoff>(std::filesystem::file_size(log, ec))
                               : std::streamoff(0);
    std::string error;
    started = start_server(o, log, &error);
    if (started < 0) return fail(error);
    auto model = wait_for_server(o, started, log, log_start);
    if (!model) return 1;
    found.model = *model;
    std::fprintf(stderr, "%s: started pensieve serve on port %s (model %s; log %s)%s\n",
                 g_name.c_str(), port.c_str(), found.model.c_str(), log.c_str(),
                 o.stop_after ? "" : "; it keeps running after claude exits");
  }
  if (!key_accepted(o.port, key.empty() ? "pensieve-local" : key)) {
    if (started > 0 && o.stop_after) ::kill(started, SIGTERM);
    return fail("the pensieve server on port " + port + " wants an API key: pass --api-key " +
                "or set PENSIEVE_API_KEY");
  }
  point_environment(o.port, key, found.model);
  return run_claude(*claude, o, o.stop_after ? started : -1);
}

void register_claude(CLI::App& app, Handler* run) {
  // Listed in --help; main() hands `pensieve claude ...` to claude_main before CLI11 parses, so
  // that claude's arguments (and --) pass through untouched. This path serves
  // `pensieve --log-level X claude ...`.
  auto* cmd = app.add_subcommand("claude", "Run Claude Code against a local pensieve server");
  cmd->prefix_command();
  cmd->allow_extras();
  cmd->set_help_flag();
  cmd->callback(
      [cmd, run] { *run = [args = cmd->remaining()] { return claude_main("pensieve", args); }; });
}

}  // namespace pensieve::cli
