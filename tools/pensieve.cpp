// pensieve: a local LLM server behind the Anthropic Messages API. This is the CLI entry point.
#include <cstdio>
#include <exception>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "core/log.h"
#include "tools/commands.h"

int main(int argc, char** argv) {
  if (argc >= 2 && std::string(argv[1]) == "claude") {
    return pensieve::cli::claude_main(argv[0], std::vector<std::string>(argv + 2, argv + argc));
  }
  CLI::App app{"pensieve: a local LLM server that speaks the Anthropic Messages API"};
  app.set_version_flag("--version", std::string("pensieve ") + PENSIEVE_VERSION);
  app.require_subcommand(1);
  std::string log_level = "warn";
  app.add_option("--log-level", log_level, "trace|debug|info|warn|error|off")
      ->envname("PENSIEVE_LOG_LEVEL");
  pensieve::cli::Handler run;
  pensieve::cli::register_info(app, &run);
  pensieve::cli::register_tokenize(app, &run);
  pensieve::cli::register_run(app, &run);
  pensieve::cli::register_synth(app, &run);
  pensieve::cli::register_quantize(app, &run);
  pensieve::cli::register_bench(app, &run);
  pensieve::cli::register_serve(app, &run);
  pensieve::cli::register_memory(app, &run);
  pensieve::cli::register_pull(app, &run);
  pensieve::cli::register_list(app, &run);
  pensieve::cli::register_claude(app, &run);
  try {
    app.parse(argc, argv);
    pensieve::log::Level level;
    if (!pensieve::log::parse_level(log_level, &level)) {
      std::fprintf(stderr, "pensieve: unknown log level '%s'\n", log_level.c_str());
      return 2;
    }
    pensieve::log::set_level(level);
    return run ? run() : 0;
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "pensieve: %s\n", e.what());
    return 1;
  }
}
