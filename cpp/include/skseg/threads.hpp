// How many OpenMP threads a parallel region of the core starts. Every
// region of every core (EM, colour counting, k-means) asks here, so that the
// caps and the fork rule hold everywhere.
#pragma once

#include <algorithm>
#include <cstdint>
#include <limits>

#ifdef SKSEG_HAVE_OPENMP
#include <omp.h>
#endif

#include "skseg/fork_safety.hpp"

namespace skseg {

// Threads to start for `n_tasks` independent pieces of work: the request
// (< 1: OpenMP's default), never more than the pieces of work nor the
// processors available, so that a request of 100000 threads for 300 rows
// starts one, not 100000 (which libgomp may fail to create). Results never
// depend on it.
inline int resolve_threads(int n_threads, int64_t n_tasks) {
#ifdef SKSEG_HAVE_OPENMP
  if (in_forked_child()) return 1;  // see fork_safety.hpp
  int64_t nt = n_threads < 1 ? omp_get_max_threads() : n_threads;
  nt = std::min<int64_t>(nt, std::max(omp_get_num_procs(), 1));
  nt = std::min<int64_t>(nt, n_tasks);
  return static_cast<int>(std::max<int64_t>(nt, 1));
#else
  (void)n_threads;
  (void)n_tasks;
  return 1;
#endif
}

// The same for work that can use any number of threads: capped at the
// processors only.
inline int resolve_threads(int n_threads) {
  return resolve_threads(n_threads, std::numeric_limits<int64_t>::max());
}

}  // namespace skseg
