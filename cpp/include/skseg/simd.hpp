// Run-time choice of the SIMD kernels. The module is built for the baseline
// of the target (never -march=native); wider kernels live in their own
// translation units and are used only when the running CPU supports them.
#pragma once

#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

#include "skseg/gmm_kernel_api.hpp"

#if defined(SKSEG_HAVE_AVX2) && defined(_MSC_VER) && !defined(__clang__)
#include <immintrin.h>
#include <intrin.h>
#endif

namespace skseg {

enum class SimdLevel : int { kBaseline = 0, kAvx2 = 1 };

inline const char* simd_name(SimdLevel level) {
  return level == SimdLevel::kAvx2 ? "avx2" : "baseline";
}

// Levels with kernels in this build, narrowest first.
inline std::vector<std::string> simd_compiled() {
  std::vector<std::string> levels{"baseline"};
#ifdef SKSEG_HAVE_AVX2
  levels.push_back("avx2");
#endif
  return levels;
}

inline bool cpu_supports(SimdLevel level) {
  if (level == SimdLevel::kBaseline) return true;
#if defined(SKSEG_HAVE_AVX2) && defined(_MSC_VER) && !defined(__clang__)
  // MSVC has no __builtin_cpu_supports: read CPUID, and XGETBV for whether
  // the operating system saves the 256-bit registers on context switches.
  int r[4];
  __cpuid(r, 0);
  if (r[0] < 7) return false;
  __cpuid(r, 1);
  const bool fma = (r[2] >> 12) & 1, osxsave = (r[2] >> 27) & 1, avx = (r[2] >> 28) & 1;
  if (!(fma && osxsave && avx) || (_xgetbv(0) & 6) != 6) return false;
  __cpuidex(r, 7, 0);
  return (r[1] >> 5) & 1;  // AVX2
#elif defined(SKSEG_HAVE_AVX2) && (defined(__x86_64__) || defined(__i386__))
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
  // Other targets (aarch64, ...) have the baseline kernels only.
  return false;
#endif
}

// The level to run: `request` is "auto", "baseline" or "avx2". "auto" reads
// the SKSEG_SIMD environment variable (same values) and otherwise takes the
// widest level this CPU supports. Asking for a level that is not compiled in
// or not supported by the CPU is an error rather than a silent fallback.
inline SimdLevel select_simd(const std::string& request = "auto") {
  std::string wanted = request;
  if (wanted == "auto") {
    const char* env = std::getenv("SKSEG_SIMD");
    wanted = (env && *env) ? env : "auto";
  }
  if (wanted == "auto")
    return cpu_supports(SimdLevel::kAvx2) ? SimdLevel::kAvx2
                                          : SimdLevel::kBaseline;
  if (wanted == "baseline") return SimdLevel::kBaseline;
  if (wanted == "avx2") {
    if (!cpu_supports(SimdLevel::kAvx2))
      throw std::invalid_argument(
          "SIMD level 'avx2' is not available (not compiled in, or the CPU "
          "lacks AVX2/FMA)");
    return SimdLevel::kAvx2;
  }
  throw std::invalid_argument("unknown SIMD level '" + wanted +
                              "'; expected 'auto', 'baseline' or 'avx2'");
}

inline gmm::KernelTable kernel_table(SimdLevel level) {
#ifdef SKSEG_HAVE_AVX2
  if (level == SimdLevel::kAvx2) return gmm::kernel_table_avx2();
#endif
  (void)level;
  return gmm::kernel_table_baseline();
}

}  // namespace skseg
