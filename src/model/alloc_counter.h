// Counts the heap allocations (global operator new) a block of test code makes, and the heap
// bytes it leaves live: the test binary that links alloc_counter.cpp replaces the global
// operator new and delete (plain, array and aligned) with counting ones.
#pragma once

#include <cstdint>

namespace pensieve {

// Counting runs from construction to destruction (one counter at a time).
class AllocationCounter {
 public:
  AllocationCounter();
  ~AllocationCounter();
  AllocationCounter(const AllocationCounter&) = delete;
  AllocationCounter& operator=(const AllocationCounter&) = delete;
  // Allocations made since construction, by any thread.
  int64_t count() const;
  // Heap bytes allocated minus heap bytes freed since construction, by any thread (frees of
  // memory allocated before construction count too, so this can be negative).
  int64_t live_bytes() const;

 private:
  int64_t live_at_start_ = 0;
};

// Heap bytes live through operator new right now, over the whole process (malloc's usable
// sizes, so a block counts the same when it is freed as when it was allocated).
int64_t heap_live_bytes();

}  // namespace pensieve
