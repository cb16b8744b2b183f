#include "kernels/profiler.h"

#include <omp.h>

#include <chrono>
#include <mutex>

namespace qvl::prof {

bool g_enabled = false;

namespace {
std::mutex g_mu;
std::vector<Event> g_events;
const char* g_phase = "";
}  // namespace

void enable(bool on) { g_enabled = on; }

void reset() {
  std::lock_guard<std::mutex> lk(g_mu);
  g_events.clear();
}

void set_phase(const char* phase) { g_phase = phase; }
const char* phase() { return g_phase; }

int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

void record(const Event& e) {
  std::lock_guard<std::mutex> lk(g_mu);
  g_events.push_back(e);
}

std::vector<Event> events() {
  std::lock_guard<std::mutex> lk(g_mu);
  return g_events;
}

void Zone::start(const char* name, int layer, double flops, double bytes) {
  active_ = true;
  e_.name = name;
  e_.layer = layer;
  e_.thread = omp_get_thread_num();
  e_.flops = flops;
  e_.bytes = bytes;
  e_.phase = g_phase;
  e_.t0_ns = now_ns();
}

void Zone::stop() {
  e_.t1_ns = now_ns();
  record(e_);
}

}  // namespace qvl::prof
