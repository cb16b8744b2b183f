// Compute peaks of this machine, measured (not assumed) with short probes
// run on `threads` OpenMP threads: each thread runs independent chains of one
// instruction kind from registers (no memory traffic) for ~`ms` milliseconds.
// Benchmarks and `qvl profile` report achieved rates against these; the read
// bandwidth has its own probe (engine/bandwidth.h).
#pragma once

#include <nlohmann/json.hpp>

namespace qvl {

struct ComputePeaks {
  int threads = 0;
  double fp32_gflops = 0;      // AVX-512 (else AVX2 / scalar) FMA, 2 flops each
  double int8_gops = 0;        // AVX-512 VNNI vpdpbusd, 2 ops per multiply-add; 0 = absent
  double amx_int8_gops = 0;    // AMX tdpbusd; 0 = absent or not permitted
  double amx_bf16_gflops = 0;  // AMX tdpbf16ps; 0 = absent or not permitted
};

// Runs the probes (about 4 × ms milliseconds in all).
ComputePeaks measure_compute_peaks(int threads, double ms = 40);
nlohmann::json peaks_json(const ComputePeaks& p);

}  // namespace qvl
