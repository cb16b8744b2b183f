// The declarative weight tables of Qwen3-VL: for every slot, the names each
// known layout uses, and the logical shape from config.json.
//
// Columns per linear slot: qvl-convert / onnxruntime-genai name (float `…MatMul.weight`
// [K, N] or `…_Q4`), Hugging Face state-dict names (Gemm / dynamo exports), and the
// torch.onnx.export consumer node for anonymous `onnx::MatMul_NNN` weights.
#include "model/weights.h"

#include "kernels/base.h"

namespace qvl {

namespace {

WeightSlot lin(std::string slot, int64_t N, int64_t K, std::string dims, std::vector<std::string> names,
               std::vector<std::string> nodes = {}, bool required = true, bool bias = false) {
  WeightSlot s;
  s.slot = std::move(slot);
  s.kind = SlotKind::Linear;
  s.names = std::move(names);
  s.nodes = std::move(nodes);
  s.N = N;
  s.K = K;
  s.dims = std::move(dims);
  s.required = required;
  s.bias_required = bias;
  return s;
}

WeightSlot vec(std::string slot, int64_t N, std::string dims, std::vector<std::string> names,
               bool required = true) {
  WeightSlot s;
  s.slot = std::move(slot);
  s.kind = SlotKind::Vector;
  s.names = std::move(names);
  s.N = N;
  s.dims = std::move(dims);
  s.required = required;
  return s;
}

// Text-decoder names of one per-layer tensor in the three naming schemes:
// genai `model.layers.{i}.<g>`, HF `model.language_model.layers.{i}.<h>` and
// `model.layers.{i}.<h>` (torch export of the language model alone).
// (Concatenation by append: GCC 12 warns falsely on `"literal" + std::string`.)
std::string cat(std::string a, const std::string& b, const std::string& c = "") {
  a.append(b);
  a.append(c);
  return a;
}
std::vector<std::string> layer_names(const std::string& genai, const std::string& hf) {
  return {cat("model.layers.{i}.", genai), cat("model.language_model.layers.{i}.", hf), cat("model.layers.{i}.", hf)};
}
std::vector<std::string> layer_nodes(const std::string& scope) {
  return {cat("/model/layers.{i}/", scope, "/MatMul"), cat("/model/language_model/layers.{i}/", scope, "/MatMul"),
          cat("/language_model/layers.{i}/", scope, "/MatMul")};
}

std::vector<std::string> visual(const std::string& n) { return {cat("model.visual.", n), cat("visual.", n)}; }

}  // namespace

WeightTable text_weight_table(const TextConfig& c) {
  const int64_t H = c.hidden, Q = (int64_t)c.heads * c.head_dim, KV = (int64_t)c.kv_heads * c.head_dim,
                I = c.intermediate, D = c.head_dim, V = c.vocab;
  const std::string L = std::to_string(c.layers);
  WeightTable t;
  t.what = "text decoder";
  t.slots = {
      vec("layers.{i}.input_norm", H, "hidden", layer_names("input_layernorm.weight", "input_layernorm.weight")),
      lin("layers.{i}.q_proj", Q, H, "[heads·head_dim, hidden]",
          layer_names("attn.q_proj.MatMul.weight", "self_attn.q_proj.weight"), layer_nodes("self_attn/q_proj")),
      lin("layers.{i}.k_proj", KV, H, "[kv_heads·head_dim, hidden]",
          layer_names("attn.k_proj.MatMul.weight", "self_attn.k_proj.weight"), layer_nodes("self_attn/k_proj")),
      lin("layers.{i}.v_proj", KV, H, "[kv_heads·head_dim, hidden]",
          layer_names("attn.v_proj.MatMul.weight", "self_attn.v_proj.weight"), layer_nodes("self_attn/v_proj")),
      vec("layers.{i}.q_norm", D, "head_dim",
          layer_names("attn.q_norm.layernorm.weight", "self_attn.q_norm.weight"), c.qk_norm),
      vec("layers.{i}.k_norm", D, "head_dim",
          layer_names("attn.k_norm.layernorm.weight", "self_attn.k_norm.weight"), c.qk_norm),
      lin("layers.{i}.o_proj", H, Q, "[hidden, heads·head_dim]",
          layer_names("attn.o_proj.MatMul.weight", "self_attn.o_proj.weight"), layer_nodes("self_attn/o_proj")),
      vec("layers.{i}.post_norm", H, "hidden",
          layer_names("post_attention_layernorm.weight", "post_attention_layernorm.weight")),
      lin("layers.{i}.gate_proj", I, H, "[intermediate, hidden]",
          layer_names("mlp.gate_proj.MatMul.weight", "mlp.gate_proj.weight"), layer_nodes("mlp/gate_proj")),
      lin("layers.{i}.up_proj", I, H, "[intermediate, hidden]",
          layer_names("mlp.up_proj.MatMul.weight", "mlp.up_proj.weight"), layer_nodes("mlp/up_proj")),
      lin("layers.{i}.down_proj", H, I, "[hidden, intermediate]",
          layer_names("mlp.down_proj.MatMul.weight", "mlp.down_proj.weight"), layer_nodes("mlp/down_proj")),
      vec("final_norm", H, "hidden",
          {cat("model.layers.", L, ".final_norm_layernorm.weight"), "model.norm.weight",
           "model.language_model.norm.weight"}),
      // Tied models may omit it (the token table serves); untied ones need it.
      lin("lm_head", V, H, "[vocab, hidden]", {"lm_head.MatMul.weight", "lm_head.weight"}, {"/lm_head/MatMul"},
          !c.tie_word_embeddings),
  };
  return t;
}

WeightTable embedding_weight_table(const TextConfig& c) {
  WeightSlot s;
  s.slot = "embed_tokens";
  s.kind = SlotKind::Table;
  s.names = {"model.embed_tokens.weight", "model.language_model.embed_tokens.weight", "embed_tokens.weight"};
  s.nodes = {"/model/embed_tokens/Gather", "/model/language_model/embed_tokens/Gather", "/embed_tokens/Gather"};
  s.N = c.vocab;
  s.K = c.hidden;
  s.dims = "[vocab, hidden]";
  s.required = false;  // the caller decides (tied lm_head fallback)
  WeightTable t;
  t.what = "token embedding";
  t.slots = {s};
  return t;
}

WeightTable vision_weight_table(const VisionConfig& c) {
  const int64_t H = c.hidden, I = c.intermediate, M = 4LL * c.hidden, O = c.out_hidden,
                P = (int64_t)c.in_channels * c.temporal_patch * c.patch * c.patch;
  WeightSlot pos;
  pos.slot = "pos_embed";
  pos.kind = SlotKind::Table;
  pos.names = visual("pos_embed.weight");
  pos.N = c.num_position_embeddings;
  pos.K = H;
  pos.dims = "[num_position_embeddings, vision hidden]";
  WeightTable t;
  t.what = "vision encoder";
  t.slots = {
      lin("patch_embed", H, P, "[vision hidden, C·T·P·P]", visual("patch_embed.proj.weight"), {}, true, true),
      pos,
      vec("blocks.{i}.norm1.weight", H, "vision hidden", visual("blocks.{i}.norm1.weight")),
      vec("blocks.{i}.norm1.bias", H, "vision hidden", visual("blocks.{i}.norm1.bias")),
      lin("blocks.{i}.qkv", 3 * H, H, "[3·vision hidden, vision hidden]", visual("blocks.{i}.attn.qkv.weight"), {},
          true, true),
      lin("blocks.{i}.proj", H, H, "[vision hidden, vision hidden]", visual("blocks.{i}.attn.proj.weight"), {},
          true, true),
      vec("blocks.{i}.norm2.weight", H, "vision hidden", visual("blocks.{i}.norm2.weight")),
      vec("blocks.{i}.norm2.bias", H, "vision hidden", visual("blocks.{i}.norm2.bias")),
      lin("blocks.{i}.fc1", I, H, "[vision intermediate, vision hidden]", visual("blocks.{i}.mlp.linear_fc1.weight"),
          {}, true, true),
      lin("blocks.{i}.fc2", H, I, "[vision hidden, vision intermediate]", visual("blocks.{i}.mlp.linear_fc2.weight"),
          {}, true, true),
      vec("merger.norm.weight", H, "vision hidden", visual("merger.norm.weight")),
      vec("merger.norm.bias", H, "vision hidden", visual("merger.norm.bias")),
      lin("merger.fc1", M, M, "[4·vision hidden, 4·vision hidden]", visual("merger.linear_fc1.weight"), {}, true,
          true),
      lin("merger.fc2", O, M, "[out hidden, 4·vision hidden]", visual("merger.linear_fc2.weight"), {}, true, true),
      // DeepStack mergers: optional as a group (older vision exports drop them).
      vec("deepstack.{i}.norm.weight", M, "4·vision hidden", visual("deepstack_merger_list.{i}.norm.weight"), false),
      vec("deepstack.{i}.norm.bias", M, "4·vision hidden", visual("deepstack_merger_list.{i}.norm.bias"), false),
      lin("deepstack.{i}.fc1", M, M, "[4·vision hidden, 4·vision hidden]",
          visual("deepstack_merger_list.{i}.linear_fc1.weight"), {}, false, true),
      lin("deepstack.{i}.fc2", O, M, "[out hidden, 4·vision hidden]",
          visual("deepstack_merger_list.{i}.linear_fc2.weight"), {}, false, true),
  };
  return t;
}

}  // namespace qvl
