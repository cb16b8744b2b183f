// Build and machine facts for `qvl bench` / `qvl profile` (see machine.h).
#include "engine/machine.h"

#include <sys/resource.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <sstream>

#include "kernels/base.h"

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

// AMD's core generation from the CPUID family / model (the VM's "model name"
// often says only "AMD EPYC"; Zen 4 executes 512-bit vectors at half the rate
// of Zen 5, which decides every compute peak).
std::string amd_core_name(int family, int model) {
  if (family == 26) return "Zen 5";
  if (family == 25) {
    const bool zen4 = (model >= 0x10 && model <= 0x1f) || (model >= 0x60 && model <= 0x7f) ||
                      (model >= 0xa0 && model <= 0xaf);
    return zen4 ? "Zen 4" : "Zen 3";
  }
  if (family == 23) return "Zen / Zen 2";
  return "";
}

std::string cpu_model() {
  std::ifstream f("/proc/cpuinfo");
  std::string line, name, vendor;
  int family = -1, model = -1;
  while (std::getline(f, line) && !line.empty()) {  // the first processor's block
    const size_t c = line.find(':');
    if (c == std::string::npos) continue;
    const std::string key = line.substr(0, line.find_last_not_of(" \t", c - 1) + 1);
    const size_t b = line.find_first_not_of(" \t", c + 1);
    const std::string value = b == std::string::npos ? "" : line.substr(b);
    if (key == "model name") name = value;
    else if (key == "vendor_id") vendor = value;
    else if (key == "cpu family") family = std::atoi(value.c_str());
    else if (key == "model") model = std::atoi(value.c_str());
  }
  if (name.empty()) return "unknown CPU";
  if (family < 0 || model < 0) return name;
  std::string core = vendor == "AuthenticAMD" ? amd_core_name(family, model) : "";
  return strfmt("%s (family %d model %d%s%s)", name.c_str(), family, model, core.empty() ? "" : ", ",
                core.c_str());
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
