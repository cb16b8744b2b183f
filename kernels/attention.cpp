// Scaled dot-product attention (fp32 softmax): causal GQA over a KV cache and
// bidirectional per-segment attention for vision. References accumulate in
// double. Fast versions:
//   * decode (S ≤ 4): flash-decoding — (KV head, key chunk) items in parallel,
//     the query heads of a GQA group share each K/V read, partials merged;
//   * prefill / vision segments: (query block, head) items in parallel, each
//     S = Q·Kᵀ and O = P·V through the GEMM engine (gemm.h), masked softmax
//     between them; vision segments use the bf16 engine (gemm_bf16.h) for
//     both products when FloatCompute::BF16 is selected (linear.h); causal
//     prefill with AttnPrecision::Split packs every KV head's Kᵀ / V once as
//     split bf16 and runs both products as 3 AMX products (≤ 2^−16).
#include "kernels/attention.h"

#include <cmath>
#include <vector>

#include "kernels/activations.h"
#include "kernels/base.h"
#include "kernels/cpu.h"
#include "kernels/gemm.h"
#include "kernels/gemm_bf16.h"
#include "kernels/linear.h"
#include "kernels/vmath.h"

namespace qvl {

namespace {

// Cache element loaders: fp32 or fp16 (uint16_t) as fp32.
inline float to_f32(float x) { return x; }
inline float to_f32(uint16_t h) { return f16_to_f32(h); }
#if defined(__AVX512F__)
inline __m512 load16(const float* p) { return _mm512_loadu_ps(p); }
inline __m512 load16(const uint16_t* p) { return _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i*)p)); }
#endif

// q[D] · k[D] with k in the cache's element type (fp32 or fp16).
template <class T>
inline float dot_kv(const float* q, const T* k, int D) {
  int i = 0;
  float s = 0;
#if defined(__AVX512F__)
  __m512 acc = _mm512_setzero_ps();
  for (; i + 16 <= D; i += 16) acc = _mm512_fmadd_ps(_mm512_loadu_ps(q + i), load16(k + i), acc);
  s = _mm512_reduce_add_ps(acc);
#endif
  for (; i < D; ++i) s += q[i] * to_f32(k[i]);
  return s;
}

// out[D] = softmax(scale·q·K_jᵀ)_j · V_j over L keys; K_j = k + j·kstride.
void attend_row(const float* q, const float* k, const float* v, int64_t kstride, int64_t L, int D,
                float scale, float* scores, float* out) {
  for (int64_t j = 0; j < L; ++j) scores[j] = scale * dot_kv(q, k + j * kstride, D);
  softmax(scores, 1, L);
  int d = 0;
#if defined(__AVX512F__)
  for (; d + 64 <= D; d += 64) {
    __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    for (int64_t j = 0; j < L; ++j) {
      const float* vr = v + j * kstride + d;
      __m512 p = _mm512_set1_ps(scores[j]);
      a0 = _mm512_fmadd_ps(p, _mm512_loadu_ps(vr), a0);
      a1 = _mm512_fmadd_ps(p, _mm512_loadu_ps(vr + 16), a1);
      a2 = _mm512_fmadd_ps(p, _mm512_loadu_ps(vr + 32), a2);
      a3 = _mm512_fmadd_ps(p, _mm512_loadu_ps(vr + 48), a3);
    }
    _mm512_storeu_ps(out + d, a0);
    _mm512_storeu_ps(out + d + 16, a1);
    _mm512_storeu_ps(out + d + 32, a2);
    _mm512_storeu_ps(out + d + 48, a3);
  }
  for (; d + 16 <= D; d += 16) {
    __m512 a0 = _mm512_setzero_ps();
    for (int64_t j = 0; j < L; ++j)
      a0 = _mm512_fmadd_ps(_mm512_set1_ps(scores[j]), _mm512_loadu_ps(v + j * kstride + d), a0);
    _mm512_storeu_ps(out + d, a0);
  }
#endif
  for (; d < D; ++d) {
    float s = 0;
    for (int64_t j = 0; j < L; ++j) s += scores[j] * v[j * kstride + d];
    out[d] = s;
  }
}

// Double-precision twin of attend_row for the references (fp32 or fp16 K/V).
template <class T>
void attend_row_ref(const float* q, const T* k, const T* v, int64_t kstride, int64_t L,
                    int D, float scale, float* out) {
  std::vector<double> p(L);
  double mx = -INFINITY;
  for (int64_t j = 0; j < L; ++j) {
    double s = 0;
    for (int d = 0; d < D; ++d) s += (double)q[d] * to_f32(k[j * kstride + d]);
    p[j] = s * scale;
    mx = std::max(mx, p[j]);
  }
  double sum = 0;
  for (int64_t j = 0; j < L; ++j) sum += (p[j] = std::exp(p[j] - mx));
  for (int d = 0; d < D; ++d) {
    double o = 0;
    for (int64_t j = 0; j < L; ++j) o += p[j] * to_f32(v[j * kstride + d]);
    out[d] = (float)(o / sum);
  }
}

}  // namespace

namespace {

template <class T>
void causal_ref(const float* q, int64_t q_stride, int64_t S, int Hq, int Hkv, int D, const T* kcache,
                const T* vcache, int64_t ctx, int64_t past, float scale, float* out, int64_t out_stride) {
  const int group = Hq / Hkv;
  for (int64_t s = 0; s < S; ++s)
    for (int h = 0; h < Hq; ++h) {
      int64_t kv = (int64_t)(h / group) * ctx * D;
      attend_row_ref(q + s * q_stride + (int64_t)h * D, kcache + kv, vcache + kv, D, past + s + 1,
                     D, scale, out + s * out_stride + (int64_t)h * D);
    }
}

}  // namespace

void attention_causal_ref(const float* q, int64_t q_stride, int64_t S, int Hq, int Hkv, int D,
                          const float* kcache, const float* vcache, int64_t ctx, int64_t past,
                          float scale, float* out, int64_t out_stride) {
  causal_ref(q, q_stride, S, Hq, Hkv, D, kcache, vcache, ctx, past, scale, out, out_stride);
}

void attention_causal_ref(const float* q, int64_t q_stride, int64_t S, int Hq, int Hkv, int D,
                          const KVBlock& kv, int64_t past, float scale, float* out, int64_t out_stride) {
  if (kv.dtype == DType::F16)
    causal_ref(q, q_stride, S, Hq, Hkv, D, static_cast<const uint16_t*>(kv.k), static_cast<const uint16_t*>(kv.v),
               kv.ctx, past, scale, out, out_stride);
  else
    causal_ref(q, q_stride, S, Hq, Hkv, D, static_cast<const float*>(kv.k), static_cast<const float*>(kv.v),
               kv.ctx, past, scale, out, out_stride);
}

namespace {

// Software prefetch of the n elements at p (one hint per 64-byte line) into
// L1 (kL2 false) or L2 only; reads past the end of a buffer are harmless hints.
template <bool kL2 = false, class T>
inline void prefetch_row(const T* p, int n) {
#if defined(__AVX512F__) || defined(__AVX2__)
  for (int i = 0; i < n; i += 64 / (int)sizeof(T))
    _mm_prefetch((const char*)(p + i), kL2 ? _MM_HINT_T2 : _MM_HINT_T0);
#else
  (void)p, (void)n;
#endif
}
constexpr int64_t kAhead = 8;  // rows ahead into L1 (8 rows of D=128 fp32 = 4 KiB)
constexpr int64_t kFar = 24;   // rows ahead into L2

// ---- decode (few query tokens): flash-decoding over KV chunks -------------
// Work item = (KV head, chunk of keys). All S·group query rows that share the
// KV head are handled together so K and V are read once. Each item leaves a
// partial (max m, sum l, unnormalized o[D]) per row; partials are merged as
// o = Σ_c e^{m_c − m}·o_c / Σ_c e^{m_c − m}·l_c.
template <class T>
void causal_decode(const float* q, int64_t q_stride, int64_t S, int Hq, int Hkv, int D,
                   const T* kcache, const T* vcache, int64_t ctx, int64_t past,
                   float scale, float* out, int64_t out_stride) {
  const int group = Hq / Hkv;
  const int R = (int)S * group;  // rows per KV head
  const int64_t L = past + S;    // keys seen by the last row
  const int nt = cpu::threads();
  int64_t chunk = 512;
  while (chunk > 64 && (int64_t)Hkv * ((L + chunk - 1) / chunk) < 2 * nt) chunk /= 2;
  const int64_t nch = (L + chunk - 1) / chunk;
  const int64_t items = (int64_t)Hkv * nch;
  // Scratch is thread-local and grow-only: a fresh heap block per call costs page
  // faults (expensive under a hypervisor) on every layer.
  static thread_local Buffer<float> part_own;  // per item, per row: m, l, o[D]
  grow(part_own, items * R * (D + 2));
  Buffer<float>& part = part_own;
#pragma omp parallel num_threads(nt)
  {
    static thread_local Buffer<float> sc;
    grow(sc, R * chunk);
#pragma omp for schedule(dynamic, 1)
    for (int64_t it = 0; it < items; ++it) {
      const int kvh = (int)(it / nch);
      const int64_t c0 = (it % nch) * chunk, c1 = std::min(L, c0 + chunk), n = c1 - c0;
      const T* kb = kcache + ((int64_t)kvh * ctx + c0) * D;
      const T* vb = vcache + ((int64_t)kvh * ctx + c0) * D;
      for (int64_t j = 0; j < n; ++j) {
        prefetch_row(kb + (j + kAhead) * D, D);  // the cache streams from DRAM at long context
        prefetch_row<true>(kb + (j + kFar) * D, D);
        for (int r = 0; r < R; ++r) {
          const int64_t s = r / group;
          const float* qr = q + s * q_stride + (int64_t)(kvh * group + r % group) * D;
          sc[r * chunk + j] = c0 + j <= past + s ? scale * dot_kv(qr, kb + j * D, D) : -INFINITY;
        }
      }
      // Per row: max, exp, sum (vectorized); unnormalized o = Σ_j p_j·v_j.
      for (int r = 0; r < R; ++r) {
        float* pr = part.data() + (it * R + r) * (D + 2);
        float* srow = sc.data() + r * chunk;
        const float m = vmath::row_max(srow, n);
        const float l = m != -INFINITY ? vmath::exp_row(srow, n, 1.f, m) : 0.f;
        pr[0] = m;
        pr[1] = l;
      }
      // o rows. D = 128 (every Qwen-VL text model): whole V rows, two query
      // rows at a time (16 accumulators), so each V row is streamed once from
      // DRAM (further row pairs re-read the chunk from L2).
#if defined(__AVX512F__)
      if (D == 128) {
        for (int r0 = 0; r0 < R; r0 += 2) {
          const int rn = std::min(2, R - r0);
          __m512 va[2][8];
          for (int r = 0; r < 2; ++r)
            for (int c = 0; c < 8; ++c) va[r][c] = _mm512_setzero_ps();
          const float* p0 = sc.data() + r0 * chunk;
          const float* p1 = rn > 1 ? p0 + chunk : p0;
          for (int64_t jj = 0; jj < n; ++jj) {
            const T* vr = vb + jj * D;
            prefetch_row(vr + kAhead * D, D);
            prefetch_row<true>(vr + kFar * D, D);
            __m512 v[8];
            for (int c = 0; c < 8; ++c) v[c] = load16(vr + 16 * c);
            const __m512 a = _mm512_set1_ps(p0[jj]), b = _mm512_set1_ps(p1[jj]);
            for (int c = 0; c < 8; ++c) {
              va[0][c] = _mm512_fmadd_ps(a, v[c], va[0][c]);
              va[1][c] = _mm512_fmadd_ps(b, v[c], va[1][c]);
            }
          }
          for (int r = 0; r < rn; ++r) {
            float* o = part.data() + (it * R + r0 + r) * (D + 2) + 2;
            const bool empty = part[(it * R + r0 + r) * (D + 2)] == -INFINITY;
            for (int c = 0; c < 8; ++c) _mm512_storeu_ps(o + 16 * c, empty ? _mm512_setzero_ps() : va[r][c]);
          }
        }
        continue;
      }
#endif
      // Other head sizes: V rows are read once for all R rows, 64 channels at a time.
      for (int r0 = 0; r0 < R; r0 += 4) {
        const int rn = std::min(4, R - r0);
        for (int d0 = 0; d0 < D; d0 += 64) {
          const int dn = std::min(64, D - d0);
          float acc[4][64] = {};
#if defined(__AVX512F__)
          if (dn == 64) {
            __m512 va[4][4];
            for (int r = 0; r < 4; ++r)
              for (int c = 0; c < 4; ++c) va[r][c] = _mm512_setzero_ps();
            for (int64_t jj = 0; jj < n; ++jj) {
              const T* vr = vb + jj * D + d0;
              prefetch_row(vr + kAhead * D, 64);
              __m512 v0 = load16(vr), v1 = load16(vr + 16);
              __m512 v2 = load16(vr + 32), v3 = load16(vr + 48);
              for (int r = 0; r < rn; ++r) {
                __m512 p = _mm512_set1_ps(sc[(r0 + r) * chunk + jj]);
                va[r][0] = _mm512_fmadd_ps(p, v0, va[r][0]);
                va[r][1] = _mm512_fmadd_ps(p, v1, va[r][1]);
                va[r][2] = _mm512_fmadd_ps(p, v2, va[r][2]);
                va[r][3] = _mm512_fmadd_ps(p, v3, va[r][3]);
              }
            }
            for (int r = 0; r < rn; ++r)
              for (int c = 0; c < 4; ++c) _mm512_storeu_ps(acc[r] + 16 * c, va[r][c]);
          } else
#endif
          {
            for (int64_t jj = 0; jj < n; ++jj)
              for (int r = 0; r < rn; ++r) {
                const float p = sc[(r0 + r) * chunk + jj];
                for (int d = 0; d < dn; ++d) acc[r][d] += p * to_f32(vb[jj * D + d0 + d]);
              }
          }
          for (int r = 0; r < rn; ++r) {
            float* o = part.data() + (it * R + r0 + r) * (D + 2) + 2 + d0;
            if (part[(it * R + r0 + r) * (D + 2)] == -INFINITY) {
              for (int d = 0; d < dn; ++d) o[d] = 0.f;
            } else {
              for (int d = 0; d < dn; ++d) o[d] = acc[r][d];
            }
          }
        }
      }
    }
  }
  // Merge the chunks of every (KV head, row).
  for (int kvh = 0; kvh < Hkv; ++kvh)
    for (int r = 0; r < R; ++r) {
      const int64_t s = r / group;
      float* o = out + s * out_stride + (int64_t)(kvh * group + r % group) * D;
      float m = -INFINITY;
      for (int64_t c = 0; c < nch; ++c) m = std::max(m, part[((kvh * nch + c) * R + r) * (D + 2)]);
      float l = 0;
      for (int d = 0; d < D; ++d) o[d] = 0.f;
      for (int64_t c = 0; c < nch; ++c) {
        const float* pr = part.data() + ((kvh * nch + c) * R + r) * (D + 2);
        if (pr[0] == -INFINITY) continue;
        const float w = std::exp(pr[0] - m);
        l += w * pr[1];
        for (int d = 0; d < D; ++d) o[d] += w * pr[2 + d];
      }
      const float inv = 1.f / l;
      for (int d = 0; d < D; ++d) o[d] *= inv;
    }
}

// ---- blocked attention with the GEMM engine -------------------------------
// One query block of one head: P = softmax(scale·Q·Kᵀ) over keys [0, nk) with
// row r allowed keys [0, lim[r]); O = P·V. Q rows lda apart, K / V rows ldk
// apart, O rows ldo apart. sc: scratch [nq, nk].
// row[0, n) *= scale.
void scale_row(float* row, int64_t n, float scale) {
  int64_t j = 0;
#if defined(__AVX512F__)
  const __m512 vs = _mm512_set1_ps(scale);
  for (; j + 16 <= n; j += 16) _mm512_storeu_ps(row + j, _mm512_mul_ps(_mm512_loadu_ps(row + j), vs));
#endif
  for (; j < n; ++j) row[j] *= scale;
}

// bf16: both products on the bf16 engine (operands rounded to bf16, fp32 sums).
void attend_block(const float* Q, int64_t lda, int64_t nq, const float* K, const float* V,
                  int64_t ldk, int64_t nk, const int64_t* lim, int D, float scale, float* O,
                  int64_t ldo, float* sc, bool bf16 = false) {
  gemm::PackF32 kt(K, ldk, true);
  if (bf16) gemm::sgemm_bf16_serial(nq, nk, D, Q, lda, kt, sc, nk, false);
  else gemm::sgemm_serial(nq, nk, D, Q, lda, kt, sc, nk, false);
  for (int64_t r = 0; r < nq; ++r) {
    float* row = sc + r * nk;
    const int64_t n = lim ? lim[r] : nk;
    scale_row(row, n, scale);
    softmax(row, 1, n);
    for (int64_t j = n; j < nk; ++j) row[j] = 0.f;
  }
  gemm::PackF32 vb(V, ldk, false);
  if (bf16) gemm::sgemm_bf16_serial(nq, D, nk, sc, nk, vb, O, ldo, false);
  else gemm::sgemm_serial(nq, D, nk, sc, nk, vb, O, ldo, false);
}

// Query rows per block: keep the score block near 1 MB.
int64_t query_block(int64_t nk) { return std::max<int64_t>(12, std::min<int64_t>(96, (1 << 18) / std::max<int64_t>(nk, 1) / 12 * 12)); }

// row[j] = exp(scale·(row[j] − max_j row)) in place; returns 1 / Σ_j row[j]
// (the caller normalizes the product P·V instead of P: D values per row, not n).
float exp_row_scaled(float* row, int64_t n, float scale) {
  return 1.f / vmath::exp_row(row, n, scale, scale * vmath::row_max(row, n));
}

// The two engines of packed attention: fp32 (gemm.h) and bf16 (gemm_bf16.h);
// mul takes prefixes n ≤ B.N, k ≤ B.K (the bf16 one on the pair layout only).
struct F32Engine {
  using Packed = gemm::PackedB;
  static void pack(int64_t N, int64_t K, const gemm::BPacker& B, Packed* p) { gemm::pack_b(N, K, B, p); }
  static void mul(int64_t M, const float* A, int64_t lda, const Packed& B, float* C, int64_t ldc,
                  int64_t n = -1, int64_t k = -1) {
    gemm::sgemm_packed_serial(M, A, lda, B, C, ldc, false, n, k);
  }
};
struct Bf16Engine {
  using Packed = gemm::PackedB16;
  static void pack(int64_t N, int64_t K, const gemm::BPacker& B, Packed* p) { gemm::pack_b16(N, K, B, p); }
  static void mul(int64_t M, const float* A, int64_t lda, const Packed& B, float* C, int64_t ldc,
                  int64_t n = -1, int64_t k = -1) {
    gemm::sgemm_b16_serial(M, A, lda, B, C, ldc, false, n, k);
  }
};


// Causal prefill on packed operands (fp32, or bf16 on the pair layout): every
// KV head's Kᵀ and V over the n = past + S rows in use packed once (2·Hkv tasks
// in parallel), then (query block, head) items, longest rows first: block
// [s0, s1) multiplies the prefixes of nk = past + s1 keys, row r keeps keys
// < past + s0 + r + 1, O = (P·V) / rowsum.
template <class E>
void causal_packed(const float* q, int64_t q_stride, int64_t S, int Hq, int Hkv, int D, const float* kcache,
                   const float* vcache, int64_t ctx, int64_t past, float scale, float* out, int64_t out_stride) {
  const int group = Hq / Hkv;
  const int64_t n = past + S, qb = query_block(n), nblk = (S + qb - 1) / qb;
  static thread_local std::vector<typename E::Packed> kt_own, vb_own;  // grow-only, reused by every layer
  std::vector<typename E::Packed>& kt = kt_own;  // the calling thread's, shared with the workers
  std::vector<typename E::Packed>& vb = vb_own;
  if ((int)kt.size() < Hkv) kt.resize(Hkv), vb.resize(Hkv);
#pragma omp parallel for schedule(dynamic, 1)
  for (int64_t t = 0; t < 2 * (int64_t)Hkv; ++t) {
    const int64_t off = t / 2 * ctx * D;
    if (t % 2 == 0) E::pack(n, D, gemm::PackF32(kcache + off, D, true), &kt[t / 2]);
    else E::pack(D, n, gemm::PackF32(vcache + off, D, false), &vb[t / 2]);
  }
#pragma omp parallel
  {
    static thread_local Buffer<float> sc;
    grow(sc, qb * n + 16);
    std::vector<float> inv(qb);
#pragma omp for schedule(dynamic, 1) collapse(2)
    for (int64_t blk = nblk - 1; blk >= 0; --blk)
      for (int h = 0; h < Hq; ++h) {
        const int64_t s0 = blk * qb, s1 = std::min(S, s0 + qb), nq = s1 - s0, nk = past + s1;
        E::mul(nq, q + s0 * q_stride + (int64_t)h * D, q_stride, kt[h / group], sc.data(), nk, nk, D);
        for (int64_t r = 0; r < nq; ++r) {
          float* row = sc.data() + r * nk;
          const int64_t lim = past + s0 + r + 1;
          inv[r] = exp_row_scaled(row, lim, scale);
          for (int64_t j = lim; j < nk; ++j) row[j] = 0.f;
        }
        float* o = out + s0 * out_stride + (int64_t)h * D;
        E::mul(nq, sc.data(), nk, vb[h / group], o, out_stride, D, nk);
        for (int64_t r = 0; r < nq; ++r) scale_row(o + r * out_stride, D, inv[r]);
      }
  }
}

// Prefill with split-bf16 products (AttnPrecision::Split): Kᵀ and V of every KV
// head split and packed once (in parallel over heads), then (query block, head)
// items as in the fp32 path with S = Q·Kᵀ and O = P·V on the packed prefixes.
bool causal_split(const float* q, int64_t q_stride, int64_t S, int Hq, int Hkv, int D, const float* kcache,
                  const float* vcache, int64_t ctx, int64_t past, float scale, float* out, int64_t out_stride) {
  if (!gemm::bf16_amx_available()) return false;
  const int group = Hq / Hkv;
  const int64_t n = past + S, qb = query_block(n), nblk = (S + qb - 1) / qb;
  static thread_local std::vector<gemm::PackedB16Split> kt_own, vb_own;  // grow-only, reused by every layer
  // The workers must use the calling thread's instances (a thread_local named
  // inside the parallel region would be each worker's own).
  std::vector<gemm::PackedB16Split>& kt = kt_own;
  std::vector<gemm::PackedB16Split>& vb = vb_own;
  if ((int)kt.size() < Hkv) kt.resize(Hkv), vb.resize(Hkv);
#pragma omp parallel for schedule(dynamic, 1)
  for (int64_t t = 0; t < 2 * (int64_t)Hkv; ++t) {
    const int h = (int)(t / 2);
    const int64_t off = (int64_t)h * ctx * D;
    if (t % 2 == 0)
      gemm::pack_b16_split(n, D, gemm::PackF32(kcache + off, D, true), &kt[h]);
    else
      gemm::pack_b16_split(D, n, gemm::PackF32(vcache + off, D, false), &vb[h]);
  }
#pragma omp parallel
  {
    static thread_local Buffer<float> sc;
    grow(sc, qb * n + 16);
#pragma omp for schedule(dynamic, 1) collapse(2)
    for (int64_t blk = nblk - 1; blk >= 0; --blk)  // longest rows first
      for (int h = 0; h < Hq; ++h) {
        const int64_t s0 = blk * qb, s1 = std::min(S, s0 + qb), nq = s1 - s0, nk = past + s1;
        gemm::sgemm_b16_split_serial(nq, nk, D, q + s0 * q_stride + (int64_t)h * D, q_stride, kt[h / group],
                                     sc.data(), nk);
        for (int64_t r = 0; r < nq; ++r) {
          float* row = sc.data() + r * nk;
          const int64_t lim = past + s0 + r + 1;
          scale_row(row, lim, scale);
          softmax(row, 1, lim);
          for (int64_t j = lim; j < nk; ++j) row[j] = 0.f;
        }
        gemm::sgemm_b16_split_serial(nq, D, nk, sc.data(), nk, vb[h / group], out + s0 * out_stride + (int64_t)h * D,
                                     out_stride);
      }
  }
  return true;
}

}  // namespace

void attention_causal(const float* q, int64_t q_stride, int64_t S, int Hq, int Hkv, int D, const KVBlock& kv,
                      int64_t past, float scale, float* out, int64_t out_stride, AttnPrecision prec) {
  if (kv.dtype != DType::F16) {
    attention_causal(q, q_stride, S, Hq, Hkv, D, static_cast<const float*>(kv.k), static_cast<const float*>(kv.v),
                     kv.ctx, past, scale, out, out_stride, prec);
    return;
  }
  QVL_ASSERT(Hkv > 0 && Hq % Hkv == 0 && past + S <= kv.ctx);
  const auto* kh = static_cast<const uint16_t*>(kv.k);
  const auto* vh = static_cast<const uint16_t*>(kv.v);
  if (S <= 4 || !gemm::available()) {
    causal_decode(q, q_stride, S, Hq, Hkv, D, kh, vh, kv.ctx, past, scale, out, out_stride);
    return;
  }
  // Prefill: the rows in use, [Hkv, past+S, D], converted to fp32 once.
  const int64_t n = past + S;
  Buffer<float> kf((size_t)Hkv * n * D), vf((size_t)Hkv * n * D);
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < Hkv * n; ++r) {
    const int64_t h = r / n, j = r % n;
    f16_to_f32_row(kh + (h * kv.ctx + j) * D, kf.data() + r * D, D);
    f16_to_f32_row(vh + (h * kv.ctx + j) * D, vf.data() + r * D, D);
  }
  attention_causal(q, q_stride, S, Hq, Hkv, D, kf.data(), vf.data(), n, past, scale, out, out_stride, prec);
}

void attention_causal(const float* q, int64_t q_stride, int64_t S, int Hq, int Hkv, int D,
                      const float* kcache, const float* vcache, int64_t ctx, int64_t past,
                      float scale, float* out, int64_t out_stride, AttnPrecision prec) {
  QVL_ASSERT(Hkv > 0 && Hq % Hkv == 0 && past + S <= ctx);
  if (S <= 4 || !gemm::available()) {
    causal_decode(q, q_stride, S, Hq, Hkv, D, kcache, vcache, ctx, past, scale, out, out_stride);
    return;
  }
  if (prec == AttnPrecision::Split &&
      causal_split(q, q_stride, S, Hq, Hkv, D, kcache, vcache, ctx, past, scale, out, out_stride))
    return;
  const bool bf16 = prec == AttnPrecision::BF16 && gemm::bf16_available();
  if (!bf16)
    return causal_packed<F32Engine>(q, q_stride, S, Hq, Hkv, D, kcache, vcache, ctx, past, scale, out, out_stride);
  if (!gemm::bf16_amx_available())  // the AVX512-BF16 engine: pair layout, prefixes supported
    return causal_packed<Bf16Engine>(q, q_stride, S, Hq, Hkv, D, kcache, vcache, ctx, past, scale, out, out_stride);
  // bf16 on AMX: (head, query block) items, K / V converted per block;
  // block [s0, s1) sees keys [0, past + s1).
  const int group = Hq / Hkv;
  const int64_t qb = query_block(past + S);
  const int64_t nblk = (S + qb - 1) / qb;
#pragma omp parallel
  {
    static thread_local Buffer<float> sc;
    grow(sc, qb * (past + S));
    std::vector<int64_t> lim(qb);
#pragma omp for schedule(dynamic, 1) collapse(2)
    for (int64_t blk = nblk - 1; blk >= 0; --blk)  // longest rows first
      for (int h = 0; h < Hq; ++h) {
        const int64_t s0 = blk * qb, s1 = std::min(S, s0 + qb), nk = past + s1;
        for (int64_t r = 0; r < s1 - s0; ++r) lim[r] = past + s0 + r + 1;
        const int64_t kv = (int64_t)(h / group) * ctx * D;
        attend_block(q + s0 * q_stride + (int64_t)h * D, q_stride, s1 - s0, kcache + kv, vcache + kv,
                     D, nk, lim.data(), D, scale, out + s0 * out_stride + (int64_t)h * D, out_stride,
                     sc.data(), bf16);
      }
  }
}

void attention_segments_ref(const float* q, const float* k, const float* v, int64_t stride,
                            int64_t N, int H, int D, const int64_t* cu_seqlens, int nseg,
                            float scale, float* out) {
  for (int g = 0; g < nseg; ++g) {
    int64_t b = cu_seqlens[g], e = cu_seqlens[g + 1];
    for (int64_t i = b; i < e; ++i)
      for (int h = 0; h < H; ++h)
        attend_row_ref(q + i * stride + (int64_t)h * D, k + b * stride + (int64_t)h * D,
                       v + b * stride + (int64_t)h * D, stride, e - b, D, scale,
                       out + (i * H + h) * D);
  }
}

namespace {

// Segment attention on packed operands: first every (segment, head)'s Kᵀ and V
// packed once (2·nseg·H tasks in parallel), then (segment, query block, head)
// items in parallel, each S = Q·Kᵀ, P = exp(scale·(S − rowmax)) in fp32,
// O = (P·V) / rowsum against the packed pair. The packed buffers are grow-only and reused by every layer.
template <class E>
void segments_packed(const float* q, const float* k, const float* v, int64_t stride, int H, int D,
                     const int64_t* cu_seqlens, int nseg, int64_t maxlen, float scale, float* out) {
  const int64_t tasks = (int64_t)nseg * H;
  static thread_local std::vector<typename E::Packed> kt_own, vb_own;
  // The workers must use the calling thread's instances.
  std::vector<typename E::Packed>& kt = kt_own;
  std::vector<typename E::Packed>& vb = vb_own;
  if ((int64_t)kt.size() < tasks) kt.resize(tasks), vb.resize(tasks);
#pragma omp parallel for schedule(dynamic, 1)
  for (int64_t t = 0; t < 2 * tasks; ++t) {
    const int64_t g = t / 2 / H, b = cu_seqlens[g], nk = cu_seqlens[g + 1] - b;
    const int64_t off = b * stride + (t / 2 % H) * D;
    if (nk <= 0) continue;
    if (t % 2 == 0) E::pack(nk, D, gemm::PackF32(k + off, stride, true), &kt[t / 2]);
    else E::pack(D, nk, gemm::PackF32(v + off, stride, false), &vb[t / 2]);
  }
  const int64_t qb = query_block(maxlen);
  struct Item { int64_t seg, q0, q1; };
  std::vector<Item> items;
  for (int g = 0; g < nseg; ++g)
    for (int64_t i = cu_seqlens[g]; i < cu_seqlens[g + 1]; i += qb)
      items.push_back({g, i, std::min(cu_seqlens[g + 1], i + qb)});
  const int64_t n_items = (int64_t)items.size() * H;
#pragma omp parallel
  {
    static thread_local Buffer<float> sc;
    grow(sc, qb * maxlen + 16);
    std::vector<float> inv(qb);
#pragma omp for schedule(dynamic, 1)
    for (int64_t t = 0; t < n_items; ++t) {  // head-major: a head's packed Kᵀ / V stay in L2
      const Item& it = items[t % (int64_t)items.size()];
      const int h = (int)(t / (int64_t)items.size());
      const int64_t nk = cu_seqlens[it.seg + 1] - cu_seqlens[it.seg], nq = it.q1 - it.q0, off = (int64_t)h * D;
      const int64_t pk = it.seg * H + h;
      E::mul(nq, q + it.q0 * stride + off, stride, kt[pk], sc.data(), nk);
      for (int64_t r = 0; r < nq; ++r) inv[r] = exp_row_scaled(sc.data() + r * nk, nk, scale);
      float* o = out + it.q0 * H * D + off;
      E::mul(nq, sc.data(), nk, vb[pk], o, (int64_t)H * D);
      for (int64_t r = 0; r < nq; ++r) scale_row(o + r * H * D, D, inv[r]);
    }
  }
}

}  // namespace

void attention_segments(const float* q, const float* k, const float* v, int64_t stride,
                        int64_t N, int H, int D, const int64_t* cu_seqlens, int nseg,
                        float scale, float* out) {
  int64_t maxlen = 0;
  for (int g = 0; g < nseg; ++g) maxlen = std::max(maxlen, cu_seqlens[g + 1] - cu_seqlens[g]);
  if (maxlen <= 0) return;
  if (float_compute() == FloatCompute::BF16 && gemm::bf16_available())
    return segments_packed<Bf16Engine>(q, k, v, stride, H, D, cu_seqlens, nseg, maxlen, scale, out);
  if (gemm::available())
    return segments_packed<F32Engine>(q, k, v, stride, H, D, cu_seqlens, nseg, maxlen, scale, out);
  // No AVX-512: one row at a time, (row, head) items.
#pragma omp parallel
  {
    static thread_local Buffer<float> sc;
    grow(sc, maxlen + 16);
#pragma omp for schedule(dynamic, 16)
    for (int64_t t = 0; t < N * H; ++t) {
      const int64_t i = t / H;
      const int h = (int)(t % H);
      int g = 0;
      while (cu_seqlens[g + 1] <= i) ++g;
      const int64_t b = cu_seqlens[g], off = (int64_t)h * D;
      attend_row(q + i * stride + off, k + b * stride + off, v + b * stride + off, stride, cu_seqlens[g + 1] - b, D,
                 scale, sc.data(), out + (i * H + h) * D);
    }
  }
}

}  // namespace qvl
