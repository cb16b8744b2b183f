// Key/value cache of the text decoder: per layer two [Hkv, ctx, D] fp32 blocks
// (the layout kernels/attention.h reads), preallocated for the whole context.
// `len` rows (cache positions 0..len-1) are valid; a forward writes rows
// len..len+S-1 and then advances len.
#pragma once
#include <cstdint>

#include "kernels/base.h"

namespace qvl {

struct KVCache {
  int layers = 0, kv_heads = 0, head_dim = 0;
  int64_t ctx = 0;  // capacity in tokens
  int64_t len = 0;  // valid tokens
  Buffer<float> k, v;  // [layers, Hkv, ctx, D]

  KVCache() = default;
  KVCache(int layers, int kv_heads, int head_dim, int64_t ctx) { init(layers, kv_heads, head_dim, ctx); }
  // (Re)allocates for `ctx` tokens and empties the cache. Throws qvl::Error when
  // the allocation fails (message names the size).
  void init(int layers, int kv_heads, int head_dim, int64_t ctx);

  int64_t layer_stride() const { return (int64_t)kv_heads * ctx * head_dim; }
  float* k_layer(int i) { return k.data() + i * layer_stride(); }
  float* v_layer(int i) { return v.data() + i * layer_stride(); }
  const float* k_layer(int i) const { return k.data() + i * layer_stride(); }
  const float* v_layer(int i) const { return v.data() + i * layer_stride(); }

  // Keeps the first n tokens (chat /reset, regenerate). n must be <= len.
  void truncate(int64_t n);
  void clear() { len = 0; }
  int64_t remaining() const { return ctx - len; }
  // Bytes of both caches.
  size_t bytes() const { return (k.size() + v.size()) * sizeof(float); }

  // Copies layer i's first n rows of K (or V) into out [Hkv, n, D] (compare/tests).
  void copy_rows(int layer, bool value, int64_t n, float* out) const;
};

}  // namespace qvl
