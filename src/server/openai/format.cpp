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
                            const std::vector<ReplyPart>& parts, const Outcome& outcome,
                            const std::function<std::string()>& tool_id) {
  std::string text, reasoning, name, arguments;
  Json calls = Json::array();
  for (const ReplyPart& part : parts) {
    switch (part.kind) {
      case ReplyPart::Kind::kText:
        text += part.text;
        break;
      case ReplyPart::Kind::kThinking:
        reasoning += part.text;
        break;
      case ReplyPart::Kind::kToolCall:
        name = part.text;
        arguments.clear();
        break;
      case ReplyPart::Kind::kToolInput:
        arguments += part.text;
        break;
      case ReplyPart::Kind::kToolEnd: {
        // As for Anthropic: a call cut short is not valid JSON and is left out.
        const Json input = Json::parse(arguments, nullptr, false);
        if (input.is_discarded() || !input.is_object()) break;
        calls.push_back({{"id", tool_id()},
                         {"type", "function"},
                         {"function", {{"name", name}, {"arguments", arguments}}}});
        break;
      }
    }
  }
  Json message = {{"role", "assistant"}};
  message["content"] = text.empty() && !calls.empty() ? Json(nullptr) : Json(text);
  if (!reasoning.empty()) message["reasoning_content"] = reasoning;
  if (!calls.empty()) message["tool_calls"] = std::move(calls);
  const Json choice = {{"index", 0},
                       {"message", std::move(message)},
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

std::string CompletionStream::part(const ReplyPart& part,
                                   const std::function<std::string()>& tool_id) {
  switch (part.kind) {
    case ReplyPart::Kind::kText:
      return part.text.empty() ? std::string() : text(part.text);
    case ReplyPart::Kind::kThinking:
      return chunk(dump_json(Json{{"reasoning_content", part.text}}), "");
    case ReplyPart::Kind::kToolCall: {
      const Json call = {{"index", calls_++},
                         {"id", tool_id()},
                         {"type", "function"},
                         {"function", {{"name", part.text}, {"arguments", ""}}}};
      return chunk(dump_json(Json{{"tool_calls", Json::array({call})}}), "");
    }
    case ReplyPart::Kind::kToolInput: {
      const Json call = {{"index", calls_ - 1}, {"function", {{"arguments", part.text}}}};
      return chunk(dump_json(Json{{"tool_calls", Json::array({call})}}), "");
    }
    case ReplyPart::Kind::kToolEnd:
      return {};
  }
  return {};
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
