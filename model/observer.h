// Named intermediate tensors of a forward pass, handed to an optional observer
// (`qvl compare`, golden tests). A null observer costs one branch per tensor.
//
// Names (shapes without batch; S = tokens of this forward, N = vision patches):
//   vision.patch_embed [N,Hv]   vision.pos_embeds [N,Hv]   vision.patch_embed_pos [N,Hv]
//   vision.block.{i} [N,Hv]     vision.merger [N/4,out] (= image embeds)
//   vision.deepstack.{k} [N/4,out]
//   text.inputs_embeds [S,H]    text.layer.{i} [S,H] (layer output BEFORE the DeepStack add)
//   text.layer.{i}.plus_deepstack [S,H] (only when DeepStack rows were added)
//   text.layer.{i}.key / .value [Hkv, len+S, D] (the whole cache of that layer after the
//   write: k after k_norm + MRoPE)
//   text.final_norm [S,H]       logits [S or 1, V]
// These mirror the golden files (vision_block_0.npy, decoder_layer_0.npy,
// prefill_key_0.npy, final_norm.npy, logits_last.npy ...).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace qvl {

struct TensorObserver {
  virtual ~TensorObserver() = default;
  // `data` is valid only during the call (copy what you keep).
  virtual void on_tensor(const std::string& name, const float* data,
                         const std::vector<int64_t>& shape) = 0;
};

}  // namespace qvl
