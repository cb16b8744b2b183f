// fp16 / bf16 <-> fp32 conversions in kernels/dtype.h, exact to the bit:
//  1. a table of special values (zeros, subnormals, min/max normals, overflow,
//     inf, NaN, round-to-nearest-even ties) made once with numpy 1.24 by
//     float32 -> float16 casts (`np.float32(x).astype(np.float16)`), float16 ->
//     float32 casts, and for bf16 (numpy has none) by exact rounding in Python:
//     q = max(exponent - 8, -133); r = round(|x| / 2^q) * 2^q (ties to even),
//     r >= 2^128 -> inf;
//  2. every fp16 / bf16 bit pattern round-trips through fp32;
//  3. 2^20 random fp32 bit patterns against a scalar reference that rounds in
//     double precision with nearbyint (ties to even) at the format's quantum.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>

#include "kernels/dtype.h"

namespace qvl {
namespace {

uint32_t bits_of(float f) {
  uint32_t b;
  std::memcpy(&b, &f, 4);
  return b;
}
float from_bits(uint32_t b) {
  float f;
  std::memcpy(&f, &b, 4);
  return f;
}

struct Row {
  const char* name;
  uint32_t f32;   // input bits
  uint16_t f16;   // numpy float16 of it
  uint16_t bf16;  // exact round-to-nearest-even bfloat16 of it
};

const Row kRows[] = {
    {"zero", 0x00000000u, 0x0000, 0x0000},
    {"neg_zero", 0x80000000u, 0x8000, 0x8000},
    {"one", 0x3f800000u, 0x3c00, 0x3f80},
    {"neg_two", 0xc0000000u, 0xc000, 0xc000},
    {"f16_max", 0x477fe000u, 0x7bff, 0x4780},
    {"below_overflow_tie", 0x477fefffu, 0x7bff, 0x4780},
    {"overflow_tie", 0x477ff000u, 0x7c00, 0x4780},
    {"big", 0x47c35000u, 0x7c00, 0x47c3},
    {"inf", 0x7f800000u, 0x7c00, 0x7f80},
    {"neg_inf", 0xff800000u, 0xfc00, 0xff80},
    {"f16_min_sub", 0x33800000u, 0x0001, 0x3380},
    {"half_min_sub_tie", 0x33000000u, 0x0000, 0x3300},
    {"above_half_min_sub", 0x33000001u, 0x0001, 0x3300},
    {"three_half_sub_tie", 0x33c00000u, 0x0002, 0x33c0},
    {"five_half_sub_tie", 0x34200000u, 0x0002, 0x3420},
    {"f16_max_sub", 0x387fc000u, 0x03ff, 0x3880},
    {"f16_min_norm", 0x38800000u, 0x0400, 0x3880},
    {"sub_norm_boundary_tie", 0x387fe000u, 0x0400, 0x3880},
    {"one_tie_even", 0x3f801000u, 0x3c00, 0x3f80},
    {"one_tie_odd", 0x3f803000u, 0x3c02, 0x3f80},
    {"one_above_tie", 0x3f801001u, 0x3c01, 0x3f80},
    {"tenth", 0x3dcccccdu, 0x2e66, 0x3dcd},
    {"third", 0x3eaaaaabu, 0x3555, 0x3eab},
    {"int_tie_2049", 0x45001000u, 0x6800, 0x4500},
    {"int_tie_2051", 0x45003000u, 0x6802, 0x4500},
    {"tiny", 0x322bcc77u, 0x0000, 0x322c},
    {"neg_tiny", 0xb22bcc77u, 0x8000, 0xb22c},
    {"f32_sub", 0x00000001u, 0x0000, 0x0000},
    {"f32_max", 0x7f7fffffu, 0x7c00, 0x7f80},
    {"bf16_tie_even", 0x3f808000u, 0x3c04, 0x3f80},
    {"bf16_tie_odd", 0x3f818000u, 0x3c0c, 0x3f82},
    {"bf16_above_tie", 0x3f808001u, 0x3c04, 0x3f81},
    {"bf16_max_overflow", 0x7f7f8000u, 0x7c00, 0x7f80},
    {"bf16_sub_tie", 0x00018000u, 0x0000, 0x0002},
    {"pi", 0x40490fdbu, 0x4248, 0x4049},
    {"neg_e", 0xc02df854u, 0xc170, 0xc02e},
};

// numpy float16 -> float32 (bits), NaN payloads included.
const uint32_t kF16ToF32[][2] = {
    {0x0000, 0x00000000u}, {0x8000, 0x80000000u}, {0x0001, 0x33800000u}, {0x8001, 0xb3800000u},
    {0x03ff, 0x387fc000u}, {0x0400, 0x38800000u}, {0x3c00, 0x3f800000u}, {0x3555, 0x3eaaa000u},
    {0x7bff, 0x477fe000u}, {0xfbff, 0xc77fe000u}, {0x7c00, 0x7f800000u}, {0xfc00, 0xff800000u},
    {0x7e00, 0x7fc00000u}, {0x7d01, 0x7fa02000u}, {0xfe01, 0xffc02000u}, {0xc000, 0xc0000000u},
    {0x0200, 0x38000000u},
};

TEST(DType, TableF32ToHalves) {
  for (const Row& r : kRows) {
    float x = from_bits(r.f32);
    EXPECT_EQ(f32_to_f16(x), r.f16) << r.name;
    EXPECT_EQ(f32_to_bf16(x), r.bf16) << r.name;
  }
}

TEST(DType, TableF16ToF32) {
  for (const auto& e : kF16ToF32) EXPECT_EQ(bits_of(f16_to_f32((uint16_t)e[0])), e[1]) << std::hex << e[0];
  for (const Row& r : kRows) EXPECT_EQ(bits_of(bf16_to_f32(r.bf16)), (uint32_t)r.bf16 << 16) << r.name;
}

TEST(DType, NanStaysNan) {
  for (uint32_t b : {0x7fc00000u, 0x7f800001u, 0xffc00001u, 0x7fffffffu, 0x7f810000u}) {
    float x = from_bits(b);
    uint16_t h = f32_to_f16(x), g = f32_to_bf16(x);
    EXPECT_TRUE(std::isnan(f16_to_f32(h))) << std::hex << b;
    EXPECT_TRUE(std::isnan(bf16_to_f32(g))) << std::hex << b;
    EXPECT_EQ(h >> 15, b >> 31);
    EXPECT_EQ(g >> 15, b >> 31);
  }
}

TEST(DType, AllHalfPatternsRoundTrip) {
  for (uint32_t h = 0; h < 65536; ++h) {
    float f = f16_to_f32((uint16_t)h), g = bf16_to_f32((uint16_t)h);
    if (std::isnan(f)) EXPECT_TRUE(std::isnan(f16_to_f32(f32_to_f16(f))));
    else ASSERT_EQ(f32_to_f16(f), h) << std::hex << h;
    if (std::isnan(g)) EXPECT_TRUE(std::isnan(bf16_to_f32(f32_to_bf16(g))));
    else ASSERT_EQ(f32_to_bf16(g), h) << std::hex << h;
  }
}

// Reference rounding of a finite float to `mant` significant bits with
// smallest quantum 2^min_q; values >= 2^max_exp become inf. Result as float.
float round_ref(float x, int mant, int min_q, int max_exp) {
  double a = std::fabs((double)x);
  if (a == 0) return x;
  int e;
  std::frexp(a, &e);
  int q = std::max(e - mant, min_q);
  double r = std::nearbyint(std::ldexp(a, -q));  // default rounding mode: ties to even
  r = std::ldexp(r, q);
  if (r >= std::ldexp(1.0, max_exp)) r = INFINITY;
  return (float)std::copysign(r, (double)x);
}

TEST(DType, RandomF32AgainstDoubleReference) {
  std::mt19937 rng(1234);
  for (int i = 0; i < (1 << 20); ++i) {
    uint32_t b = rng();
    if (i & 1) b = (b & 0x8fffffffu) | 0x30000000u;  // half of them near fp16's range
    float x = from_bits(b);
    if (std::isnan(x)) continue;
    // fp16: 11 significant bits, subnormal quantum 2^-24, max finite 65504 (< 2^16 after rounding).
    float want16 = round_ref(x, 11, -24, 16);
    ASSERT_EQ(bits_of(f16_to_f32(f32_to_f16(x))), bits_of(want16)) << std::hex << b;
    // bf16: 8 significant bits, subnormal quantum 2^-133, overflow at 2^128.
    float wantb = round_ref(x, 8, -133, 128);
    ASSERT_EQ(bits_of(bf16_to_f32(f32_to_bf16(x))), bits_of(wantb)) << std::hex << b;
  }
}

}  // namespace
}  // namespace qvl
