// The engine thread's step: every running sequence advances through one batched forward pass
// (see scheduler.h), taking KV blocks as it grows and preempting the newest sequence when the
// pool runs out.
#include <algorithm>

#include "core/check.h"
#include "core/log.h"
#include "engine/scheduler.h"

namespace pensieve {
namespace {

constexpr int64_t kBlock = KvBlocks::kBlockPositions;

}  // namespace

bool Scheduler::grow(Sequence& sequence, int64_t positions) {
  while (static_cast<int64_t>(sequence.blocks_.size()) * kBlock < positions) {
    std::optional<int32_t> block = kv_.allocate();
    if (!block) return false;
    sequence.blocks_.push_back(*block);
  }
  return true;
}

void Scheduler::publish(Sequence& sequence) {
  const std::span<const int32_t> tokens = sequence.generation_->tokens();
  const int64_t full = sequence.n_evaluated_ / kBlock;
  for (int64_t& b = sequence.n_published_; b < full; ++b) {
    const int32_t parent =
        b == 0 ? KvBlocks::kNoParent : sequence.blocks_[static_cast<size_t>(b - 1)];
    int32_t& block = sequence.blocks_[static_cast<size_t>(b)];
    block = kv_.publish(block, parent, tokens.subspan(static_cast<size_t>(b * kBlock), kBlock));
  }
}

void Scheduler::preempt(std::shared_ptr<Sequence> sequence) {
  // Its full blocks stay in the prefix cache, so the recompute may find them there.
  publish(*sequence);
  kv_.release_all(sequence->blocks_);
  sequence->blocks_.clear();
  sequence->n_evaluated_ = 0;
  sequence->n_published_ = 0;
  {
    std::lock_guard lock(mutex_);
    std::erase(active_, sequence);
    queue_.push_front(sequence);
    running_.store(static_cast<int64_t>(active_.size()), std::memory_order_relaxed);
  }
  stat_preemptions_.fetch_add(1, std::memory_order_relaxed);
  log::info("engine: out of KV blocks: a sequence of {} tokens waits to be recomputed",
            sequence->generation_->tokens().size());
}

void Scheduler::fail_step(const Error& error) {
  for (const auto& sequence : members_) end(sequence, Unexpected<Error>(error));
  members_.clear();
  segments_.clear();
}

void Scheduler::step() {
  // Sequences whose client left (or that were shed) end before anything else.
  ending_.clear();
  for (const auto& sequence : active_) {
    if (sequence->cancelled()) ending_.push_back(sequence);
  }
  for (const auto& sequence : ending_) {
    GenerateResult& result = sequence->generation_->result();
    result.reason = StopReason::kCancelled;
    end(sequence, std::move(result));
  }
  ending_.clear();

  // Decode tokens first (one per sequence), then prompt chunks in the room left, oldest first.
  segments_.clear();
  members_.clear();
  int64_t room = forward_.max_batch();
  int64_t prefill_room = options_.max_prefill_chunk;
  std::vector<std::shared_ptr<Sequence>> order(active_.begin(), active_.end());
  std::stable_partition(order.begin(), order.end(), [](const std::shared_ptr<Sequence>& s) {
    return s->generation_->tokens().size() - static_cast<size_t>(s->n_evaluated_) == 1;
  });
  for (const auto& sequence : order) {
    // Preempted earlier in this step: it waits in the queue now.
    if (std::find(active_.begin(), active_.end(), sequence) == active_.end()) continue;
    Sequence& s = *sequence;
    const std::span<const int32_t> tokens = s.generation_->tokens();
    const int64_t pending = static_cast<int64_t>(tokens.size()) - s.n_evaluated_;
    int64_t n = std::min(pending, room);
    if (pending > 1) n = std::min(n, std::max<int64_t>(prefill_room, 1));
    if (n <= 0) continue;
    bool placed = true;
    while (!grow(s, s.n_evaluated_ + n)) {
      // Out of blocks: the newest sequence not already in this step gives its blocks back.
      std::shared_ptr<Sequence> victim;
      for (auto it = active_.rbegin(); it != active_.rend(); ++it) {
        if (std::find(members_.begin(), members_.end(), *it) == members_.end()) {
          victim = *it;
          break;
        }
      }
      PV_CHECK(victim != nullptr, "scheduler: out of KV blocks with nothing to preempt");
      preempt(victim);
      if (victim == sequence) {
        placed = false;
        break;
      }
    }
    if (!placed) continue;
    segments_.push_back(
        {tokens.subspan(static_cast<size_t>(s.n_evaluated_), static_cast<size_t>(n)),
         s.n_evaluated_, s.blocks_});
    members_.push_back(sequence);
    room -= n;
    if (pending > 1) prefill_room -= n;
  }
  if (segments_.empty()) return;

  // When every sequence that takes a token this step picks greedily, or draws from the
  // temperature alone, the backend picks or draws too: a GPU then sends back one id a sequence
  // instead of its logits. When every one samples with a top-k, or a top-p or min-p over its row,
  // only the best tokens come back (and for the latter the row's sum of exponentials).
  bool greedy = true;
  bool drawable = true;
  int64_t n_best = 0;     // the most best tokens a sequence needs; -1: one needs its whole row
  bool exp_sums = false;  // and one needs its row's sum of exponentials too (a top-p or min-p)
  for (size_t i = 0; i < members_.size(); ++i) {
    const Sequence& s = *members_[i];
    const bool last = s.n_evaluated_ + static_cast<int64_t>(segments_[i].tokens.size()) ==
                      static_cast<int64_t>(s.generation_->tokens().size());
    if (!last) continue;
    greedy = greedy && s.generation_->greedy();
    drawable = drawable && s.generation_->drawable();
    const int64_t needed = s.generation_->best_needed(BatchForward::kMaxBestTokens);
    n_best = needed == 0 || n_best < 0 ? -1 : std::max(n_best, needed);
    exp_sums = exp_sums || s.generation_->needs_exp_sum();
  }
  std::span<const float> logits;
  std::span<const int32_t> picks;
  std::span<const TokenLogit> best;
  if (greedy) {
    Expected<std::span<const int32_t>> got = forward_.eval_batch_greedy(segments_);
    if (!got) return fail_step(got.error());
    picks = *got;
  } else if (drawable) {
    draws_.clear();
    for (size_t i = 0; i < members_.size(); ++i) {
      Sequence& s = *members_[i];
      const bool last = s.n_evaluated_ + static_cast<int64_t>(segments_[i].tokens.size()) ==
                        static_cast<int64_t>(s.generation_->tokens().size());
      draws_.push_back(last ? s.generation_->next_draw() : TokenDraw{});
    }
    Expected<std::span<const int32_t>> got = forward_.eval_batch_drawn(segments_, draws_);
    if (!got) return fail_step(got.error());
    picks = *got;
  } else if (n_best > 0) {
    exp_sums_.assign(exp_sums ? segments_.size() : 0, 0.0);
    Expected<std::span<const TokenLogit>> got =
        forward_.eval_batch_best(segments_, n_best, exp_sums_);
    if (!got) return fail_step(got.error());
    best = *got;
  } else {
    Expected<std::span<const float>> got = forward_.eval_batch(segments_);
    if (!got) return fail_step(got.error());
    logits = *got;
  }
  const size_t n_vocab = logits.size() / segments_.size();
  for (size_t i = 0; i < members_.size(); ++i) {
    const std::shared_ptr<Sequence>& sequence = members_[i];
    Sequence& s = *sequence;
    s.n_evaluated_ += static_cast<int64_t>(segments_[i].tokens.size());
    if (s.n_evaluated_ < static_cast<int64_t>(s.generation_->tokens().size())) continue;  // chunk
    publish(s);
    const TextCallback on_text = [&s](std::string_view text) {
      s.push_text(text);
      return !s.cancelled();
    };
    const auto per_row = static_cast<size_t>(n_best);
    // A top-p whose best tokens fall short reads its row after all.
    const Generation::RowSource row = [this, i] {
      return forward_.best_step_row(static_cast<int64_t>(i));
    };
    auto next = !picks.empty() ? s.generation_->step_picked(picks[i], on_text)
                : !best.empty()
                    ? s.generation_->step_best(best.subspan(i * per_row, per_row),
                                               exp_sums_.empty() ? 0.0 : exp_sums_[i], row, on_text)
                    : s.generation_->step(logits.subspan(i * n_vocab, n_vocab), on_text);
    if (!next) {
      end(sequence, Unexpected<Error>(next.error()));
    } else if (!*next) {
      end(sequence, std::move(s.generation_->result()));
    }
  }
  // Hold no sequence past its step: a finished one belongs to its client alone.
  members_.clear();
  segments_.clear();
  update_stats();
}

}  // namespace pensieve
