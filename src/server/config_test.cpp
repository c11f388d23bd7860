#include "server/config.h"

#include <cctype>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <string>

#include <gtest/gtest.h>

namespace pensieve::server {
namespace {

using Values = std::map<std::string, std::string, std::less<>>;

SettingLookup map_lookup(Values values) {
  return [values = std::move(values)](std::string_view key) -> std::optional<std::string> {
    auto it = values.find(key);
    if (it == values.end()) return std::nullopt;
    return it->second;
  };
}

Expected<ServerConfig> resolve_flags(Values flags) {
  return resolve_server_config(map_lookup(std::move(flags)), SettingLookup(), SettingLookup());
}

std::string resolve_error(Values flags, Values env = {}, Values file = {}) {
  auto config = resolve_server_config(map_lookup(std::move(flags)), map_lookup(std::move(env)),
                                      map_lookup(std::move(file)));
  if (config.has_value()) return "(no error)";
  return config.error().message;
}

// Writes `text` to a fresh file under the test temp dir and returns its path.
std::string write_temp(const std::string& name, const std::string& text) {
  std::string path = testing::TempDir() + "pensieve_config_test_" + name;
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
  return path;
}

TEST(ServerConfig, DefaultsWhenNoSourceGivesAnything) {
  auto config = resolve_server_config(SettingLookup(), map_lookup({}), SettingLookup());
  ASSERT_TRUE(config.has_value()) << config.error().message;
  EXPECT_EQ(config->host, "127.0.0.1");
  EXPECT_EQ(config->port, 7777);
  EXPECT_EQ(config->model_path, "");
  EXPECT_EQ(config->model_name, "");
  EXPECT_EQ(config->api_key, "");
  EXPECT_FALSE(config->insecure);
  EXPECT_EQ(config->ctx, 0);
  EXPECT_EQ(config->attention_window, -1);
  EXPECT_EQ(config->threads, 0);
  EXPECT_EQ(config->kv_type, "F16");
  EXPECT_FALSE(config->mmap);
  EXPECT_EQ(config->chat_template, "");
  EXPECT_EQ(config->max_queue, 16);
  EXPECT_EQ(config->max_body_bytes, 8 << 20);
  EXPECT_EQ(config->read_timeout_s, 30);
  EXPECT_EQ(config->idle_timeout_s, 5);
  EXPECT_EQ(config->ping_interval_s, 10);
  EXPECT_EQ(config->log_level, "info");
  EXPECT_EQ(config->debug_token_delay_ms, 0);
  EXPECT_EQ(config->log_requests, "");
}

TEST(ServerConfig, FlagBeatsEnvBeatsFileBeatsDefaultPerSetting) {
  Values flags = {{"port", "1111"}};
  Values env = {{"port", "2222"}, {"threads", "3"}};
  Values file = {{"port", "3333"}, {"threads", "4"}, {"max_queue", "5"}};
  auto config = resolve_server_config(map_lookup(flags), map_lookup(env), map_lookup(file));
  ASSERT_TRUE(config.has_value()) << config.error().message;
  EXPECT_EQ(config->port, 1111);           // flag
  EXPECT_EQ(config->threads, 3);           // env
  EXPECT_EQ(config->max_queue, 5);         // file
  EXPECT_EQ(config->ping_interval_s, 10);  // default
}

TEST(ServerConfig, ErrorNamesTheSourceThatWon) {
  // Only the winning source is validated: a bad file value under a good flag is not read.
  EXPECT_EQ(resolve_error({}, {{"port", "abc"}}, {{"port", "8080"}}),
            "config: port 'abc' (from PENSIEVE_PORT) is not a number in 0..65535");
  EXPECT_EQ(resolve_error({{"port", "8080"}}, {{"port", "abc"}}), "(no error)");
  EXPECT_EQ(resolve_error({{"max_body_bytes", "12XB"}}),
            "config: max_body_bytes '12XB' (from --max-body-bytes) is not a byte size (a whole "
            "number with an optional unit B, KB, MB, GB, TB, KiB, MiB, GiB, TiB)");
  EXPECT_EQ(resolve_error({}, {}, {{"threads", "-1"}}),
            "config: threads '-1' (from the config file) is not a number in 0..4096");
}

TEST(ServerConfig, RejectsEveryBadConversion) {
  struct Case {
    const char* key;
    const char* value;
    const char* message;
  };
  const Case cases[] = {
      {"port", "abc", "config: port 'abc' (from --port) is not a number in 0..65535"},
      {"port", "65536", "config: port '65536' (from --port) is not a number in 0..65535"},
      {"port", "-1", "config: port '-1' (from --port) is not a number in 0..65535"},
      {"port", "80x", "config: port '80x' (from --port) is not a number in 0..65535"},
      {"port", "", "config: port '' (from --port) is not a number in 0..65535"},
      {"port", "99999999999999999999999",
       "config: port '99999999999999999999999' (from --port) is not a number in 0..65535"},
      {"ctx", "1.5", "config: ctx '1.5' (from --ctx) is not a number in 0..2147483647"},
      {"attention_window", "-1",
       "config: attention_window '-1' (from --attention-window) is not auto or a number in "
       "0..2147483647"},
      {"attention_window", "full",
       "config: attention_window 'full' (from --attention-window) is not auto or a number in "
       "0..2147483647"},
      {"threads", "many", "config: threads 'many' (from --threads) is not a number in 0..4096"},
      {"max_queue", "-1",
       "config: max_queue '-1' (from --max-queue) is not a number in 0..1000000"},
      {"read_timeout_s", "0",
       "config: read_timeout_s '0' (from --read-timeout-s) is not a number in 1..86400"},
      {"idle_timeout_s", "x",
       "config: idle_timeout_s 'x' (from --idle-timeout-s) is not a number in 1..86400"},
      {"ping_interval_s", "0",
       "config: ping_interval_s '0' (from --ping-interval-s) is not a number in 1..300"},
      {"ping_interval_s", "301",
       "config: ping_interval_s '301' (from --ping-interval-s) is not a number in 1..300"},
      {"debug_token_delay_ms", "-5",
       "config: debug_token_delay_ms '-5' (from --debug-token-delay-ms) is not a number in "
       "0..60000"},
      {"kv_type", "Q4_0", "config: kv_type 'Q4_0' (from --kv-type) is not one of F16, Q8_0, F32"},
      {"device", "gpu", "config: device 'gpu' (from --device) is not one of cpu, cuda"},
      {"gpu_layers", "0",
       "config: gpu_layers '0' (from --gpu-layers) is not auto or a number in 1..2147483647"},
      {"gpu_layers", "half",
       "config: gpu_layers 'half' (from --gpu-layers) is not auto or a number in 1..2147483647"},
      {"log_level", "verbose",
       "config: log_level 'verbose' (from --log-level) is not one of trace, debug, info, warn, "
       "error, off"},
      {"insecure", "maybe",
       "config: insecure 'maybe' (from --insecure) is not a boolean (true/false, 1/0, yes/no, "
       "on/off)"},
      {"mmap", "2",
       "config: mmap '2' (from --mmap) is not a boolean (true/false, 1/0, yes/no, on/off)"},
      {"max_body_bytes", "-1", "config: max_body_bytes '-1' (from --max-body-bytes) is negative"},
      {"max_body_bytes", "0",
       "config: max_body_bytes '0' (from --max-body-bytes) must be at least 1 byte"},
      {"max_body_bytes", "9999999TiB",
       "config: max_body_bytes '9999999TiB' (from --max-body-bytes) is too large"},
      {"host", " ", "config: host ' ' (from --host) is empty"},
      {"memory_budget", "4 gigs",
       "config: memory_budget '4 gigs' (from --memory-budget) is not a byte size (a whole number "
       "with an optional unit B, KB, MB, GB, TB, KiB, MiB, GiB, TiB)"},
      {"memory_reserve", "-1GiB",
       "config: memory_reserve '-1GiB' (from --memory-reserve) is negative"},
      {"memory_critical", "150%",
       "config: memory_critical '150%' (from --memory-critical) is not a byte size (1GiB, 700MB, "
       "123456789) or a percent from 0 to 100 (10%)"},
      {"memory_poll_ms", "5",
       "config: memory_poll_ms '5' (from --memory-poll-ms) is not a number in 10..60000"},
      {"keep_alive", "5 minutes",
       "config: keep_alive '5 minutes' (from --keep-alive) is not a duration (a number of "
       "seconds, or parts like 30s, 5m, 1h30m, 250ms; -1 for never)"},
      {"drain_timeout", "-1", "config: drain_timeout '-1' (from --drain-timeout) is negative"},
  };
  for (const Case& c : cases) {
    auto config = resolve_flags({{c.key, c.value}});
    ASSERT_FALSE(config.has_value()) << c.key << "=" << c.value;
    EXPECT_EQ(config.error().code, ErrorCode::kInvalidArgument);
    EXPECT_EQ(config.error().message, c.message);
  }
}

TEST(ServerConfig, ConvertsGoodValues) {
  auto config = resolve_flags({{"port", " 0 "},
                               {"ctx", "8192"},
                               {"threads", "4"},
                               {"kv_type", "q8_0"},
                               {"device", "CUDA"},
                               {"max_queue", "0"},
                               {"max_body_bytes", "4KiB"},
                               {"read_timeout_s", "5"},
                               {"idle_timeout_s", "7"},
                               {"ping_interval_s", "300"},
                               {"log_level", "DEBUG"},
                               {"debug_token_delay_ms", "20"},
                               {"chat_template", "{{ messages }}"},
                               {"api_key", "sk-1"},
                               {"memory_budget", "4GiB"},
                               {"memory_reserve", "auto"},
                               {"memory_caution", "20%"},
                               {"memory_critical", "700MB"},
                               {"memory_poll_ms", "100"},
                               {"emergency_shutdown_s", "0"},
                               {"keep_alive", "-1"},
                               {"drain_timeout", "1m30s"},
                               {"runtime_dir", "/tmp/pv"},
                               {"log_requests", "/tmp/pv-requests"}});
  ASSERT_TRUE(config.has_value()) << config.error().message;
  EXPECT_EQ(config->memory_budget, 4ll << 30);
  EXPECT_EQ(config->memory_reserve, -1);
  EXPECT_EQ(config->tiers.caution.percent, 20.0);
  EXPECT_EQ(config->tiers.critical.bytes, 700000000);
  EXPECT_EQ(config->tiers.critical.percent, -1.0);
  EXPECT_EQ(config->tiers.critical.at_most_percent, -1.0);  // a given value is taken as given
  EXPECT_EQ(config->tiers.warning.at_most_percent, 15.0);   // the default keeps its cap
  EXPECT_EQ(config->memory_poll_ms, 100);
  EXPECT_EQ(config->emergency_shutdown_s, 0);
  EXPECT_EQ(config->keep_alive.count(), -1000);
  EXPECT_EQ(config->drain_timeout.count(), 90000);
  EXPECT_EQ(config->runtime_dir, "/tmp/pv");
  EXPECT_EQ(config->log_requests, "/tmp/pv-requests");
  EXPECT_EQ(config->port, 0);
  EXPECT_EQ(config->ctx, 8192);
  EXPECT_EQ(config->threads, 4);
  EXPECT_EQ(config->kv_type, "Q8_0");
  EXPECT_EQ(config->device, "cuda");
  EXPECT_EQ(config->max_queue, 0);
  EXPECT_EQ(config->max_body_bytes, 4096);
  EXPECT_EQ(config->read_timeout_s, 5);
  EXPECT_EQ(config->idle_timeout_s, 7);
  EXPECT_EQ(config->ping_interval_s, 300);
  EXPECT_EQ(config->log_level, "debug");
  EXPECT_EQ(config->debug_token_delay_ms, 20);
  EXPECT_EQ(config->chat_template, "{{ messages }}");
  EXPECT_EQ(config->api_key, "sk-1");
}

TEST(ServerConfig, GpuLayersIsAutoOrACount) {
  EXPECT_EQ(resolve_flags({})->gpu_layers, -1);
  EXPECT_EQ(resolve_flags({})->gpu_memory_budget, 0);
  EXPECT_EQ(resolve_flags({{"gpu_memory_budget", "8GiB"}})->gpu_memory_budget, int64_t{8} << 30);
  const std::pair<const char*, int64_t> cases[] = {{"auto", -1}, {"1", 1}, {" 99 ", 99}};
  for (const auto& [text, value] : cases) {
    auto config = resolve_flags({{"gpu_layers", text}});
    ASSERT_TRUE(config.has_value()) << text << ": " << config.error().message;
    EXPECT_EQ(config->gpu_layers, value) << text;
  }
}

TEST(ServerConfig, AttentionWindowIsAutoZeroOrANumber) {
  const std::pair<const char*, int64_t> cases[] = {
      {"auto", -1}, {" AUTO ", -1}, {"0", 0}, {"512", 512}, {" 4096 ", 4096}};
  for (const auto& [text, value] : cases) {
    auto config = resolve_flags({{"attention_window", text}});
    ASSERT_TRUE(config.has_value()) << text << ": " << config.error().message;
    EXPECT_EQ(config->attention_window, value) << text;
  }
  // A flag's "auto" beats a number from the environment or the file.
  auto config = resolve_server_config(map_lookup({{"attention_window", "auto"}}),
                                      map_lookup({{"attention_window", "64"}}),
                                      map_lookup({{"attention_window", "32"}}));
  ASSERT_TRUE(config.has_value());
  EXPECT_EQ(config->attention_window, -1);
  config = resolve_server_config(SettingLookup(), SettingLookup(),
                                 map_lookup({{"attention_window", "32"}}));
  ASSERT_TRUE(config.has_value());
  EXPECT_EQ(config->attention_window, 32);
}

TEST(ServerConfig, AutoAttentionWindowIsTheTrainedContextOnlyBeyondIt) {
  EXPECT_EQ(resolve_attention_window(-1, 65536, 512), 512);
  EXPECT_EQ(resolve_attention_window(-1, 513, 512), 512);
  EXPECT_EQ(resolve_attention_window(-1, 512, 512), 0);
  EXPECT_EQ(resolve_attention_window(-1, 256, 512), 0);
  EXPECT_EQ(resolve_attention_window(-1, 65536, 0), 0);  // trained context unknown
  EXPECT_EQ(resolve_attention_window(0, 65536, 512), 0);
  EXPECT_EQ(resolve_attention_window(100, 65536, 512), 100);
  EXPECT_EQ(resolve_attention_window(100, 256, 512), 100);
}

TEST(ServerConfig, ModelNameDefaultsToFileNameWithoutGguf) {
  auto config = resolve_flags({{"model", "/models/qwen2-0.5b.Q8_0.GGUF"}});
  ASSERT_TRUE(config.has_value());
  EXPECT_EQ(config->model_path, "/models/qwen2-0.5b.Q8_0.GGUF");
  EXPECT_EQ(config->model_name, "qwen2-0.5b.Q8_0");
  config = resolve_flags({{"model", "m.bin"}});
  ASSERT_TRUE(config.has_value());
  EXPECT_EQ(config->model_name, "m.bin");
  config = resolve_flags({{"model", "/m/a.gguf"}, {"model_name", "mine"}});
  ASSERT_TRUE(config.has_value());
  EXPECT_EQ(config->model_name, "mine");
}

TEST(ServerConfig, AcceptsEveryBoolSpelling) {
  const std::pair<const char*, bool> cases[] = {{"true", true},   {"1", true},    {"yes", true},
                                                {"on", true},     {"TRUE", true}, {"Yes", true},
                                                {"false", false}, {"0", false},   {"no", false},
                                                {"off", false},   {"OFF", false}, {" on ", true}};
  for (const auto& [text, value] : cases) {
    auto config = resolve_flags({{"mmap", text}, {"insecure", text}});
    ASSERT_TRUE(config.has_value()) << text;
    EXPECT_EQ(config->mmap, value) << text;
    EXPECT_EQ(config->insecure, value) << text;
  }
}

TEST(ServerConfig, NonLoopbackHostNeedsKeyOrInsecure) {
  EXPECT_EQ(resolve_error({{"host", "0.0.0.0"}}),
            "config: binding to 0.0.0.0 exposes the server: set an API key (--api-key or "
            "PENSIEVE_API_KEY) or pass --insecure");
  EXPECT_EQ(resolve_error({}, {{"host", "192.168.1.5"}}),
            "config: binding to 192.168.1.5 exposes the server: set an API key (--api-key or "
            "PENSIEVE_API_KEY) or pass --insecure");
  EXPECT_NE(resolve_error({{"host", "::"}}), "(no error)");
  EXPECT_NE(resolve_error({{"host", "example.com"}}), "(no error)");
  EXPECT_EQ(resolve_error({{"host", "0.0.0.0"}}, {{"api_key", "k"}}), "(no error)");
  EXPECT_EQ(resolve_error({{"host", "0.0.0.0"}}, {}, {{"insecure", "true"}}), "(no error)");
  EXPECT_NE(resolve_error({{"host", "0.0.0.0"}, {"insecure", "false"}}), "(no error)");
  for (const char* host : {"127.0.0.1", "::1", "localhost", "LOCALHOST", "127.0.0.2"}) {
    EXPECT_EQ(resolve_error({{"host", host}}), "(no error)") << host;
  }
}

TEST(ServerConfig, EnvironmentLookupReadsPensieveVariables) {
  SettingLookup env = environment_lookup();
  unsetenv("PENSIEVE_PORT");
  EXPECT_EQ(env("port"), std::nullopt);
  setenv("PENSIEVE_PORT", "8080", 1);
  setenv("PENSIEVE_MAX_BODY_BYTES", "1MiB", 1);
  EXPECT_EQ(env("port"), "8080");
  EXPECT_EQ(env("max_body_bytes"), "1MiB");
  auto config = resolve_server_config(SettingLookup(), env, SettingLookup());
  ASSERT_TRUE(config.has_value()) << config.error().message;
  EXPECT_EQ(config->port, 8080);
  EXPECT_EQ(config->max_body_bytes, 1 << 20);
  setenv("PENSIEVE_PORT", "", 1);  // empty counts as not set
  EXPECT_EQ(env("port"), std::nullopt);
  unsetenv("PENSIEVE_PORT");
  unsetenv("PENSIEVE_MAX_BODY_BYTES");
  EXPECT_EQ(env("port"), std::nullopt);
}

TEST(ServerConfig, SettingsTableMatchesTheResolver) {
  std::set<std::string> keys;
  for (const SettingInfo& info : server_settings()) {
    EXPECT_TRUE(keys.insert(std::string(info.key)).second) << "duplicate " << info.key;
    std::string env = "PENSIEVE_";
    for (char c : info.key) env += static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    EXPECT_EQ(info.env, env);
    EXPECT_FALSE(info.help.empty()) << info.key;
    EXPECT_EQ(info.is_bool,
              info.key == "insecure" || info.key == "mmap" || info.key == "tool_first")
        << info.key;
  }
  EXPECT_EQ(keys.size(), 39u);
  EXPECT_EQ(setting_flag_name("max_body_bytes"), "--max-body-bytes");
  // The resolver asks every source for exactly the table's keys.
  std::set<std::string> asked;
  SettingLookup spy = [&asked](std::string_view key) -> std::optional<std::string> {
    asked.insert(std::string(key));
    return std::nullopt;
  };
  ASSERT_TRUE(resolve_server_config(spy, SettingLookup(), SettingLookup()).has_value());
  EXPECT_EQ(asked, keys);
}

TEST(ServerConfig, DefaultModelFillsAnUnsetModel) {
  const std::string dir = testing::TempDir() + "pensieve_config_models";
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir + "/owner/repo");
  auto config = resolve_flags({{"models_dir", dir}});
  ASSERT_TRUE(config.has_value()) << config.error().message;
  EXPECT_EQ(config->models_dir, dir);
  EXPECT_EQ(config->default_model, "");
  auto none = resolve_default_model(&*config);
  ASSERT_FALSE(none.has_value());
  EXPECT_NE(none.error().message.find("pensieve pull"), std::string::npos);
  std::ofstream(dir + "/owner/repo/tiny-Q8_0.gguf") << "GGUF";
  ASSERT_TRUE(resolve_default_model(&*config).has_value());
  EXPECT_EQ(config->model_path, dir + "/owner/repo/tiny-Q8_0.gguf");
  EXPECT_EQ(config->model_name, "tiny-Q8_0");
  // A model given wins; default_model names one under models_dir.
  auto given = resolve_flags({{"models_dir", dir}, {"model", "/x.gguf"}});
  ASSERT_TRUE(resolve_default_model(&*given).has_value());
  EXPECT_EQ(given->model_path, "/x.gguf");
  std::ofstream(dir + "/owner/repo/other.gguf") << "GGUF";
  auto named = resolve_flags(
      {{"models_dir", dir}, {"default_model", "owner/repo/other.gguf"}, {"model_name", "m"}});
  ASSERT_TRUE(resolve_default_model(&*named).has_value());
  EXPECT_EQ(named->model_path, dir + "/owner/repo/other.gguf");
  EXPECT_EQ(named->model_name, "m");
}

TEST(ServerConfig, TomlFileGivesStringsForEveryScalar) {
  std::string path = write_temp("good.toml",
                                "# comment\n"
                                "host = \"0.0.0.0\"\n"
                                "port = 8080\n"
                                "insecure = true\n"
                                "mmap = false\n"
                                "max_body_bytes = \"64MiB\"\n"
                                "ctx = 4096\n"
                                "attention_window = 1024\n"
                                "chat_template = '''\n{{ x }}'''\n");
  auto file = toml_lookup(path);
  ASSERT_TRUE(file.has_value()) << file.error().message;
  EXPECT_EQ((*file)("host"), "0.0.0.0");
  EXPECT_EQ((*file)("port"), "8080");
  EXPECT_EQ((*file)("insecure"), "true");
  EXPECT_EQ((*file)("mmap"), "false");
  EXPECT_EQ((*file)("max_body_bytes"), "64MiB");
  EXPECT_EQ((*file)("threads"), std::nullopt);
  auto config = resolve_server_config(SettingLookup(), SettingLookup(), *file);
  ASSERT_TRUE(config.has_value()) << config.error().message;
  EXPECT_EQ(config->host, "0.0.0.0");
  EXPECT_EQ(config->port, 8080);
  EXPECT_TRUE(config->insecure);
  EXPECT_EQ(config->max_body_bytes, 64 << 20);
  EXPECT_EQ(config->ctx, 4096);
  EXPECT_EQ(config->attention_window, 1024);
  EXPECT_EQ(config->chat_template, "{{ x }}");

  auto numeric = toml_lookup(write_temp("numeric.toml", "max_body_bytes = 1000\n"));
  ASSERT_TRUE(numeric.has_value());
  auto from_int = resolve_server_config(SettingLookup(), SettingLookup(), *numeric);
  ASSERT_TRUE(from_int.has_value());
  EXPECT_EQ(from_int->max_body_bytes, 1000);

  auto window = toml_lookup(write_temp("window.toml", "attention_window = \"auto\"\n"));
  ASSERT_TRUE(window.has_value());
  auto from_auto = resolve_server_config(SettingLookup(), SettingLookup(), *window);
  ASSERT_TRUE(from_auto.has_value());
  EXPECT_EQ(from_auto->attention_window, -1);
}

TEST(ServerConfig, TomlSyntaxErrorGivesFileLineAndColumn) {
  std::string path = write_temp("bad.toml", "port = 8080\nhost = \n");
  auto file = toml_lookup(path);
  ASSERT_FALSE(file.has_value());
  EXPECT_EQ(file.error().code, ErrorCode::kInvalidFormat);
  const std::string& message = file.error().message;
  EXPECT_EQ(message.rfind("config: " + path + ":2:", 0), 0u) << message;
  EXPECT_GT(message.size(), ("config: " + path + ":2:7: ").size()) << message;

  auto duplicate = toml_lookup(write_temp("dup.toml", "port = 1\nport = 2\n"));
  ASSERT_FALSE(duplicate.has_value());
  EXPECT_NE(duplicate.error().message.find(":2:"), std::string::npos) << duplicate.error().message;
}

TEST(ServerConfig, TomlUnknownKeyAndNonScalarAreErrors) {
  std::string path = write_temp("unknown.toml", "port = 1\nprot = 2\n");
  auto file = toml_lookup(path);
  ASSERT_FALSE(file.has_value());
  EXPECT_EQ(file.error().message, "config: unknown setting 'prot' in " + path);

  path = write_temp("table.toml", "[server]\nport = 1\n");
  file = toml_lookup(path);
  ASSERT_FALSE(file.has_value());
  EXPECT_EQ(file.error().message, "config: unknown setting 'server' in " + path);

  path = write_temp("array.toml", "host = [\"a\"]\n");
  file = toml_lookup(path);
  ASSERT_FALSE(file.has_value());
  EXPECT_EQ(file.error().message,
            "config: setting 'host' in " + path + " must be a string, number or boolean");
}

TEST(ServerConfig, TomlMissingFileIsNotFound) {
  std::string path = testing::TempDir() + "pensieve_config_test_does_not_exist.toml";
  auto file = toml_lookup(path);
  ASSERT_FALSE(file.has_value());
  EXPECT_EQ(file.error().code, ErrorCode::kNotFound);
  EXPECT_EQ(file.error().message.rfind("config: cannot open config file '" + path + "'", 0), 0u)
      << file.error().message;
  auto dir = toml_lookup(testing::TempDir());
  ASSERT_FALSE(dir.has_value());
  EXPECT_NE(dir.error().message.find("is a directory"), std::string::npos);
}

}  // namespace
}  // namespace pensieve::server
