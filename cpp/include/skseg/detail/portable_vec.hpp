// Fixed-width vectors for compilers without GCC/Clang vector extensions
// (MSVC). They give gmm_kernels_impl.hpp the same element-wise operators,
// lane-mask comparisons and subscripts as `__attribute__((vector_size))`
// types, as plain loops over the lanes that the optimiser may vectorise.
//
// Like gmm_kernels_impl.hpp, this file is included INSIDE an anonymous
// namespace (every function gets internal linkage, so the copy compiled
// with /arch:AVX2 never replaces the baseline one at link time) and uses
// nothing from the standard library beyond <cstdint>.

#if defined(_MSC_VER) && !defined(__clang__)
#define SKSEG_VINLINE __forceinline
#else
#define SKSEG_VINLINE inline __attribute__((always_inline))
#endif

// The integer type of a lane mask for elements of type E: all bits set
// where a comparison holds, clear elsewhere (as GCC vector comparisons).
template <class E>
struct MaskLane {
  typedef E type;
};
template <>
struct MaskLane<float> {
  typedef int32_t type;
};
template <>
struct MaskLane<double> {
  typedef int64_t type;
};

template <class E, int N>
struct alignas(32) PortableVec {
  typedef E value_type;
  typedef PortableVec<typename MaskLane<E>::type, N> Mask;
  E lane[N];

  // Defined in the class, so implicitly inline (as `inline`, not forced).
  E& operator[](int i) { return lane[i]; }
  E operator[](int i) const { return lane[i]; }

#define SKSEG_PV_BINARY(op)                                                    \
  friend PortableVec operator op(PortableVec a, PortableVec b) {               \
    for (int i = 0; i < N; ++i) a.lane[i] = a.lane[i] op b.lane[i];            \
    return a;                                                                  \
  }                                                                            \
  friend PortableVec operator op(PortableVec a, E s) {                         \
    for (int i = 0; i < N; ++i) a.lane[i] = a.lane[i] op s;                    \
    return a;                                                                  \
  }                                                                            \
  friend PortableVec operator op(E s, PortableVec a) {                         \
    for (int i = 0; i < N; ++i) a.lane[i] = s op a.lane[i];                    \
    return a;                                                                  \
  }                                                                            \
  PortableVec& operator op##=(PortableVec b) {                                 \
    return *this = *this op b;                                                 \
  }
  SKSEG_PV_BINARY(+)
  SKSEG_PV_BINARY(-)
  SKSEG_PV_BINARY(*)
  SKSEG_PV_BINARY(/)
  // Bit operations, meaningful for the integer vectors only.
  SKSEG_PV_BINARY(&)
  SKSEG_PV_BINARY(|)
#undef SKSEG_PV_BINARY

  friend PortableVec operator~(PortableVec a) {
    for (int i = 0; i < N; ++i) a.lane[i] = ~a.lane[i];
    return a;
  }
  friend PortableVec operator<<(PortableVec a, int n) {
    for (int i = 0; i < N; ++i) a.lane[i] = a.lane[i] << n;
    return a;
  }
  friend PortableVec operator>>(PortableVec a, int n) {
    for (int i = 0; i < N; ++i) a.lane[i] = a.lane[i] >> n;
    return a;
  }

#define SKSEG_PV_COMPARE(op)                                                   \
  friend Mask operator op(PortableVec a, PortableVec b) {                      \
    Mask m;                                                                    \
    for (int i = 0; i < N; ++i) m.lane[i] = a.lane[i] op b.lane[i] ? -1 : 0;   \
    return m;                                                                  \
  }                                                                            \
  friend Mask operator op(PortableVec a, E s) {                                \
    Mask m;                                                                    \
    for (int i = 0; i < N; ++i) m.lane[i] = a.lane[i] op s ? -1 : 0;           \
    return m;                                                                  \
  }
  SKSEG_PV_COMPARE(<)
  SKSEG_PV_COMPARE(>)
#undef SKSEG_PV_COMPARE
};

// Element-wise conversion, as __builtin_convertvector.
template <class To, class From>
SKSEG_VINLINE To convert_vector(From v) {
  To out;
  for (int i = 0; i < int(sizeof(v.lane) / sizeof(v.lane[0])); ++i)
    out.lane[i] = static_cast<typename To::value_type>(v.lane[i]);
  return out;
}
