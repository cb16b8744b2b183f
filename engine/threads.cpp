#include "engine/threads.h"

#include <omp.h>

#include <fstream>
#include <set>
#include <string>

#include "kernels/base.h"

namespace qvl {

int physical_cores() {
  std::set<std::string> cores;
  int ncpu = omp_get_num_procs();
  for (int c = 0; c < ncpu; ++c) {
    std::string base = "/sys/devices/system/cpu/cpu" + std::to_string(c) + "/topology/";
    std::ifstream pkg(base + "physical_package_id"), core(base + "core_id");
    std::string p, k;
    if (!(pkg >> p) || !(core >> k)) return ncpu;
    cores.insert(p + ":" + k);
  }
  return cores.empty() ? ncpu : static_cast<int>(cores.size());
}

void set_threads(int n) {
  QVL_CHECK(n >= 0, "-t must be >= 0 (got %d)", n);
  omp_set_num_threads(n > 0 ? n : physical_cores());
}

}  // namespace qvl
