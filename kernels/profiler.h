// Timing zones for `qvl profile` and Chrome traces. A zone records its name,
// thread, start/end and the work it did (flops, bytes) so the report can show
// achieved GFLOP/s and GB/s. When profiling is off a zone costs one predictable
// branch on a global flag (no clock read, no allocation).
//
//   { QVL_ZONE("text.attn", layer, flops, bytes); ... }
//
// Zone names are static strings; `layer` is -1 when not per layer.
#pragma once
#include <atomic>
#include <cstdint>
#include <string>
#include <vector>

namespace qvl::prof {

struct Event {
  const char* name;
  int layer;
  int thread;
  int64_t t0_ns, t1_ns;
  double flops, bytes;
  const char* phase;  // "prefill", "decode", "vision", ... (set by set_phase)
};

extern bool g_enabled;  // read in the hot path; toggled by enable()

void enable(bool on);
void reset();
void set_phase(const char* phase);  // static string
const char* phase();
int64_t now_ns();
void record(const Event& e);
std::vector<Event> events();  // copy of everything recorded since reset()

class Zone {
 public:
  Zone(const char* name, int layer = -1, double flops = 0, double bytes = 0) {
    if (__builtin_expect(g_enabled, 0)) start(name, layer, flops, bytes);
  }
  ~Zone() {
    if (__builtin_expect(active_, 0)) stop();
  }
  Zone(const Zone&) = delete;
  Zone& operator=(const Zone&) = delete;

 private:
  void start(const char* name, int layer, double flops, double bytes);
  void stop();
  bool active_ = false;
  Event e_{};
};

}  // namespace qvl::prof

#define QVL_ZONE_CAT2(a, b) a##b
#define QVL_ZONE_CAT(a, b) QVL_ZONE_CAT2(a, b)
#define QVL_ZONE(...) ::qvl::prof::Zone QVL_ZONE_CAT(qvl_zone_, __LINE__)(__VA_ARGS__)
