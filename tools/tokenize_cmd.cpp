// `pensieve tokenize`: placeholder until the tokenizer lands.
#include "tools/commands.h"

namespace pensieve::cli {

void register_tokenize(CLI::App&, Handler*) {}

}  // namespace pensieve::cli
