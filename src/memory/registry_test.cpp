#include "memory/registry.h"

#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>

#include "memory/system_memory.h"

namespace pensieve::memory {
namespace {

// "2026-11-28T12:34:56Z".
bool is_rfc3339_utc(const std::string& text) {
  const std::string shape = "dddd-dd-ddTdd:dd:ddZ";
  if (text.size() != shape.size()) return false;
  for (size_t i = 0; i < shape.size(); ++i) {
    const bool digit = text[i] >= '0' && text[i] <= '9';
    if (shape[i] == 'd' ? !digit : text[i] != shape[i]) return false;
  }
  return true;
}

namespace fs = std::filesystem;

// A scratch folder under the test's temp dir; the registry directory is <root>/run, created by
// register_self.
class TempRoot {
 public:
  TempRoot() {
    const auto* info = testing::UnitTest::GetInstance()->current_test_info();
    root_ = fs::path(testing::TempDir()) /
            fmt::format("pensieve_registry_{}_{}", info->name(), ::getpid());
    std::error_code ec;
    fs::remove_all(root_, ec);
    fs::create_directories(root_, ec);
  }
  ~TempRoot() {
    std::error_code ec;
    fs::remove_all(root_, ec);
  }
  std::string path(const std::string& relative) const { return (root_ / relative).string(); }
  void write(const std::string& relative, const std::string& content) const {
    fs::path p = root_ / relative;
    fs::create_directories(p.parent_path());
    std::ofstream out(p);
    out << content;
  }

 private:
  fs::path root_;
};

std::string entry_json(int pid, int64_t start_ticks, int64_t budget_bytes = 1000) {
  return fmt::format(
      R"({{"pid":{},"start_ticks":{},"host":"127.0.0.1","port":8080,"model":"m.gguf",)"
      R"("budget_bytes":{},"started_at":"2024-01-01T00:00:00Z"}})",
      pid, start_ticks, budget_bytes);
}

int64_t own_start_ticks() {
  auto ticks = process_start_ticks(::getpid());
  EXPECT_TRUE(ticks) << (ticks ? "" : ticks.error().message);
  return ticks ? *ticks : -1;
}

TEST(InstanceRegistry, RegisterListUnregister) {
  TempRoot root;
  const std::string dir = root.path("run");
  {
    InstanceRegistry registry(dir);
    EXPECT_TRUE(registry.list().empty());  // no directory yet
    InstanceEntry entry;
    entry.host = "127.0.0.1";
    entry.port = 8080;
    entry.model = "tiny.gguf";
    entry.budget_bytes = 123456789;
    auto registered = registry.register_self(entry);
    ASSERT_TRUE(registered) << registered.error().message;

    struct stat st {};
    ASSERT_EQ(::lstat(dir.c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0700u);
    const std::string file = dir + "/" + std::to_string(::getpid()) + ".json";
    ASSERT_EQ(::lstat(file.c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0600u);

    std::vector<InstanceEntry> listed = registry.list();
    ASSERT_EQ(listed.size(), 1u);
    EXPECT_EQ(listed[0].pid, ::getpid());
    EXPECT_EQ(listed[0].start_ticks, own_start_ticks());
    EXPECT_EQ(listed[0].host, "127.0.0.1");
    EXPECT_EQ(listed[0].port, 8080);
    EXPECT_EQ(listed[0].model, "tiny.gguf");
    EXPECT_EQ(listed[0].budget_bytes, 123456789);
    EXPECT_TRUE(is_rfc3339_utc(listed[0].started_at)) << listed[0].started_at;

    // Another reader of the same directory sees it too.
    EXPECT_EQ(InstanceRegistry(dir).list().size(), 1u);

    registry.unregister();
    EXPECT_FALSE(fs::exists(file));
    EXPECT_TRUE(registry.list().empty());
    registry.unregister();  // twice is fine

    ASSERT_TRUE(registry.register_self(entry));
    EXPECT_TRUE(fs::exists(file));
  }
  // The destructor unregistered.
  EXPECT_TRUE(fs::is_empty(dir));
}

TEST(InstanceRegistry, DeadProcessIsStaleAndRemoved) {
  TempRoot root;
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) ::_exit(0);
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);  // reaped: the pid no longer exists
  ASSERT_EQ(process_start_ticks(child).error().code, ErrorCode::kNotFound);

  root.write("run/" + std::to_string(child) + ".json", entry_json(child, 1));
  root.write("run/" + std::to_string(::getpid()) + ".json",
             entry_json(::getpid(), own_start_ticks()));
  ::chmod(root.path("run").c_str(), 0700);
  InstanceRegistry registry(root.path("run"));
  std::vector<InstanceEntry> listed = registry.list();
  ASSERT_EQ(listed.size(), 1u);
  EXPECT_EQ(listed[0].pid, ::getpid());
  EXPECT_FALSE(fs::exists(root.path("run/" + std::to_string(child) + ".json")));
}

TEST(InstanceRegistry, WrongStartTicksIsStale) {
  TempRoot root;
  const std::string file = "run/" + std::to_string(::getpid()) + ".json";
  root.write(file, entry_json(::getpid(), own_start_ticks() + 1));  // an earlier owner of our pid
  ::chmod(root.path("run").c_str(), 0700);
  InstanceRegistry registry(root.path("run"));
  EXPECT_TRUE(registry.list().empty());
  EXPECT_FALSE(fs::exists(root.path(file)));
}

TEST(InstanceRegistry, MalformedFilesAreSkippedAndKept) {
  TempRoot root;
  const std::string pid = std::to_string(::getpid());
  root.write("run/" + pid + ".json", entry_json(::getpid(), own_start_ticks()));
  root.write("run/1.json", "{not json");
  root.write("run/2.json", R"({"pid":2,"start_ticks":0})");  // fields missing
  root.write("run/3.json", entry_json(4, 0));                // pid differs from name
  root.write("run/notapid.json", entry_json(::getpid(), own_start_ticks()));
  root.write("run/5.json", R"({"pid":5,"start_ticks":0,"host":"h","port":70000,"model":"m",)"
                           R"("budget_bytes":1,"started_at":"x"})");  // port out of range
  root.write("run/6.json", "[1,2,3]");
  root.write("run/" + pid + ".json.tmp", "half");  // a write in progress is not an entry
  ::chmod(root.path("run").c_str(), 0700);
  InstanceRegistry registry(root.path("run"));
  std::vector<InstanceEntry> listed = registry.list();
  ASSERT_EQ(listed.size(), 1u);
  EXPECT_EQ(listed[0].pid, ::getpid());
  for (const char* name : {"1.json", "2.json", "3.json", "notapid.json", "5.json", "6.json"}) {
    EXPECT_TRUE(fs::exists(root.path(std::string("run/") + name))) << name;
  }
}

TEST(InstanceRegistry, RefusesUnsafeDirectories) {
  TempRoot root;
  fs::create_directories(root.path("shared"));
  ::chmod(root.path("shared").c_str(), 0777);
  InstanceRegistry open_dir(root.path("shared"));
  auto refused = open_dir.register_self({});
  ASSERT_FALSE(refused);
  EXPECT_NE(refused.error().message.find("writable by other users"), std::string::npos)
      << refused.error().message;

  fs::create_directories(root.path("real"));
  ::chmod(root.path("real").c_str(), 0700);
  fs::create_symlink(root.path("real"), root.path("link"));
  InstanceRegistry linked(root.path("link"));
  refused = linked.register_self({});
  ASSERT_FALSE(refused);
  EXPECT_NE(refused.error().message.find("symbolic link"), std::string::npos)
      << refused.error().message;
  root.write("real/" + std::to_string(::getpid()) + ".json",
             entry_json(::getpid(), own_start_ticks()));
  EXPECT_TRUE(linked.list().empty());
  EXPECT_EQ(InstanceRegistry(root.path("real")).list().size(), 1u);

  InstanceRegistry no_parent(root.path("missing/run"));
  EXPECT_FALSE(no_parent.register_self({}));
}

TEST(InstanceRegistry, DefaultRuntimeDir) {
  const char* saved_own = std::getenv("PENSIEVE_RUNTIME_DIR");
  const char* saved_xdg = std::getenv("XDG_RUNTIME_DIR");
  const std::string own = saved_own ? saved_own : "", xdg = saved_xdg ? saved_xdg : "";
  ::setenv("PENSIEVE_RUNTIME_DIR", "/x/own", 1);
  ::setenv("XDG_RUNTIME_DIR", "/run/user/7", 1);
  EXPECT_EQ(default_runtime_dir(), "/x/own");
  ::unsetenv("PENSIEVE_RUNTIME_DIR");
  EXPECT_EQ(default_runtime_dir(), "/run/user/7/pensieve");
  ::unsetenv("XDG_RUNTIME_DIR");
  EXPECT_EQ(default_runtime_dir(), "/tmp/pensieve-" + std::to_string(::getuid()));
  if (saved_own) ::setenv("PENSIEVE_RUNTIME_DIR", own.c_str(), 1);
  if (saved_xdg) ::setenv("XDG_RUNTIME_DIR", xdg.c_str(), 1);
}

TEST(ProcessStartTicks, ParsesStatWithAwkwardCommand) {
  TempRoot root;
  // The command name holds spaces and a ')' ; field 22 is 987654.
  root.write("proc/42/stat",
             "42 (a ) b (c) S 1 42 42 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 1000 10\n");
  auto ticks = process_start_ticks(42, root.path("proc"));
  ASSERT_TRUE(ticks) << ticks.error().message;
  EXPECT_EQ(*ticks, 987654);

  root.write("proc/43/stat", "43 (x) S 1 2 3\n");
  EXPECT_EQ(process_start_ticks(43, root.path("proc")).error().code, ErrorCode::kInvalidFormat);
  root.write("proc/44/stat", "44 x S 1 2 3\n");
  EXPECT_EQ(process_start_ticks(44, root.path("proc")).error().code, ErrorCode::kInvalidFormat);
  root.write("proc/45/stat",
             "45 (x) S 1 45 45 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 12ab 1000 10\n");
  EXPECT_EQ(process_start_ticks(45, root.path("proc")).error().code, ErrorCode::kInvalidFormat);
  EXPECT_EQ(process_start_ticks(46, root.path("proc")).error().code, ErrorCode::kNotFound);
  EXPECT_EQ(process_start_ticks(0).error().code, ErrorCode::kInvalidArgument);
  EXPECT_GT(own_start_ticks(), 0);
}

TEST(OutstandingBytes, BudgetLessCurrentUse) {
  TempRoot root;
  root.write("proc/42/status",
             "VmRSS:\t  3000 kB\nRssAnon:\t  1000 kB\nRssFile:\t  2000 kB\nVmSwap:\t  500 kB\n");
  InstanceEntry growing{42, 0, "h", 1, "m", 10000 * 1024, ""};
  InstanceEntry over{42, 0, "h", 1, "m", 1000 * 1024, ""};  // already past its budget: 0
  InstanceEntry missing{43, 0, "h", 1, "m", 1 << 30, ""};   // unreadable: skipped
  EXPECT_EQ(outstanding_bytes({growing}, root.path("proc")), (10000 - 3500) * 1024);
  EXPECT_EQ(outstanding_bytes({growing, over, missing, growing}, root.path("proc")),
            2 * (10000 - 3500) * 1024);

  // Our own process from the real /proc.
  auto self = read_process_memory(::getpid());
  ASSERT_TRUE(self) << self.error().message;
  const int64_t in_use = self->rss_anon_bytes + self->rss_file_bytes + self->swap_bytes;
  ASSERT_GT(in_use, 0);
  const int64_t budget = int64_t{1} << 40;
  InstanceEntry me{::getpid(), own_start_ticks(), "h", 1, "m", budget, ""};
  const int64_t outstanding = outstanding_bytes({me});
  EXPECT_LT(outstanding, budget);
  EXPECT_GT(outstanding, budget - 4 * in_use);
  me.budget_bytes = 0;
  EXPECT_EQ(outstanding_bytes({me}), 0);
}

}  // namespace
}  // namespace pensieve::memory
