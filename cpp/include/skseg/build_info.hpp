// Facts about how the core was compiled and what the running CPU offers.
#pragma once

#include <string>
#include <vector>

#include "skseg/simd.hpp"

#ifdef SKSEG_HAVE_OPENMP
#include <omp.h>
#endif

namespace skseg {

// OpenMP version as the yyyymm date the compiler reports, 0 without OpenMP.
inline int openmp_version() {
#ifdef SKSEG_HAVE_OPENMP
  return _OPENMP;
#else
  return 0;
#endif
}

inline int max_threads() {
#ifdef SKSEG_HAVE_OPENMP
  return omp_get_max_threads();
#else
  return 1;
#endif
}

inline std::string compiler() {
#ifdef SKSEG_COMPILER
  return SKSEG_COMPILER;
#else
  return "unknown";
#endif
}

// SIMD levels with kernels in this build, and the one a call would use now
// (honouring the SKSEG_SIMD environment variable).
inline std::vector<std::string> simd_compiled_levels() { return simd_compiled(); }

inline std::string simd_runtime() { return simd_name(select_simd("auto")); }

}  // namespace skseg
