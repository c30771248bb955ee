// The E-step kernels compiled with -mavx2 -mfma, or /arch:AVX2 on MSVC (set
// on this file only in CMakeLists.txt). Called only after a run-time check
// that the CPU has both AVX2 and FMA.
#include <cstdint>
#include <cstring>
#include <limits>

#include "skseg/gmm_kernel_api.hpp"

// MSVC defines __AVX2__ for /arch:AVX2 but has no __FMA__ macro.
#if !defined(__AVX2__) || (!defined(__FMA__) && !defined(_MSC_VER))
#error "gmm_kernels_avx2.cpp must be compiled with -mavx2 -mfma (/arch:AVX2)"
#endif

namespace {
#include "skseg/detail/gmm_kernels_impl.hpp"
}  // namespace

namespace skseg {
namespace gmm {
KernelTable kernel_table_avx2() { return make_kernel_table(); }
}  // namespace gmm
}  // namespace skseg
