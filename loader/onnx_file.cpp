// OnnxFile: parses an .onnx model with libonnx's protobuf classes and exposes
// every initializer and Constant-node tensor as a non-owning TensorView.
//   inline raw_data      → view into the kept-alive ModelProto
//   typed fields         → view into the proto (float/int32/int64) or a small
//                          owned buffer (fp16/bf16/int8/uint8/bool/int4 from int32_data)
//   external data        → view into a read-only private mmap of the data file,
//                          one mapping per file shared by all its tensors
// The graph is walked (subgraphs of If/Loop included) only to record nodes,
// their attributes and graph inputs/outputs; nothing is executed.
#include "loader/onnx_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstring>
#include <deque>
#include <fstream>
#include <mutex>
#include <filesystem>

#include <google/protobuf/io/coded_stream.h>
#include <onnx/onnx_pb.h>

#include "kernels/base.h"

namespace qvl {

namespace fs = std::filesystem;

// ---------------------------------------------------------------------------
// Small helpers

int64_t TensorView::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

std::string TensorView::shape_str() const {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i) s += ", ";
    s += std::to_string(shape[i]);
  }
  return s + "]";
}

int64_t Node::attr_int(const std::string& key, int64_t dflt) const {
  auto it = attrs.find(key);
  return it == attrs.end() ? dflt : it->second.i;
}

float Node::attr_float(const std::string& key, float dflt) const {
  auto it = attrs.find(key);
  return it == attrs.end() ? dflt : it->second.f;
}

std::vector<float> tensor_to_f32(const TensorView& t) {
  const size_t n = static_cast<size_t>(t.numel());
  std::vector<float> out(n);
  const uint8_t* p = static_cast<const uint8_t*>(t.data);
  for (size_t i = 0; i < n; ++i) {
    switch (t.dtype) {
      case DType::F32: std::memcpy(&out[i], p + 4 * i, 4); break;
      case DType::F16: case DType::BF16: {
        uint16_t h;
        std::memcpy(&h, p + 2 * i, 2);
        out[i] = t.dtype == DType::F16 ? f16_to_f32(h) : bf16_to_f32(h);
        break;
      }
      case DType::I8: out[i] = static_cast<float>(static_cast<int8_t>(p[i])); break;
      case DType::U8: case DType::Bool: out[i] = static_cast<float>(p[i]); break;
      case DType::I32: { int32_t v; std::memcpy(&v, p + 4 * i, 4); out[i] = static_cast<float>(v); break; }
      case DType::I64: { int64_t v; std::memcpy(&v, p + 8 * i, 8); out[i] = static_cast<float>(v); break; }
      default:
        throw Error(strfmt("tensor '%s': cannot convert %s to float32", t.name.c_str(), dtype_name(t.dtype)));
    }
  }
  return out;
}

namespace {

// Address ranges of the live file mappings (for weight_mapping_stats).
std::mutex g_maps_mu;
std::vector<std::pair<uintptr_t, uintptr_t>> g_maps;

// A read-only private mapping of a whole file; unmapped on destruction.
struct Mapping {
  void* base = nullptr;
  size_t size = 0;
  Mapping() = default;
  Mapping(const Mapping&) = delete;
  Mapping& operator=(const Mapping&) = delete;
  void track() {
    std::lock_guard<std::mutex> l(g_maps_mu);
    g_maps.emplace_back(reinterpret_cast<uintptr_t>(base), reinterpret_cast<uintptr_t>(base) + size);
  }
  ~Mapping() {
    if (!base) return;
    munmap(base, size);
    std::lock_guard<std::mutex> l(g_maps_mu);
    const auto key = std::make_pair(reinterpret_cast<uintptr_t>(base), reinterpret_cast<uintptr_t>(base) + size);
    g_maps.erase(std::remove(g_maps.begin(), g_maps.end(), key), g_maps.end());
  }
};

// Resident and PMD-mapped bytes of the mappings that start inside `ranges`
// (from /proc/self/smaps; zeros if it cannot be read).
MappingStats stats_of(const std::vector<std::pair<uintptr_t, uintptr_t>>& ranges) {
  MappingStats st;
  std::ifstream f("/proc/self/smaps");
  std::string line;
  bool inside = false;
  while (std::getline(f, line)) {
    unsigned long lo = 0, hi = 0;
    if (std::sscanf(line.c_str(), "%lx-%lx ", &lo, &hi) == 2) {  // a mapping's header line
      inside = false;
      for (auto& [a, b] : ranges) inside |= lo >= a && lo < b;
      continue;
    }
    if (!inside) continue;
    size_t kb = 0;
    if (std::sscanf(line.c_str(), "Rss: %zu kB", &kb) == 1) st.resident += kb << 10;
    if (std::sscanf(line.c_str(), "FilePmdMapped: %zu kB", &kb) == 1) st.huge += kb << 10;
  }
  return st;
}

constexpr size_t kHugeBytes = size_t(2) << 20;

// mmap of a whole file at a 2 MiB-aligned address (so file offset and virtual
// address agree modulo the huge-page size, which PMD mappings require): an
// anonymous reservation is cut down to the aligned window and the file is
// mapped over it. Small files map anywhere.
void* map_aligned(int fd, size_t size) {
  if (size < kHugeBytes) return mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
  const size_t span = size + kHugeBytes;
  void* r = mmap(nullptr, span, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (r == MAP_FAILED) return r;
  const uintptr_t lo = reinterpret_cast<uintptr_t>(r);
  const uintptr_t a = (lo + kHugeBytes - 1) & ~(uintptr_t)(kHugeBytes - 1);
  void* p = mmap(reinterpret_cast<void*>(a), size, PROT_READ, MAP_PRIVATE | MAP_FIXED, fd, 0);
  if (p == MAP_FAILED) {
    int e = errno;
    munmap(r, span);
    errno = e;
    return p;
  }
  if (a > lo) munmap(r, a - lo);
  const uintptr_t end = a + ((size + 4095) & ~(size_t)4095), rend = lo + span;
  if (rend > end) munmap(reinterpret_cast<void*>(end), rend - end);
  return p;
}

// Files from this size on are checked for a page cache of mixed folio sizes
// (the check makes up to 8 × 2 MiB of them resident at open).
constexpr size_t kUpgradeBytes = size_t(256) << 20;

// Touches one byte in each of 8 evenly spaced 2 MiB pieces of the mapping and
// reports whether its page cache is mixed: at least one piece came in as a
// 2 MiB page (so huge folios are possible here) and at least two did not.
bool cached_partly_small(void* p, size_t size) {
  const size_t pieces = size / kHugeBytes, n = std::min<size_t>(8, pieces);
  volatile const char* c = static_cast<const char*>(p);
  for (size_t i = 0; i < n; ++i) (void)c[(i * pieces / n) * kHugeBytes];
  const uintptr_t a = reinterpret_cast<uintptr_t>(p);
  const size_t huge_pieces = stats_of({{a, a + size}}).huge / kHugeBytes;
  return huge_pieces >= 1 && huge_pieces + 2 <= n;
}

// Maps `path` (error messages use `shown`). A zero-length file gets no mapping.
std::unique_ptr<Mapping> map_file(const std::string& path, const std::string& shown, bool huge) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) throw Error(shown + ": no such file");
    throw Error(shown + ": cannot open (" + std::strerror(errno) + ")");
  }
  struct stat st;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    throw Error(shown + ": not a regular file");
  }
  auto m = std::make_unique<Mapping>();
  m->size = static_cast<size_t>(st.st_size);
  if (m->size > 0) {
    void* p = map_aligned(fd, m->size);
    if (p == MAP_FAILED) {
      int e = errno;
      ::close(fd);
      throw Error(shown + ": mmap failed (" + std::strerror(e) + ")");
    }
    m->base = p;
    // Ask for 2 MiB page-cache folios mapped by single page-table entries, then
    // start reading the file into the page cache (asynchronous readahead).
    // Huge mappings cut the decode GEMVs' TLB misses (the weights stream
    // through 0.5–1 GB per token: with 4 KiB pages one page walk every 64
    // cache lines; measured +16–28 % single-core GEMV bandwidth) and make the
    // first touch of a page 2 MiB at a time. The kernel builds such folios when
    // it reads the file itself; pages a writer left cached as small folios stay
    // small until evicted (README, "Huge-page weight mappings"). The readahead
    // also spares sparse readers such as the embedding table a disk fault per row.
    if (huge && m->size >= kHugeBytes) madvise(p, m->size, MADV_HUGEPAGE);
    madvise(p, m->size, MADV_WILLNEED);
    if (huge && m->size >= kUpgradeBytes && cached_partly_small(p, m->size)) {
      // Some of the file is cached in 2 MiB folios (so this file system and
      // kernel build them) but most is not: another reader or a writer left
      // 4 KiB pages. Drop the file's unmapped cached pages and read it again;
      // one re-read from disk, after which every load maps it huge.
      munmap(p, m->size);
      m->base = nullptr;
      posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
      p = map_aligned(fd, m->size);
      if (p == MAP_FAILED) {
        int e = errno;
        ::close(fd);
        throw Error(shown + ": mmap failed (" + std::strerror(e) + ")");
      }
      m->base = p;
      madvise(p, m->size, MADV_HUGEPAGE);
      madvise(p, m->size, MADV_WILLNEED);
    }
    m->track();
  }
  ::close(fd);
  return m;
}

// Bytes needed by `numel` elements of `t` (INT4/UINT4 pack two per byte).
size_t bytes_for(DType t, int64_t numel) {
  int bits = dtype_bits(t);
  return static_cast<size_t>((numel * bits + 7) / 8);
}

// True if `loc` is relative and stays inside the model folder.
bool location_is_safe(const std::string& loc) {
  if (loc.empty()) return false;
  fs::path p(loc);
  if (p.is_absolute() || p.has_root_name() || p.has_root_directory()) return false;
  for (const auto& part : p)
    if (part == "..") return false;
  return true;
}

std::string dims_str(const onnx::TensorProto& t) {
  std::string s = "[";
  for (int i = 0; i < t.dims_size(); ++i) {
    if (i) s += ", ";
    s += std::to_string(t.dims(i));
  }
  return s + "]";
}

}  // namespace

// ---------------------------------------------------------------------------
// Impl: owns the parsed proto, the data-file mappings and converted buffers.

struct OnnxFile::Impl {
  std::string shown;   // path as given by the user (for messages)
  fs::path dir;        // folder holding the .onnx (external data is relative to it)
  onnx::ModelProto model;
  std::map<std::string, std::unique_ptr<Mapping>> data_files;  // key: normalized location
  std::deque<std::vector<uint8_t>> owned;                       // converted typed fields
  std::deque<onnx::TensorProto> synthesized;                    // Constant value_float(s)/int(s)

  [[noreturn]] void fail(const std::string& tensor, const std::string& what) const {
    throw Error(shown + ": tensor '" + tensor + "': " + what);
  }
  const Mapping& data_file(const std::string& tensor, const std::string& location);
  TensorView view(const onnx::TensorProto& t, const std::string& name, bool from_constant);
  void external(const onnx::TensorProto& t, TensorView* v, size_t want);
  void typed(const onnx::TensorProto& t, TensorView* v, size_t want);
  // Graph walk, filling the owner's tables (a nested class may touch them).
  void walk_graph(OnnxFile* f, const onnx::GraphProto& g);
  void add_constant(OnnxFile* f, const onnx::NodeProto& n);
  static void add_tensor(OnnxFile* f, TensorView v);
};

const Mapping& OnnxFile::Impl::data_file(const std::string& tensor, const std::string& location) {
  const std::string key = fs::path(location).lexically_normal().string();  // "./a.bin" == "a.bin"
  auto it = data_files.find(key);
  if (it != data_files.end()) return *it->second;
  if (!location_is_safe(location))
    fail(tensor, "external data location '" + location +
                     "' must be a relative path inside the model folder");
  fs::path full = dir / location;
  struct stat st;
  if (::stat(full.c_str(), &st) != 0)
    fail(tensor, "external data file '" + location + "' not found next to the model");
  std::unique_ptr<Mapping> m;
  try {
    m = map_file(full.string(), location, true);
  } catch (const Error& e) {
    fail(tensor, std::string("external data file ") + e.what());
  }
  return *(data_files[key] = std::move(m));
}

// Resolves an EXTERNAL tensor into the mapping of its data file.
void OnnxFile::Impl::external(const onnx::TensorProto& t, TensorView* v, size_t want) {
  std::string location;
  int64_t offset = 0, length = -1;
  for (const auto& kv : t.external_data()) {
    const std::string& k = kv.key();
    if (k == "location") {
      location = kv.value();
    } else if (k == "offset" || k == "length") {
      char* end = nullptr;
      errno = 0;
      long long x = std::strtoll(kv.value().c_str(), &end, 10);
      if (kv.value().empty() || *end != '\0' || errno != 0 || x < 0)
        fail(v->name, "external data " + k + " '" + kv.value() + "' is not a non-negative integer");
      (k == "offset" ? offset : length) = x;
    }
  }
  if (location.empty()) fail(v->name, "external data without a 'location'");
  if (length < 0) length = static_cast<int64_t>(want);
  if (static_cast<size_t>(length) != want)
    fail(v->name, strfmt("external data length %lld does not match shape %s of %s (%zu bytes)",
                         (long long)length, dims_str(t).c_str(), dtype_name(v->dtype), want));
  const Mapping& m = data_file(v->name, location);
  if (static_cast<uint64_t>(offset) > m.size || static_cast<uint64_t>(length) > m.size - offset)
    fail(v->name, strfmt("external data offset %lld + length %lld is past the end of '%s' (%zu bytes)",
                         (long long)offset, (long long)length, location.c_str(), m.size));
  v->location = location;
  v->offset = offset;
  v->nbytes = want;
  v->data = want ? static_cast<const uint8_t*>(m.base) + offset : nullptr;
}

// Typed repeated fields: float_data, int32_data (fp16/bf16 bits, small ints,
// bool, packed int4 bytes), int64_data.
void OnnxFile::Impl::typed(const onnx::TensorProto& t, TensorView* v, size_t want) {
  const int64_t n = v->numel();
  auto count_check = [&](const char* field, int64_t have, int64_t need) {
    if (have != need)
      fail(v->name, strfmt("%s has %lld values but shape %s of %s needs %lld", field, (long long)have,
                           dims_str(t).c_str(), dtype_name(v->dtype), (long long)need));
  };
  if (t.double_data_size() || t.uint64_data_size() || t.string_data_size())
    fail(v->name, strfmt("data stored in a field that does not match its type %s",
                         dtype_name(v->dtype)));
  switch (v->dtype) {
    case DType::F32:
      count_check("float_data", t.float_data_size(), n);
      v->data = t.float_data().data();
      break;
    case DType::I32:
      count_check("int32_data", t.int32_data_size(), n);
      v->data = t.int32_data().data();
      break;
    case DType::I64:
      count_check("int64_data", t.int64_data_size(), n);
      v->data = t.int64_data().data();
      break;
    case DType::F16:
    case DType::BF16: {
      count_check("int32_data", t.int32_data_size(), n);
      auto& buf = owned.emplace_back(want);
      for (int64_t i = 0; i < n; ++i) {
        int32_t x = t.int32_data(static_cast<int>(i));
        if (x < 0 || x > 0xffff) fail(v->name, strfmt("int32_data[%lld] = %d is not a 16-bit pattern", (long long)i, x));
        uint16_t h = static_cast<uint16_t>(x);
        std::memcpy(&buf[i * 2], &h, 2);
      }
      v->data = buf.data();
      break;
    }
    case DType::I8:
    case DType::U8:
    case DType::Bool:
    case DType::I4:
    case DType::U4: {
      // int4/uint4: one int32 per packed byte (low nibble = first element).
      const bool packed = v->dtype == DType::I4 || v->dtype == DType::U4;
      const int64_t need = packed ? (n + 1) / 2 : n;
      count_check("int32_data", t.int32_data_size(), need);
      const int lo = v->dtype == DType::I8 ? -128 : 0;
      const int hi = v->dtype == DType::I8 ? 127 : v->dtype == DType::Bool ? 1 : 255;
      auto& buf = owned.emplace_back(want);
      for (int64_t i = 0; i < need; ++i) {
        int32_t x = t.int32_data(static_cast<int>(i));
        if (x < lo || x > hi)
          fail(v->name, strfmt("int32_data[%lld] = %d is out of range for %s", (long long)i, x,
                               dtype_name(v->dtype)));
        buf[i] = static_cast<uint8_t>(x);
      }
      v->data = buf.data();
      break;
    }
    default:
      fail(v->name, strfmt("unsupported data type %d", (int)v->dtype));
  }
  if (n == 0) v->data = nullptr;
  v->nbytes = want;
}

TensorView OnnxFile::Impl::view(const onnx::TensorProto& t, const std::string& name,
                                bool from_constant) {
  TensorView v;
  v.name = name;
  v.from_constant_node = from_constant;
  v.dtype = static_cast<DType>(t.data_type());
  if (!dtype_supported(v.dtype))
    fail(name, strfmt("unsupported data type %d (%s)", t.data_type(), dtype_name(v.dtype)));
  for (int i = 0; i < t.dims_size(); ++i) {
    if (t.dims(i) < 0) fail(name, "negative dimension in shape " + dims_str(t));
    v.shape.push_back(t.dims(i));
  }
  // Guard numel * bits against overflow before computing the byte size.
  int64_t n = 1;
  for (int64_t d : v.shape) {
    if (d != 0 && n > (INT64_MAX / 8) / d) fail(name, "shape " + dims_str(t) + " is too large");
    n *= d;
  }
  const size_t want = bytes_for(v.dtype, n);
  if (t.has_data_location() && t.data_location() == onnx::TensorProto::EXTERNAL) {
    external(t, &v, want);
  } else if (t.has_raw_data()) {
    if (t.raw_data().size() != want)
      fail(name, strfmt("raw_data has %zu bytes but shape %s of %s needs %zu", t.raw_data().size(),
                        dims_str(t).c_str(), dtype_name(v.dtype), want));
    v.data = want ? t.raw_data().data() : nullptr;
    v.nbytes = want;
  } else {
    typed(t, &v, want);
  }
  return v;
}

// ---------------------------------------------------------------------------
// Graph walk

namespace {

ValueInfo value_info(const onnx::ValueInfoProto& vi) {
  ValueInfo out;
  out.name = vi.name();
  if (vi.type().has_tensor_type()) {
    const auto& tt = vi.type().tensor_type();
    out.dtype = static_cast<DType>(tt.elem_type());
    if (tt.has_shape()) {
      for (const auto& d : tt.shape().dim()) {
        if (d.has_dim_value()) out.dims.push_back(std::to_string(d.dim_value()));
        else if (d.has_dim_param() && !d.dim_param().empty()) out.dims.push_back(d.dim_param());
        else out.dims.push_back("?");
      }
    }
  }
  return out;
}

Attribute convert_attr(const onnx::AttributeProto& a) {
  Attribute out;
  using A = onnx::AttributeProto;
  switch (a.type()) {
    case A::FLOAT: out.kind = Attribute::Kind::Float; out.f = a.f(); break;
    case A::INT: out.kind = Attribute::Kind::Int; out.i = a.i(); out.f = (float)a.i(); break;
    case A::STRING: out.kind = Attribute::Kind::String; out.s = a.s(); break;
    case A::TENSOR: out.kind = Attribute::Kind::Tensor; break;
    case A::GRAPH: out.kind = Attribute::Kind::Graph; break;
    case A::FLOATS: out.kind = Attribute::Kind::Floats; out.floats.assign(a.floats().begin(), a.floats().end()); break;
    case A::INTS: out.kind = Attribute::Kind::Ints; out.ints.assign(a.ints().begin(), a.ints().end()); break;
    case A::STRINGS: out.kind = Attribute::Kind::Strings; out.strings.assign(a.strings().begin(), a.strings().end()); break;
    default: out.kind = Attribute::Kind::Other; break;
  }
  return out;
}

}  // namespace

std::unique_ptr<OnnxFile> OnnxFile::open(const std::string& path) {
  std::unique_ptr<OnnxFile> f(new OnnxFile());
  f->impl_ = std::make_unique<Impl>();
  Impl& im = *f->impl_;
  f->path_ = path;
  im.shown = path;
  im.dir = fs::path(path).parent_path();
  if (im.dir.empty()) im.dir = ".";

  {  // Parse from a temporary mapping; the proto owns its bytes afterwards.
    std::unique_ptr<Mapping> m = map_file(path, path, false);
    if (m->size > static_cast<size_t>(INT_MAX))
      throw Error(path + ": file is larger than 2 GB; protobuf cannot hold it (use external data)");
    google::protobuf::io::CodedInputStream in(static_cast<const uint8_t*>(m->base),
                                              static_cast<int>(m->size));
    in.SetTotalBytesLimit(INT_MAX);
    if (!im.model.ParseFromCodedStream(&in) || !in.ConsumedEntireMessage())
      throw Error(path + ": not a valid ONNX model (protobuf parse failed)");
  }
  if (!im.model.has_graph() || im.model.ir_version() <= 0)
    throw Error(path + ": not a valid ONNX model (no graph or IR version)");

  f->producer_ = im.model.producer_name();
  if (!im.model.producer_version().empty()) f->producer_ += " " + im.model.producer_version();
  f->ir_version_ = im.model.ir_version();
  for (const auto& o : im.model.opset_import()) f->opsets_[o.domain()] = o.version();

  im.walk_graph(f.get(), im.model.graph());

  const auto& g = im.model.graph();
  std::map<std::string, bool> is_init;
  for (const auto& t : g.initializer()) is_init[t.name()] = true;
  for (const auto& vi : g.input())
    if (!is_init.count(vi.name())) f->inputs_.push_back(value_info(vi));
  for (const auto& vi : g.output()) f->outputs_.push_back(value_info(vi));
  return f;
}

// Adds a graph's initializers, then its nodes in order (each node followed by
// the contents of its subgraphs).
void OnnxFile::Impl::walk_graph(OnnxFile* f, const onnx::GraphProto& g) {
  Impl& im = *this;
  if (g.sparse_initializer_size() > 0)
    im.fail(g.sparse_initializer(0).values().name(), "sparse initializers are not supported");
  for (const auto& t : g.initializer()) add_tensor(f, im.view(t, t.name(), false));
  for (const auto& n : g.node()) {
    Node node;
    node.op_type = n.op_type();
    node.domain = n.domain();
    node.name = n.name();
    node.inputs.assign(n.input().begin(), n.input().end());
    node.outputs.assign(n.output().begin(), n.output().end());
    for (const auto& a : n.attribute()) node.attrs[a.name()] = convert_attr(a);
    const size_t idx = f->nodes_.size();
    for (const auto& in : node.inputs)
      if (!in.empty()) f->consumers_.emplace(in, idx);
    for (const auto& out : node.outputs)
      if (!out.empty()) f->producers_.emplace(out, idx);
    f->nodes_.push_back(std::move(node));
    if (n.op_type() == "Constant" && (n.domain().empty() || n.domain() == "ai.onnx") && n.output_size() == 1)
      add_constant(f, n);
    for (const auto& a : n.attribute()) {
      if (a.type() == onnx::AttributeProto::GRAPH) walk_graph(f, a.g());
      if (a.type() == onnx::AttributeProto::GRAPHS)
        for (const auto& sg : a.graphs()) walk_graph(f, sg);
    }
  }
}

// A Constant node's value becomes a tensor named after its output.
void OnnxFile::Impl::add_constant(OnnxFile* f, const onnx::NodeProto& n) {
  Impl& im = *this;
  const std::string& name = n.output(0);
  for (const auto& a : n.attribute()) {
    if (a.name() == "value") {
      add_tensor(f, im.view(a.t(), name, true));
      return;
    }
    onnx::TensorProto* t = nullptr;
    if (a.name() == "value_float" || a.name() == "value_floats") {
      t = &im.synthesized.emplace_back();
      t->set_data_type(onnx::TensorProto::FLOAT);
      if (a.name() == "value_float") t->add_float_data(a.f());
      else for (float x : a.floats()) t->add_float_data(x);
      if (a.name() == "value_floats") t->add_dims(a.floats_size());
    } else if (a.name() == "value_int" || a.name() == "value_ints") {
      t = &im.synthesized.emplace_back();
      t->set_data_type(onnx::TensorProto::INT64);
      if (a.name() == "value_int") t->add_int64_data(a.i());
      else for (int64_t x : a.ints()) t->add_int64_data(x);
      if (a.name() == "value_ints") t->add_dims(a.ints_size());
    }
    if (t) {
      add_tensor(f, im.view(*t, name, true));
      return;
    }
  }
  // value_string(s) / sparse_value: not a numeric tensor; the node stays listed.
}

void OnnxFile::Impl::add_tensor(OnnxFile* f, TensorView v) {
  f->by_name_.emplace(v.name, f->tensors_.size());  // first definition wins
  f->tensors_.push_back(std::move(v));
}

OnnxFile::~OnnxFile() = default;

const TensorView* OnnxFile::find(const std::string& name) const {
  auto it = by_name_.find(name);
  return it == by_name_.end() ? nullptr : &tensors_[it->second];
}

const TensorView& OnnxFile::get(const std::string& name) const {
  const TensorView* t = find(name);
  if (!t) throw Error(path_ + ": no tensor named '" + name + "'");
  return *t;
}

std::vector<const Node*> OnnxFile::consumers(const std::string& value) const {
  std::vector<const Node*> out;
  auto [lo, hi] = consumers_.equal_range(value);
  for (auto it = lo; it != hi; ++it)
    if (out.empty() || out.back() != &nodes_[it->second]) out.push_back(&nodes_[it->second]);
  return out;
}

const Node* OnnxFile::producer_of(const std::string& value) const {
  auto it = producers_.find(value);
  return it == producers_.end() ? nullptr : &nodes_[it->second];
}

size_t OnnxFile::inline_bytes() const {
  size_t s = 0;
  for (const auto& t : tensors_)
    if (t.location.empty()) s += t.nbytes;
  return s;
}

size_t OnnxFile::external_bytes() const {
  size_t s = 0;
  for (const auto& t : tensors_)
    if (!t.location.empty()) s += t.nbytes;
  return s;
}

MappingStats weight_mapping_stats() {
  std::vector<std::pair<uintptr_t, uintptr_t>> maps;
  {
    std::lock_guard<std::mutex> l(g_maps_mu);
    maps = g_maps;
  }
  return stats_of(maps);
}

}  // namespace qvl
