// NumPy .npy read/write (little-endian, C order; float32/float16/int64/int32/
// uint8/bool). Used by tests, `qvl compare` and the ORT bridge.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "kernels/dtype.h"

namespace qvl {

struct NpyArray {
  DType dtype = DType::Undefined;
  std::vector<int64_t> shape;
  std::vector<uint8_t> bytes;
  int64_t numel() const;
  // Converted copies (float16 → float32, int32 → int64 ...). Throws on
  // non-numeric conversions.
  std::vector<float> to_f32() const;
  std::vector<int64_t> to_i64() const;
};

NpyArray npy_load(const std::string& path);
void npy_save(const std::string& path, DType dtype, const std::vector<int64_t>& shape,
              const void* data);

}  // namespace qvl
