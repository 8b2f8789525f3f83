// Cross-entropy over one chunk of logits rows, for float32 and float64 on the CPU (see
// linear_cross_entropy_cpp.py). Each row of `logits` (n x V, row-major) gets its loss term in
// `row_loss`; with `write_grad` the row is then overwritten in place with d loss / d logits times
// `scale`, so the caller's next product (grad @ W) reads it where it lies.
//
// Per row: m = max, s = sum exp(x - m), lse = m + log s;
//   loss = (1 - eps) * (lse - x[t]) + eps * (lse - sum(x) / V)
//   grad = scale * (exp(x - lse) - eps / V - (1 - eps) * onehot(t))
// A row whose target is ignore_index has loss 0 and gradient 0. OpenMP over rows; the float32 exp
// is a branch-free range reduction + polynomial so that the row loops vectorize.

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <omp.h>

namespace {

// exp(x) for x <= 0 (and NaN, which it returns): x = k ln2 + r with |r| <= ln2 / 2, exp(r) by its
// Taylor series to r^7 (relative error below 1e-8 there), times 2^k built in the exponent bits.
// Below -87.3 (where exp would be subnormal) the result is 0.
inline float exp_nonpositive(float x) {
  const float k = __builtin_rintf(x * 1.44269504088896341f);
  float r = x - k * 0.693359375f;
  r = r + k * 2.12194440e-4f;
  float p = 1.0f / 5040.0f;
  p = p * r + 1.0f / 720.0f;
  p = p * r + 1.0f / 120.0f;
  p = p * r + 1.0f / 24.0f;
  p = p * r + 1.0f / 6.0f;
  p = p * r + 0.5f;
  p = p * r + 1.0f;
  p = p * r + 1.0f;
  const float kk = k < -126.0f ? -126.0f : k;  // (only reached where the result is 0 below)
  const int32_t bits = (static_cast<int32_t>(kk) + 127) << 23;
  float two_k;
  std::memcpy(&two_k, &bits, sizeof two_k);
  return x < -87.3f ? 0.0f : p * two_k;
}

inline double exp_nonpositive(double x) { return std::exp(x); }

template <typename T>
void one_row(T* row, int64_t t, bool ignored, T* loss, int64_t V, T eps, T scale, bool write_grad) {
  if (ignored) {
    *loss = 0;
    if (write_grad) std::memset(row, 0, sizeof(T) * V);
    return;
  }
  const T x_t = row[t];
  T m = -std::numeric_limits<T>::infinity();
  T sum_x = 0;
  for (int64_t c = 0; c < V; ++c) m = row[c] > m ? row[c] : m;
  // A row of -inf (or with +inf) has no finite shift; subtracting it anyway gives NaN, as eager.
  T s = 0;
  if (write_grad) {
#pragma omp simd reduction(+ : s, sum_x)
    for (int64_t c = 0; c < V; ++c) {
      sum_x += row[c];
      const T e = exp_nonpositive(row[c] - m);
      s += e;
      row[c] = e;  // exp(x - m), turned into the gradient below
    }
  } else {
#pragma omp simd reduction(+ : s, sum_x)
    for (int64_t c = 0; c < V; ++c) {
      sum_x += row[c];
      s += exp_nonpositive(row[c] - m);
    }
  }
  const T lse = m + std::log(s);
  *loss = (1 - eps) * (lse - x_t) + (eps != 0 ? eps * (lse - sum_x / V) : T(0));
  if (!write_grad) return;
  const T inv_s = T(1) / s;
  const T uniform = eps / V;
#pragma omp simd
  for (int64_t c = 0; c < V; ++c) row[c] = (row[c] * inv_s - uniform) * scale;
  row[t] -= (1 - eps) * scale;
}

template <typename T>
int64_t rows(T* logits, const int64_t* target, T* row_loss, int64_t n, int64_t V, int64_t ignore_index,
             double eps, double scale, int write_grad, int threads) {
  int64_t bad = INT64_MAX;  // the first row whose target is out of range
#pragma omp parallel for num_threads(threads) schedule(static) reduction(min : bad) if (n > 1)
  for (int64_t i = 0; i < n; ++i) {
    const int64_t t = target[i];
    const bool ignored = t == ignore_index;
    if (!ignored && (t < 0 || t >= V)) {
      bad = i < bad ? i : bad;
      continue;
    }
    one_row<T>(logits + i * V, t, ignored, row_loss + i, V, T(eps), T(scale), write_grad != 0);
  }
  return bad == INT64_MAX ? 0 : bad + 1;  // 1 + that row, or 0
}

}  // namespace

extern "C" {

int64_t ts_lce_rows_f32(float* logits, const int64_t* target, float* row_loss, int64_t n, int64_t V,
                        int64_t ignore_index, double eps, double scale, int write_grad, int threads) {
  return rows<float>(logits, target, row_loss, n, V, ignore_index, eps, scale, write_grad, threads);
}

int64_t ts_lce_rows_f64(double* logits, const int64_t* target, double* row_loss, int64_t n, int64_t V,
                        int64_t ignore_index, double eps, double scale, int write_grad, int threads) {
  return rows<double>(logits, target, row_loss, n, V, ignore_index, eps, scale, write_grad, threads);
}

}  // extern "C"
