#include "loader/npy.h"

#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>

#include "kernels/base.h"

namespace qvl {

int64_t NpyArray::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

std::vector<float> NpyArray::to_f32() const {
  int64_t n = numel();
  std::vector<float> out(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    switch (dtype) {
      case DType::F32: std::memcpy(&out[i], &bytes[i * 4], 4); break;
      case DType::F16: { uint16_t h; std::memcpy(&h, &bytes[i * 2], 2); out[i] = f16_to_f32(h); break; }
      case DType::F64: { double d; std::memcpy(&d, &bytes[i * 8], 8); out[i] = (float)d; break; }
      case DType::I64: { int64_t v; std::memcpy(&v, &bytes[i * 8], 8); out[i] = (float)v; break; }
      case DType::I32: { int32_t v; std::memcpy(&v, &bytes[i * 4], 4); out[i] = (float)v; break; }
      case DType::U8: out[i] = bytes[i]; break;
      default: throw Error(strfmt("npy: cannot convert %s to float32", dtype_name(dtype)));
    }
  }
  return out;
}

std::vector<int64_t> NpyArray::to_i64() const {
  int64_t n = numel();
  std::vector<int64_t> out(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    switch (dtype) {
      case DType::I64: std::memcpy(&out[i], &bytes[i * 8], 8); break;
      case DType::I32: { int32_t v; std::memcpy(&v, &bytes[i * 4], 4); out[i] = v; break; }
      case DType::U8: case DType::Bool: out[i] = bytes[i]; break;
      default: throw Error(strfmt("npy: cannot convert %s to int64", dtype_name(dtype)));
    }
  }
  return out;
}

static DType descr_to_dtype(const std::string& d, const std::string& path) {
  if (d == "<f4") return DType::F32;
  if (d == "<f2") return DType::F16;
  if (d == "<f8") return DType::F64;
  if (d == "<i8") return DType::I64;
  if (d == "<i4") return DType::I32;
  if (d == "|u1") return DType::U8;
  if (d == "|i1") return DType::I8;
  if (d == "|b1") return DType::Bool;
  throw Error(strfmt("%s: unsupported npy dtype '%s'", path.c_str(), d.c_str()));
}

static const char* dtype_to_descr(DType t) {
  switch (t) {
    case DType::F32: return "<f4";
    case DType::F16: return "<f2";
    case DType::F64: return "<f8";
    case DType::I64: return "<i8";
    case DType::I32: return "<i4";
    case DType::U8: return "|u1";
    case DType::I8: return "|i1";
    case DType::Bool: return "|b1";
    default: throw Error(strfmt("npy: cannot write dtype %s", dtype_name(t)));
  }
}

NpyArray npy_load(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  QVL_CHECK(f.good(), "%s: cannot open file", path.c_str());
  char magic[8];
  f.read(magic, 8);
  QVL_CHECK(f.gcount() == 8 && std::memcmp(magic, "\x93NUMPY", 6) == 0, "%s: not a .npy file",
            path.c_str());
  uint32_t hlen = 0;
  if (magic[6] == 1) {
    uint16_t h;
    f.read(reinterpret_cast<char*>(&h), 2);
    hlen = h;
  } else {
    f.read(reinterpret_cast<char*>(&hlen), 4);
  }
  std::string header(hlen, '\0');
  f.read(header.data(), hlen);
  QVL_CHECK(f.good(), "%s: truncated header", path.c_str());
  auto field = [&](const char* key) -> std::string {
    size_t p = header.find(key);
    QVL_CHECK(p != std::string::npos, "%s: header lacks %s", path.c_str(), key);
    p = header.find(':', p) + 1;
    while (header[p] == ' ') ++p;
    return header.substr(p);
  };
  std::string d = field("'descr'");
  d = d.substr(1, d.find('\'', 1) - 1);
  std::string fo = field("'fortran_order'");
  QVL_CHECK(fo.rfind("False", 0) == 0, "%s: fortran order not supported", path.c_str());
  std::string sh = field("'shape'");
  sh = sh.substr(1, sh.find(')') - 1);
  NpyArray a;
  a.dtype = descr_to_dtype(d, path);
  std::stringstream ss(sh);
  std::string tok;
  while (std::getline(ss, tok, ',')) {
    if (tok.find_first_of("0123456789") == std::string::npos) continue;
    a.shape.push_back(std::stoll(tok));
  }
  size_t nbytes = static_cast<size_t>(a.numel()) * (dtype_bits(a.dtype) / 8);
  a.bytes.resize(nbytes);
  f.read(reinterpret_cast<char*>(a.bytes.data()), static_cast<std::streamsize>(nbytes));
  QVL_CHECK(static_cast<size_t>(f.gcount()) == nbytes, "%s: truncated data (%zu of %zu bytes)",
            path.c_str(), static_cast<size_t>(f.gcount()), nbytes);
  return a;
}

void npy_save(const std::string& path, DType dtype, const std::vector<int64_t>& shape,
              const void* data) {
  std::string sh = "(";
  for (size_t i = 0; i < shape.size(); ++i) sh += std::to_string(shape[i]) + ",";
  if (shape.size() > 1) sh.pop_back();
  sh += ")";
  std::string header = strfmt("{'descr': '%s', 'fortran_order': False, 'shape': %s, }",
                              dtype_to_descr(dtype), sh.c_str());
  size_t total = 10 + header.size() + 1;
  header.append((64 - total % 64) % 64, ' ');
  header.push_back('\n');
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  size_t nbytes = static_cast<size_t>(n) * (dtype_bits(dtype) / 8);
  std::ofstream f(path, std::ios::binary);
  QVL_CHECK(f.good(), "%s: cannot create file", path.c_str());
  f.write("\x93NUMPY\x01\x00", 8);
  uint16_t hl = static_cast<uint16_t>(header.size());
  f.write(reinterpret_cast<const char*>(&hl), 2);
  f.write(header.data(), static_cast<std::streamsize>(header.size()));
  f.write(static_cast<const char*>(data), static_cast<std::streamsize>(nbytes));
  QVL_CHECK(f.good(), "%s: write failed", path.c_str());
}

}  // namespace qvl
