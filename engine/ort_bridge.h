// Calls into the ONNX Runtime reference tools (tools/ort-run, tools/*.py) for
// `qvl compare`: locating the tools folder, scratch folders, running a tool
// with its output captured, and the value-name → .npy file convention.
#pragma once
#include <string>
#include <vector>

namespace qvl {

// The repository's tools/ folder: $QVL_TOOLS_DIR, else found next to the qvl
// executable (../tools, ../../tools, ...) or in the current directory.
// Throws qvl::Error when not found.
std::string tools_dir(const std::string& override_dir = "");

// A new empty folder under $TMPDIR (or /tmp) named qvl-<tag>-XXXXXX.
std::string make_scratch_dir(const std::string& tag);
void remove_tree(const std::string& dir);

// Runs argv (no shell); stdout+stderr captured into *out. Returns the exit status.
int run_process(const std::vector<std::string>& argv, std::string* out,
                const std::vector<std::string>& env = {});

// tools/ort-run MODEL IN_DIR OUT_DIR [--outputs a,b] [--threads N]; throws
// qvl::Error with ort-run's message when it fails.
void ort_run(const std::string& tools, const std::string& model, const std::string& in_dir,
             const std::string& out_dir, const std::vector<std::string>& outputs = {}, int threads = 0);

// Runs a tools/ Python script with the system python (onnx + numpy).
void run_python_tool(const std::string& script, const std::vector<std::string>& args);

// ort-run's file stem of a graph value name ('/' and ':' → '_').
std::string npy_stem(const std::string& value_name);

bool file_exists(const std::string& path);

}  // namespace qvl
