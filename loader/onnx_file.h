// Reads an .onnx file: its initializers (as non-owning views into the parsed
// protobuf or into memory-mapped external data files), Constant-node tensors,
// graph inputs/outputs and nodes. qvl never executes the graph; the model layer
// uses the nodes only to find which node consumes which weight.
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "kernels/dtype.h"

namespace qvl {

struct TensorView {
  std::string name;
  DType dtype = DType::Undefined;
  std::vector<int64_t> shape;
  const void* data = nullptr;  // nullptr only for an empty tensor
  size_t nbytes = 0;           // bytes at data (INT4/UINT4: ceil(numel/2))
  // Where the bytes live: "" = inline in the .onnx, otherwise the external
  // data file name as written in `location`, with its offset.
  std::string location;
  int64_t offset = 0;
  bool from_constant_node = false;

  int64_t numel() const;
  std::string shape_str() const;  // "[2048, 6144]"
  template <typename T>
  const T* as() const { return static_cast<const T*>(data); }
};

struct Attribute {
  enum class Kind { Float, Int, String, Tensor, Graph, Floats, Ints, Strings, Other };
  Kind kind = Kind::Other;
  float f = 0.f;
  int64_t i = 0;
  std::string s;
  std::vector<float> floats;
  std::vector<int64_t> ints;
  std::vector<std::string> strings;
};

struct Node {
  std::string op_type, domain, name;
  std::vector<std::string> inputs, outputs;
  std::map<std::string, Attribute> attrs;
  int64_t attr_int(const std::string& key, int64_t dflt) const;
  float attr_float(const std::string& key, float dflt) const;
  bool has_attr(const std::string& key) const { return attrs.count(key) != 0; }
};

struct ValueInfo {
  std::string name;
  DType dtype = DType::Undefined;
  std::vector<std::string> dims;  // "2048", or a symbolic name, or "?"
};

// Converted copy of a small float tensor (norm weights, biases, scales):
// F32/F16/BF16 → fp32 exactly; I8/U8/I32/I64/Bool → their values as float.
// Throws qvl::Error naming the tensor for INT4/UINT4 or other types.
std::vector<float> tensor_to_f32(const TensorView& t);

// Resident bytes of every weight-file mapping the process holds now, and how
// many of them are mapped with 2 MiB pages (from /proc/self/smaps; zeros if it
// cannot be read). Huge mappings need the page cache to hold the file as 2 MiB
// folios, which happens when the kernel reads the file itself (not when a
// writer left it cached).
struct MappingStats {
  size_t resident = 0, huge = 0;
};
MappingStats weight_mapping_stats();

class OnnxFile {
 public:
  // Parses `path`; maps every external data file it references. Throws
  // qvl::Error naming the file (and tensor) on any problem: missing file,
  // malformed protobuf, unsupported dtype, data out of range, location
  // escaping the model folder, byte size not matching the shape.
  static std::unique_ptr<OnnxFile> open(const std::string& path);
  ~OnnxFile();

  const std::string& path() const { return path_; }
  const std::string& producer() const { return producer_; }
  int64_t ir_version() const { return ir_version_; }
  // Opset imports: domain as written ("" = default ai.onnx domain) → version.
  const std::map<std::string, int64_t>& opsets() const { return opsets_; }

  // Initializers (and Constant-node outputs) in file order: a graph's
  // initializers, then its nodes in order, each followed by its subgraphs.
  // External data views point into one read-only mmap per data file; they stay
  // valid as long as the OnnxFile lives. Data pointers are not necessarily
  // aligned (an external offset or inline raw_data may be at any byte).
  const std::vector<TensorView>& tensors() const { return tensors_; }
  const TensorView* find(const std::string& name) const;  // nullptr if absent
  const TensorView& get(const std::string& name) const;   // throws if absent

  // Nodes of the main graph and of every subgraph (If/Loop bodies), in order.
  const std::vector<Node>& nodes() const { return nodes_; }
  // Nodes that take `value` as an input.
  std::vector<const Node*> consumers(const std::string& value) const;
  const Node* producer_of(const std::string& value) const;

  const std::vector<ValueInfo>& inputs() const { return inputs_; }   // excl. initializers
  const std::vector<ValueInfo>& outputs() const { return outputs_; }

  // Sum of tensor bytes by where they live.
  size_t inline_bytes() const;
  size_t external_bytes() const;

 private:
  OnnxFile() = default;
  struct Impl;
  std::unique_ptr<Impl> impl_;
  std::string path_, producer_;
  int64_t ir_version_ = 0;
  std::map<std::string, int64_t> opsets_;
  std::vector<TensorView> tensors_;
  std::map<std::string, size_t> by_name_;
  std::vector<Node> nodes_;
  std::multimap<std::string, size_t> consumers_;
  std::map<std::string, size_t> producers_;
  std::vector<ValueInfo> inputs_, outputs_;
};

}  // namespace qvl
