#include "memory/system_memory.h"

#include <unistd.h>

#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>

namespace pensieve::memory {
namespace {

namespace fs = std::filesystem;

// A fake /proc and /sys/fs/cgroup under the test's temp dir, removed afterwards.
class FakeTree {
 public:
  FakeTree() {
    const auto* info = testing::UnitTest::GetInstance()->current_test_info();
    root_ =
        fs::path(testing::TempDir()) /
        fmt::format("pensieve_memory_{}_{}_{}", info->test_suite_name(), info->name(), ::getpid());
    std::error_code ec;
    fs::remove_all(root_, ec);
  }
  ~FakeTree() {
    std::error_code ec;
    fs::remove_all(root_, ec);
  }
  std::string proc() const { return (root_ / "proc").string(); }
  std::string cgroup() const { return (root_ / "cgroup").string(); }

  // Writes <root>/<relative>, creating its folders ("proc/meminfo", "cgroup/a/memory.max").
  void write(const std::string& relative, const std::string& content) const {
    fs::path path = root_ / relative;
    std::error_code ec;
    fs::create_directories(path.parent_path(), ec);
    ASSERT_FALSE(ec) << path << ": " << ec.message();
    std::ofstream out(path);
    out << content;
    ASSERT_TRUE(out.good()) << path;
  }
  void meminfo(int64_t total_kb = 16000000, int64_t available_kb = 8000000) const {
    write("proc/meminfo", fmt::format("MemTotal:       {} kB\nMemFree:         1234 kB\n"
                                      "MemAvailable:   {} kB\nBuffers:          100 kB\n"
                                      "SwapTotal:       2048 kB\nSwapFree:        1024 kB\n"
                                      "HugePages_Total:       0\n",
                                      total_kb, available_kb));
  }
  Expected<MemorySnapshot> read() const { return LinuxMemorySource(proc(), cgroup()).read(); }

 private:
  fs::path root_;
};

constexpr int64_t kGiB = int64_t{1} << 30;

MemorySnapshot read_ok(const FakeTree& tree) {
  auto s = tree.read();
  EXPECT_TRUE(s.has_value()) << (s ? "" : s.error().message);
  return s ? *s : MemorySnapshot{};
}

void expect_error(const Expected<MemorySnapshot>& s, ErrorCode code, const std::string& needle) {
  ASSERT_FALSE(s.has_value());
  EXPECT_EQ(s.error().code, code) << s.error().message;
  EXPECT_EQ(s.error().message.rfind("memory: ", 0), 0u) << s.error().message;
  EXPECT_NE(s.error().message.find(needle), std::string::npos) << s.error().message;
}

TEST(LinuxMemorySource, ReadsMeminfoWithNoCgroupAndNoPsi) {
  FakeTree tree;
  tree.meminfo(16000000, 8000000);
  MemorySnapshot s = read_ok(tree);
  EXPECT_EQ(s.total_bytes, 16000000 * int64_t{1024});
  EXPECT_EQ(s.available_bytes, 8000000 * int64_t{1024});
  EXPECT_EQ(s.swap_total_bytes, 2048 * 1024);
  EXPECT_EQ(s.swap_free_bytes, 1024 * 1024);
  EXPECT_FALSE(s.cgroup_limit_bytes);
  EXPECT_FALSE(s.cgroup_usage_bytes);
  EXPECT_FALSE(s.cgroup_high_bytes);
  EXPECT_FALSE(s.psi_some_avg10);
  EXPECT_FALSE(s.psi_full_avg10);
  EXPECT_EQ(s.usable_bytes(), s.available_bytes);  // swap is never usable
  EXPECT_EQ(s.effective_total_bytes(), s.total_bytes);
}

TEST(LinuxMemorySource, V2CgroupWithLimit) {
  FakeTree tree;
  tree.meminfo(16 * 1024 * 1024, 12 * 1024 * 1024);  // 16 GiB total, 12 GiB available
  tree.write("proc/self/cgroup", "0::/user.slice/app.scope\n");
  tree.write("cgroup/user.slice/app.scope/memory.max", fmt::format("{}\n", 4 * kGiB));
  tree.write("cgroup/user.slice/app.scope/memory.current", fmt::format("{}\n", 1 * kGiB));
  tree.write("cgroup/user.slice/app.scope/memory.high", fmt::format("{}\n", 3 * kGiB));
  MemorySnapshot s = read_ok(tree);
  EXPECT_EQ(s.cgroup_limit_bytes, 4 * kGiB);
  EXPECT_EQ(s.cgroup_usage_bytes, 1 * kGiB);
  EXPECT_EQ(s.cgroup_high_bytes, 3 * kGiB);
  EXPECT_EQ(s.usable_bytes(), 3 * kGiB);  // min(12 GiB available, 4 - 1 GiB)
  EXPECT_EQ(s.effective_total_bytes(), 4 * kGiB);
}

TEST(LinuxMemorySource, V2MaxIsUnlimited) {
  FakeTree tree;
  tree.meminfo(16 * 1024 * 1024, 12 * 1024 * 1024);
  tree.write("proc/self/cgroup", "0::/app\n");
  tree.write("cgroup/app/memory.max", "max\n");
  tree.write("cgroup/app/memory.high", "max\n");
  tree.write("cgroup/app/memory.current", "5000\n");
  MemorySnapshot s = read_ok(tree);
  EXPECT_FALSE(s.cgroup_limit_bytes);
  EXPECT_FALSE(s.cgroup_high_bytes);
  EXPECT_EQ(s.cgroup_usage_bytes, 5000);
  EXPECT_EQ(s.usable_bytes(), 12 * kGiB);
  EXPECT_EQ(s.effective_total_bytes(), 16 * kGiB);
}

TEST(LinuxMemorySource, V2KeepsTheAncestorWithTheLeastHeadroom) {
  FakeTree tree;
  tree.meminfo(16 * 1024 * 1024, 12 * 1024 * 1024);
  tree.write("proc/self/cgroup", "0::/slice/app\n");
  tree.write("cgroup/slice/app/memory.max", fmt::format("{}", 3 * kGiB));  // 2 GiB headroom
  tree.write("cgroup/slice/app/memory.current", fmt::format("{}", 1 * kGiB));
  tree.write("cgroup/slice/memory.max", fmt::format("{}", 4 * kGiB));  // 0.5 GiB headroom
  tree.write("cgroup/slice/memory.current", fmt::format("{}", 7 * kGiB / 2));
  tree.write("cgroup/slice/memory.high", fmt::format("{}", 2 * kGiB));
  MemorySnapshot s = read_ok(tree);
  EXPECT_EQ(s.cgroup_limit_bytes, 4 * kGiB);
  EXPECT_EQ(s.cgroup_usage_bytes, 7 * kGiB / 2);
  EXPECT_EQ(s.cgroup_high_bytes, 2 * kGiB);
  EXPECT_EQ(s.usable_bytes(), kGiB / 2);
}

TEST(LinuxMemorySource, V2FallsBackToTheRootWhenThePathIsNotMounted) {
  FakeTree tree;  // a container whose own cgroup is mounted at /sys/fs/cgroup
  tree.meminfo(16 * 1024 * 1024, 12 * 1024 * 1024);
  tree.write("proc/self/cgroup", "0::/docker/0123abcd\n");
  tree.write("cgroup/memory.max", fmt::format("{}", 2 * kGiB));
  tree.write("cgroup/memory.current", fmt::format("{}", kGiB / 2));
  MemorySnapshot s = read_ok(tree);
  EXPECT_EQ(s.cgroup_limit_bytes, 2 * kGiB);
  EXPECT_EQ(s.cgroup_usage_bytes, kGiB / 2);
  EXPECT_EQ(s.usable_bytes(), 3 * kGiB / 2);
}

TEST(LinuxMemorySource, V1CgroupWithLimit) {
  FakeTree tree;
  tree.meminfo(16 * 1024 * 1024, 12 * 1024 * 1024);
  // Hybrid layout: the v1 memory line (in a combined controller list) wins over "0::".
  tree.write("proc/self/cgroup", "5:devices:/\n4:cpu,memory:/batch/job7\n1:name=systemd:/\n0::/\n");
  tree.write("cgroup/memory/batch/job7/memory.limit_in_bytes", fmt::format("{}", 6 * kGiB));
  tree.write("cgroup/memory/batch/job7/memory.usage_in_bytes", fmt::format("{}", 2 * kGiB));
  tree.write("cgroup/memory.max", "1\n");  // a v2 file that must not be read
  MemorySnapshot s = read_ok(tree);
  EXPECT_EQ(s.cgroup_limit_bytes, 6 * kGiB);
  EXPECT_EQ(s.cgroup_usage_bytes, 2 * kGiB);
  EXPECT_FALSE(s.cgroup_high_bytes);
  EXPECT_EQ(s.usable_bytes(), 4 * kGiB);
  EXPECT_EQ(s.effective_total_bytes(), 6 * kGiB);
}

TEST(LinuxMemorySource, V1UnlimitedSentinelIsNoLimit) {
  FakeTree tree;
  tree.meminfo(16 * 1024 * 1024, 12 * 1024 * 1024);
  tree.write("proc/self/cgroup", "4:memory:/process_api/abc\n0::/\n");
  tree.write("cgroup/memory/process_api/abc/memory.limit_in_bytes", "9223372036854771712\n");
  tree.write("cgroup/memory/process_api/abc/memory.usage_in_bytes", "3149824\n");
  tree.write("cgroup/memory/process_api/memory.limit_in_bytes", "99999999999999999999\n");
  tree.write("cgroup/memory/memory.limit_in_bytes", fmt::format("{}", int64_t{1} << 62));
  MemorySnapshot s = read_ok(tree);
  EXPECT_FALSE(s.cgroup_limit_bytes);
  EXPECT_EQ(s.cgroup_usage_bytes, 3149824);
  EXPECT_EQ(s.usable_bytes(), 12 * kGiB);
  EXPECT_EQ(s.effective_total_bytes(), 16 * kGiB);
}

TEST(LinuxMemorySource, CgroupNamedButNoFilesMeansNoCgroup) {
  FakeTree tree;
  tree.meminfo();
  tree.write("proc/self/cgroup", "0::/some/where\n");
  MemorySnapshot s = read_ok(tree);
  EXPECT_FALSE(s.cgroup_limit_bytes);
  EXPECT_FALSE(s.cgroup_usage_bytes);
  EXPECT_FALSE(s.cgroup_high_bytes);
}

TEST(LinuxMemorySource, UsageAboveLimitClampsUsableToZero) {
  FakeTree tree;
  tree.meminfo(16 * 1024 * 1024, 12 * 1024 * 1024);
  tree.write("proc/self/cgroup", "0::/\n");
  tree.write("cgroup/memory.max", fmt::format("{}", kGiB));
  tree.write("cgroup/memory.current", fmt::format("{}", 3 * kGiB / 2));
  MemorySnapshot s = read_ok(tree);
  EXPECT_EQ(s.usable_bytes(), 0);
}

TEST(LinuxMemorySource, UsableIsSystemAvailableWhenThatIsSmaller) {
  FakeTree tree;
  tree.meminfo(16 * 1024 * 1024, 1024 * 1024);  // 1 GiB available
  tree.write("proc/self/cgroup", "0::/\n");
  tree.write("cgroup/memory.max", fmt::format("{}", 8 * kGiB));
  tree.write("cgroup/memory.current", fmt::format("{}", kGiB));
  EXPECT_EQ(read_ok(tree).usable_bytes(), kGiB);
}

TEST(LinuxMemorySource, ReadsPsi) {
  FakeTree tree;
  tree.meminfo();
  tree.write("proc/pressure/memory",
             "some avg10=12.50 avg60=3.00 avg300=1.00 total=123456\n"
             "full avg10=0.25 avg60=0.10 avg300=0.00 total=4567\n");
  MemorySnapshot s = read_ok(tree);
  EXPECT_EQ(s.psi_some_avg10, 12.5);
  EXPECT_EQ(s.psi_full_avg10, 0.25);
}

TEST(LinuxMemorySource, PsiWithoutFullLineLeavesFullUnset) {
  FakeTree tree;
  tree.meminfo();
  tree.write("proc/pressure/memory", "some avg10=1.00 avg60=0.00 avg300=0.00 total=1\n");
  MemorySnapshot s = read_ok(tree);
  EXPECT_EQ(s.psi_some_avg10, 1.0);
  EXPECT_FALSE(s.psi_full_avg10);
}

TEST(LinuxMemorySource, MalformedPsiIsAnErrorNamingTheFile) {
  FakeTree tree;
  tree.meminfo();
  tree.write("proc/pressure/memory", "some avg10=lots avg60=0.00\n");
  expect_error(tree.read(), ErrorCode::kInvalidFormat, "/pressure/memory");
}

TEST(LinuxMemorySource, MalformedMeminfoIsAnErrorNamingTheFile) {
  FakeTree tree;
  tree.write("proc/meminfo", "MemTotal: 100 kB\nMemAvailable: plenty kB\n");
  expect_error(tree.read(), ErrorCode::kInvalidFormat, tree.proc() + "/meminfo");
}

TEST(LinuxMemorySource, MeminfoWithoutMemAvailableIsAnError) {
  FakeTree tree;
  tree.write("proc/meminfo", "MemTotal: 100 kB\nMemFree: 50 kB\n");
  auto s = tree.read();
  expect_error(s, ErrorCode::kInvalidFormat, tree.proc() + "/meminfo");
  expect_error(s, ErrorCode::kInvalidFormat, "MemAvailable");
}

TEST(LinuxMemorySource, MissingMeminfoIsAnError) {
  FakeTree tree;
  tree.write("proc/self/cgroup", "0::/\n");
  expect_error(tree.read(), ErrorCode::kNotFound, tree.proc() + "/meminfo");
}

TEST(LinuxMemorySource, MalformedCgroupFileIsAnErrorNamingTheFile) {
  FakeTree tree;
  tree.meminfo();
  tree.write("proc/self/cgroup", "0::/app\n");
  tree.write("cgroup/app/memory.max", "unlimited\n");
  expect_error(tree.read(), ErrorCode::kInvalidFormat, "/app/memory.max");
}

TEST(LinuxMemorySource, ReadsTheRealMachine) {
  auto s = LinuxMemorySource().read();
  ASSERT_TRUE(s.has_value()) << s.error().message;
  EXPECT_GT(s->total_bytes, 0);
  EXPECT_GT(s->available_bytes, 0);
  EXPECT_LE(s->available_bytes, s->total_bytes);
  EXPECT_LE(s->usable_bytes(), s->available_bytes);
  EXPECT_LE(s->effective_total_bytes(), s->total_bytes);
}

TEST(LinuxMemorySource, ReadsAProcessStatus) {
  FakeTree tree;
  tree.write("proc/4242/status",
             "Name:\tpensieve\nVmPeak:\t  900000 kB\nVmRSS:\t  300000 kB\nRssAnon:\t  200000 kB\n"
             "RssFile:\t   99000 kB\nRssShmem:\t    1000 kB\nVmSwap:\t    5000 kB\n");
  auto m = read_process_memory(4242, tree.proc());
  ASSERT_TRUE(m.has_value()) << m.error().message;
  EXPECT_EQ(m->rss_bytes, 300000 * 1024);
  EXPECT_EQ(m->rss_anon_bytes, 200000 * 1024);
  EXPECT_EQ(m->rss_file_bytes, 99000 * 1024);
  EXPECT_EQ(m->swap_bytes, 5000 * 1024);
}

TEST(LinuxMemorySource, ProcessStatusErrors) {
  FakeTree tree;
  tree.write("proc/7/status", "Name:\tkthreadd\nState:\tS (sleeping)\n");  // a kernel thread
  auto kernel_thread = read_process_memory(7, tree.proc());
  ASSERT_FALSE(kernel_thread.has_value());
  EXPECT_EQ(kernel_thread.error().code, ErrorCode::kInvalidFormat);
  EXPECT_NE(kernel_thread.error().message.find("/7/status has no VmRSS"), std::string::npos)
      << kernel_thread.error().message;
  auto gone = read_process_memory(8, tree.proc());
  ASSERT_FALSE(gone.has_value());
  EXPECT_EQ(gone.error().code, ErrorCode::kNotFound);
  EXPECT_NE(gone.error().message.find("/8/status"), std::string::npos);
}

TEST(LinuxMemorySource, ReadsItsOwnProcess) {
  auto m = read_process_memory(0);
  ASSERT_TRUE(m.has_value()) << m.error().message;
  EXPECT_GT(m->rss_bytes, 0);
  EXPECT_GT(m->rss_anon_bytes, 0);
  EXPECT_GE(m->swap_bytes, 0);
  EXPECT_LE(m->rss_anon_bytes + m->rss_file_bytes, m->rss_bytes);
}

TEST(FixedMemorySource, ReturnsWhatWasSet) {
  MemorySnapshot s;
  s.total_bytes = 8 * kGiB;
  s.available_bytes = 2 * kGiB;
  FixedMemorySource source(s);
  EXPECT_EQ(source.read()->available_bytes, 2 * kGiB);
  s.available_bytes = kGiB;
  source.set(s);
  EXPECT_EQ(source.read()->available_bytes, kGiB);
}

}  // namespace
}  // namespace pensieve::memory
