// The generating routes: POST /v1/messages (Anthropic) and POST /v1/chat/completions (OpenAI),
// whole or streamed. The HTTP thread parses, tokenizes and submits to the scheduler, then
// relays the sequence's text as it comes: one write and flush per update, pings while silent.
#include <algorithm>
#include <chrono>

#include "core/log.h"
#include "engine/tool_call.h"
#include "engine/tool_call_constraint.h"
#include "engine/tool_call_parser.h"
#include "server/anthropic/format.h"
#include "server/anthropic/parse.h"
#include "server/openai/format.h"
#include "server/openai/parse.h"
#include "server/routes.h"

namespace pensieve::server {
namespace {

using std::chrono::milliseconds;

// How to read the reply: the tool call syntax and where the reply starts relative to a call.
struct ReplyShape {
  bool opens_thinking = false;           // the prompt leaves the reply inside a reasoning block
  std::optional<ToolCallSyntax> syntax;  // set: the reply may hold tool calls
  ToolCallParser::Start start = ToolCallParser::Start::kFree;
};

// A request ready for the scheduler.
struct Prepared {
  InferenceRequest request;
  std::vector<int32_t> prompt;
  GenerateOptions options;
  ReplyShape shape;
};

// Whether the request's prefill (a final assistant message) ends with the opener of a call, so
// that the reply starts inside the call object.
bool prefill_opens_call(const InferenceRequest& request, const PromptRenderer& renderer) {
  const auto& syntax = renderer.tool_call_syntax();
  if (!syntax || syntax->open.empty() || syntax->list || request.messages.empty()) return false;
  const ChatMessage& last = request.messages.back();
  if (last.role != ChatRole::kAssistant) return false;
  const size_t end = last.content.find_last_not_of(" \t\r\n");
  return end != std::string::npos &&
         std::string_view(last.content).substr(0, end + 1).ends_with(syntax->open);
}

// Whether the conversation's last turn is the user's own message (not tool results, with or
// without text beside them).
bool ends_with_user_message(const InferenceRequest& request) {
  auto it = request.messages.rbegin();
  while (it != request.messages.rend() && it->role == ChatRole::kUser) ++it;
  return it != request.messages.rbegin() &&
         (it == request.messages.rend() || it->role != ChatRole::kTool);
}

// tool_first: a request that leaves the choice to the model makes one call on a new user message.
Expected<Prepared> prepare(InferenceRequest request, const PromptRenderer& renderer, int64_t n_ctx,
                           bool tool_first) {
  Prepared p;
  if (tool_first && !request.tools.empty() && request.tool_choice.kind == ToolChoice::Kind::kAuto &&
      ends_with_user_message(request)) {
    request.tool_choice.kind = ToolChoice::Kind::kAny;
    request.tool_choice.parallel = false;  // one call, then the tool's result
  }
  const ToolChoice& choice = request.tool_choice;
  const bool tools = !request.tools.empty() && choice.kind != ToolChoice::Kind::kNone;
  if (tools && choice.kind == ToolChoice::Kind::kTool) {
    // The reply is the named tool's call: its arguments, constrained to the tool's schema.
    const auto tool = std::find_if(request.tools.begin(), request.tools.end(),
                                   [&](const ToolSpec& t) { return t.name == choice.name; });
    PV_CHECK(tool != request.tools.end(), "tool_choice names an unknown tool");
    PV_TRY(p.prompt, renderer.tool_call_tokens(request, choice.name));
    PV_TRY(p.options.constraint, JsonConstraint::make(tool->parameters_json, renderer.token_mask(),
                                                      renderer.tokenizer()));
    p.shape.syntax = renderer.tool_call_syntax().value_or(ToolCallSyntax{});
    p.shape.start = ToolCallParser::Start::kArguments;
  } else if (tools && (choice.kind == ToolChoice::Kind::kAny || renderer.tool_call_syntax())) {
    // Calls of any tool: from the start (any, or a prefill that ends with the call opener), or
    // wherever the model opens one (auto).
    const bool any = choice.kind == ToolChoice::Kind::kAny || prefill_opens_call(request, renderer);
    if (choice.kind == ToolChoice::Kind::kAny) {
      PV_TRY(p.prompt, renderer.call_start_tokens(request));
    } else {
      PV_TRY(p.prompt, renderer.tokens(request, &p.shape.opens_thinking));
    }
    PV_TRY(auto grammar, ToolCallGrammar::make(request.tools, *renderer.tool_call_syntax()));
    p.options.constraint = std::make_shared<ToolCallConstraint>(
        std::move(grammar), renderer.token_mask(), renderer.tokenizer(),
        any ? ToolCallConstraint::Start::kInCall : ToolCallConstraint::Start::kFree,
        choice.parallel);
    p.shape.syntax = renderer.tool_call_syntax();
    p.shape.start = any ? ToolCallParser::Start::kInCall : ToolCallParser::Start::kFree;
  } else {
    PV_TRY(p.prompt, renderer.tokens(request, &p.shape.opens_thinking));
  }
  const auto n_prompt = static_cast<int64_t>(p.prompt.size());
  if (n_prompt >= n_ctx) {
    // Worded as Anthropic's API words it: Claude Code compacts the conversation on this text.
    return make_error(ErrorCode::kOutOfRange, "prompt is too long: {} tokens > {} maximum",
                      n_prompt, n_ctx - 1);
  }
  const int64_t room = n_ctx - n_prompt;
  p.options.max_tokens = std::min(request.max_tokens.value_or(room), room);
  p.options.sampling = request.sampling;
  if (p.options.sampling.seed == 0) p.options.sampling.seed = std::random_device{}();
  const bool forced = tools && choice.kind != ToolChoice::Kind::kAuto;
  if (!forced) {  // a stop string must not cut a forced call's JSON
    p.options.stop_strings = request.stop_sequences;
    for (std::string_view stop : renderer.stop_strings()) p.options.stop_strings.emplace_back(stop);
  }
  p.request = std::move(request);
  return p;
}

// The reply's text as parts: reasoning split off first, then tool calls read out of the rest.
class ReplyReader {
 public:
  ReplyReader(const ReplyShape& shape, const InferenceRequest& request)
      : splitter_(shape.opens_thinking) {
    if (!shape.syntax) return;
    std::vector<std::string> names;
    for (const ToolSpec& tool : request.tools) names.push_back(tool.name);
    parser_.emplace(*shape.syntax, std::move(names), shape.start, request.tool_choice.parallel,
                    request.tool_choice.name);
  }

  std::vector<ReplyPart> feed(std::string_view piece) { return read(splitter_.feed(piece)); }
  std::vector<ReplyPart> finish() {
    std::vector<ReplyPart> parts = read(splitter_.finish());
    if (parser_) {
      for (ReplyPart& part : parser_->finish()) parts.push_back(std::move(part));
    }
    return parts;
  }
  // Whether the reply called a tool.
  bool called() const { return parser_ && parser_->calls() > 0; }

 private:
  std::vector<ReplyPart> read(std::vector<ReplyPart> parts) {
    if (!parser_) return parts;
    std::vector<ReplyPart> out;
    for (ReplyPart& part : parts) {
      if (part.kind != ReplyPart::Kind::kText) {
        out.push_back(std::move(part));
        continue;
      }
      for (ReplyPart& p : parser_->feed(part.text)) out.push_back(std::move(p));
    }
    return out;
  }

  ReplySplitter splitter_;
  std::optional<ToolCallParser> parser_;
};

// A reply that called a tool and then ended its turn stops for the tool.
void note_tool_use(const ReplyReader& reader, std::optional<Outcome>& outcome) {
  if (outcome && reader.called() && outcome->finish == Finish::kEndTurn) {
    outcome->finish = Finish::kToolUse;
  }
}

// What the relay loop reports back for the access log and metrics.
struct Relayed {
  std::string text;
  std::optional<Outcome> outcome;  // nullopt: the generation failed
  Error error;
};

// Waits for the sequence's updates until it finishes; on_text gets each piece of text, on_idle
// is called after `idle` without any. Either returning false (the client is gone) cancels the
// sequence, which then stops within one token; so does passing `timeout` (0: none), which makes
// the request an error.
template <class OnText, class OnIdle>
Relayed relay(Sequence& sequence, const InferenceRequest& request, milliseconds idle,
              milliseconds timeout, OnText on_text, OnIdle on_idle) {
  Relayed out;
  bool connected = true;
  bool timed_out = false;
  const auto deadline =
      timeout.count() > 0 ? sequence.submitted_at() + timeout : Clock::time_point::max();
  while (true) {
    milliseconds wait = connected ? idle : milliseconds(100);
    if (!timed_out && deadline != Clock::time_point::max()) {
      const auto left = std::chrono::duration_cast<milliseconds>(deadline - Clock::now());
      wait = std::clamp(left, milliseconds(1), wait);
    }
    Sequence::Update update = sequence.wait(wait);
    if (!timed_out && Clock::now() >= deadline && !update.finished) {
      timed_out = true;
      sequence.cancel();
    }
    for (const std::string& piece : update.pieces) {
      out.text += piece;
      if (connected && !on_text(piece)) connected = false;
    }
    if (update.pieces.empty() && !update.finished && connected && !on_idle()) {
      connected = false;
    }
    if (!connected) sequence.cancel();
    if (update.finished) break;
  }
  const auto& result = sequence.result();
  if (timed_out) {
    out.error = Error{ErrorCode::kUnavailable,
                      fmt::format("the request took longer than --request-timeout ({} s)",
                                  timeout.count() / 1000)};
    return out;
  }
  if (!result) {
    out.error = result.error();
    return out;
  }
  out.outcome = outcome_of(*result, request.stop_sequences, request.max_tokens);
  if (!connected) out.outcome->finish = Finish::kCancelled;
  return out;
}

void record_generation(Metrics& metrics, RequestRecord& record, const Sequence& sequence,
                       const Relayed& relayed) {
  const auto& result = sequence.result();
  record.input_tokens = sequence.n_prompt_tokens();
  if (!relayed.outcome) {
    metrics.record_generation("error", record.input_tokens, 0, -1, -1);
    return;
  }
  record.output_tokens = relayed.outcome->output_tokens;
  double ttft_s = -1;
  if (auto first = sequence.first_text_at()) {
    ttft_s = std::chrono::duration<double>(*first - record.started).count();
  }
  double tokens_per_s = -1;
  if (result->tokens.size() >= 2 && result->decode_ms > 0) {
    tokens_per_s = static_cast<double>(result->tokens.size() - 1) / (result->decode_ms / 1000.0);
  }
  metrics.record_generation(anthropic_stop_reason(relayed.outcome->finish), record.input_tokens,
                            record.output_tokens, ttft_s, tokens_per_s);
  double sent_ms = -1;
  if (record.first_text_sent) {
    sent_ms =
        std::chrono::duration<double, std::milli>(*record.first_text_sent - record.started).count();
  }
  log::debug(
      "generation {}: prompt {} tokens, prefill {:.1f} ms, first text {:.1f} ms after arrival "
      "(written {:.1f} ms), {} tokens in {:.1f} ms",
      record.request_id, record.input_tokens, result->prefill_ms, ttft_s * 1000, sent_ms,
      record.output_tokens, result->decode_ms);
}

// Writes a text frame, noting when the first one went out.
bool write_text(StreamSink& sink, const std::string& frame, RequestRecord& record) {
  const bool ok = sink.write(frame);
  if (ok && !record.first_text_sent) record.first_text_sent = std::chrono::steady_clock::now();
  return ok;
}

// A parsed request rendered, checked against the context and queued.
struct Submitted {
  std::shared_ptr<Sequence> sequence;
  std::shared_ptr<const InferenceRequest> request;
  ReplyShape shape;
};

Expected<Submitted> submit(Expected<InferenceRequest> parsed, const PromptRenderer& renderer,
                           Scheduler& scheduler, Metrics& metrics, const ServerConfig& config,
                           const std::string& served_id, RequestRecord& record) {
  if (!parsed) return Unexpected<Error>(parsed.error());
  if (parsed->model.empty()) parsed->model = served_id;
  PV_TRY(Prepared prepared,
         prepare(std::move(*parsed), renderer, scheduler.n_ctx(), config.tool_first));
  record.input_tokens = static_cast<int64_t>(prepared.prompt.size());
  auto sequence = scheduler.submit(std::move(prepared.prompt), std::move(prepared.options));
  if (!sequence) {
    if (sequence.error().code == ErrorCode::kResourceExhausted) {
      metrics.record_rejection("queue_full");
    }
    return Unexpected<Error>(sequence.error());
  }
  return Submitted{std::move(*sequence),
                   std::make_shared<const InferenceRequest>(std::move(prepared.request)),
                   std::move(prepared.shape)};
}

int64_t unix_now() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

HttpResponse Router::messages(const HttpRequest& request, std::shared_ptr<RequestRecord> record) {
  if (auto refusal = memory_refusal()) return error_response(request, *record, *refusal);
  auto submitted =
      submit(anthropic::parse_messages_request(request.body, anthropic::Endpoint::kMessages),
             renderer_, scheduler_, metrics_, config_, model_.id, *record);
  if (!submitted) return error_response(request, *record, api_error_from(submitted.error()));
  std::shared_ptr<Sequence> sequence = submitted->sequence;
  std::shared_ptr<const InferenceRequest> req = submitted->request;
  const std::string id = random_id("msg_");
  const milliseconds ping_every(1000LL * config_.ping_interval_s);
  const milliseconds timeout = config_.request_timeout;

  HttpResponse response;
  const ReplyShape shape = submitted->shape;
  const auto tool_id = [] { return random_id("toolu_"); };
  if (!req->stream) {
    Relayed relayed = relay(
        *sequence, *req, ping_every, timeout, [](std::string_view) { return true; },
        [] { return true; });
    ReplyReader reader(shape, *req);
    std::vector<ReplyPart> parts = reader.feed(relayed.text);
    for (ReplyPart& part : reader.finish()) parts.push_back(std::move(part));
    note_tool_use(reader, relayed.outcome);
    record_generation(metrics_, *record, *sequence, relayed);
    if (!relayed.outcome) return error_response(request, *record, api_error_from(relayed.error));
    response.body = anthropic::message_body(id, req->model, parts, *relayed.outcome, tool_id);
    return response;
  }
  response.content_type = "text/event-stream";
  response.headers.emplace_back("cache-control", "no-cache");
  response.stream = [this, sequence, req, id, ping_every, timeout, record, shape,
                     tool_id](StreamSink& sink) {
    anthropic::MessageStream stream(id, req->model);
    ReplyReader reader(shape, *req);
    const auto write_parts = [&](const std::vector<ReplyPart>& parts) {
      std::string frames;
      for (const ReplyPart& part : parts) frames += stream.part(part, tool_id);
      return frames.empty() || write_text(sink, frames, *record);
    };
    bool connected = sink.write(stream.start(sequence->n_prompt_tokens()));
    if (!connected) sequence->cancel();
    Relayed relayed = relay(
        *sequence, *req, ping_every, timeout,
        [&](std::string_view text) { return write_parts(reader.feed(text)); },
        [&] { return sink.write(anthropic::MessageStream::ping()); });
    note_tool_use(reader, relayed.outcome);
    record_generation(metrics_, *record, *sequence, relayed);
    if (!relayed.outcome) {
      sink.write(anthropic::MessageStream::error(api_error_from(relayed.error)));
    } else if (relayed.outcome->finish != Finish::kCancelled) {
      write_parts(reader.finish());
      sink.write(stream.finish(*relayed.outcome));
    }
  };
  response.abandon = [sequence] { sequence->cancel(); };
  return response;
}

HttpResponse Router::chat_completions(const HttpRequest& request,
                                      std::shared_ptr<RequestRecord> record) {
  if (auto refusal = memory_refusal()) return error_response(request, *record, *refusal);
  auto submitted = submit(openai::parse_chat_request(request.body), renderer_, scheduler_, metrics_,
                          config_, model_.id, *record);
  if (!submitted) return error_response(request, *record, api_error_from(submitted.error()));
  std::shared_ptr<Sequence> sequence = submitted->sequence;
  std::shared_ptr<const InferenceRequest> req = submitted->request;
  const std::string id = random_id("chatcmpl-");
  const int64_t created = unix_now();
  const milliseconds ping_every(1000LL * config_.ping_interval_s);
  const milliseconds timeout = config_.request_timeout;

  HttpResponse response;
  const ReplyShape shape = submitted->shape;
  const auto tool_id = [] { return random_id("call_"); };
  if (!req->stream) {
    Relayed relayed = relay(
        *sequence, *req, ping_every, timeout, [](std::string_view) { return true; },
        [] { return true; });
    ReplyReader reader(shape, *req);
    std::vector<ReplyPart> parts = reader.feed(relayed.text);
    for (ReplyPart& part : reader.finish()) parts.push_back(std::move(part));
    note_tool_use(reader, relayed.outcome);
    record_generation(metrics_, *record, *sequence, relayed);
    if (!relayed.outcome) return error_response(request, *record, api_error_from(relayed.error));
    response.body =
        openai::completion_body(id, req->model, created, parts, *relayed.outcome, tool_id);
    return response;
  }
  response.content_type = "text/event-stream";
  response.headers.emplace_back("cache-control", "no-cache");
  response.stream = [this, sequence, req, id, created, ping_every, timeout, record, shape,
                     tool_id](StreamSink& sink) {
    openai::CompletionStream stream(id, req->model, created);
    ReplyReader reader(shape, *req);
    const auto write_parts = [&](const std::vector<ReplyPart>& parts) {
      std::string chunks;
      for (const ReplyPart& part : parts) chunks += stream.part(part, tool_id);
      return chunks.empty() || write_text(sink, chunks, *record);
    };
    if (!sink.write(stream.start())) sequence->cancel();
    Relayed relayed = relay(
        *sequence, *req, ping_every, timeout,
        [&](std::string_view text) { return write_parts(reader.feed(text)); },
        [&] { return sink.write(": ping\n\n"); });  // an SSE comment keeps the connection alive
    note_tool_use(reader, relayed.outcome);
    record_generation(metrics_, *record, *sequence, relayed);
    if (!relayed.outcome) {
      sink.write(openai::CompletionStream::error(openai_error_body(api_error_from(relayed.error))));
    } else if (relayed.outcome->finish != Finish::kCancelled) {
      write_parts(reader.finish());
      sink.write(stream.finish(*relayed.outcome, req->include_usage));
    }
  };
  response.abandon = [sequence] { sequence->cancel(); };
  return response;
}

}  // namespace pensieve::server
