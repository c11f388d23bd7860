#include "engine/reply_parts.h"

#include <algorithm>
#include <array>
#include <utility>

namespace pensieve {
namespace {

struct Markers {
  std::string_view open, close;
};
constexpr std::array<Markers, 2> kMarkers = {
    {{"<think>", "</think>"}, {"<thinking>", "</thinking>"}}};

// The length of the longest suffix of `text` that is a proper prefix of `marker`.
size_t partial_suffix(std::string_view text, std::string_view marker) {
  for (size_t n = std::min(text.size(), marker.size() - 1); n > 0; --n) {
    if (text.substr(text.size() - n) == marker.substr(0, n)) return n;
  }
  return 0;
}

}  // namespace

ReplySplitter::ReplySplitter(bool starts_thinking)
    : state_(starts_thinking ? State::kThinking : State::kStart),
      close_(starts_thinking ? kMarkers[0].close : std::string_view()) {}

bool ReplySplitter::prompt_opens_thinking(std::string_view prompt) {
  const size_t end = prompt.find_last_not_of(" \t\r\n");
  if (end == std::string_view::npos) return false;
  prompt = prompt.substr(0, end + 1);
  return std::any_of(kMarkers.begin(), kMarkers.end(),
                     [&](const Markers& m) { return prompt.ends_with(m.open); });
}

void ReplySplitter::emit(ReplyPart::Kind kind, std::string_view text, std::vector<ReplyPart>* out) {
  if (skip_newline_) {
    const size_t first = text.find_first_not_of("\r\n");
    text = first == std::string_view::npos ? std::string_view() : text.substr(first);
    if (!text.empty()) skip_newline_ = false;
  }
  if (text.empty()) return;
  if (!out->empty() && out->back().kind == kind) {
    out->back().text += text;
  } else {
    out->push_back(ReplyPart{kind, std::string(text)});
  }
}

std::vector<ReplyPart> ReplySplitter::feed(std::string_view piece) {
  std::vector<ReplyPart> out;
  held_ += piece;
  while (!held_.empty()) {
    if (state_ == State::kStart) {
      const size_t lead = held_.find_first_not_of(" \t\r\n");
      if (lead == std::string::npos) return out;  // only blanks so far
      const std::string_view rest = std::string_view(held_).substr(lead);
      bool maybe = false;
      for (const Markers& m : kMarkers) {
        if (rest.starts_with(m.open)) {
          state_ = State::kThinking;
          close_ = m.close;
          held_ = std::string(rest.substr(m.open.size()));
          break;
        }
        maybe = maybe || m.open.starts_with(rest);
      }
      if (state_ == State::kStart) {
        if (maybe) return out;  // could still become a marker
        state_ = State::kText;
        skip_newline_ = false;  // a plain answer keeps its text as written
      }
      continue;
    }
    if (state_ == State::kThinking) {
      const size_t at = held_.find(close_);
      if (at == std::string::npos) {
        const size_t keep = partial_suffix(held_, close_);
        emit(ReplyPart::Kind::kThinking, std::string_view(held_).substr(0, held_.size() - keep),
             &out);
        held_.erase(0, held_.size() - keep);
        return out;
      }
      emit(ReplyPart::Kind::kThinking, std::string_view(held_).substr(0, at), &out);
      held_.erase(0, at + close_.size());
      state_ = State::kText;
      skip_newline_ = true;
      continue;
    }
    emit(ReplyPart::Kind::kText, held_, &out);
    held_.clear();
  }
  return out;
}

std::vector<ReplyPart> ReplySplitter::finish() {
  std::vector<ReplyPart> out;
  if (held_.empty()) return out;
  // A reply that ended inside a marker's first bytes: they were text (or reasoning) after all.
  if (state_ == State::kStart) skip_newline_ = false;
  emit(state_ == State::kThinking ? ReplyPart::Kind::kThinking : ReplyPart::Kind::kText, held_,
       &out);
  held_.clear();
  return out;
}

std::vector<ReplyPart> split_reply(std::string_view text, bool starts_thinking) {
  ReplySplitter splitter(starts_thinking);
  std::vector<ReplyPart> parts = splitter.feed(text);
  for (ReplyPart& part : splitter.finish()) {
    if (!parts.empty() && parts.back().kind == part.kind) {
      parts.back().text += part.text;
    } else {
      parts.push_back(std::move(part));
    }
  }
  return parts;
}

}  // namespace pensieve
