// Subcommands of the `pensieve` executable. Each registers its flags on the app and, when it is
// the one given, stores its handler in *run; main() calls it after parsing and logging setup.
#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include <CLI/CLI.hpp>

namespace pensieve::cli {

using Handler = std::function<int()>;

void register_info(CLI::App& app, Handler* run);
void register_tokenize(CLI::App& app, Handler* run);
void register_synth(CLI::App& app, Handler* run);
void register_run(CLI::App& app, Handler* run);
void register_quantize(CLI::App& app, Handler* run);
void register_bench(CLI::App& app, Handler* run);
void register_serve(CLI::App& app, Handler* run);
void register_memory(CLI::App& app, Handler* run);
void register_pull(CLI::App& app, Handler* run);
void register_list(CLI::App& app, Handler* run);
void register_claude(CLI::App& app, Handler* run);

// `pensieve claude ARGS...` (tools/claude_cmd.cpp) reads its own arguments: what follows its
// options goes to Claude Code untouched, which CLI11 cannot promise. `program` is argv[0].
int claude_main(std::string_view program, const std::vector<std::string>& args);

}  // namespace pensieve::cli
