// Qwen3-VL text decoder on qvl kernels, weights bound from one ONNX decoder
// (+ an embedding graph, or the tied lm_head when there is none).
//
// Per layer (pre-norm):  a = RMSNorm(x)·w_in;  q,k,v = a·Wqᵀ, a·Wkᵀ, a·Wvᵀ (+bias if any)
//   q,k ← per-head RMSNorm (q_norm/k_norm) → interleaved MRoPE (positions [3,S])
//   K,V → cache rows len..len+S−1;  o = GQA causal attention → o·Woᵀ;  x += o
//   a = RMSNorm(x)·w_post;  x += down(silu(gate(a)) ⊙ up(a))
//   layer l < #DeepStack levels: x[visual rows] += deepstack_l
// Then final RMSNorm → lm_head (last row, or every row on request).
// One forward serves every weight format (linear() dispatches on the weight kind).
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "kernels/base.h"
#include "kernels/embedding.h"
#include "kernels/linear.h"
#include "loader/config.h"
#include "loader/onnx_file.h"
#include "model/kv_cache.h"
#include "model/model_files.h"
#include "model/observer.h"
#include "model/weights.h"

namespace qvl {

// DeepStack rows to add in one forward: level k's feature row j goes to chunk row rows[j]
// after decoder layer k (k < features.size()). Each features[k] is [rows.size(), H].
struct Deepstack {
  std::vector<const float*> features;
  std::vector<int64_t> rows;
};

class TextModel {
 public:
  static std::unique_ptr<TextModel> load(const ModelFiles& files, const ModelConfig& cfg);
  ~TextModel();

  const TextConfig& config() const { return cfg_; }
  int64_t hidden() const { return cfg_.hidden; }
  int64_t vocab() const { return cfg_.vocab; }
  // A cache shaped for this model, `ctx` tokens.
  KVCache make_cache(int64_t ctx, DType kv_dtype = DType::F32) const;
  // One line: files, weight format, whether the embedding comes from the tied lm_head.
  std::string describe() const;
  const LinearWeight& lm_head() const { return lm_head_; }

  // out [n, H] = token embeddings. Throws qvl::Error for an id >= vocab.
  void embed(const int64_t* ids, int64_t n, float* out) const;

  // Runs S new tokens (embeds [S, H], positions pos [3, S] rows T,H,W) on top of
  // cache.len cached ones; appends their K/V and advances cache.len by S.
  // logits: [S, V] if all_logits, else [1, V] for the last row (may be null: no lm_head).
  // ds (nullable): DeepStack rows of this chunk. obs (nullable): intermediate tensors.
  void forward(const float* embeds, int64_t S, const int64_t* pos, KVCache& cache, const Deepstack* ds,
               float* logits, bool all_logits, TensorObserver* obs);

 private:
  struct Layer {
    const float *in_norm = nullptr, *post_norm = nullptr, *q_norm = nullptr, *k_norm = nullptr;
    LinearWeight q, k, v, o, gate, up, down;
  };
  TextModel() = default;
  void bind(const WeightBinder& text, const WeightBinder* emb);
  void attention_block(int l, int64_t S, KVCache& cache, TensorObserver* obs);
  void mlp_block(int l, int64_t S);
  void deepstack_inject(int l, int64_t S, const Deepstack& ds, TensorObserver* obs);
  void final_logits(int64_t S, float* logits, bool all_logits, TensorObserver* obs);
  void ensure_scratch(int64_t S);

  TextConfig cfg_;
  std::string text_path_, embed_path_;
  std::unique_ptr<OnnxFile> text_file_, embed_file_;
  WeightStore store_;
  std::vector<Layer> layers_;
  const float* final_norm_ = nullptr;
  LinearWeight lm_head_;
  EmbeddingTable table_;
  bool have_table_ = false;  // else embeddings are rows of the tied lm_head

  // Scratch, grown on demand: x residual [S,H], a normed [S,H], q [S,Hq·D],
  // k/v [S,Hkv·D], att [S,Hq·D], y [S,H], gate/up [S,I], cos/sin [S,D/2].
  int64_t scratch_rows_ = 0;
  Buffer<float> x_, a_, q_, k_, v_, att_, y_, gate_, up_, cos_, sin_;
};

}  // namespace qvl
