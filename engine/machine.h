// Facts about the build and the machine for benchmark reports: build type,
// compiler, flags and ISA (compiled vs supported), CPU model, peak RSS.
#pragma once
#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

namespace qvl {

struct BuildInfo {
  std::string type;      // CMAKE_BUILD_TYPE ("Release")
  std::string compiler;  // "GNU 12.2.0"
  std::string flags;     // "-O3 -DNDEBUG -march=native"
  std::string isa;       // ISA the kernels were compiled for, e.g. "avx512f+avx512bw+avx512vnni+fma"
  std::string cpu_isa;   // best vector ISA of this CPU at run time
  bool optimized = false;  // __OPTIMIZE__ was defined (-O1 or higher)
  bool ndebug = false;     // NDEBUG was defined (assertions off)
};

BuildInfo build_info();
nlohmann::json build_json(const BuildInfo& b);
bool is_release_build();  // QVL_BUILD_TYPE == "Release", optimized, NDEBUG

// "AMD EPYC (family 25 model 17, Zen 4)": /proc/cpuinfo's model name, CPUID
// family / model, and for AMD the core generation.
std::string cpu_model();
// AMD core generation of a CPUID family / model ("Zen 4"), "" when unknown.
std::string amd_core_name(int family, int model);
int cpu_count();          // online CPUs

// Peak resident set size of this process in MiB (VmHWM, else ru_maxrss).
double peak_rss_mb();
double current_rss_mb();  // VmRSS
// Resets the VmHWM high-water mark to the current RSS (/proc/self/clear_refs);
// returns false when the kernel does not allow it.
bool reset_peak_rss();

}  // namespace qvl
