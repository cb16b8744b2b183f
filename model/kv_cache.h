// Key/value cache of the text decoder: per layer two [Hkv, ctx, D] blocks
// (the layout kernels/attention.h reads), preallocated for the whole context,
// stored as fp32 (default, exact) or fp16 (half the memory and half the bytes
// a long-context decode step reads; values rounded to nearest even, relative
// error ≤ 2^-11). `len` rows (cache positions 0..len-1) are valid; a forward
// writes rows len..len+S-1 and then advances len.
#pragma once
#include <cstdint>

#include "kernels/attention.h"
#include "kernels/base.h"
#include "kernels/dtype.h"

namespace qvl {

struct KVCache {
  int layers = 0, kv_heads = 0, head_dim = 0;
  int64_t ctx = 0;  // capacity in tokens
  int64_t len = 0;  // valid tokens
  DType dtype = DType::F32;    // F32 or F16
  Buffer<float> k, v;          // F32: [layers, Hkv, ctx, D]
  Buffer<uint16_t> kh, vh;     // F16: [layers, Hkv, ctx, D]

  KVCache() = default;
  KVCache(int layers, int kv_heads, int head_dim, int64_t ctx, DType dtype = DType::F32) {
    init(layers, kv_heads, head_dim, ctx, dtype);
  }
  // (Re)allocates for `ctx` tokens and empties the cache. Throws qvl::Error when
  // the allocation fails (message names the size) or the dtype is not F32/F16.
  void init(int layers, int kv_heads, int head_dim, int64_t ctx, DType dtype = DType::F32);

  int64_t layer_stride() const { return (int64_t)kv_heads * ctx * head_dim; }
  // Layer i's K and V blocks as the attention kernels take them.
  KVBlock layer(int i) const;
  // Writes S new rows (token t, KV head h at src[(t·Hkv + h)·D]) for K and V at
  // positions len..len+S-1 of layer i (converting to the cache dtype).
  void write(int i, int64_t S, const float* k_rows, const float* v_rows);

  // Keeps the first n tokens (chat /reset, regenerate). n must be <= len.
  void truncate(int64_t n);
  void clear() { len = 0; }
  int64_t remaining() const { return ctx - len; }
  // Bytes of both caches.
  size_t bytes() const;

  // Copies layer i's first n rows of K (or V) into out [Hkv, n, D] as fp32 (compare/tests).
  void copy_rows(int layer, bool value, int64_t n, float* out) const;

  // Positions whose pages are already mapped (see populate).
  int64_t populated() const { return ready_; }

 private:
  // Maps the pages of positions [ready_, ≥ n) of every layer and head ahead
  // of use, kPopulateAhead positions at a time, with one madvise per block:
  // a decode step otherwise takes a page fault in most of the 2·layers·Hkv
  // blocks every few tokens (measured 43 µs per layer per token on the 2B
  // model, 4 % of a decode step, where faults are costly). The cache is in
  // 4 KiB pages, so the cost is per page mapped (≈ 4 µs per page on the VMs
  // measured): 64 positions per step keep a short prompt's first prefill at
  // ≈ 3.6 k pages on the 2B model and each decode refill to one short pause.
  // A long first write switches the cache to huge pages (kHugeFirstWrite).
  void populate(int64_t n);
  void set_huge_pages(bool huge);
  static constexpr int64_t kPopulateAhead = 64;
  // First writes of at least this many bytes per (layer, head) block map the
  // cache in huge pages instead (half a 2 MiB page: 2048 fp32 positions at D 128).
  static constexpr size_t kHugeFirstWrite = size_t(1) << 20;
  int64_t ready_ = 0;
};

}  // namespace qvl
