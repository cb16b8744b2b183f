// `qvl compare --kernels`: runs qvl's kernels (kernels/*.h) on the random
// inputs of the one-op ONNX cases written by tools/kernel_models.py, so the
// CLI can compare them with ONNX Runtime's output for the same model.
//
// A case folder holds model.onnx, in/*.npy (graph inputs), w/*.npy (the
// initializers) and meta.json ({"case", "kernel", params}).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "engine/compare.h"

namespace qvl {

struct KernelOutput {
  std::vector<float> data;
  std::vector<int64_t> shape;
};

// Runs the case's kernel; ref = true runs the scalar `_ref` twin instead.
// Throws qvl::Error naming the case folder on a malformed case.
KernelOutput run_kernel_case(const std::string& case_dir, bool ref);

// Tolerance for a kernel family (meta.json "kernel") against ONNX Runtime.
Tolerance kernel_tolerance(const std::string& kernel);

// Kernel family of a case folder (meta.json "kernel").
std::string kernel_family(const std::string& case_dir);

}  // namespace qvl
