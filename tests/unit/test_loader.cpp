// OnnxFile against small models written by tests/unit/gen_loader_models.py
// (Python onnx + numpy): every tensor's dtype, shape, location/offset and exact
// bytes; nodes, consumers/producers, graph I/O; external data served straight
// from the mapped file; every malformed case rejected with a one-line Error
// naming the file and tensor. The generator must run: a missing python/onnx
// fails the test (nothing is skipped).
#include <gtest/gtest.h>

#include <bit>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include <onnx/onnx_pb.h>
#include <unistd.h>

#include "kernels/base.h"
#include "loader/onnx_file.h"
#include "test_util.h"

namespace qvl {
namespace {

using nlohmann::json;

// Runs the generator once per process into a scratch folder.
const std::string& generated_dir() {
  static std::string dir;
  if (!dir.empty()) return dir;
  std::string out = test::scratch_dir("loader_models");
  std::string cmd = "PYENV_VERSION=system python3 " + test::source_dir() +
                    "/tests/unit/gen_loader_models.py " + out;
  std::string log;
  int rc = test::run_command(cmd, &log);
  if (rc != 0)
    ADD_FAILURE() << "generator failed (needs system python3 with onnx + numpy): " << cmd << "\n" << log;
  else
    dir = out;
  return dir;
}

json read_json(const std::string& path) {
  std::ifstream f(path);
  EXPECT_TRUE(f.good()) << path;
  return json::parse(f);
}

std::string hex(const void* p, size_t n) {
  static const char* d = "0123456789abcdef";
  std::string s;
  const auto* b = static_cast<const uint8_t*>(p);
  for (size_t i = 0; i < n; ++i) {
    s += d[b[i] >> 4];
    s += d[b[i] & 15];
  }
  return s;
}

// Checks every tensor of one model entry of good/expected.json.
void check_model(const std::string& dir, const json& m) {
  SCOPED_TRACE(m["file"].get<std::string>());
  auto f = OnnxFile::open(dir + "/" + m["file"].get<std::string>());
  const auto& want = m["tensors"];
  ASSERT_EQ(f->tensors().size(), want.size());
  size_t inl = 0, ext = 0;
  for (size_t i = 0; i < want.size(); ++i) {
    const auto& w = want[i];
    const TensorView& t = f->tensors()[i];
    SCOPED_TRACE(w["name"].get<std::string>());
    EXPECT_EQ(t.name, w["name"].get<std::string>());
    EXPECT_EQ((int)t.dtype, w["dtype"].get<int>());
    EXPECT_EQ(t.shape, w["shape"].get<std::vector<int64_t>>());
    std::string hx = w["hex"];
    EXPECT_EQ(t.nbytes, hx.size() / 2);
    EXPECT_EQ(hex(t.data, t.nbytes), hx);
    EXPECT_EQ(t.data == nullptr, t.nbytes == 0);
    EXPECT_EQ(t.location, w["location"].get<std::string>());
    EXPECT_EQ(t.offset, w["offset"].get<int64_t>());
    EXPECT_EQ(t.from_constant_node, w["from_constant_node"].get<bool>());
    EXPECT_EQ(f->find(t.name), &t);
    if (w.contains("f32")) {  // float types: numpy's decoding of the same bytes
      std::vector<float> got = tensor_to_f32(t), want_f = w["f32"].get<std::vector<float>>();
      ASSERT_EQ(got.size(), want_f.size());
      for (size_t k = 0; k < got.size(); ++k)  // bitwise: -0.0 and subnormals must match exactly
        EXPECT_EQ(std::bit_cast<uint32_t>(got[k]), std::bit_cast<uint32_t>(want_f[k])) << "element " << k;
    }
    (t.location.empty() ? inl : ext) += t.nbytes;
  }
  EXPECT_EQ(f->inline_bytes(), inl);
  EXPECT_EQ(f->external_bytes(), ext);
}

TEST(Loader, GoodModelsMatchGenerator) {
  const std::string& root = generated_dir();
  ASSERT_FALSE(root.empty());
  json exp = read_json(root + "/good/expected.json");
  ASSERT_EQ(exp["models"].size(), 3u);
  for (const auto& m : exp["models"]) check_model(root + "/good", m);
}

TEST(Loader, NodesConsumersAndIo) {
  const std::string& root = generated_dir();
  ASSERT_FALSE(root.empty());
  json m = read_json(root + "/good/expected.json")["models"][0];
  auto f = OnnxFile::open(root + "/good/" + m["file"].get<std::string>());
  EXPECT_EQ(f->ir_version(), m["ir_version"].get<int64_t>());
  EXPECT_EQ(f->producer().rfind("qvl-test", 0), 0u);
  EXPECT_EQ(f->opsets(), (m["opsets"].get<std::map<std::string, int64_t>>()));

  std::vector<std::string> names;
  for (const auto& n : f->nodes()) names.push_back(n.name);
  EXPECT_EQ(names, m["nodes"].get<std::vector<std::string>>());

  for (auto& [value, want] : m["consumers"].items()) {
    std::vector<std::string> got;
    for (const Node* n : f->consumers(value)) got.push_back(n->name);
    EXPECT_EQ(got, want.get<std::vector<std::string>>()) << value;
  }
  for (auto& [value, want] : m["producers"].items()) {
    const Node* p = f->producer_of(value);
    if (want.is_null()) {
      EXPECT_EQ(p, nullptr) << value;
    } else {
      ASSERT_NE(p, nullptr) << value;
      EXPECT_EQ(p->name, want.get<std::string>()) << value;
    }
  }
  auto check_io = [](const std::vector<ValueInfo>& got, const json& want) {
    ASSERT_EQ(got.size(), want.size());
    for (size_t i = 0; i < got.size(); ++i) {
      EXPECT_EQ(got[i].name, want[i]["name"].get<std::string>());
      EXPECT_EQ((int)got[i].dtype, want[i]["dtype"].get<int>());
      EXPECT_EQ(got[i].dims, want[i]["dims"].get<std::vector<std::string>>()) << got[i].name;
    }
  };
  check_io(f->inputs(), m["inputs"]);
  check_io(f->outputs(), m["outputs"]);

  // Attributes of the contrib node and of the If node's subgraphs.
  const Node* q = f->producer_of("z");
  ASSERT_NE(q, nullptr);
  EXPECT_EQ(q->domain, "com.microsoft");
  EXPECT_EQ(q->attr_int("bits", 0), 4);
  EXPECT_EQ(q->attr_int("block_size", 0), 32);
  EXPECT_EQ(q->attr_int("missing", -5), -5);
  EXPECT_EQ(f->producer_of("y")->attrs.at("then_branch").kind, Attribute::Kind::Graph);

  // tensor_to_f32 on integer types gives their values; packed int4 is refused by name.
  EXPECT_EQ(tensor_to_f32(f->get("i8")), (std::vector<float>{-128, -1, 0, 127}));
  EXPECT_EQ(tensor_to_f32(f->get("typed_i64")), (std::vector<float>{-1099511627776.f, 3, 4611686018427387904.f}));
  try {
    tensor_to_f32(f->get("i4_odd"));
    ADD_FAILURE() << "int4 converted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("'i4_odd'"), std::string::npos) << e.what();
  }
}

// Address range [lo, hi) and file of the mapping holding `p`, from /proc/self/maps.
bool mapping_of(const void* p, uintptr_t* lo, uintptr_t* hi, std::string* file) {
  std::ifstream maps("/proc/self/maps");
  std::string line;
  auto a = reinterpret_cast<uintptr_t>(p);
  while (std::getline(maps, line)) {
    unsigned long l, h;
    char perms[8];
    unsigned long off;
    char dev[16];
    unsigned long inode;
    int pos = 0;
    if (std::sscanf(line.c_str(), "%lx-%lx %7s %lx %15s %lu %n", &l, &h, perms, &off, dev, &inode, &pos) < 6)
      continue;
    if (a >= l && a < h) {
      *lo = l;
      *hi = h;
      *file = pos > 0 ? line.substr(pos) : "";
      return true;
    }
  }
  return false;
}

TEST(Loader, ExternalDataIsMappedNotCopied) {
  const std::string& root = generated_dir();
  ASSERT_FALSE(root.empty());
  auto f = OnnxFile::open(root + "/good/external_one.onnx");
  const TensorView& w0 = f->get("w0");
  const TensorView& w3 = f->get("w3");
  ASSERT_EQ(w0.location, "one.bin");
  ASSERT_EQ(w3.location, "one.bin");
  // One mapping shared by the file's tensors: pointer distance == offset distance.
  EXPECT_EQ(w3.as<uint8_t>() - w0.as<uint8_t>(), w3.offset - w0.offset);
  uintptr_t lo = 0, hi = 0;
  std::string file;
  ASSERT_TRUE(mapping_of(w0.data, &lo, &hi, &file));
  EXPECT_NE(file.find("one.bin"), std::string::npos) << "w0 lives in '" << file << "', not in the data file";
  EXPECT_EQ(reinterpret_cast<uintptr_t>(w0.data) - lo, (uintptr_t)w0.offset);

  // Two files → two mappings; a tensor in a subfolder file maps that file.
  auto g = OnnxFile::open(root + "/good/external_multi.onnx");
  ASSERT_TRUE(mapping_of(g->get("b1").data, &lo, &hi, &file));
  EXPECT_NE(file.find("sub/multi_b.bin"), std::string::npos) << file;
  EXPECT_EQ(g->get("b1").as<uint8_t>() - g->get("b0").as<uint8_t>(),
            g->get("b1").offset - g->get("b0").offset);
}

// Resident set size in bytes (/proc/self/statm, second field).
size_t rss_bytes() {
  std::ifstream f("/proc/self/statm");
  size_t pages_total = 0, pages_res = 0;
  f >> pages_total >> pages_res;
  return pages_res * static_cast<size_t>(sysconf(_SC_PAGESIZE));
}

// Writes DIR/NAME.bin (the floats w) and DIR/NAME.onnx, a model whose one
// initializer NAME [4096, w.size()/4096] is external data in NAME.bin.
bool write_external_model(const std::string& dir, const std::string& name, const std::vector<float>& w) {
  {
    std::ofstream bin(dir + "/" + name + ".bin", std::ios::binary);
    bin.write(reinterpret_cast<const char*>(w.data()), (std::streamsize)(w.size() * 4));
  }
  onnx::ModelProto m;
  m.set_ir_version(8);
  m.add_opset_import()->set_version(17);
  onnx::TensorProto* t = m.mutable_graph()->add_initializer();
  t->set_name(name);
  t->set_data_type(onnx::TensorProto::FLOAT);
  t->add_dims(4096);
  t->add_dims((int64_t)w.size() / 4096);
  t->set_data_location(onnx::TensorProto::EXTERNAL);
  auto* e = t->add_external_data();
  e->set_key("location");
  e->set_value(name + ".bin");
  std::ofstream out(dir + "/" + name + ".onnx", std::ios::binary);
  return m.SerializeToOstream(&out);
}

// A 64 MB external tensor: opening the model must not read or copy it (RSS
// stays flat); reading it through TensorView brings in the file's pages only.
TEST(Loader, OpeningDoesNotReadExternalData) {
  const std::string dir = test::scratch_dir("loader_rss");
  const size_t n = 16u << 20;  // floats
  {
    std::vector<float> w(n);
    for (size_t i = 0; i < n; ++i) w[i] = static_cast<float>(i % 1000);
    ASSERT_TRUE(write_external_model(dir, "big", w));
  }
  const size_t before = rss_bytes();
  auto f = OnnxFile::open(dir + "/big.onnx");
  const size_t after_open = rss_bytes();
  const TensorView& v = f->get("big");
  ASSERT_EQ(v.nbytes, n * 4);
  EXPECT_LT(after_open, before + (8u << 20)) << "open() grew RSS by " << (after_open - before) << " bytes";
  double sum = 0;
  for (size_t i = 0; i < n; i += 1024) sum += v.as<float>()[i];  // touch every page
  EXPECT_GT(sum, 0.0);
  const size_t after_touch = rss_bytes();
  EXPECT_GT(after_touch, after_open + (48u << 20)) << "RSS measurement does not see the mapped pages";
  EXPECT_LT(after_touch, before + (72u << 20)) << "more than one copy of the 64 MB tensor is resident";
}

TEST(Loader, BadModelsThrowOneLineErrors) {
  const std::string& root = generated_dir();
  ASSERT_FALSE(root.empty());
  const std::string dir = root + "/bad/models";
  json exp = read_json(dir + "/expected.json");
  ASSERT_GE(exp["cases"].size(), 17u);
  for (const auto& c : exp["cases"]) {
    const std::string path = dir + "/" + c["file"].get<std::string>();
    SCOPED_TRACE(path);
    std::string msg;
    try {
      auto f = OnnxFile::open(path);
      ADD_FAILURE() << "no error for " << path;
      continue;
    } catch (const Error& e) {
      msg = e.what();
    }
    EXPECT_EQ(msg.rfind(path + ": ", 0), 0u) << msg;
    EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
    if (!c["tensor"].is_null()) {
      EXPECT_NE(msg.find("tensor '" + c["tensor"].get<std::string>() + "'"), std::string::npos) << msg;
    }
    EXPECT_NE(msg.find(c["contains"].get<std::string>()), std::string::npos) << msg;
  }
}

TEST(Loader, DirectoryIsNotAModel) {
  const std::string& root = generated_dir();
  ASSERT_FALSE(root.empty());
  EXPECT_THROW(OnnxFile::open(root + "/good"), Error);
}


// External data is mapped at 2 MiB-aligned addresses (the precondition for
// huge-page mappings) and counted by weight_mapping_stats while open.
TEST(Loader, WeightMappingsAlignedAndCounted) {
  const std::string dir = test::scratch_dir("loader_maps");
  const size_t n = 8u << 20;  // floats: 32 MB
  ASSERT_TRUE(write_external_model(dir, "w", std::vector<float>(n, 1.0f)));
  const MappingStats s0 = weight_mapping_stats();
  {
    auto f = OnnxFile::open(dir + "/w.onnx");
    const TensorView& v = f->get("w");
    EXPECT_EQ(reinterpret_cast<uintptr_t>(v.data) % (2u << 20), 0u) << "stream mapping not 2 MiB aligned";
    double sum = 0;
    for (size_t i = 0; i < n; i += 1024) sum += v.as<float>()[i];
    EXPECT_EQ(sum, (double)(n / 1024));
    const MappingStats s1 = weight_mapping_stats();
    EXPECT_GE(s1.resident, s0.resident + (30u << 20)) << "the touched 32 MB mapping is not counted";
    EXPECT_LE(s1.huge, s1.resident);
  }
  EXPECT_EQ(weight_mapping_stats().resident, s0.resident) << "a closed file's mapping is still counted";
}

}  // namespace
}  // namespace qvl
