// Weighted k-means: greedy k-means++ seeding and Lloyd iterations, as
// scikit-learn's KMeans(algorithm="lloyd") computes them, with Hamerly's
// lower bounds to skip the distance computations that cannot change a label.
//
// Like the EM core, every sum runs over the fixed chunk partition of
// gmm::reduce_chunks_in_order and adds the chunks in order, and each point's
// label depends on that point alone, so the result is bit-identical for any
// number of threads. Memory beyond the labels: one float per point.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <memory>
#include <utility>
#include <stdexcept>
#include <vector>

#include "skseg/gmm.hpp"

namespace skseg {
namespace kmeans {

// Threads worth starting for n points and k centres: each parallel region
// costs more than a pass over a small input, on a busy machine far more.
// The result does not depend on it.
inline int useful_threads(int n_threads, int64_t n, int k) {
  const int64_t work = n * static_cast<int64_t>(k);
  return resolve_threads(n_threads, work >> 16);
}

template <class T>
struct Points {
  const T* x = nullptr;  // (n, d), C order
  const T* w = nullptr;  // (n,) or null for unit weights
  int64_t n = 0;
  int d = 0;
  double weight(int64_t i) const { return w ? static_cast<double>(w[i]) : 1.0; }
};

struct Result {
  std::vector<double> centres;  // (k, d)
  double inertia = 0.0;         // sum w |x - centre|^2
  int n_iter = 0;
};

// Finite points and weights whose weighted sums or squared distances
// overflow double.
[[noreturn]] inline void throw_overflow() {
  throw std::invalid_argument(
      "k-means overflows: X or sample_weight has values too large for float64 "
      "arithmetic. Rescale X, or divide sample_weight by a constant.");
}

// splitmix64: a small generator whose stream is the same on every platform.
class Random {
 public:
  explicit Random(uint64_t seed) : state_(seed) {}
  uint64_t next() {
    state_ += 0x9e3779b97f4a7c15ULL;
    uint64_t z = state_;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }
  double uniform() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }

 private:
  uint64_t state_;
};

template <class T>
double squared_distance(const T* x, const double* c, int d) {
  double s = 0.0;
  for (int a = 0; a < d; ++a) {
    const double diff = static_cast<double>(x[a]) - c[a];
    s += diff * diff;
  }
  return s;
}

// The same in the data's precision T (float for float32 data, as
// scikit-learn computes), for the distances that only compare.
template <class T>
T squared_distance_t(const T* x, const T* c, int d) {
  T s = 0;
  for (int a = 0; a < d; ++a) s += (x[a] - c[a]) * (x[a] - c[a]);
  return s;
}

// Runs fn(begin, end, acc) over the fixed chunks of n points (acc: the
// chunk's acc_size zeroed doubles) and adds the chunks' sums in order.
template <class Fn>
std::vector<double> chunk_sums(int64_t n, int n_threads, std::size_t acc_size, Fn fn) {
  std::vector<double> total(acc_size, 0.0);
  gmm::reduce_chunks_in_order(
      n, n_threads, acc_size, total.data(), []() { return std::make_unique<int>(0); },
      [&](int&, int64_t begin, int64_t end, double* acc) { fn(begin, end, acc); });
  return total;
}

// The point that a uniform draw r in [0, sum v) selects with probability
// proportional to v(i) >= 0, from per-chunk sums of v (a search of the
// cumulative sum, chunk by chunk). Falls back to the last point with v > 0.
template <class V>
int64_t select_point(double r, const std::vector<double>& per_chunk, int64_t n, V v) {
  const int64_t chunk_rows = gmm::chunk_rows_for(n);
  int64_t last_positive = 0;
  for (std::size_t c = 0; c < per_chunk.size(); ++c) {
    const int64_t begin = static_cast<int64_t>(c) * chunk_rows;
    const int64_t end = std::min(n, begin + chunk_rows);
    if (r >= per_chunk[c]) {
      r -= per_chunk[c];
      if (per_chunk[c] > 0)
        for (int64_t i = end - 1; i >= begin; --i)
          if (v(i) > 0) {
            last_positive = i;
            break;
          }
      continue;
    }
    for (int64_t i = begin; i < end; ++i) {
      const double vi = v(i);
      if (vi > 0) last_positive = i;
      if (r < vi) return i;
      r -= vi;
    }
  }
  return last_positive;
}

// Per-chunk sums of v(i) (one double per chunk).
template <class V>
std::vector<double> per_chunk_sums(int64_t n, int n_threads, V v) {
  const int64_t chunk_rows = gmm::chunk_rows_for(n);
  const int64_t n_chunks = (n + chunk_rows - 1) / chunk_rows;
  std::vector<double> out(n_chunks, 0.0);
  const int nt = resolve_threads(n_threads, n_chunks);
  (void)nt;
#pragma omp parallel for num_threads(nt) schedule(dynamic, 1)
  for (int64_t c = 0; c < n_chunks; ++c) {
    double s = 0.0;
    for (int64_t i = c * chunk_rows; i < std::min(n, (c + 1) * chunk_rows); ++i) s += v(i);
    out[c] = s;
  }
  return out;
}

// Scratch of one thread for trial_potentials.
template <class T>
struct TrialScratch {
  static constexpr int kBlock = 256;  // rows per block
  static constexpr int kLanes = 8;    // partial sums per candidate
  TrialScratch(int d, int n_trials)
      : x(static_cast<std::size_t>(d) * kBlock), dist(kBlock), nearest(kBlock),
        potential(kBlock), lanes(static_cast<std::size_t>(n_trials) * kLanes) {}
  std::vector<T> x;             // (d, kBlock) feature-major copy of a block
  std::vector<T> dist;          // (kBlock,) squared distances to one centre
  std::vector<float> nearest;   // (kBlock,) to the nearest centre
  std::vector<double> potential;
  std::vector<double> lanes;    // (n_trials, kLanes)
};

// Squared distances (in T, features added in order, as squared_distance_t)
// of the m rows of a feature-major block to centre c.
template <class T>
void block_distances(const T* x, int m, int d, const T* c, T* dist) {
  constexpr int B = TrialScratch<T>::kBlock;
  std::fill(dist, dist + m, T(0));
  for (int a = 0; a < d; ++a) {
    const T* xa = x + a * B;
    const T ca = c[a];
    for (int i = 0; i < m; ++i) dist[i] += (xa[i] - ca) * (xa[i] - ca);
  }
}

// One k-means++ pass over points [begin, end): brings their distance to the
// nearest centre up to date with centre `last`, and adds to acc[t] each
// candidate's potential sum_i w_i min(nearest_i, |x_i - candidate_t|^2).
// Blocks of rows are copied feature-major so that the loops over rows
// vectorise; each candidate's sum runs in kLanes partial sums (fixed by the
// row's place in the chunk, so the same for any number of threads).
template <class T>
void trial_potentials(const Points<T>& pts, int64_t begin, int64_t end, const T* last,
                      const T* candidates, int n_trials, float* closest,
                      TrialScratch<T>& s, double* acc) {
  constexpr int B = TrialScratch<T>::kBlock, L = TrialScratch<T>::kLanes;
  const int d = pts.d;
  std::fill(s.lanes.begin(), s.lanes.end(), 0.0);
  for (int64_t b0 = begin; b0 < end; b0 += B) {
    const int m = static_cast<int>(std::min<int64_t>(B, end - b0));
    for (int i = 0; i < m; ++i)
      for (int a = 0; a < d; ++a) s.x[a * B + i] = pts.x[(b0 + i) * d + a];
    block_distances(s.x.data(), m, d, last, s.dist.data());
    for (int i = 0; i < m; ++i) {
      const float near = std::min(closest[b0 + i], static_cast<float>(s.dist[i]));
      closest[b0 + i] = s.nearest[i] = near;
    }
    for (int t = 0; t < n_trials; ++t) {
      block_distances(s.x.data(), m, d, candidates + t * d, s.dist.data());
      for (int i = 0; i < m; ++i)
        s.potential[i] = pts.weight(b0 + i) *
                         static_cast<double>(std::min(s.nearest[i], static_cast<float>(s.dist[i])));
      double* lane = &s.lanes[t * L];
      int i = 0;
      for (; i + L <= m; i += L)
        for (int l = 0; l < L; ++l) lane[l] += s.potential[i + l];
      for (; i < m; ++i) lane[i % L] += s.potential[i];
    }
  }
  for (int t = 0; t < n_trials; ++t)
    for (int l = 0; l < L; ++l) acc[t] += s.lanes[t * L + l];
}

// Greedy k-means++ (scikit-learn's _kmeans_plusplus): each new centre is the
// best, by potential, of 2 + log(k) points drawn with probability
// proportional to weight x squared distance to the nearest centre.
//
// One pass over the points per centre: it brings each point's distance to
// the nearest centre up to date with the centre chosen last, and sums the
// potential of each candidate per chunk; the chunk sums of the chosen
// candidate are the next draw's. A draw reads the distances of the few points
// it scans with the last centre applied. Returns the k chosen points' indices.
template <class T>
std::vector<int64_t> kmeans_plusplus(const Points<T>& pts, int k, Random& rng,
                                     int n_threads) {
  const int d = pts.d;
  const int64_t n = pts.n;
  const int n_trials = 2 + static_cast<int>(std::log(k));
  std::vector<int64_t> indices(k);
  std::vector<double> by_chunk = per_chunk_sums(n, n_threads, [&](int64_t i) { return pts.weight(i); });
  double total = 0.0;
  for (double s : by_chunk) total += s;
  int64_t chosen = select_point(rng.uniform() * total, by_chunk, n,
                                [&](int64_t i) { return pts.weight(i); });
  indices[0] = chosen;
  // Squared distance to the nearest centre so far (float: memory), without
  // the last chosen centre until the next pass applies it.
  std::vector<float> closest(n, std::numeric_limits<float>::infinity());
  auto nearest = [&](int64_t i, int64_t last) {
    return std::min(closest[i], static_cast<float>(squared_distance_t(
                                    pts.x + i * d, pts.x + last * d, d)));
  };
  auto potential = [&](int64_t i) { return pts.weight(i) * nearest(i, chosen); };
  by_chunk = per_chunk_sums(n, n_threads, potential);
  std::vector<int64_t> candidates(n_trials);
  std::vector<T> candidate_centres(static_cast<std::size_t>(n_trials) * d);
  for (int j = 1; j < k; ++j) {
    double pot = 0.0;
    for (double s : by_chunk) pot += s;
    if (!std::isfinite(pot)) throw_overflow();
    for (int t = 0; t < n_trials; ++t) {
      candidates[t] = select_point(rng.uniform() * pot, by_chunk, n, potential);
      for (int a = 0; a < d; ++a)
        candidate_centres[t * d + a] = pts.x[candidates[t] * d + a];
    }
    const std::vector<double> slots = gmm::chunk_slots(
        n, 0, gmm::chunk_rows_for(n), n_threads, n_trials,
        [&]() { return std::make_unique<TrialScratch<T>>(d, n_trials); },
        [&](TrialScratch<T>& scratch, int64_t begin, int64_t end, double* acc) {
          trial_potentials(pts, begin, end, pts.x + chosen * d, candidate_centres.data(),
                           n_trials, closest.data(), scratch, acc);
        });
    std::vector<double> trial_pot(n_trials, 0.0);
    for (std::size_t c = 0; c < by_chunk.size(); ++c)
      for (int t = 0; t < n_trials; ++t) trial_pot[t] += slots[c * n_trials + t];
    const int best = static_cast<int>(
        std::min_element(trial_pot.begin(), trial_pot.end()) - trial_pot.begin());
    chosen = candidates[best];
    indices[j] = chosen;
    for (std::size_t c = 0; c < by_chunk.size(); ++c) by_chunk[c] = slots[c * n_trials + best];
  }
  return indices;
}

// A float lower bound that stays one: scaled below the (non-negative) value
// by more than float rounding can take back.
inline float round_down(double v) { return static_cast<float>(v * (1.0 - 0x1.0p-20)); }

// Mean over features of the weighted variance: scikit-learn's scale of tol
// for the points repeated as often as their weights say (the pixels of an
// image, for its distinct colours weighted by their counts).
template <class T>
double mean_variance(const Points<T>& pts, int n_threads) {
  const int d = pts.d;
  const std::vector<double> sums = chunk_sums(
      pts.n, n_threads, d + 1, [&](int64_t begin, int64_t end, double* acc) {
        for (int64_t i = begin; i < end; ++i) {
          const double wi = pts.weight(i);
          acc[d] += wi;
          for (int a = 0; a < d; ++a) acc[a] += wi * pts.x[i * d + a];
        }
      });
  std::vector<double> mean(d);
  for (int a = 0; a < d; ++a) mean[a] = sums[a] / sums[d];
  const std::vector<double> sq = chunk_sums(
      pts.n, n_threads, d, [&](int64_t begin, int64_t end, double* acc) {
        for (int64_t i = begin; i < end; ++i)
          for (int a = 0; a < d; ++a) {
            const double diff = pts.x[i * d + a] - mean[a];
            acc[a] += pts.weight(i) * diff * diff;
          }
      });
  double total = 0.0;
  for (int a = 0; a < d; ++a) total += sq[a] / sums[d];
  return total / d;
}

// scikit-learn's relocation of empty clusters: each takes, in turn, the point
// farthest from its centre (ties: the lowest index), which leaves its own
// cluster's sums. Labels are not changed.
template <class T>
void relocate_empty(const Points<T>& pts, const std::vector<double>& centres, int k,
                    const int32_t* labels, std::vector<double>& sums, int nt) {
  const int d = pts.d;
  std::vector<int> empty;
  for (int j = 0; j < k; ++j)
    if (!(sums[j * (d + 1)] > 0)) empty.push_back(j);
  if (empty.empty()) return;
  std::vector<double> far(pts.n);
  (void)nt;
#pragma omp parallel for num_threads(nt) schedule(static)
  for (int64_t i = 0; i < pts.n; ++i)
    far[i] = pts.weight(i) > 0
                 ? squared_distance(pts.x + i * d, &centres[labels[i] * d], d)
                 : -1.0;
  for (int j : empty) {
    const int64_t i = std::max_element(far.begin(), far.end()) - far.begin();
    if (!(far[i] > 0)) break;  // fewer distinct points than clusters
    far[i] = -1.0;
    const double wi = pts.weight(i);
    double* from = &sums[labels[i] * (d + 1)];
    double* to = &sums[j * (d + 1)];
    from[0] -= wi;
    to[0] = wi;
    for (int a = 0; a < d; ++a) {
      from[1 + a] -= wi * pts.x[i * d + a];
      to[1 + a] = wi * pts.x[i * d + a];
    }
  }
  // A cluster still empty keeps its centre.
  for (int j = 0; j < k; ++j)
    if (!(sums[j * (d + 1)] > 0)) {
      sums[j * (d + 1)] = 1.0;
      for (int a = 0; a < d; ++a) sums[j * (d + 1) + 1 + a] = centres[j * d + a];
    }
}

// Points whose bounds are tested before the ones that fail are searched.
constexpr int kSearchBlock = 256;

// Lloyd iterations from `centres` (k x d, updated) until no label changes,
// or the squared centre shift sums to at most tol x mean variance, or
// max_iter iterations; labels (n,) receive the final assignment (int32:
// cluster ids, whatever the number of points).
template <class T>
Result lloyd(const Points<T>& pts, std::vector<double> centres, int k, int max_iter,
             double tol, int n_threads, int32_t* labels) {
  const int d = pts.d;
  const int64_t n = pts.n;
  const int nt = resolve_threads(n_threads);
  const double tol_abs = tol > 0 ? tol * mean_variance(pts, n_threads) : 0.0;
  // Hamerly's lower bound on the distance to any centre but the own one. The
  // distance to the own centre is computed each time instead of bounded: for
  // colours (d = 3) it costs less than an array of upper bounds in memory.
  std::vector<float> lower(n, 0.0f);
  // The centres in T, as rows and transposed (d x k), for the distances.
  std::vector<double> half_gap(k);
  std::vector<T> centres_T(centres.size()), centres_t(centres.size());
  double max_shift = 0.0;
  std::fill(labels, labels + n, 0);
  // Each chunk's per-cluster weight and weighted sums, kept from one
  // iteration to the next and updated by the points that change cluster
  // only; the chunks (gmm's fixed partition) are added in order, so the
  // totals do not depend on the number of threads.
  const std::size_t S = static_cast<std::size_t>(k) * (d + 1);
  const int64_t chunk_rows = gmm::chunk_rows_for(n);
  const int64_t n_chunks = (n + chunk_rows - 1) / chunk_rows;
  const int nt_chunks = static_cast<int>(std::min<int64_t>(nt, n_chunks));
  std::vector<double> slots(n_chunks * S, 0.0);
  std::vector<T> scratch(n_chunks * k);
  std::vector<int64_t> chunk_changes(n_chunks);
  Result res;

  auto add = [&](double* acc, int j, const T* x, double wi, double sign) {
    double* s = acc + j * (d + 1);
    s[0] += sign * wi;
    for (int f = 0; f < d; ++f) s[1 + f] += sign * wi * x[f];
  };

  // One assignment pass; returns the per-cluster weight and weighted sums
  // and the number of changed labels.
  auto assign = [&](bool first) {
    for (int j = 0; j < k; ++j) {
      double gap = std::numeric_limits<double>::infinity();
      for (int m = 0; m < k; ++m)
        if (m != j)
          gap = std::min(gap, squared_distance(&centres[j * d], &centres[m * d], d));
      half_gap[j] = 0.5 * std::sqrt(gap);
      for (int f = 0; f < d; ++f) {
        centres_T[j * d + f] = static_cast<T>(centres[j * d + f]);
        centres_t[static_cast<std::size_t>(f) * k + j] = centres_T[j * d + f];
      }
    }
    (void)nt_chunks;
#pragma omp parallel for num_threads(nt_chunks) schedule(dynamic, 1)
    for (int64_t c = 0; c < n_chunks; ++c) {
      double* acc = &slots[c * S];
      T* dist = &scratch[c * k];
      int64_t changed = 0;
      int64_t search[kSearchBlock];  // points of the block to search
      const int64_t c_end = std::min(n, (c + 1) * chunk_rows);
      for (int64_t b0 = c * chunk_rows; b0 < c_end; b0 += kSearchBlock) {
        const int m = static_cast<int>(std::min<int64_t>(kSearchBlock, c_end - b0));
        int n_search = 0;
        if (first) {
          for (int b = 0; b < m; ++b) search[n_search++] = b0 + b;
        } else {
          // The bound test of every point of the block, without branches;
          // the few that fail it are searched below. (Searching inside this
          // loop made it about a third slower on colours.)
          for (int b = 0; b < m; ++b) {
            const int64_t i = b0 + b;
            const int a = labels[i];
            lower[i] = std::max(0.0f, round_down(lower[i] - max_shift));
            const double bound = std::max<double>(half_gap[a], lower[i]);
            const T own = squared_distance_t(pts.x + i * d, &centres_T[a * d], d);
            search[n_search] = i;
            n_search += !(own <= bound * bound);
          }
        }
        for (int t = 0; t < n_search; ++t) {
          const int64_t i = search[t];
          const T* x = pts.x + i * d;
          const int a = labels[i];
          // Distances to all centres, feature by feature over the transposed
          // centres (a loop over k that vectorises).
          std::fill(dist, dist + k, T(0));
          for (int f = 0; f < d; ++f) {
            const T xf = x[f];
            const T* cf = &centres_t[static_cast<std::size_t>(f) * k];
            for (int j = 0; j < k; ++j) dist[j] += (xf - cf[j]) * (xf - cf[j]);
          }
          T d1 = std::numeric_limits<T>::infinity(), d2 = d1;
          int best = 0;
          for (int j = 0; j < k; ++j) {
            if (dist[j] < d1) {
              d2 = d1;
              d1 = dist[j];
              best = j;
            } else if (dist[j] < d2) {
              d2 = dist[j];
            }
          }
          lower[i] = round_down(std::sqrt(d2));
          if (first) {
            add(acc, best, x, pts.weight(i), 1.0);
          } else if (best != a) {
            add(acc, a, x, pts.weight(i), -1.0);
            add(acc, best, x, pts.weight(i), 1.0);
            ++changed;
          }
          labels[i] = best;
        }
      }
      chunk_changes[c] = changed;
    }
    std::vector<double> sums(S, 0.0);
    int64_t n_changed = 0;
    for (int64_t c = 0; c < n_chunks; ++c) {
      for (std::size_t j = 0; j < S; ++j) sums[j] += slots[c * S + j];
      n_changed += chunk_changes[c];
    }
    return std::make_pair(sums, n_changed);
  };

  for (int it = 1; it <= max_iter; ++it) {
    auto [sums, n_changed] = assign(it == 1);
    res.n_iter = it;
    const bool unchanged = it > 1 && n_changed == 0;
    relocate_empty(pts, centres, k, labels, sums, nt);
    max_shift = 0.0;
    double shift_total = 0.0;
    for (int j = 0; j < k; ++j) {
      const double* s = &sums[j * (d + 1)];
      double moved = 0.0;
      for (int a = 0; a < d; ++a) {
        const double c = s[1 + a] / s[0];
        if (!std::isfinite(c)) throw_overflow();
        moved += (c - centres[j * d + a]) * (c - centres[j * d + a]);
        centres[j * d + a] = c;
      }
      max_shift = std::max(max_shift, std::sqrt(moved));
      shift_total += moved;
    }
    if (unchanged) break;  // the centres are the previous ones
    if (shift_total <= tol_abs || it == max_iter) {
      assign(false);  // labels of the final centres
      break;
    }
  }
  res.inertia = chunk_sums(n, nt, 1, [&](int64_t begin, int64_t end, double* acc) {
                  for (int64_t i = begin; i < end; ++i)
                    acc[0] += pts.weight(i) *
                              squared_distance(pts.x + i * d, &centres[labels[i] * d], d);
                })[0];
  if (!std::isfinite(res.inertia)) throw_overflow();
  res.centres = std::move(centres);
  return res;
}

template <class T>
void check_points(const Points<T>& pts, int k, int n_threads) {
  if (pts.n < 1 || pts.d < 1 || !pts.x)
    throw std::invalid_argument("k-means needs at least one point with one feature");
  if (k < 1) throw std::invalid_argument("n_clusters must be >= 1");
  if (k > pts.n)
    throw std::invalid_argument("n_clusters must not exceed the number of points");
  gmm::DataView<T> view;
  view.x = pts.x;
  view.w = pts.w;
  view.n_rows = pts.n;
  view.n_features = pts.d;
  gmm::check_data(view, n_threads);
}

// Indices of the k points that greedy k-means++ seeded by `seed` picks.
template <class T>
std::vector<int64_t> seed_plusplus(const Points<T>& pts, int k, uint64_t seed,
                                   int n_threads) {
  check_points(pts, k, n_threads);
  Random rng(seed);
  return kmeans_plusplus(pts, k, rng, useful_threads(n_threads, pts.n, k));
}

// k-means from `init` (k x d), or from k-means++ seeded by `seed` when init
// is empty.
template <class T>
Result fit(const Points<T>& pts, int k, const std::vector<double>& init, uint64_t seed,
           int max_iter, double tol, int n_threads, int32_t* labels) {
  if (max_iter < 1) throw std::invalid_argument("max_iter must be >= 1");
  if (!(tol >= 0)) throw std::invalid_argument("tol must be >= 0");
  check_points(pts, k, n_threads);
  n_threads = useful_threads(n_threads, pts.n, k);
  std::vector<double> centres = init;
  if (centres.empty()) {
    Random rng(seed);
    centres.reserve(static_cast<std::size_t>(k) * pts.d);
    for (int64_t i : kmeans_plusplus(pts, k, rng, n_threads))
      centres.insert(centres.end(), pts.x + i * pts.d, pts.x + (i + 1) * pts.d);
  } else if (centres.size() != static_cast<std::size_t>(k) * pts.d) {
    throw std::invalid_argument("initial centres must have shape (n_clusters, n_features)");
  }
  return lloyd(pts, std::move(centres), k, max_iter, tol, n_threads, labels);
}

}  // namespace kmeans
}  // namespace skseg
