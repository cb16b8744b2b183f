// Weight tables and binding: internal slot → ONNX initializer(s) → kernel view.
//
// A weight table lists, per slot (`layers.{i}.q_proj`), every place a layout may
// keep that weight:
//   * initializer names: the qvl-convert / onnxruntime-genai names
//     (`model.layers.{i}.attn.q_proj.MatMul.weight`, or `<name>_Q4` / `_Q8` for a
//     MatMulNBits weight) and the Hugging Face names kept by Gemm/LayerNorm/Conv
//     exports (`visual.blocks.{i}.attn.qkv.weight`);
//   * consumer-node names for torch.onnx.export graphs whose linear weights are
//     anonymous (`/model/layers.{i}/self_attn/q_proj/MatMul` → its input 1).
// The consuming node decides the storage: MatMul B = [K, N]; Gemm transB=1 = [N, K];
// Conv weight [N, C, kt, kh, kw] = [N, K]; Transpose(perm 1,0)→MatMul = [N, K];
// MatMulNBits B [N, kb, blob] + scales [N, kb] (+ zero points, attrs K N bits block_size).
// Binding checks the logical shape expected from config.json and produces a
// LinearWeight / EmbeddingTable viewing the mmap'd bytes (fp16/bf16/Q4 kept as stored);
// only norm vectors and biases are converted to fp32 owned buffers. Anything the
// table does not understand (other consumer ops, prepacked or 2-bit MatMulNBits,
// g_idx, float zero points, a required slot missing, a wrong shape) throws
// qvl::Error naming the file, slot, tensor and expected vs actual shape.
#pragma once
#include <cstdint>
#include <deque>
#include <string>
#include <unordered_map>
#include <vector>

#include "kernels/embedding.h"
#include "kernels/linear.h"
#include "loader/config.h"
#include "loader/onnx_file.h"

namespace qvl {

enum class SlotKind {
  Linear,  // y = x·Wᵀ (+ bias); logical [N, K]
  Vector,  // norm weight / bias, [N], converted to fp32
  Table,   // row-gathered table [N = rows, K = cols] (token embedding, vision pos table)
};

// One row of a weight table. "{i}" in names/nodes is the layer (block) index.
struct WeightSlot {
  std::string slot;                // internal name, e.g. "layers.{i}.q_proj"
  SlotKind kind = SlotKind::Linear;
  std::vector<std::string> names;  // initializer names, first found wins
  std::vector<std::string> nodes;  // consumer node names (anonymous weights)
  int64_t N = 0, K = 0;            // expected logical shape
  bool required = true;
  bool bias_required = false;      // Linear: a bias must be present (vision)
  std::string dims;                // how N, K derive from the config, for messages
};

struct WeightTable {
  std::string what;  // "text decoder", "vision encoder", "token embedding"
  std::vector<WeightSlot> slots;
  const WeightSlot& at(const std::string& slot) const;  // throws (bug) if unknown
};

// The tables of Qwen3-VL (Qwen2.5-VL-style q/k/v biases are picked up when present).
WeightTable text_weight_table(const TextConfig& c);
WeightTable embedding_weight_table(const TextConfig& c);
WeightTable vision_weight_table(const VisionConfig& c);

// Owner of the small fp32 copies (norm weights, biases). Addresses stay valid.
struct WeightStore {
  std::deque<std::vector<float>> f32;
  const float* keep(std::vector<float>&& v) {
    f32.push_back(std::move(v));
    return f32.back().data();
  }
};

// Binds slots of one ONNX file. The file and store must outlive the views.
class WeightBinder {
 public:
  WeightBinder(const OnnxFile& file, WeightStore* store);

  // Each returns false when an optional slot is absent (throws when required).
  bool linear(const WeightSlot& s, int index, LinearWeight* out) const;
  bool vector(const WeightSlot& s, int index, const float** out) const;
  bool table(const WeightSlot& s, int index, EmbeddingTable* out) const;
  // Shortcuts over a table; index -1 = slot without "{i}".
  LinearWeight linear(const WeightTable& t, const std::string& slot, int index = -1) const;
  const float* vector(const WeightTable& t, const std::string& slot, int index = -1) const;
  // True if any source of the slot exists in the file.
  bool present(const WeightSlot& s, int index) const;

  const Node* node(const std::string& name) const;  // by node name, nullptr if absent
  const OnnxFile& file() const { return file_; }
  std::string file_name() const;  // base name for messages

 private:
  bool bind_float(const WeightSlot& s, const TensorView& t, LinearWeight* out) const;
  bool bind_nbits(const WeightSlot& s, const Node& n, LinearWeight* out) const;
  void find_bias(const WeightSlot& s, const Node& producer, int bias_input, LinearWeight* out) const;
  const float* to_f32(const TensorView& t, int64_t n, const std::string& what) const;
  const TensorView& input_tensor(const Node& n, size_t i, const char* role) const;

  const OnnxFile& file_;
  WeightStore* store_;
  std::unordered_map<std::string, const Node*> nodes_by_name_;
};

// "layers.{i}.q_proj" with i = 3 → "layers.3.q_proj" (index < 0: unchanged).
std::string expand_index(const std::string& pattern, int index);

// The logical [N=V, K=H] matrix of a token table, as a linear weight (tied
// lm_head). Float tables and uint8-packed 4/8-bit tables whose H is a multiple
// of the block size; throws otherwise.
LinearWeight linear_from_table(const EmbeddingTable& t, const std::string& what);

}  // namespace qvl
