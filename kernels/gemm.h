// qvl's own fp32 GEMM (AVX-512, register-blocked, packed panels):
//   C[M, N] (ldc) = A[M, K] (lda, fp32) · B[K, N]  (+ C when accumulate)
// B is supplied by a packer so one engine serves fp32 [K,N] / [N,K] matrices,
// F16/BF16 weights (converted while packing) and quantized rows (dequantized
// while packing). Used by linear (prefill), attention blocks and gemm_f32.
#pragma once
#include <cstdint>

#include "kernels/base.h"

namespace qvl::gemm {

constexpr int kMR = 12;   // rows of C per micro-tile
constexpr int kNR = 32;   // columns of C per micro-tile (two zmm)
constexpr int kKC = 256;  // depth of one packed block (PackQ relies on 256 % block == 0)

// Writes B[k0 .. k0+kc) × [n0 .. n0+nr) as dst[k·kNR + j], j < kNR, columns
// j ≥ nr set to 0. Must be thread-safe (called concurrently for disjoint n).
struct BPacker {
  virtual ~BPacker() = default;
  virtual void pack(int64_t k0, int kc, int64_t n0, int nr, float* dst) const = 0;
};

// fp32 B stored [K, N] (row stride ldb), or transposed: stored [N, K].
struct PackF32 : BPacker {
  const float* b;
  int64_t ldb;
  bool trans;
  PackF32(const float* b_, int64_t ldb_, bool trans_) : b(b_), ldb(ldb_), trans(trans_) {}
  void pack(int64_t k0, int kc, int64_t n0, int nr, float* dst) const override;
};

// True when the AVX-512 engine is compiled in (else sgemm falls back to OpenBLAS
// for PackF32 and to a scalar loop for other packers).
bool available();

// Single-threaded C = A·B (+C) over the whole M × N range; safe inside OpenMP regions.
void sgemm_serial(int64_t M, int64_t N, int64_t K, const float* A, int64_t lda, const BPacker& B,
                  float* C, int64_t ldc, bool accumulate);

// Same, split over N across the OpenMP threads.
void sgemm(int64_t M, int64_t N, int64_t K, const float* A, int64_t lda, const BPacker& B,
           float* C, int64_t ldc, bool accumulate);

// B packed once for several products (attention's Kᵀ and V, reused by every
// query block): ceil(N/kNR) panels of [K][kNR] floats, columns ≥ N zero.
struct PackedB {
  Buffer<float> data;
  int64_t N = 0, K = 0;
};
void pack_b(int64_t N, int64_t K, const BPacker& B, PackedB* out);
// C[M, n] (ldc) (+)= A[M, k] (lda) · B[:k, :n], single-threaded, safe inside
// OpenMP regions; n, k < 0 mean B.N, B.K (prefixes: causal attention).
void sgemm_packed_serial(int64_t M, const float* A, int64_t lda, const PackedB& B, float* C, int64_t ldc,
                         bool accumulate, int64_t n = -1, int64_t k = -1);

}  // namespace qvl::gemm
