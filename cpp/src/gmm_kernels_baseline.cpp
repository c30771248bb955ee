// The E-step kernels at the baseline instruction set of the target (SSE2 on
// x86-64): always compiled, used when the CPU lacks a wider level.
#include <cstdint>
#include <cstring>
#include <limits>

#include "skseg/gmm_kernel_api.hpp"

namespace {
#include "skseg/detail/gmm_kernels_impl.hpp"
}  // namespace

namespace skseg {
namespace gmm {
KernelTable kernel_table_baseline() { return make_kernel_table(); }
}  // namespace gmm
}  // namespace skseg
