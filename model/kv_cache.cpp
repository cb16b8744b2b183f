// KVCache allocation and bookkeeping (see kv_cache.h for the layout).
#include "model/kv_cache.h"

#include <cstring>

namespace qvl {

void KVCache::init(int n_layers, int n_kv_heads, int dim, int64_t n_ctx) {
  QVL_CHECK(n_layers > 0 && n_kv_heads > 0 && dim > 0, "KV cache: bad shape (%d layers, %d heads, dim %d)",
            n_layers, n_kv_heads, dim);
  QVL_CHECK(n_ctx > 0, "KV cache: context length must be positive (got %lld)", (long long)n_ctx);
  layers = n_layers;
  kv_heads = n_kv_heads;
  head_dim = dim;
  ctx = n_ctx;
  len = 0;
  size_t n = (size_t)layers * kv_heads * ctx * head_dim;
  k.resize(n);
  v.resize(n);
}

void KVCache::truncate(int64_t n) {
  QVL_CHECK(n >= 0 && n <= len, "KV cache: cannot truncate to %lld tokens (it holds %lld)",
            (long long)n, (long long)len);
  len = n;
}

void KVCache::copy_rows(int layer, bool value, int64_t n, float* out) const {
  QVL_ASSERT(layer >= 0 && layer < layers && n <= ctx);
  const float* src = value ? v_layer(layer) : k_layer(layer);
  for (int h = 0; h < kv_heads; ++h)
    std::memcpy(out + (size_t)h * n * head_dim, src + (size_t)h * ctx * head_dim,
                sizeof(float) * n * head_dim);
}

}  // namespace qvl
