// AMX tile configuration shared by the AMX kernels (internal; empty unless
// compiled with __AMX_TILE__).
#pragma once
#if defined(__AMX_TILE__)
#include <immintrin.h>

#include <cstdint>

namespace qvl::amx {

// Palette-1 tile configuration (64 bytes).
struct alignas(64) TileConfig {
  uint8_t palette = 1, start_row = 0, reserved[14] = {};
  uint16_t colsb[16] = {};
  uint8_t rows[16] = {};
};
static_assert(sizeof(TileConfig) == 64, "AMX palette-1 config is 64 bytes");

// Loads c into the calling thread's tile registers. The barrier keeps the
// compiler from dropping the stores that fill c (ldtilecfg's memory read is
// not visible to it).
inline void load_config(const TileConfig& c) {
  asm volatile("" : : "r"(&c) : "memory");
  _tile_loadconfig(&c);
}

// All 8 tiles 16 rows × 64 bytes.
inline void configure_16x64() {
  TileConfig c;
  for (int t = 0; t < 8; ++t) c.rows[t] = 16, c.colsb[t] = 64;
  load_config(c);
}

}  // namespace qvl::amx
#endif
