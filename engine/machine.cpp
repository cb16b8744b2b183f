// Build and machine facts for `qvl bench` / `qvl profile` (see machine.h).
#include "engine/machine.h"

#include <sys/resource.h>
#include <unistd.h>

#include <fstream>
#include <sstream>

namespace qvl {

namespace {

// A "Key:   123 kB" line of /proc/self/status in MiB (-1 if absent).
double status_mb(const char* key) {
  std::ifstream f("/proc/self/status");
  std::string line;
  size_t n = std::char_traits<char>::length(key);
  while (std::getline(f, line)) {
    if (line.compare(0, n, key) != 0 || line.size() <= n || line[n] != ':') continue;
    std::istringstream is(line.substr(n + 1));
    double kb = 0;
    is >> kb;
    return kb / 1024.0;
  }
  return -1;
}

std::string compiled_isa() {
  std::string s;
  auto add = [&](const char* x) { s += s.empty() ? x : std::string("+") + x; };
#ifdef __AVX512F__
  add("avx512f");
#endif
#ifdef __AVX512BW__
  add("avx512bw");
#endif
#ifdef __AVX512VNNI__
  add("avx512vnni");
#endif
#ifdef __AVX512BF16__
  add("avx512bf16");
#endif
#ifdef __AVX512FP16__
  add("avx512fp16");
#endif
#if defined(__AVX2__) && !defined(__AVX512F__)
  add("avx2");
#endif
#ifdef __FMA__
  add("fma");
#endif
#ifdef __F16C__
  add("f16c");
#endif
  return s.empty() ? "baseline x86-64" : s;
}

std::string runtime_isa() {
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f")) {
    std::string s = "avx512f";
    if (__builtin_cpu_supports("avx512bw")) s += "+avx512bw";
    if (__builtin_cpu_supports("avx512vnni")) s += "+avx512vnni";
    return s;
  }
  if (__builtin_cpu_supports("avx2")) return "avx2";
  return "sse";
}

}  // namespace

BuildInfo build_info() {
  BuildInfo b;
#ifdef QVL_BUILD_TYPE
  b.type = QVL_BUILD_TYPE;
#endif
#ifdef QVL_COMPILER
  b.compiler = QVL_COMPILER;
#endif
#ifdef QVL_BUILD_FLAGS
  b.flags = QVL_BUILD_FLAGS;
#endif
  while (!b.flags.empty() && b.flags.front() == ' ') b.flags.erase(b.flags.begin());
  // What the compiler actually did (the CMake flag string can miss the
  // per-configuration flags): optimization and assertions.
#ifdef __OPTIMIZE__
  b.optimized = true;
#endif
#ifdef NDEBUG
  b.ndebug = true;
#endif
  b.isa = compiled_isa();
  b.cpu_isa = runtime_isa();
  return b;
}

nlohmann::json build_json(const BuildInfo& b) {
  return {{"type", b.type},       {"compiler", b.compiler}, {"flags", b.flags},
          {"optimized", b.optimized}, {"ndebug", b.ndebug},   {"isa", b.isa},
          {"cpu_isa", b.cpu_isa}};
}

bool is_release_build() {
  BuildInfo b = build_info();
  return b.type == "Release" && b.optimized && b.ndebug;
}

std::string cpu_model() {
  std::ifstream f("/proc/cpuinfo");
  std::string line;
  while (std::getline(f, line)) {
    if (line.rfind("model name", 0) != 0) continue;
    size_t c = line.find(':');
    if (c != std::string::npos) return line.substr(line.find_first_not_of(" \t", c + 1));
  }
  return "unknown CPU";
}

int cpu_count() { return static_cast<int>(::sysconf(_SC_NPROCESSORS_ONLN)); }

double peak_rss_mb() {
  double hwm = status_mb("VmHWM");
  if (hwm >= 0) return hwm;
  struct rusage ru;
  ::getrusage(RUSAGE_SELF, &ru);
  return ru.ru_maxrss / 1024.0;
}

double current_rss_mb() { return status_mb("VmRSS"); }

bool reset_peak_rss() {
  std::ofstream f("/proc/self/clear_refs");
  if (!f) return false;
  f << "5";
  f.flush();
  return f.good();
}

}  // namespace qvl
