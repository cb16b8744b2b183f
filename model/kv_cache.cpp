// KVCache allocation, row writes and bookkeeping (see kv_cache.h for the layout).
#include "model/kv_cache.h"

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

namespace qvl {

namespace {
// madvise on the whole pages inside [p, p + bytes); advice only, failures ignored.
void advise(const void* p, size_t bytes, int advice) {
  if (!p || bytes == 0) return;
  const uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
  const uintptr_t lo = (reinterpret_cast<uintptr_t>(p) + page - 1) & ~(page - 1);
  const uintptr_t hi = (reinterpret_cast<uintptr_t>(p) + bytes) & ~(page - 1);
  if (hi > lo) madvise(reinterpret_cast<void*>(lo), hi - lo, advice);
}
}  // namespace

// The cache buffers' pages: 4 KiB unless the first write is long (populate()).
// alloc_aligned asks for huge pages, but one (layer, head) block is ctx·D
// elements — 2 MiB at the default 4096 fp32 context — so with huge pages the
// first row written to each block maps and zeroes its whole 2 MiB: a short first
// prompt zeroed the entire cache (896 MiB on the 2B model, 0.3–1.8 s).
void KVCache::set_huge_pages(bool huge) {
  const int advice = huge ? MADV_HUGEPAGE : MADV_NOHUGEPAGE;
  advise(k.data(), k.size() * sizeof(float), advice);
  advise(v.data(), v.size() * sizeof(float), advice);
  advise(kh.data(), kh.size() * sizeof(uint16_t), advice);
  advise(vh.data(), vh.size() * sizeof(uint16_t), advice);
}

void KVCache::init(int n_layers, int n_kv_heads, int dim, int64_t n_ctx, DType dt) {
  QVL_CHECK(n_layers > 0 && n_kv_heads > 0 && dim > 0, "KV cache: bad shape (%d layers, %d heads, dim %d)",
            n_layers, n_kv_heads, dim);
  QVL_CHECK(n_ctx > 0, "KV cache: context length must be positive (got %lld)", (long long)n_ctx);
  QVL_CHECK(dt == DType::F32 || dt == DType::F16, "KV cache: dtype %s not supported (f32 or f16)", dtype_name(dt));
  layers = n_layers;
  kv_heads = n_kv_heads;
  head_dim = dim;
  ctx = n_ctx;
  len = 0;
  ready_ = 0;
  dtype = dt;
  size_t n = (size_t)layers * kv_heads * ctx * head_dim;
  k.resize(dt == DType::F32 ? n : 0);
  v.resize(dt == DType::F32 ? n : 0);
  kh.resize(dt == DType::F16 ? n : 0);
  vh.resize(dt == DType::F16 ? n : 0);
  set_huge_pages(false);
}

KVBlock KVCache::layer(int i) const {
  KVBlock b;
  b.dtype = dtype;
  b.ctx = ctx;
  const int64_t o = i * layer_stride();
  if (dtype == DType::F16) {
    b.k = kh.data() + o;
    b.v = vh.data() + o;
  } else {
    b.k = k.data() + o;
    b.v = v.data() + o;
  }
  return b;
}

void KVCache::populate(int64_t n) {
  const int64_t to = std::min(ctx, (std::max(n, ready_ + kPopulateAhead) + kPopulateAhead - 1) /
                                       kPopulateAhead * kPopulateAhead);
  if (to <= ready_) return;
#ifdef MADV_POPULATE_WRITE
  const uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
  const size_t elem = dtype == DType::F16 ? 2 : 4;
  const size_t row = (size_t)head_dim * elem;
  // A long first prompt fills most of each block's first 2 MiB anyway: there huge
  // pages cost far less to map than the 512 small pages each replaces (2B, 2400-token
  // prompt: 85–92 vs 512–582 ms of cache writes).
  if (ready_ == 0 && (size_t)to * row >= kHugeFirstWrite) set_huge_pages(true);
  for (int b = 0; b < 2; ++b) {
    const char* base = dtype == DType::F16 ? reinterpret_cast<const char*>(b ? vh.data() : kh.data())
                                           : reinterpret_cast<const char*>(b ? v.data() : k.data());
    for (int64_t blk = 0; blk < (int64_t)layers * kv_heads; ++blk) {
      const uintptr_t lo = reinterpret_cast<uintptr_t>(base + ((size_t)blk * ctx + ready_) * row) & ~(page - 1);
      const uintptr_t hi = (reinterpret_cast<uintptr_t>(base + ((size_t)blk * ctx + to) * row) + page - 1) & ~(page - 1);
      // Failure (an older kernel) only means the pages fault in on first write.
      if (madvise(reinterpret_cast<void*>(lo), hi - lo, MADV_POPULATE_WRITE) != 0) break;
    }
  }
#endif
  ready_ = to;
}

void KVCache::write(int i, int64_t S, const float* k_rows, const float* v_rows) {
  QVL_ASSERT(i >= 0 && i < layers && len + S <= ctx);
  if (len + S > ready_) populate(len + S);
  const int D = head_dim;
  auto row = [&](int64_t t, int h) {
    const size_t dst = i * layer_stride() + ((size_t)h * ctx + len + t) * D;
    const float* ks = k_rows + (t * kv_heads + h) * D;
    const float* vs = v_rows + (t * kv_heads + h) * D;
    if (dtype == DType::F16) {
      f32_to_f16_row(ks, kh.data() + dst, D);
      f32_to_f16_row(vs, vh.data() + dst, D);
    } else {
      std::memcpy(k.data() + dst, ks, sizeof(float) * D);
      std::memcpy(v.data() + dst, vs, sizeof(float) * D);
    }
  };
  if (S < 32) {  // decode: no OpenMP region (even an if(false) one costs a team per layer)
    for (int64_t t = 0; t < S; ++t)
      for (int h = 0; h < kv_heads; ++h) row(t, h);
    return;
  }
#pragma omp parallel for collapse(2) schedule(static)
  for (int64_t t = 0; t < S; ++t)
    for (int h = 0; h < kv_heads; ++h) row(t, h);
}

void KVCache::truncate(int64_t n) {
  QVL_CHECK(n >= 0 && n <= len, "KV cache: cannot truncate to %lld tokens (it holds %lld)",
            (long long)n, (long long)len);
  len = n;
}

size_t KVCache::bytes() const {
  return (k.size() + v.size()) * sizeof(float) + (kh.size() + vh.size()) * sizeof(uint16_t);
}

void KVCache::copy_rows(int layer_i, bool value, int64_t n, float* out) const {
  QVL_ASSERT(layer_i >= 0 && layer_i < layers && n <= ctx);
  const int64_t o = layer_i * layer_stride();
  for (int h = 0; h < kv_heads; ++h) {
    const size_t src = o + (size_t)h * ctx * head_dim;
    float* dst = out + (size_t)h * n * head_dim;
    if (dtype == DType::F16) {
      const uint16_t* p = (value ? vh.data() : kh.data()) + src;
      for (int64_t j = 0; j < n * head_dim; ++j) dst[j] = f16_to_f32(p[j]);
    } else {
      std::memcpy(dst, (value ? v.data() : k.data()) + src, sizeof(float) * n * head_dim);
    }
  }
}

}  // namespace qvl
