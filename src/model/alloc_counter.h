// Counts the heap allocations (global operator new) a block of test code makes: the test binary
// that links alloc_counter.cpp replaces operator new with a counting one.
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
  int64_t count() const;
};

}  // namespace pensieve
