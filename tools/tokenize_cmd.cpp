// `pensieve tokenize -m MODEL.gguf TEXT`: the token ids a model's tokenizer gives for TEXT, or,
// with --decode, the text a list of ids stands for.
#include <algorithm>
#include <charconv>
#include <cstdio>
#include <iostream>
#include <iterator>
#include <memory>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "gguf/reader.h"
#include "tokenizer/tokenizer.h"
#include "tools/commands.h"

namespace pensieve::cli {
namespace {

struct TokenizeArgs {
  std::string model;
  std::vector<std::string> text;  // joined with spaces; stdin when empty
  bool no_bos = false;
  bool special = false;
  bool decode = false;
};

constexpr const char* kSeparators = " ,\t\r\n[]";

// "1 2 3" or "1,2,3" (also "[1, 2, 3]") -> ids; an error names the first bad entry.
Expected<std::vector<int32_t>> parse_ids(const std::string& text, const Tokenizer& tokenizer) {
  std::vector<int32_t> ids;
  size_t i = 0;
  while (i < text.size()) {
    if (std::string_view(kSeparators).find(text[i]) != std::string_view::npos) {
      ++i;
      continue;
    }
    const size_t end = std::min(text.find_first_of(kSeparators, i), text.size());
    const std::string_view word(text.data() + i, end - i);
    int64_t id = -1;
    const auto [ptr, ec] = std::from_chars(word.data(), word.data() + word.size(), id);
    if (ec != std::errc() || ptr != word.data() + word.size()) {
      return make_error(ErrorCode::kInvalidArgument, "tokenize: '{}' is not a token id", word);
    }
    if (id < 0 || id >= tokenizer.n_vocab()) {
      return make_error(ErrorCode::kOutOfRange,
                        "tokenize: token id {} is outside the vocabulary (0..{})", id,
                        tokenizer.n_vocab() - 1);
    }
    ids.push_back(static_cast<int32_t>(id));
    i = end;
  }
  return ids;
}

std::string input_text(const TokenizeArgs& args) {
  if (args.text.empty()) {
    return std::string(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
  }
  std::string joined;
  for (const std::string& part : args.text) {
    if (!joined.empty()) joined += ' ';
    joined += part;
  }
  return joined;
}

int run_tokenize(const TokenizeArgs& args) {
  std::unique_ptr<Tokenizer> tokenizer;
  {
    auto file = GgufFile::open(args.model);
    if (!file) {
      std::fprintf(stderr, "%s\n", file.error().message.c_str());
      return 1;
    }
    auto loaded = Tokenizer::from_gguf(**file);
    if (!loaded) {
      std::fprintf(stderr, "%s\n", loaded.error().message.c_str());
      return 1;
    }
    tokenizer = std::move(loaded).value();
  }
  const std::string text = input_text(args);
  if (args.decode) {
    auto ids = parse_ids(text, *tokenizer);
    if (!ids) {
      std::fprintf(stderr, "%s\n", ids.error().message.c_str());
      return 1;
    }
    fmt::print("{}\n", tokenizer->decode(*ids, /*skip_special=*/!args.special));
    return 0;
  }
  const EncodeOptions options{tokenizer->add_bos_default() && !args.no_bos, args.special};
  fmt::print("{}\n", fmt::join(tokenizer->encode(text, options), " "));
  return 0;
}

}  // namespace

void register_tokenize(CLI::App& app, Handler* run) {
  auto* cmd = app.add_subcommand("tokenize", "Turn text into token ids, or ids into text");
  auto args = std::make_shared<TokenizeArgs>();
  cmd->add_option("-m,--model", args->model, "GGUF file whose tokenizer to use")->required();
  cmd->add_option("text", args->text, "Text to tokenize (ids with --decode); stdin when absent");
  cmd->add_flag("--no-bos", args->no_bos, "Do not add the BOS token the model asks for");
  cmd->add_flag("--special", args->special,
                "Parse special tokens such as <|user|> in the text; with --decode, print them");
  cmd->add_flag("--decode", args->decode, "Read token ids (\"1 2 3\") and print their text");
  cmd->callback([=] { *run = [=] { return run_tokenize(*args); }; });
}

}  // namespace pensieve::cli
