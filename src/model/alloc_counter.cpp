#include "model/alloc_counter.h"

#include <malloc.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <new>

namespace {

std::atomic<bool> g_counting{false};
std::atomic<int64_t> g_allocations{0};
std::atomic<int64_t> g_live_bytes{0};  // always tracked: a free must match its allocation

void* counted(void* p) {
  if (p == nullptr) throw std::bad_alloc();
  if (g_counting.load(std::memory_order_relaxed)) g_allocations.fetch_add(1);
  g_live_bytes.fetch_add(static_cast<int64_t>(malloc_usable_size(p)), std::memory_order_relaxed);
  return p;
}

void uncounted_free(void* p) noexcept {
  if (p == nullptr) return;
  g_live_bytes.fetch_sub(static_cast<int64_t>(malloc_usable_size(p)), std::memory_order_relaxed);
  std::free(p);
}

void* aligned(size_t n, std::align_val_t alignment) {
  const auto a = static_cast<size_t>(alignment);
  const size_t rounded = (std::max<size_t>(n, 1) + a - 1) / a * a;  // aligned_alloc wants this
  return std::aligned_alloc(a, rounded);
}

}  // namespace

// Every form is replaced, not only the ones libstdc++ builds the others on: under
// AddressSanitizer a form left out would come from the sanitizer and be freed here with free().
void* operator new(size_t n) { return counted(std::malloc(n == 0 ? 1 : n)); }
void* operator new(size_t n, std::align_val_t a) { return counted(aligned(n, a)); }
void* operator new[](size_t n) { return counted(std::malloc(n == 0 ? 1 : n)); }
void* operator new[](size_t n, std::align_val_t a) { return counted(aligned(n, a)); }
void* operator new(size_t n, const std::nothrow_t&) noexcept {
  try {
    return operator new(n);
  } catch (const std::bad_alloc&) {
    return nullptr;
  }
}
void* operator new[](size_t n, const std::nothrow_t&) noexcept {
  try {
    return operator new[](n);
  } catch (const std::bad_alloc&) {
    return nullptr;
  }
}

void operator delete(void* p) noexcept { uncounted_free(p); }
void operator delete(void* p, size_t) noexcept { uncounted_free(p); }
void operator delete[](void* p) noexcept { uncounted_free(p); }
void operator delete[](void* p, size_t) noexcept { uncounted_free(p); }
void operator delete(void* p, std::align_val_t) noexcept { uncounted_free(p); }
void operator delete(void* p, size_t, std::align_val_t) noexcept { uncounted_free(p); }
void operator delete[](void* p, std::align_val_t) noexcept { uncounted_free(p); }
void operator delete[](void* p, size_t, std::align_val_t) noexcept { uncounted_free(p); }
void operator delete(void* p, const std::nothrow_t&) noexcept { uncounted_free(p); }
void operator delete[](void* p, const std::nothrow_t&) noexcept { uncounted_free(p); }

namespace pensieve {

AllocationCounter::AllocationCounter() : live_at_start_(g_live_bytes.load()) {
  g_allocations = 0;
  g_counting = true;
}

AllocationCounter::~AllocationCounter() { g_counting = false; }

int64_t AllocationCounter::count() const { return g_allocations.load(); }

int64_t AllocationCounter::live_bytes() const { return g_live_bytes.load() - live_at_start_; }

int64_t heap_live_bytes() { return g_live_bytes.load(); }

}  // namespace pensieve
