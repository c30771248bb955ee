// The E-step kernels compiled with -mavx2 -mfma (set on this file only in
// CMakeLists.txt). Called only after a run-time check that the CPU has both.
#include <cstdint>
#include <cstring>

#include "skseg/gmm_kernel_api.hpp"

#if !defined(__AVX2__) || !defined(__FMA__)
#error "gmm_kernels_avx2.cpp must be compiled with -mavx2 -mfma"
#endif

namespace {
#include "skseg/detail/gmm_kernels_impl.hpp"
}  // namespace

namespace skseg {
namespace gmm {
KernelTable kernel_table_avx2() { return make_kernel_table(); }
}  // namespace gmm
}  // namespace skseg
