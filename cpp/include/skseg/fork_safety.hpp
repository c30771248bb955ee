// Threads in a process made by fork().
//
// GNU libgomp is not fork-safe: a child made by fork() inherits the parent's
// thread-pool bookkeeping but not its threads, so the child's first parallel
// region with more than one thread waits forever for workers that do not
// exist. The pool may have been started by skseg or by any library sharing
// its OpenMP runtime (torch's libgomp.so.1 is one), so the core cannot tell
// whether a child would be safe. It plays safe: in a process that fork() made
// after this module was loaded, the core runs every region on one thread. A
// team of one never touches the inherited pool, and results are unchanged
// (bit-identical for any thread count); a forked worker is only slower.
// Windows has no fork; processes started by spawn or forkserver load the
// module afresh and keep all their threads.
#pragma once

#include <atomic>

#if !defined(_WIN32)
#include <pthread.h>
#endif

namespace skseg {
namespace detail {

// Constant-initialised, so the fork handler sets it without any guard.
inline std::atomic<bool> forked_child{false};

inline void mark_forked_child() { forked_child.store(true, std::memory_order_relaxed); }

}  // namespace detail

// Registers the fork handler; called once, when the module is imported.
inline void watch_for_fork() {
#if !defined(_WIN32)
  pthread_atfork(nullptr, nullptr, &detail::mark_forked_child);
#endif
}

// True in a process made by fork() after watch_for_fork() ran.
inline bool in_forked_child() {
  return detail::forked_child.load(std::memory_order_relaxed);
}

}  // namespace skseg
