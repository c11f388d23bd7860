#include "server/openai/format.h"

#include "server/json_fields.h"

namespace pensieve::server::openai {
namespace {

Json usage_json(const Outcome& outcome) {
  return {{"prompt_tokens", outcome.input_tokens},
          {"completion_tokens", outcome.output_tokens},
          {"total_tokens", outcome.input_tokens + outcome.output_tokens},
          {"prompt_tokens_details", {{"cached_tokens", outcome.cache_read_tokens}}}};
}

std::string data_line(const Json& data) { return "data: " + dump_json(data) + "\n\n"; }

}  // namespace

std::string completion_body(std::string_view id, std::string_view model, int64_t created,
                            std::string_view text, const Outcome& outcome) {
  const Json choice = {{"index", 0},
                       {"message", {{"role", "assistant"}, {"content", text}}},
                       {"logprobs", nullptr},
                       {"finish_reason", openai_finish_reason(outcome.finish)}};
  return dump_json(Json{{"id", id},
                        {"object", "chat.completion"},
                        {"created", created},
                        {"model", model},
                        {"choices", Json::array({choice})},
                        {"usage", usage_json(outcome)}});
}

std::string CompletionStream::chunk(const std::string& delta_json, std::string_view finish_reason) {
  Json choice = {{"index", 0}, {"delta", Json::parse(delta_json)}, {"logprobs", nullptr}};
  choice["finish_reason"] = finish_reason.empty() ? Json(nullptr) : Json(finish_reason);
  return data_line({{"id", id_},
                    {"object", "chat.completion.chunk"},
                    {"created", created_},
                    {"model", model_},
                    {"choices", Json::array({choice})}});
}

std::string CompletionStream::start() { return chunk(R"({"role":"assistant","content":""})", ""); }

std::string CompletionStream::text(std::string_view delta) {
  return chunk(dump_json(Json{{"content", delta}}), "");
}

std::string CompletionStream::finish(const Outcome& outcome, bool include_usage) {
  std::string out = chunk("{}", openai_finish_reason(outcome.finish));
  if (include_usage) {
    out += data_line({{"id", id_},
                      {"object", "chat.completion.chunk"},
                      {"created", created_},
                      {"model", model_},
                      {"choices", Json::array()},
                      {"usage", usage_json(outcome)}});
  }
  out += "data: [DONE]\n\n";
  return out;
}

std::string CompletionStream::error(std::string_view error_body) {
  return "data: " + std::string(error_body) + "\n\n";
}

std::string models_list_body(std::string_view id, int64_t created) {
  const Json model = {
      {"id", id}, {"object", "model"}, {"created", created}, {"owned_by", "pensieve"}};
  return dump_json(Json{{"object", "list"}, {"data", Json::array({model})}});
}

}  // namespace pensieve::server::openai
