// Read-bandwidth probe: streams a buffer much larger than the last-level cache
// with all threads (each reads its own contiguous slice with wide loads) and
// reports the best of a few passes. `qvl bench` and `qvl profile` use it as the
// memory roofline for decode (which is a stream over the weights).
#pragma once
#include <cstddef>
#include <cstdint>

namespace qvl {

struct BandwidthResult {
  double gb_s = 0;     // best pass, 1e9 bytes per second
  double median_gb_s = 0;
  size_t bytes = 0;    // buffer size read per pass
  int threads = 0;
  int passes = 0;
};

// Last-level cache size in bytes from sysfs (0 if unknown).
size_t last_level_cache_bytes();

// Default probe size: 4 × LLC, at least 1 GiB, at most a quarter of the
// available memory.
size_t default_probe_bytes();

// Measures streaming read bandwidth. bytes = 0 → default_probe_bytes();
// threads = 0 → OpenMP's default.
BandwidthResult measure_read_bandwidth(size_t bytes = 0, int threads = 0, int passes = 5);

// Streaming read of n floats at p (sum so the loads cannot be elided); the
// kernel of the probe, exposed for tests: returns the sum of the values.
double stream_read_sum(const float* p, int64_t n);

}  // namespace qvl
