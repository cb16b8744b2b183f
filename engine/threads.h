// Thread-count policy: qvl runs its OpenMP kernels on the physical cores by
// default (hyper-threads share the FMA units and only add contention).
#pragma once

namespace qvl {

// Number of physical cores (distinct core ids in /sys topology; falls back to
// the logical CPU count).
int physical_cores();
// Sets the OpenMP thread count: n > 0 as given, n == 0 → physical_cores().
// Throws qvl::Error for n < 0.
void set_threads(int n);

}  // namespace qvl
