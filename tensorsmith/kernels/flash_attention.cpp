// Tiled flash attention, forward and backward, for float32 on the CPU (see flash_cpp.py).
//
// Layout: q (B, H, Lq, D), k and v (B, H, Lk, D), any element strides (0 allowed); mask (B, H, Lq, Lk)
// with any strides, bool (kind 1, nonzero = attend) or float32 (kind 2, added to the scores).
// Outputs are contiguous. One compiled library serves every shape: sizes and strides come in an
// int64 array.
//
// Vectors are the target's own width, VL floats: 16 with AVX-512, else 8 (AVX2's 256 bits; GCC
// spills wider vectors it must split, which made this kernel several times slower there).
// Each thread packs the K/V (and, in the backward, Q/dO) panels of the (batch, head) it works on
// into zero-padded, 64-byte aligned buffers: head dim rounded up to VL, K and V^T as blocks of BK
// columns. The score tiles and products then run through one register-blocked microkernel
// (C[R x VL*NV] (+)= A[R x K] B[K x VL*NV], A read by broadcast with any strides, B and C contiguous
// rows), which is what GCC turns into vfmadd231ps with the accumulators in registers.
// Softmax is online (running max and sum per row); exp is a vectorised range reduction + polynomial.
// Causal tiles above the diagonal are skipped; on diagonal tiles the microkernel calls stop at the
// last VL-column vector (or the last key / first query) that a row group can see.
// A mask is first summarized per tile (MaskTiles): tiles it hides entirely are skipped, which is
// exact (they add zero probability), and it is applied only on tiles it does not leave wholly
// visible, so a causal mask costs about what is_causal does.

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <omp.h>
#if defined(__AVX512F__) || defined(__FMA__)
#include <immintrin.h>
#endif

namespace {

#if defined(__AVX512F__)
constexpr int VL = 16;  // floats per vector
constexpr int NV_MAX = 4;  // vectors per microkernel row: 4 x 4 accumulators of 32 registers
#else
constexpr int VL = 8;
constexpr int NV_MAX = 2;  // 4 x 2 accumulators, 2 B vectors, 1 broadcast of 16 registers
#endif
constexpr int BQ = 64;  // query rows per tile
constexpr int BK = 64;  // keys per tile
constexpr int MR = 4;   // rows per microkernel call
constexpr long FEW_QUERIES = 4;  // up to this many query rows: few_queries_fwd, no tiles
constexpr long FAR = 1L << 40;  // "no causal trimming" offset
constexpr float NEG_INF = -std::numeric_limits<float>::infinity();
constexpr float POS_INF = std::numeric_limits<float>::infinity();

typedef float vf __attribute__((vector_size(VL * 4)));
typedef int32_t vi __attribute__((vector_size(VL * 4)));

inline vf vload(const float* p) { vf v; std::memcpy(&v, p, sizeof v); return v; }
inline void vstore(float* p, vf v) { std::memcpy(p, &v, sizeof v); }
inline vf splat(float x) { return vf{} + x; }

inline vf vfma(vf a, vf b, vf c) {  // a * b + c, fused where the target has it
#if defined(__AVX512F__)
  return (vf)_mm512_fmadd_ps((__m512)a, (__m512)b, (__m512)c);
#elif defined(__FMA__)
  return (vf)_mm256_fmadd_ps((__m256)a, (__m256)b, (__m256)c);
#else
  return a * b + c;
#endif
}

inline vf vmax(vf a, vf b) { return a > b ? a : b; }

#if defined(__AVX512F__)
inline float hmax(vf v) { return _mm512_reduce_max_ps((__m512)v); }
inline float hsum(vf v) { return _mm512_reduce_add_ps((__m512)v); }
#else
inline float hmax(vf v) {
  float m = v[0];
  for (int i = 1; i < VL; ++i) m = std::max(m, v[i]);
  return m;
}
inline float hsum(vf v) {
  float s = 0.0f;
  for (int i = 0; i < VL; ++i) s += v[i];
  return s;
}
#endif

inline vf iota() {
  vf r;
  for (int i = 0; i < VL; ++i) r[i] = (float)i;
  return r;
}

// exp(x): x = n ln2 + r, |r| <= ln2/2, exp(r) by a degree-7 polynomial (relative error ~1e-7),
// times 2^n. Below -87.3 (and at -inf) it returns 0, so that no denormal reaches the products.
inline vf vexp(vf x) {
  const float lo = -87.3365447f, hi = 88.3762589f;
  const float c5 = 1.9875691500e-4f, c4 = 1.3981999507e-3f, c3 = 8.3334519073e-3f,
              c2 = 4.1665795894e-2f, c1 = 1.6666665459e-1f, c0 = 5.0000001201e-1f;
#if defined(__AVX512F__)
  const __m512 xv = (__m512)x;
  const __mmask16 keep = _mm512_cmp_ps_mask(xv, _mm512_set1_ps(lo), _CMP_GE_OQ);
  const __m512 xc = _mm512_min_ps(_mm512_max_ps(xv, _mm512_set1_ps(lo)), _mm512_set1_ps(hi));
  const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(xc, _mm512_set1_ps(1.44269504088896341f)),
                                        _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), xc);
  r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
  __m512 p = _mm512_set1_ps(c5);
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(c4));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(c3));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(c2));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(c1));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(c0));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
  return (vf)_mm512_maskz_scalef_ps(keep, p, n);
#else
  vi tiny = x < lo;
  vf xc = x < lo ? splat(lo) : x;
  xc = xc > hi ? splat(hi) : xc;
  vf n = (xc * 1.44269504088896341f + 12582912.0f) - 12582912.0f;  // round to nearest
  vf r = xc - n * 0.693359375f;  // ln2 in two parts: n * the first is exact
  r = r - n * -2.12194440e-4f;
  vf p = splat(c5);
  p = p * r + c4;
  p = p * r + c3;
  p = p * r + c2;
  p = p * r + c1;
  p = p * r + c0;
  p = p * r + 1.0f;
  p = p * r + 1.0f;
  vi bits = (__builtin_convertvector(n, vi) + 127) << 23;
  p = p * (vf)bits;
  return tiny ? vf{} : p;
#endif
}

// How a product treats C: overwrite, accumulate, or accumulate after scaling row r by rs[r].
enum Acc { SET, ADD, SCALE_ADD };

// C[R x VL NV] (+)= A[R x K] * B[K x VL NV]; A[r][k] = A[r * rsa + k * csa]; B, C rows contiguous.
template <int R, int NV, Acc ACC>
inline void micro(int K, const float* __restrict A, long rsa, long csa, const float* __restrict B,
                  long ldb, float* __restrict C, long ldc, const float* __restrict rs) {
  vf c[R][NV];
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r) {
    const vf scale = splat(ACC == SCALE_ADD ? rs[r] : 1.0f);
#pragma GCC unroll 8
    for (int v = 0; v < NV; ++v)
      c[r][v] = ACC == SET ? vf{}
                : ACC == ADD ? vload(C + r * ldc + v * VL)
                             : vload(C + r * ldc + v * VL) * scale;
  }
  for (int k = 0; k < K; ++k) {
    vf b[NV];
#pragma GCC unroll 8
    for (int v = 0; v < NV; ++v) b[v] = vload(B + k * ldb + v * VL);
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) {
      vf a = splat(A[r * rsa + k * csa]);
#pragma GCC unroll 8
      for (int v = 0; v < NV; ++v) c[r][v] = vfma(a, b[v], c[r][v]);
    }
  }
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 8
    for (int v = 0; v < NV; ++v) vstore(C + r * ldc + v * VL, c[r][v]);
}

template <int R, Acc ACC>
inline void micro_nv(int nv, int K, const float* A, long rsa, long csa, const float* B, long ldb,
                     float* C, long ldc, const float* rs) {
  if constexpr (NV_MAX == 2) {  // nv <= NV_MAX: only the widths this target calls are built
    if (nv == 1) micro<R, 1, ACC>(K, A, rsa, csa, B, ldb, C, ldc, rs);
    else micro<R, 2, ACC>(K, A, rsa, csa, B, ldb, C, ldc, rs);
  } else {
    switch (nv) {
      case 1: micro<R, 1, ACC>(K, A, rsa, csa, B, ldb, C, ldc, rs); break;
      case 2: micro<R, 2, ACC>(K, A, rsa, csa, B, ldb, C, ldc, rs); break;
      case 3: micro<R, 3, ACC>(K, A, rsa, csa, B, ldb, C, ldc, rs); break;
      default: micro<R, 4, ACC>(K, A, rsa, csa, B, ldb, C, ldc, rs); break;
    }
  }
}

// Causal trimming of a tile product; `off` = first query row - first key of the tile (FAR: none).
enum Trim { NONE, N_END, K_END, K_BEG };

// C[M x N] (+)= A[M x K] B[K x N], N a multiple of VL. With causal trimming:
//   N_END: rows are queries, columns keys: skip VL-column vectors wholly right of the diagonal;
//   K_END: rows are queries, k runs over keys: stop at the last key the row group sees;
//   K_BEG: rows are keys, k runs over queries: start at the first query that sees the row group.
// Skipped parts of a non-accumulating C are left as they were (the caller masks them).
// SCALE_ADD: C row m is first multiplied by rs[m].
template <Acc ACC, Trim MODE>
void gemm(int M, int N, int K, const float* A, long rsa, long csa, const float* B, long ldb,
          float* C, long ldc, long off, const float* rs = nullptr) {
  for (int n0 = 0; n0 < N; n0 += NV_MAX * VL) {
    int nv = std::min(NV_MAX, (N - n0) / VL);
    for (int m0 = 0; m0 < M; m0 += MR) {
      int r = std::min(MR, M - m0);
      int nvr = nv, kb = 0, ke = K;
      if (MODE == N_END) {
        long lim = m0 + r + off;  // columns < lim are visible to some row of the group
        if (lim <= n0) continue;
        nvr = (int)std::min<long>(nv, (lim - n0 + VL - 1) / VL);
      } else if (MODE == K_END) {
        ke = (int)std::max<long>(0, std::min<long>(K, m0 + r + off));
      } else if (MODE == K_BEG) {
        kb = (int)std::max<long>(0, std::min<long>(K, m0 - off));
      }
      if (ACC == ADD && ke <= kb) continue;
      const float* a = A + m0 * rsa + kb * csa;
      const float* b = B + kb * ldb + n0;
      float* c = C + m0 * ldc + n0;
      switch (r) {
        case 1: micro_nv<1, ACC>(nvr, ke - kb, a, rsa, csa, b, ldb, c, ldc, rs + m0); break;
        case 2: micro_nv<2, ACC>(nvr, ke - kb, a, rsa, csa, b, ldb, c, ldc, rs + m0); break;
        case 3: micro_nv<3, ACC>(nvr, ke - kb, a, rsa, csa, b, ldb, c, ldc, rs + m0); break;
        default: micro_nv<4, ACC>(nvr, ke - kb, a, rsa, csa, b, ldb, c, ldc, rs + m0); break;
      }
    }
  }
}

inline long round_up(long x, long m) { return (x + m - 1) / m * m; }

float* alloc(long n) {  // zeroed, 64-byte aligned
  size_t bytes = (size_t)round_up(std::max<long>(n, 1) * (long)sizeof(float), 64);
  void* p = std::aligned_alloc(64, bytes);
  if (p) std::memset(p, 0, bytes);
  return (float*)p;
}

// dst[L x Dp] = mul * src rows (row stride rs, element stride cs), columns D..Dp zero.
void pack_rows(float* dst, const float* src, long L, long D, long Dp, long rs, long cs, float mul) {
  for (long i = 0; i < L; ++i) {
    float* d = dst + i * Dp;
    const float* s = src + i * rs;
    if (cs == 1) {
#pragma omp simd
      for (long j = 0; j < D; ++j) d[j] = s[j] * mul;
    } else {
      for (long j = 0; j < D; ++j) d[j] = s[j * cs] * mul;
    }
    for (long j = D; j < Dp; ++j) d[j] = 0.0f;
  }
}

#if defined(__AVX512F__)
// d[c * ld + r] = s[r * rs + c] for a 16 x 16 block, in registers.
inline void transpose16(const float* s, long rs, float* d, long ld) {
  __m512 a[16], b[16];
  for (int i = 0; i < 16; ++i) a[i] = _mm512_loadu_ps(s + i * rs);
  for (int i = 0; i < 16; i += 2) {
    b[i] = _mm512_unpacklo_ps(a[i], a[i + 1]);
    b[i + 1] = _mm512_unpackhi_ps(a[i], a[i + 1]);
  }
  for (int i = 0; i < 16; i += 4) {
    a[i] = _mm512_shuffle_ps(b[i], b[i + 2], 0x44);
    a[i + 1] = _mm512_shuffle_ps(b[i], b[i + 2], 0xEE);
    a[i + 2] = _mm512_shuffle_ps(b[i + 1], b[i + 3], 0x44);
    a[i + 3] = _mm512_shuffle_ps(b[i + 1], b[i + 3], 0xEE);
  }
  for (int i = 0; i < 4; ++i) {
    b[i] = _mm512_shuffle_f32x4(a[i], a[i + 4], 0x88);
    b[i + 4] = _mm512_shuffle_f32x4(a[i], a[i + 4], 0xDD);
    b[i + 8] = _mm512_shuffle_f32x4(a[i + 8], a[i + 12], 0x88);
    b[i + 12] = _mm512_shuffle_f32x4(a[i + 8], a[i + 12], 0xDD);
  }
  for (int i = 0; i < 4; ++i) {
    a[i] = _mm512_shuffle_f32x4(b[i], b[i + 8], 0x88);
    a[i + 8] = _mm512_shuffle_f32x4(b[i], b[i + 8], 0xDD);
    a[i + 4] = _mm512_shuffle_f32x4(b[i + 4], b[i + 12], 0x88);
    a[i + 12] = _mm512_shuffle_f32x4(b[i + 4], b[i + 12], 0xDD);
  }
  for (int i = 0; i < 16; ++i) _mm512_storeu_ps(d + i * ld, a[i]);
}
#endif

// Transposed blocks: dst[blk][d][jj] = src row blk*BK + jj, element d; the rest zero.
void pack_tblocks(float* dst, const float* src, long L, long D, long Dp, long rs, long cs) {
  long nb = (L + BK - 1) / BK;
  std::memset(dst, 0, sizeof(float) * nb * Dp * BK);
  long j = 0;
#if defined(__AVX512F__)
  if (cs == 1) {  // 16 rows at a time (BK is a multiple of 16: they share one block)
    for (; j + VL <= L; j += VL) {
      float* d = dst + (j / BK) * Dp * BK + (j % BK);
      const float* s = src + j * rs;
      long e = 0;
      for (; e + VL <= D; e += VL) transpose16(s + e, rs, d + e * BK, BK);
      for (; e < D; ++e)
        for (int r = 0; r < VL; ++r) d[e * BK + r] = s[r * rs + e];
    }
  }
#endif
  for (; j < L; ++j) {
    float* d = dst + (j / BK) * Dp * BK + (j % BK);
    const float* s = src + j * rs;
    for (long e = 0; e < D; ++e) d[e * BK] = s[e * cs];
  }
}

struct Mask {
  const void* ptr;
  long sb, sh, si, sj;
  int kind;  // 0 none, 1 bool, 2 float
};

// Applies the mask row (b, h, query i, keys j0 .. j0+n) to the scores s[0..n).
inline void apply_mask(float* s, int n, const Mask& m, long b, long h, long i, long j0) {
  if (m.kind == 0) return;
  long base = b * m.sb + h * m.sh + i * m.si + j0 * m.sj;
  if (m.kind == 1) {
    const uint8_t* p = (const uint8_t*)m.ptr + base;
    if (m.sj == 1) {
#pragma omp simd
      for (int j = 0; j < n; ++j) s[j] = p[j] ? s[j] : NEG_INF;
    } else if (m.sj == 0) {
      if (!p[0])
        for (int j = 0; j < n; ++j) s[j] = NEG_INF;
    } else {
      for (int j = 0; j < n; ++j) s[j] = p[j * m.sj] ? s[j] : NEG_INF;
    }
  } else {
    const float* p = (const float*)m.ptr + base;
    if (m.sj == 1) {
#pragma omp simd
      for (int j = 0; j < n; ++j) s[j] += p[j];
    } else if (m.sj == 0) {
      float x = p[0];
      for (int j = 0; j < n; ++j) s[j] += x;
    } else {
      for (int j = 0; j < n; ++j) s[j] += p[j * m.sj];
    }
  }
}

struct Shape {
  long B, H, Lq, Lk, D, Dp, nqb, nkb, Lqp, Lkp;
  Shape(const int64_t* sz)
      : B(sz[0]), H(sz[1]), Lq(sz[2]), Lk(sz[3]), D(sz[4]), Dp(round_up(sz[4], VL)),
        nqb((sz[2] + BQ - 1) / BQ), nkb((sz[3] + BK - 1) / BK), Lqp(nqb * BQ), Lkp(nkb * BK) {}
};

// What the mask does to one (query block, key block) tile: hides every score, leaves every score
// as it is (bool all true, float all exactly 0), or anything else.
enum TileState : uint8_t { EMPTY, PARTIAL, FULL };
enum : uint8_t { SEEN = 1, DIRTY = 2 };  // a score survives / a score is changed

// SEEN | DIRTY bits of n consecutive mask entries (a float NaN counts as neither -inf nor 0).
inline uint8_t mask_bits(const Mask& m, long base, long n) {
  int alive = 0, same = 0;
  if (m.kind == 1) {
    const uint8_t* p = (const uint8_t*)m.ptr + base;
    if (m.sj == 1) {
#pragma omp simd reduction(+ : alive)
      for (long j = 0; j < n; ++j) alive += p[j] != 0;
    } else {
      for (long j = 0; j < n; ++j) alive += p[j * m.sj] != 0;
    }
    same = alive;
  } else {
    const float* p = (const float*)m.ptr + base;
    if (m.sj == 1) {
#pragma omp simd reduction(+ : alive, same)
      for (long j = 0; j < n; ++j) { alive += p[j] != NEG_INF; same += p[j] == 0.0f; }
    } else {
      for (long j = 0; j < n; ++j) {
        alive += p[j * m.sj] != NEG_INF;
        same += p[j * m.sj] == 0.0f;
      }
    }
  }
  return (alive > 0 ? SEEN : 0) | (same < n ? DIRTY : 0);
}

// The TileState of every tile, for each distinct (batch, head) of the mask. A dimension the mask
// broadcasts (stride 0) has extent 1 and table stride 0 here, so it is summarized once.
struct MaskTiles {
  uint8_t* t = nullptr;  // null: no mask, every tile FULL
  long nb = 1, nh = 1, nq = 1, nk = 1, rows = 0;  // rows: (batch, head, query block)s to fill
  long tb = 0, th = 0, tq = 0, tk = 0;

  bool init(const Mask& m, const Shape& s) {
    if (m.kind == 0 || s.nqb == 0 || s.nkb == 0) return true;  // (no tile to look at)
    nb = m.sb ? s.B : 1; nh = m.sh ? s.H : 1; nq = m.si ? s.nqb : 1; nk = m.sj ? s.nkb : 1;
    tk = nk > 1; tq = nq > 1 ? nk : 0; th = nh > 1 ? nq * nk : 0; tb = nb > 1 ? nh * nq * nk : 0;
    rows = nb * nh * nq;
    t = (uint8_t*)std::malloc(rows * nk);
    return t != nullptr;
  }
  ~MaskTiles() { std::free(t); }

  TileState at(long b, long h, long qb, long kb) const {
    return t ? (TileState)t[b * tb + h * th + qb * tq + kb * tk] : FULL;
  }

  // Fills the key blocks of row e of the table. Reads the mask rows of the query block in order,
  // each once (streaming; per tile it would jump a row length every 64 entries), skipping key
  // blocks already known PARTIAL.
  void fill(long e, const Mask& m, const Shape& s) {
    const long qb = e % nq, h = e / nq % nh, b = e / (nq * nh);
    const long i0 = qb * BQ, i1 = m.si ? std::min(s.Lq, i0 + BQ) : 1;
    uint8_t* bits = t + e * nk;
    std::memset(bits, 0, nk);
    for (long i = i0, open = nk; i < i1 && open; ++i) {
      const long base = b * m.sb + h * m.sh + i * m.si;
      open = 0;
      for (long kb = 0; kb < nk; ++kb) {
        if (bits[kb] == (SEEN | DIRTY)) continue;
        const long j0 = kb * BK, n = m.sj ? std::min(s.Lk, j0 + BK) - j0 : 1;
        bits[kb] |= mask_bits(m, base + j0 * m.sj, n);
        open += bits[kb] != (SEEN | DIRTY);
      }
    }
    for (long kb = 0; kb < nk; ++kb)
      bits[kb] = !(bits[kb] & SEEN) ? EMPTY : (bits[kb] & DIRTY) ? PARTIAL : FULL;
  }
};

// Key side of one (batch, head), packed once per thread and reused while the k/v data are the same
// (the expanded heads of grouped-query attention share them).
struct KeySide {
  float *KT = nullptr, *V = nullptr, *VT = nullptr, *K = nullptr;
  const float *kbase = nullptr, *vbase = nullptr;
  bool ok(bool backward, const Shape& s) {
    KT = alloc(s.nkb * s.Dp * BK);
    if (backward) {
      VT = alloc(s.nkb * s.Dp * BK);
      K = alloc(s.Lkp * s.Dp);
      return KT && VT && K;
    }
    V = alloc(s.Lkp * s.Dp);
    return KT && V;
  }
  void pack(const Shape& s, const float* k, const float* v, const int64_t* ks, const int64_t* vs,
            bool backward) {
    if (k == kbase && v == vbase) return;
    kbase = k;
    vbase = v;
    pack_tblocks(KT, k, s.Lk, s.D, s.Dp, ks[2], ks[3]);
    if (backward) {
      pack_tblocks(VT, v, s.Lk, s.D, s.Dp, vs[2], vs[3]);
      pack_rows(K, k, s.Lk, s.D, s.Dp, ks[2], ks[3], 1.0f);
    } else {
      pack_rows(V, v, s.Lk, s.D, s.Dp, vs[2], vs[3], 1.0f);
    }
  }
  ~KeySide() { std::free(KT); std::free(V); std::free(VT); std::free(K); }
};

// Tile bounds: diagonal offset for causal trimming, or FAR when no key of the tile is above the
// diagonal for any of its rows.
inline long diag_off(bool causal, long i0, long j0, long nk) {
  return (causal && j0 + nk - 1 > i0) ? i0 - j0 : FAR;
}

// Number of keys of row i (tile row, query i0 + i) that can be attended: keys j0 + jj, jj < limit.
inline int row_limit(bool causal, long i0, long i, long j0, long nk) {
  if (!causal) return (int)nk;
  return (int)std::max<long>(0, std::min<long>(nk, i0 + i - j0 + 1));
}

// One row of a score tile in the online softmax: columns from `lim` on get -inf; m = max(mold, row
// max); the row becomes p = exp(s - m) (m taken as 0 while the row has seen no key) and sum = its sum.
// NV > 0: the row is NV vectors long (known at compile time), else nv.
template <int NV>
inline void online_row(float* srow, int nv, int lim, float mold, float& m, float& sum) {
  const int n = NV > 0 ? NV : nv;
  vf x[BK / VL];
  vf mx = splat(NEG_INF);
  const vf limv = splat((float)lim);
#pragma GCC unroll 8
  for (int t = 0; t < n; ++t) {
    x[t] = vload(srow + t * VL);
    if (lim < n * VL) x[t] = iota() + (float)(t * VL) < limv ? x[t] : splat(NEG_INF);
    mx = vmax(mx, x[t]);
  }
  m = std::max(mold, hmax(mx));
  const float msafe = m == NEG_INF ? 0.0f : m;
  vf acc{};
#pragma GCC unroll 8
  for (int t = 0; t < n; ++t) {
    const vf p = vexp(x[t] - msafe);
    vstore(srow + t * VL, p);
    acc += p;
  }
  sum = hsum(acc);
}

// Forward for a few query rows (decoding: one new token against a long cache). Each row reads its
// keys and values once, where they are, without the packing and tiling that pay off when many query
// rows share them: scores for every key in a buffer, the mask, one softmax, then the weighted sum
// of the value rows. Same results as the tiled path up to the order of the sums.
int few_queries_fwd(float* out, float* lse, const float* q, const float* k, const float* v,
                    const Mask& m, const Shape& s, const int64_t* qs, const int64_t* ks,
                    const int64_t* vs, bool causal, float scale, int threads) {
  const long items = s.B * s.H * s.Lq, Lkp = round_up(s.Lk, VL);
  int failed = 0;
#pragma omp parallel num_threads(threads) reduction(| : failed)
  {
    float* sc = alloc(Lkp);
    float* qv = alloc(s.Dp);
    float* acc = alloc(s.Dp);
    if (!sc || !qv || !acc) failed = 1;
#pragma omp for schedule(static)
    for (long it = 0; it < items; ++it) {
      if (failed) continue;
      const long bh = it / s.Lq, i = it % s.Lq, b = bh / s.H, h = bh % s.H;
      const float* qrow = q + b * qs[0] + h * qs[1] + i * qs[2];
      for (long d = 0; d < s.D; ++d) qv[d] = qrow[d * qs[3]] * scale;
      const long limit = causal ? std::min(s.Lk, i + 1) : s.Lk;
      const float* kb = k + b * ks[0] + h * ks[1];
      for (long j = 0; j < limit; ++j) {
        const float* krow = kb + j * ks[2];
        float dot = 0.0f;
        if (ks[3] == 1) {
#pragma omp simd reduction(+ : dot)
          for (long d = 0; d < s.D; ++d) dot += qv[d] * krow[d];
        } else {
          for (long d = 0; d < s.D; ++d) dot += qv[d] * krow[d * ks[3]];
        }
        sc[j] = dot;
      }
      for (long j = limit; j < Lkp; ++j) sc[j] = NEG_INF;
      apply_mask(sc, (int)limit, m, b, h, i, 0);
      vf mx = splat(NEG_INF);
      for (long j = 0; j < Lkp; j += VL) mx = vmax(mx, vload(sc + j));
      const float top = hmax(mx);
      float* orow = out + (bh * s.Lq + i) * s.D;
      if (top == NEG_INF) {  // no key: out 0, lse -inf
        for (long d = 0; d < s.D; ++d) orow[d] = 0.0f;
        lse[bh * s.Lq + i] = NEG_INF;
        continue;
      }
      vf total{};
      for (long j = 0; j < Lkp; j += VL) {
        const vf p = vexp(vload(sc + j) - top);
        vstore(sc + j, p);
        total += p;
      }
      const float sum = hsum(total);
      for (long d = 0; d < s.D; ++d) acc[d] = 0.0f;
      const float* vb = v + b * vs[0] + h * vs[1];
      for (long j = 0; j < limit; ++j) {
        const float p = sc[j];
        if (p == 0.0f) continue;
        const float* vrow = vb + j * vs[2];
        if (vs[3] == 1) {
#pragma omp simd
          for (long d = 0; d < s.D; ++d) acc[d] += p * vrow[d];
        } else {
          for (long d = 0; d < s.D; ++d) acc[d] += p * vrow[d * vs[3]];
        }
      }
      const float inv = 1.0f / sum;
      for (long d = 0; d < s.D; ++d) orow[d] = acc[d] * inv;
      lse[bh * s.Lq + i] = top + std::log(sum);
    }
    std::free(sc); std::free(qv); std::free(acc);
  }
  return failed;
}

}  // namespace

// Forward. sz: B, H, Lq, Lk, D, q strides (4), k strides (4), v strides (4), mask strides (4).
// out (B, H, Lq, D) and lse (B, H, Lq) contiguous. Returns 0, or 1 when memory ran out.
extern "C" int ts_flash_fwd(float* out, float* lse, const float* q, const float* k, const float* v,
                            const void* mask, const int64_t* sz, int mask_kind, int causal,
                            float scale, int nthreads) {
  const Shape s(sz);
  const int64_t *qs = sz + 5, *ks = sz + 9, *vs = sz + 13, *ms = sz + 17;
  const Mask m{mask, (long)ms[0], (long)ms[1], (long)ms[2], (long)ms[3], mask_kind};
  if (s.Lq <= FEW_QUERIES)
    return few_queries_fwd(out, lse, q, k, v, m, s, qs, ks, vs, causal, scale, std::max(1, nthreads));
  MaskTiles tiles;
  if (!tiles.init(m, s)) return 1;
  const long items = s.B * s.H * s.nqb;
  const int threads = std::max(1, nthreads);
  const long chunk = s.B * s.H >= 4 * threads ? std::max(1L, s.nqb) : 1;
  const bool last_first = causal || mask_kind;  // (a causal mask also makes later blocks longer)
  int failed = 0;
#pragma omp parallel num_threads(threads) reduction(| : failed)
  {
#pragma omp for schedule(static)
    for (long e = 0; e < tiles.rows; ++e) tiles.fill(e, m, s);
    KeySide ks_side;
    float* Q = alloc(BQ * s.Dp);
    float* S = alloc(BQ * BK);
    float* O = alloc(BQ * s.Dp);
    alignas(64) float mrow[BQ], lrow[BQ], mnew[BQ], rsum[BQ], arow[BQ];
    if (!ks_side.ok(false, s) || !Q || !S || !O) failed = 1;
    // Causal query blocks differ in work: dynamic, the longest of each (batch, head) first; whole
    // (batch, head)s at a time when there are enough of them (K/V packed once).
#pragma omp for schedule(dynamic, chunk)
    for (long it = 0; it < items; ++it) {
      if (failed) continue;
      const long bh = it / s.nqb, qb = last_first ? s.nqb - 1 - it % s.nqb : it % s.nqb;
      const long b = bh / s.H, h = bh % s.H;
      ks_side.pack(s, k + b * ks[0] + h * ks[1], v + b * vs[0] + h * vs[1], ks, vs, false);
      const long i0 = qb * BQ, nq = std::min<long>(BQ, s.Lq - i0);
      pack_rows(Q, q + b * qs[0] + h * qs[1] + i0 * qs[2], nq, s.D, s.Dp, qs[2], qs[3], scale);
      for (int i = 0; i < BQ; ++i) { mrow[i] = mnew[i] = NEG_INF; lrow[i] = rsum[i] = 0.0f; }
      const long kb_end = causal ? std::min(s.nkb, (i0 + nq - 1) / BK + 1) : s.nkb;
      bool first = true;  // no tile visited yet: O is set, not rescaled and added to
      for (long kb = 0; kb < kb_end; ++kb) {
        const TileState tile = tiles.at(b, h, qb, kb);
        if (tile == EMPTY) continue;
        const long j0 = kb * BK, nk = std::min<long>(BK, s.Lk - j0), nkp = round_up(nk, VL);
        const long off = diag_off(causal, i0, j0, nk);
        gemm<SET, N_END>(nq, nkp, s.Dp, Q, s.Dp, 1, ks_side.KT + kb * s.Dp * BK, BK, S, BK, off);
        const bool full = nkp == BK;
        for (long i = 0; i < nq; ++i) {
          float* srow = S + i * BK;
          if (tile == PARTIAL) apply_mask(srow, nk, m, b, h, i0 + i, j0);
          const int lim = row_limit(causal, i0, i, j0, nk);
          if (full)
            online_row<BK / VL>(srow, BK / VL, lim, mrow[i], mnew[i], rsum[i]);
          else
            online_row<0>(srow, nkp / VL, lim, mrow[i], mnew[i], rsum[i]);
        }
        for (long i = 0; i < nq; i += VL) {  // rescale factors of the running sums and outputs
          const vf mn = vload(mnew + i);
          const vf alpha = vexp(vload(mrow + i) - (mn == NEG_INF ? vf{} : mn));
          vstore(arow + i, alpha);
          vstore(lrow + i, vload(lrow + i) * alpha + vload(rsum + i));
          vstore(mrow + i, mn);
        }
        if (first)
          gemm<SET, K_END>(nq, s.Dp, nk, S, BK, 1, ks_side.V + j0 * s.Dp, s.Dp, O, s.Dp, off);
        else
          gemm<SCALE_ADD, K_END>(nq, s.Dp, nk, S, BK, 1, ks_side.V + j0 * s.Dp, s.Dp, O, s.Dp, off,
                                 arow);
        first = false;
      }
      if (first) std::memset(O, 0, sizeof(float) * BQ * s.Dp);  // no key seen: out 0, lse -inf
      float* orow = out + (bh * s.Lq + i0) * s.D;
      float* lrow_out = lse + bh * s.Lq + i0;
      for (long i = 0; i < nq; ++i) {
        const float l = lrow[i], inv = l > 0.0f ? 1.0f / l : 0.0f;
        const float* o = O + i * s.Dp;
        float* dst = orow + i * s.D;
#pragma omp simd
        for (long d = 0; d < s.D; ++d) dst[d] = o[d] * inv;
        lrow_out[i] = l > 0.0f ? mrow[i] + std::log(l) : NEG_INF;
      }
    }
    std::free(Q); std::free(S); std::free(O);
  }
  return failed;
}

namespace {

// Query side of one (batch, head) for the backward: q * scale, dO, delta = rowsum(dO * O), lse
// (+inf for rows with no key, so that their probabilities exp(s - lse) are 0).
struct QuerySide {
  float *Q = nullptr, *dO = nullptr, *delta = nullptr, *lse = nullptr;
  long bh = -1;
  bool ok(const Shape& s) {
    Q = alloc(s.Lqp * s.Dp);
    dO = alloc(s.Lqp * s.Dp);
    delta = alloc(s.Lqp);
    lse = alloc(s.Lqp);
    return Q && dO && delta && lse;
  }
  void pack(const Shape& s, long bh_, const float* q, const int64_t* qs, const float* go,
            const int64_t* gs, const float* out, const float* lse_in, float scale) {
    if (bh_ == bh) return;
    bh = bh_;
    const long b = bh / s.H, h = bh % s.H;
    pack_rows(Q, q + b * qs[0] + h * qs[1], s.Lq, s.D, s.Dp, qs[2], qs[3], scale);
    pack_rows(dO, go + b * gs[0] + h * gs[1], s.Lq, s.D, s.Dp, gs[2], gs[3], 1.0f);
    for (long i = 0; i < s.Lq; ++i) {
      const float* o = out + (bh * s.Lq + i) * s.D;
      const float* g = dO + i * s.Dp;
      float acc = 0.0f;
#pragma omp simd reduction(+ : acc)
      for (long d = 0; d < s.D; ++d) acc += g[d] * o[d];
      delta[i] = acc;
      const float l = lse_in[bh * s.Lq + i];
      lse[i] = l == NEG_INF ? POS_INF : l;
    }
  }
  ~QuerySide() { std::free(Q); std::free(dO); std::free(delta); std::free(lse); }
};

// P = exp(s - lse) and dS = P (dP - delta) of the tile (query block at i0, key block kb) into P and
// dS (BQ x BK each). The mask is applied only when `masked` (the tile is PARTIAL).
void tile_p_ds(const Shape& s, const QuerySide& qd, const KeySide& kd, const Mask& m, bool masked,
               bool causal, long b, long h, long i0, long nq, long kb, float* P, float* dS) {
  const long j0 = kb * BK, nk = std::min<long>(BK, s.Lk - j0), nkp = round_up(nk, VL);
  const long off = diag_off(causal, i0, j0, nk);
  gemm<SET, N_END>(nq, nkp, s.Dp, qd.Q + i0 * s.Dp, s.Dp, 1, kd.KT + kb * s.Dp * BK, BK, P, BK, off);
  gemm<SET, N_END>(nq, nkp, s.Dp, qd.dO + i0 * s.Dp, s.Dp, 1, kd.VT + kb * s.Dp * BK, BK, dS, BK,
                     off);
  for (long i = 0; i < nq; ++i) {
    float* prow = P + i * BK;
    float* drow = dS + i * BK;
    if (masked) apply_mask(prow, nk, m, b, h, i0 + i, j0);
    const vf lim = splat((float)row_limit(causal, i0, i, j0, nk));
    const float l = qd.lse[i0 + i], dl = qd.delta[i0 + i];
    for (long t = 0; t < nkp; t += VL) {
      vf p = vexp(vload(prow + t) - l);
      p = (iota() + (float)t) < lim ? p : vf{};
      vstore(prow + t, p);
      vf ds = p * (vload(drow + t) - dl);
      vstore(drow + t, p == 0.0f ? vf{} : ds);
    }
  }
}

}  // namespace

// Backward. sz: B, H, Lq, Lk, D, then strides (4 each) of grad_out, q, k, v, mask. out and lse are
// the forward's (contiguous). dq (B, H, Lq, D), dk and dv (B, H, Lk, D) contiguous.
// fused = 1: one pass per (batch, head) over key blocks, dq accumulated on the way (five tile
// products); fused = 0: a pass over (batch*head, key block) for dk, dv and one over
// (batch*head, query block) for dq (seven tile products, more parallelism). Both deterministic.
extern "C" int ts_flash_bwd(float* dq, float* dk, float* dv, const float* go, const float* q,
                            const float* k, const float* v, const float* out, const float* lse,
                            const void* mask, const int64_t* sz, int mask_kind, int causal,
                            float scale, int nthreads, int fused) {
  const Shape s(sz);
  const int64_t *gs = sz + 5, *qs = sz + 9, *ks = sz + 13, *vs = sz + 17, *ms = sz + 21;
  const Mask m{mask, (long)ms[0], (long)ms[1], (long)ms[2], (long)ms[3], mask_kind};
  const long BH = s.B * s.H;
  MaskTiles tiles;
  if (!tiles.init(m, s)) return 1;
  const bool last_first = causal || mask_kind;
  int failed = 0;
#pragma omp parallel num_threads(std::max(1, nthreads)) reduction(| : failed)
  {
#pragma omp for schedule(static)
    for (long e = 0; e < tiles.rows; ++e) tiles.fill(e, m, s);
    QuerySide qd;
    KeySide kd;
    float* P = alloc(BQ * BK);
    float* dS = alloc(BQ * BK);
    float* dK = alloc(BK * s.Dp);
    float* dV = alloc(BK * s.Dp);
    float* dQ = alloc((fused ? s.Lqp : BQ) * s.Dp);
    if (!qd.ok(s) || !kd.ok(true, s) || !P || !dS || !dK || !dV || !dQ) failed = 1;

    // dk, dv (and with `fused`, dq) over items (bh, key blocks kb_lo .. kb_hi).
    auto key_pass = [&](long bh, long kb_lo, long kb_hi) {
      const long b = bh / s.H, h = bh % s.H;
      qd.pack(s, bh, q, qs, go, gs, out, lse, scale);
      kd.pack(s, k + b * ks[0] + h * ks[1], v + b * vs[0] + h * vs[1], ks, vs, true);
      if (fused) std::memset(dQ, 0, sizeof(float) * s.Lqp * s.Dp);
      for (long kb = kb_lo; kb < kb_hi; ++kb) {
        const long j0 = kb * BK, nk = std::min<long>(BK, s.Lk - j0);
        std::memset(dK, 0, sizeof(float) * BK * s.Dp);
        std::memset(dV, 0, sizeof(float) * BK * s.Dp);
        for (long qb = causal ? j0 / BQ : 0; qb < s.nqb; ++qb) {
          const TileState tile = tiles.at(b, h, qb, kb);
          if (tile == EMPTY) continue;  // P = dS = 0: adds nothing (keys nobody sees get 0)
          const long i0 = qb * BQ, nq = std::min<long>(BQ, s.Lq - i0);
          const long off = diag_off(causal, i0, j0, nk);
          tile_p_ds(s, qd, kd, m, tile == PARTIAL, causal, b, h, i0, nq, kb, P, dS);
          gemm<ADD, K_BEG>(nk, s.Dp, nq, P, 1, BK, qd.dO + i0 * s.Dp, s.Dp, dV, s.Dp, off);
          gemm<ADD, K_BEG>(nk, s.Dp, nq, dS, 1, BK, qd.Q + i0 * s.Dp, s.Dp, dK, s.Dp, off);
          if (fused)
            gemm<ADD, K_END>(nq, s.Dp, nk, dS, BK, 1, kd.K + j0 * s.Dp, s.Dp, dQ + i0 * s.Dp, s.Dp,
                              off);
        }
        for (long j = 0; j < nk; ++j) {
          float* dkr = dk + (bh * s.Lk + j0 + j) * s.D;
          float* dvr = dv + (bh * s.Lk + j0 + j) * s.D;
          std::memcpy(dkr, dK + j * s.Dp, sizeof(float) * s.D);
          std::memcpy(dvr, dV + j * s.Dp, sizeof(float) * s.D);
        }
      }
      if (fused) {
        for (long i = 0; i < s.Lq; ++i) {
          const float* src = dQ + i * s.Dp;
          float* dst = dq + (bh * s.Lq + i) * s.D;
#pragma omp simd
          for (long d = 0; d < s.D; ++d) dst[d] = src[d] * scale;
        }
      }
    };

    if (fused) {
#pragma omp for schedule(static)
      for (long bh = 0; bh < BH; ++bh)
        if (!failed) key_pass(bh, 0, s.nkb);
    } else {
#pragma omp for schedule(dynamic, 1)
      for (long it = 0; it < BH * s.nkb; ++it)
        if (!failed) key_pass(it / s.nkb, it % s.nkb, it % s.nkb + 1);
#pragma omp for schedule(dynamic, 1)
      for (long it = 0; it < BH * s.nqb; ++it) {
        if (failed) continue;
        const long bh = it / s.nqb, qb = last_first ? s.nqb - 1 - it % s.nqb : it % s.nqb;
        const long b = bh / s.H, h = bh % s.H;
        qd.pack(s, bh, q, qs, go, gs, out, lse, scale);
        kd.pack(s, k + b * ks[0] + h * ks[1], v + b * vs[0] + h * vs[1], ks, vs, true);
        const long i0 = qb * BQ, nq = std::min<long>(BQ, s.Lq - i0);
        std::memset(dQ, 0, sizeof(float) * BQ * s.Dp);
        const long kb_end = causal ? std::min(s.nkb, (i0 + nq - 1) / BK + 1) : s.nkb;
        for (long kb = 0; kb < kb_end; ++kb) {
          const TileState tile = tiles.at(b, h, qb, kb);
          if (tile == EMPTY) continue;
          const long j0 = kb * BK, nk = std::min<long>(BK, s.Lk - j0);
          tile_p_ds(s, qd, kd, m, tile == PARTIAL, causal, b, h, i0, nq, kb, P, dS);
          gemm<ADD, K_END>(nq, s.Dp, nk, dS, BK, 1, kd.K + j0 * s.Dp, s.Dp, dQ, s.Dp,
                            diag_off(causal, i0, j0, nk));
        }
        for (long i = 0; i < nq; ++i) {
          const float* src = dQ + i * s.Dp;
          float* dst = dq + (bh * s.Lq + i0 + i) * s.D;
#pragma omp simd
          for (long d = 0; d < s.D; ++d) dst[d] = src[d] * scale;
        }
      }
    }
    std::free(P); std::free(dS); std::free(dK); std::free(dV); std::free(dQ);
  }
  return failed;
}
