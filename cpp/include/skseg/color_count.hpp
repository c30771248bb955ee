// Distinct colours of an image: the distinct pixel rows in lexicographic
// order, how many pixels have each, and optionally every pixel's row index,
// as np.unique(pixels, axis=0, return_inverse=True, return_counts=True) gives
// them, without sorting the pixels.
//
// Integer pixels (uint8, uint16) are packed into one key per pixel: each
// channel's offset from its minimum in its own bit field, channel 0 highest,
// so that keys order like rows. Up to kDirectBits key bits (uint8 RGB always)
// the keys index a bitmap directly; the rank of a key among the set bits
// (a prefix popcount) is its colour's index. Wider keys go through a hash
// table whose distinct keys are radix-sorted. Float pixels, and integer
// pixels too wide for one 64-bit key, go through a hash table of rows whose
// distinct rows are sorted. Memory beyond the outputs is the bitmap with its
// ranks (at most 16 MiB) and per-thread counts (at most 4 bytes a pixel), or
// a table of about twice the distinct colours; no array of N keys is made.
//
// Every result is the same for any number of threads: the bitmap is an OR,
// the counts are integer sums and the order is that of the colours.
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <memory>
#include <stdexcept>
#include <type_traits>
#include <utility>
#include <vector>

#ifdef SKSEG_HAVE_OPENMP
#include <omp.h>
#endif

#include "skseg/threads.hpp"

namespace skseg {
namespace colors {

// Keys up to this many bits index a bitmap directly (2^26 bits: 8 MiB, and
// as much again for the ranks).
constexpr int kDirectBits = 26;

template <class T>
struct PixelView {
  const T* data = nullptr;  // (n_pixels, n_channels), C order
  int64_t n_pixels = 0;
  int n_channels = 0;
};

template <class T>
struct DistinctColors {
  int n_channels = 0;
  std::vector<T> colors;        // (n_distinct, n_channels), lexicographic order
  std::vector<int64_t> counts;  // (n_distinct,)
  int64_t size() const { return static_cast<int64_t>(counts.size()); }
};

// Inlined into their callers, also into the copies compiled for POPCNT
// (below), so that these use the instruction.
#if (defined(__GNUC__) || defined(__clang__)) && (defined(__x86_64__) || defined(__i386__))
#define SKSEG_HAVE_POPCNT_COPY 1
#define SKSEG_PART_INLINE inline __attribute__((always_inline))
#else
#define SKSEG_PART_INLINE inline
#endif

// Bit tricks rather than __builtin_popcountll, which is a library call on
// baseline x86-64 (no POPCNT) and would dominate the per-pixel pass; where
// POPCNT may be used, the compiler turns them into the instruction.
SKSEG_PART_INLINE int popcount64(uint64_t x) {
  x -= (x >> 1) & 0x5555555555555555ULL;
  x = (x & 0x3333333333333333ULL) + ((x >> 2) & 0x3333333333333333ULL);
  x = (x + (x >> 4)) & 0x0f0f0f0f0f0f0f0fULL;
  return static_cast<int>((x * 0x0101010101010101ULL) >> 56);
}

inline int ctz64(uint64_t x) {  // x != 0
#if defined(__GNUC__) || defined(__clang__)
  return __builtin_ctzll(x);
#else
  int n = 0;
  for (; !(x & 1); x >>= 1) ++n;
  return n;
#endif
}

inline int bit_width(uint64_t x) {
  int n = 0;
  for (; x; x >>= 1) ++n;
  return n;
}

// The finaliser of splitmix64: a cheap, well-mixing 64-bit hash.
inline uint64_t mix64(uint64_t x) {
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ULL;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

// Adds n to counts[id]: atomically when other threads may add too.
inline void add_count(int64_t* counts, int64_t id, int64_t n, bool shared) {
  if (shared) {
#pragma omp atomic update
    counts[id] += n;
  } else {
    counts[id] += n;
  }
}

// ---------------------------------------------------------------------------
// Packed keys of integer pixels.

template <class T>
struct KeyPacking {
  int n_channels = 0;
  int bits = 0;                // total key width
  std::vector<uint64_t> low;   // per channel minimum
  std::vector<int> shift;      // per channel bit offset, channel 0 highest
  std::vector<uint64_t> mask;  // per channel field mask

  uint64_t key(const T* px) const {
    uint64_t k = 0;
    for (int c = 0; c < n_channels; ++c)
      k |= (static_cast<uint64_t>(px[c]) - low[c]) << shift[c];
    return k;
  }
  void unpack(uint64_t k, T* px) const {
    for (int c = 0; c < n_channels; ++c)
      px[c] = static_cast<T>(low[c] + ((k >> shift[c]) & mask[c]));
  }
};

// Each channel's minimum and maximum over pixels [begin, end) into lo, hi.
// With the channel count fixed, the pixels go kLanes at a time through
// per-position minima in T, a loop that vectorises.
template <int kChannels, class T>
void channel_range(const T* data, int64_t begin, int64_t end, int C, uint64_t* lo,
                   uint64_t* hi) {
  int64_t i = begin;
  if constexpr (kChannels > 0) {
    constexpr int kLanes = 16;
    constexpr int B = kChannels * kLanes;
    if (end - begin >= kLanes) {
      T bl[B], bh[B];
      for (int j = 0; j < B; ++j) bl[j] = bh[j] = data[begin * kChannels + j];
      for (; i + kLanes <= end; i += kLanes) {
        const T* p = data + i * kChannels;
        for (int j = 0; j < B; ++j) {
          const T v = p[j];
          bl[j] = v < bl[j] ? v : bl[j];
          bh[j] = v > bh[j] ? v : bh[j];
        }
      }
      for (int j = 0; j < B; ++j) {
        lo[j % kChannels] = std::min<uint64_t>(lo[j % kChannels], bl[j]);
        hi[j % kChannels] = std::max<uint64_t>(hi[j % kChannels], bh[j]);
      }
    }
  }
  for (; i < end; ++i)
    for (int c = 0; c < C; ++c) {
      const uint64_t v = data[i * C + c];
      lo[c] = std::min(lo[c], v);
      hi[c] = std::max(hi[c], v);
    }
}

// The packing of the channels' value ranges (bits > 64: no single key).
template <class T>
KeyPacking<T> key_packing(const PixelView<T>& img, int nt) {
  const int C = img.n_channels;
  std::vector<uint64_t> lo(C, std::numeric_limits<uint64_t>::max()), hi(C, 0);
  (void)nt;
#pragma omp parallel num_threads(nt)
  {
    std::vector<uint64_t> my_lo(lo), my_hi(hi);
    int t = 0, n_parts = 1;
#ifdef SKSEG_HAVE_OPENMP
    t = omp_get_thread_num();
    n_parts = omp_get_num_threads();
#endif
    const int64_t begin = img.n_pixels * t / n_parts;
    const int64_t end = img.n_pixels * (t + 1) / n_parts;
    if (C == 3)
      channel_range<3>(img.data, begin, end, C, my_lo.data(), my_hi.data());
    else if (C == 1)
      channel_range<1>(img.data, begin, end, C, my_lo.data(), my_hi.data());
    else
      channel_range<0>(img.data, begin, end, C, my_lo.data(), my_hi.data());
#pragma omp critical(skseg_colors_range)
    for (int c = 0; c < C; ++c) {
      lo[c] = std::min(lo[c], my_lo[c]);
      hi[c] = std::max(hi[c], my_hi[c]);
    }
  }
  KeyPacking<T> p;
  p.n_channels = C;
  p.low = lo;
  p.shift.assign(C, 0);
  p.mask.assign(C, 0);
  for (int c = C - 1; c >= 0; --c) {
    const int width = bit_width(hi[c] - lo[c]);
    p.shift[c] = p.bits;
    p.mask[c] = width >= 64 ? ~0ULL : (1ULL << width) - 1;
    p.bits += width;
  }
  return p;
}

// The key of pixel i, with the channel count fixed at compile time when
// kChannels > 0 (the common 1 and 3 channels: an unrolled loop).
template <int kChannels, class T>
inline uint64_t key_of(const KeyPacking<T>& pack, const T* data, int64_t i, int C) {
  if constexpr (kChannels > 0) {
    const T* px = data + i * kChannels;
    uint64_t k = 0;
    for (int c = 0; c < kChannels; ++c)
      k |= (static_cast<uint64_t>(px[c]) - pack.low[c]) << pack.shift[c];
    return k;
  } else {
    return pack.key(data + i * C);
  }
}

// The range [begin, end) of part t of n items split into nt nearly equal
// parts (the same split for any use, so that results add up in order).
inline std::pair<int64_t, int64_t> part(int64_t n, int t, int nt) {
  return {n * t / nt, n * (t + 1) / nt};
}

// The per-part loops of count_direct that use popcounts. Each is compiled
// twice: as it is, and inlined into a copy for CPUs with the POPCNT
// instruction (x86-64's baseline lacks it), which the compiler then uses for
// popcount64 (1.6x faster counting and indexing of a 273k-pixel photo). The
// results are integers, the same from either copy.

// Number of keys (set bits) in words [begin, end).
SKSEG_PART_INLINE int64_t count_keys(const uint64_t* bits, int64_t begin, int64_t end) {
  int64_t keys = 0;
  for (int64_t w = begin; w < end; ++w)
    if (bits[w]) keys += popcount64(bits[w]);
  return keys;
}

// Ranks of words [begin, end), the first key being number r; unpacks each
// key's colour into colors (n_channels per key).
template <class T>
SKSEG_PART_INLINE void rank_words(const uint64_t* bits, uint64_t* rank, int64_t begin,
                                  int64_t end, int64_t r, const KeyPacking<T>& pack,
                                  T* colors) {
  const int C = pack.n_channels;
  for (int64_t w = begin; w < end; ++w) {
    rank[w] = static_cast<uint64_t>(r);
    for (uint64_t b = bits[w]; b; b &= b - 1, ++r)
      pack.unpack(static_cast<uint64_t>(w) * 64 + ctz64(b), colors + r * C);
  }
}

// Pixels [begin, end): each pixel's colour index (when index is not null)
// and its count, added by count_run(id, n) once per run of one colour
// (neighbouring pixels often share a colour).
template <int kChannels, class T, class IndexT, class CountRun>
SKSEG_PART_INLINE void index_pixels(const PixelView<T>& img, const KeyPacking<T>& pack,
                                    const uint64_t* bits, const uint64_t* rank,
                                    int64_t begin, int64_t end, IndexT* index,
                                    CountRun count_run) {
  const int C = img.n_channels;
  uint64_t run_key = ~0ULL;
  int64_t run_id = 0, run_length = 0;
  for (int64_t i = begin; i < end; ++i) {
    const uint64_t k = key_of<kChannels>(pack, img.data, i, C);
    if (k != run_key) {
      if (run_length) count_run(run_id, run_length);
      const uint64_t word = bits[k >> 6];
      run_key = k;
      run_id = rank[k >> 6] + popcount64(word & ((1ULL << (k & 63)) - 1));
      run_length = 0;
    }
    ++run_length;
    if (index) index[i] = static_cast<IndexT>(run_id);
  }
  if (run_length) count_run(run_id, run_length);
}

// The same three loops, compiled for POPCNT.
#ifdef SKSEG_HAVE_POPCNT_COPY
__attribute__((target("popcnt"))) inline int64_t count_keys_popcnt(const uint64_t* bits,
                                                                   int64_t begin,
                                                                   int64_t end) {
  return count_keys(bits, begin, end);
}
template <class T>
__attribute__((target("popcnt"))) void rank_words_popcnt(const uint64_t* bits,
                                                          uint64_t* rank, int64_t begin,
                                                          int64_t end, int64_t r,
                                                          const KeyPacking<T>& pack,
                                                          T* colors) {
  rank_words(bits, rank, begin, end, r, pack, colors);
}
template <int kChannels, class T, class IndexT, class CountRun>
__attribute__((target("popcnt"))) void index_pixels_popcnt(
    const PixelView<T>& img, const KeyPacking<T>& pack, const uint64_t* bits,
    const uint64_t* rank, int64_t begin, int64_t end, IndexT* index, CountRun count_run) {
  index_pixels<kChannels>(img, pack, bits, rank, begin, end, index, count_run);
}
// SKSEG_SIMD=baseline (see simd.hpp) keeps to the baseline instructions.
inline bool use_popcnt() {
  static const bool has = __builtin_cpu_supports("popcnt");
  const char* level = std::getenv("SKSEG_SIMD");
  return has && !(level && std::strcmp(level, "baseline") == 0);
}
#else
inline bool use_popcnt() { return false; }
#endif

// Keys of at most kDirectBits bits: a bitmap of the keys present; the rank
// of a key among them is its colour's index. Each bitmap word has the number
// of keys in the words before it.
// Threads take fixed parts of the words and of the pixels; each part of the
// pixels counts into its own array (no atomic updates), added per colour.
template <int kChannels, class T, class IndexT>
DistinctColors<T> count_direct(const PixelView<T>& img, const KeyPacking<T>& pack,
                               IndexT* index, int nt) {
  const int C = img.n_channels;
  const int64_t n = img.n_pixels;
  const int64_t n_words = ((int64_t(1) << pack.bits) + 63) / 64;
  const bool popcnt = use_popcnt();
  // One block for the words and their ranks. Besides, freeing a block this
  // large raises glibc's mmap threshold above it, so that the pixel-sized
  // arrays a caller allocates next (numpy's intp copy of the index in
  // np.take) come from the heap rather than from fresh pages that fault in
  // (measured: 2 ms of a 6 ms predict on a 273k-pixel photo). Only the words
  // are zeroed; every rank is written before it is read.
  std::unique_ptr<uint64_t[]> words(new uint64_t[2 * n_words]);
  uint64_t* bits = words.get();
  uint64_t* rank = words.get() + n_words;
  std::memset(bits, 0, n_words * sizeof(uint64_t));
  // One thread sets the bits: about a nanosecond a pixel, where threads
  // setting bits in one bitmap with atomic updates were slower than one
  // (the cache lines of the bitmap travel between the cores).
  for (int64_t i = 0; i < n; ++i) {
    const uint64_t k = key_of<kChannels>(pack, img.data, i, C);
    bits[k >> 6] |= 1ULL << (k & 63);
  }
  // Ranks: each part of the words counts its keys, then numbers them from
  // the total of the parts before it and unpacks its colours.
  std::vector<int64_t> part_keys(nt + 1, 0);
#pragma omp parallel for num_threads(nt) schedule(static, 1)
  for (int t = 0; t < nt; ++t) {
    const auto [begin, end] = part(n_words, t, nt);
#ifdef SKSEG_HAVE_POPCNT_COPY
    if (popcnt) {
      part_keys[t + 1] = count_keys_popcnt(bits, begin, end);
      continue;
    }
#endif
    part_keys[t + 1] = count_keys(bits, begin, end);
  }
  for (int t = 0; t < nt; ++t) part_keys[t + 1] += part_keys[t];
  const int64_t total = part_keys[nt];
  DistinctColors<T> out;
  out.n_channels = C;
  out.colors.resize(total * C);
  out.counts.assign(total, 0);
#pragma omp parallel for num_threads(nt) schedule(static, 1)
  for (int t = 0; t < nt; ++t) {
    const auto [begin, end] = part(n_words, t, nt);
#ifdef SKSEG_HAVE_POPCNT_COPY
    if (popcnt) {
      rank_words_popcnt(bits, rank, begin, end, part_keys[t], pack, out.colors.data());
      continue;
    }
#endif
    rank_words(bits, rank, begin, end, part_keys[t], pack, out.colors.data());
  }
  // Counts: part 0 of the pixels into the result, the others into their own
  // uint32 arrays when these take less memory than the index (else atomic
  // updates, one per run of a colour).
  const bool own_counts = nt > 1 && (nt - 1) * total <= n &&
                          n <= std::numeric_limits<uint32_t>::max();
  const bool shared = nt > 1 && !own_counts;
  std::vector<uint32_t> part_counts(own_counts ? (nt - 1) * total : 0, 0);
  int64_t* counts = out.counts.data();
#pragma omp parallel for num_threads(nt) schedule(static, 1)
  for (int t = 0; t < nt; ++t) {
    const auto [begin, end] = part(n, t, nt);
    uint32_t* mine = own_counts && t > 0 ? &part_counts[(t - 1) * total] : nullptr;
    auto count_run = [mine, counts, shared](int64_t id, int64_t length) {
      if (mine)
        mine[id] += static_cast<uint32_t>(length);
      else
        add_count(counts, id, length, shared);
    };
#ifdef SKSEG_HAVE_POPCNT_COPY
    if (popcnt) {
      index_pixels_popcnt<kChannels>(img, pack, bits, rank, begin, end, index, count_run);
      continue;
    }
#endif
    index_pixels<kChannels>(img, pack, bits, rank, begin, end, index, count_run);
  }
  if (own_counts) {
#pragma omp parallel for num_threads(nt) schedule(static)
    for (int64_t r = 0; r < total; ++r)
      for (int t = 1; t < nt; ++t) counts[r] += part_counts[(t - 1) * total + r];
  }
  return out;
}

// ---------------------------------------------------------------------------
// Open-addressing hash table (linear probing) from a key to an int64 value,
// built on one thread, then read by many.

template <class Key, class Hash, class Equal>
class HashTable {
 public:
  HashTable(Hash hash, Equal equal, const Key& empty)
      : hash_(hash), equal_(equal), empty_(empty) {
    resize(1 << 12);
  }

  // The value of `key`, inserted with value 0 when new.
  int64_t& operator[](const Key& key) {
    std::size_t slot = hash_(key) & mask_;
    while (!is_empty(slot)) {
      if (equal_(keys_[slot], key)) return values_[slot];
      slot = (slot + 1) & mask_;
    }
    // A new key: keep the table at most half full.
    if (2 * (size_ + 1) > static_cast<int64_t>(keys_.size())) {
      resize(keys_.size() * 2);
      slot = hash_(key) & mask_;
      while (!is_empty(slot)) slot = (slot + 1) & mask_;
    }
    keys_[slot] = key;
    values_[slot] = 0;
    ++size_;
    return values_[slot];
  }

  // The value of a key known to be present.
  int64_t at(const Key& key) const {
    std::size_t slot = hash_(key) & mask_;
    while (!equal_(keys_[slot], key)) slot = (slot + 1) & mask_;
    return values_[slot];
  }

  template <class Fn>
  void for_each(Fn fn) {
    for (std::size_t s = 0; s < keys_.size(); ++s)
      if (!is_empty(s)) fn(keys_[s], values_[s]);
  }

  int64_t size() const { return size_; }

 private:
  bool is_empty(std::size_t slot) const {
    return std::memcmp(&keys_[slot], &empty_, sizeof(Key)) == 0;
  }
  void resize(std::size_t capacity) {
    std::vector<Key> old_keys(capacity, empty_);
    std::vector<int64_t> old_values(capacity, 0);
    old_keys.swap(keys_);
    old_values.swap(values_);
    mask_ = capacity - 1;
    size_ = 0;
    for (std::size_t s = 0; s < old_keys.size(); ++s)
      if (std::memcmp(&old_keys[s], &empty_, sizeof(Key)) != 0)
        (*this)[old_keys[s]] = old_values[s];
  }

  Hash hash_;
  Equal equal_;
  Key empty_;
  std::vector<Key> keys_;
  std::vector<int64_t> values_;
  std::size_t mask_ = 0;
  int64_t size_ = 0;
};

// Sorts (key, value) pairs by key, least significant 11 bits first.
inline void radix_sort(std::vector<std::pair<uint64_t, int64_t>>& a, int key_bits) {
  std::vector<std::pair<uint64_t, int64_t>> tmp(a.size());
  for (int shift = 0; shift < key_bits; shift += 11) {
    std::array<int64_t, 2049> start{};
    for (const auto& e : a) ++start[((e.first >> shift) & 2047) + 1];
    for (int d = 0; d < 2048; ++d) start[d + 1] += start[d];
    for (const auto& e : a) tmp[start[(e.first >> shift) & 2047]++] = e;
    a.swap(tmp);
  }
}

// Keys wider than kDirectBits (and narrower than 64 bits, so that all ones
// marks an empty slot): counts in a hash table, radix-sorted distinct keys.
template <class T, class IndexT>
DistinctColors<T> count_packed(const PixelView<T>& img, const KeyPacking<T>& pack,
                               IndexT* index, int nt) {
  const int C = img.n_channels;
  auto hash = [](uint64_t k) { return static_cast<std::size_t>(mix64(k)); };
  auto equal = [](uint64_t a, uint64_t b) { return a == b; };
  HashTable<uint64_t, decltype(hash), decltype(equal)> table(hash, equal, ~0ULL);
  for (int64_t i = 0; i < img.n_pixels; ++i) ++table[pack.key(img.data + i * C)];
  std::vector<std::pair<uint64_t, int64_t>> entries;
  entries.reserve(table.size());
  table.for_each([&](uint64_t k, int64_t count) { entries.emplace_back(k, count); });
  radix_sort(entries, pack.bits);
  DistinctColors<T> out;
  out.n_channels = C;
  out.colors.resize(entries.size() * C);
  out.counts.resize(entries.size());
  for (std::size_t r = 0; r < entries.size(); ++r) {
    pack.unpack(entries[r].first, &out.colors[r * C]);
    out.counts[r] = entries[r].second;
    table[entries[r].first] = static_cast<int64_t>(r);
  }
  if (index) {
    (void)nt;
#pragma omp parallel for num_threads(nt) schedule(static)
    for (int64_t i = 0; i < img.n_pixels; ++i)
      index[i] = static_cast<IndexT>(table.at(pack.key(img.data + i * C)));
  }
  return out;
}

// ---------------------------------------------------------------------------
// Any pixels: a hash table of rows (identified by their first pixel), the
// distinct rows sorted. Rows compare by value, so -0.0 equals 0.0.

template <class T>
uint64_t canonical_bits(T v) {
  if constexpr (std::is_floating_point<T>::value) {
    if (v == T(0)) return 0;  // -0.0 and 0.0 hash alike
    uint64_t bits = 0;
    std::memcpy(&bits, &v, sizeof(T));
    return bits;
  } else {
    return static_cast<uint64_t>(v);
  }
}

template <class T, class IndexT>
DistinctColors<T> count_rows(const PixelView<T>& img, IndexT* index, int nt) {
  const int C = img.n_channels;
  const T* px = img.data;
  if (std::is_floating_point<T>::value) {
    bool has_nan = false;
    for (int64_t i = 0; i < img.n_pixels * C; ++i) has_nan |= std::isnan(px[i]);
    if (has_nan) throw std::invalid_argument("pixels contain NaN");
  }
  auto hash = [px, C](int64_t row) {
    uint64_t h = 0x9e3779b97f4a7c15ULL;
    for (int c = 0; c < C; ++c) h = mix64(h ^ canonical_bits(px[row * C + c]));
    return static_cast<std::size_t>(h);
  };
  auto equal = [px, C](int64_t a, int64_t b) {
    if (a < 0 || b < 0) return a == b;
    for (int c = 0; c < C; ++c)
      if (!(px[a * C + c] == px[b * C + c])) return false;
    return true;
  };
  HashTable<int64_t, decltype(hash), decltype(equal)> table(hash, equal, -1);
  for (int64_t i = 0; i < img.n_pixels; ++i) ++table[i];
  std::vector<std::pair<int64_t, int64_t>> entries;  // (first pixel, count)
  entries.reserve(table.size());
  table.for_each([&](int64_t row, int64_t count) { entries.emplace_back(row, count); });
  std::sort(entries.begin(), entries.end(), [px, C](const auto& a, const auto& b) {
    return std::lexicographical_compare(px + a.first * C, px + a.first * C + C,
                                        px + b.first * C, px + b.first * C + C);
  });
  DistinctColors<T> out;
  out.n_channels = C;
  out.colors.resize(entries.size() * C);
  out.counts.resize(entries.size());
  for (std::size_t r = 0; r < entries.size(); ++r) {
    std::copy(px + entries[r].first * C, px + entries[r].first * C + C, &out.colors[r * C]);
    out.counts[r] = entries[r].second;
    table[entries[r].first] = static_cast<int64_t>(r);
  }
  if (index) {
    (void)nt;
#pragma omp parallel for num_threads(nt) schedule(static)
    for (int64_t i = 0; i < img.n_pixels; ++i) index[i] = static_cast<IndexT>(table.at(i));
  }
  return out;
}

// ---------------------------------------------------------------------------

// The distinct rows of `img` with their counts; index (may be null) receives
// each pixel's row in the result.
template <class T, class IndexT>
DistinctColors<T> count_colors(const PixelView<T>& img, IndexT* index, int n_threads) {
  if (!img.data || img.n_pixels < 1)
    throw std::invalid_argument("the image has no pixels");
  if (img.n_channels < 1) throw std::invalid_argument("the image has no channels");
  // Small images are not worth the cost of starting threads.
  const int nt = resolve_threads(n_threads, img.n_pixels >> 14);
  if constexpr (std::is_integral<T>::value) {
    const KeyPacking<T> pack = key_packing(img, nt);
    if (pack.bits <= kDirectBits) {
      if (img.n_channels == 3) return count_direct<3>(img, pack, index, nt);
      if (img.n_channels == 1) return count_direct<1>(img, pack, index, nt);
      return count_direct<0>(img, pack, index, nt);
    }
    if (pack.bits < 64) return count_packed(img, pack, index, nt);
  }
  return count_rows(img, index, nt);
}

// ---------------------------------------------------------------------------

// The rows of values (n_values x width) that index selects, into out
// (n x width): how each pixel takes what was computed once per distinct
// colour. Throws unless every index is in [0, n_values).
template <class V, class IndexT>
void take_rows(const V* values, int64_t n_values, int64_t width, const IndexT* index,
               int64_t n, V* out, int n_threads) {
  const int nt = resolve_threads(n_threads, n >> 14);
  bool bad = false;
  (void)nt;
#pragma omp parallel for num_threads(nt) schedule(static) reduction(|| : bad)
  for (int64_t i = 0; i < n; ++i) {
    const int64_t r = static_cast<int64_t>(index[i]);
    if (r < 0 || r >= n_values) {
      bad = true;
      continue;
    }
    for (int64_t c = 0; c < width; ++c) out[i * width + c] = values[r * width + c];
  }
  if (bad) throw std::out_of_range("index out of range of the rows");
}

}  // namespace colors
}  // namespace skseg
