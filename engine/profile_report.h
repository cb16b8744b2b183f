// Turns the profiler's raw zone events (kernels/profiler.h) into per-phase
// tables for `qvl profile`: one row per (zone, layer) with time, share of the
// phase, calls, achieved GFLOP/s and GB/s and their share of the machine's
// peaks; plus a per-zone summary over layers, JSON and Chrome trace output.
//
// Nested zones are handled by self time: a zone's time excludes the zones
// that ran inside it on the same thread, so the rows of a phase add up to the
// zoned wall time of that phase (events on worker threads are kept for the
// trace but not double counted in the tables).
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "kernels/profiler.h"

namespace qvl {

// fp32 FMA peak of this machine class (AVX-512 Xeon, ~2.6 GHz, one 512-bit
// FMA issue per cycle sustained under all-core load): ≈ 250 GFLOP/s per
// thread, i.e. ≈ 500 GFLOP/s for the 2-thread machines qvl is tuned on.
constexpr double kPeakGflopsPerThread = 250.0;

struct MachinePeaks {
  int threads = 1;
  double gflops = kPeakGflopsPerThread;  // fp32 FMA peak for `threads` (%pkF is against it)
  bool gflops_measured = false;          // from engine/peaks.h, else the constant above
  double int8_gops = 0, amx_int8_gops = 0, amx_bf16_gflops = 0;  // measured, 0 = absent
  double gb_s = 0;                       // measured read bandwidth (0 = unknown)
};

struct ProfileRow {
  std::string name;  // zone name, e.g. "text.qkv"
  int layer = -1;    // -1 = not per layer (or the summary over layers)
  double ms = 0;     // self time
  int64_t calls = 0;
  double flops = 0, bytes = 0;
  double pct = 0;  // of the phase total

  double gflop_s() const { return ms > 0 ? flops / (ms * 1e6) : 0; }
  double gb_s() const { return ms > 0 ? bytes / (ms * 1e6) : 0; }
};

struct ProfileTable {
  std::string phase;               // "vision", "prefill", "decode", or "other"
  double total_ms = 0;             // sum of the rows (incl. the unzoned row)
  std::vector<ProfileRow> rows;    // per (zone, layer), in order of first appearance
  std::vector<ProfileRow> by_zone; // the same summed over layers, by time descending
};

struct ProfileReport {
  MachinePeaks peaks;
  std::vector<ProfileTable> tables;  // vision, prefill, decode, then any other phase
};

// Builds the report. `wall_s` (optional) gives each phase's measured wall time
// in seconds; the time it has beyond the zones becomes a row "(unzoned)".
ProfileReport build_profile_report(const std::vector<prof::Event>& events, const MachinePeaks& peaks,
                                   const std::map<std::string, double>& wall_s = {});

// Human-readable tables (one per phase: per-layer rows, then the summary).
std::string format_profile_text(const ProfileReport& r, bool per_layer = true);

nlohmann::json profile_to_json(const ProfileReport& r);

// Chrome trace-event JSON ("X" complete events, µs) for chrome://tracing / Perfetto.
nlohmann::json chrome_trace(const std::vector<prof::Event>& events);
void write_chrome_trace(const std::string& path, const std::vector<prof::Event>& events);

}  // namespace qvl
