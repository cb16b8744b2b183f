// Process plumbing to the ONNX Runtime reference tools (see ort_bridge.h).
#include "engine/ort_bridge.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>

#include "kernels/base.h"

extern char** environ;

namespace qvl {

namespace fs = std::filesystem;

bool file_exists(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0;
}

std::string tools_dir(const std::string& override_dir) {
  auto ok = [](const fs::path& d) { return file_exists((d / "ort-run").string()); };
  if (!override_dir.empty()) {
    QVL_CHECK(ok(override_dir), "--tools %s: no ort-run in that folder", override_dir.c_str());
    return override_dir;
  }
  if (const char* env = std::getenv("QVL_TOOLS_DIR")) {
    QVL_CHECK(ok(env), "QVL_TOOLS_DIR=%s: no ort-run in that folder", env);
    return env;
  }
  std::error_code ec;
  fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  for (fs::path d = exe.parent_path(); !ec && !d.empty(); d = d.parent_path()) {
    if (ok(d / "tools")) return (d / "tools").string();
    if (d == d.parent_path()) break;
  }
  if (ok(fs::current_path() / "tools")) return (fs::current_path() / "tools").string();
  throw Error("cannot find the tools/ folder with ort-run (set QVL_TOOLS_DIR or pass --tools DIR)");
}

std::string make_scratch_dir(const std::string& tag) {
  const char* tmp = std::getenv("TMPDIR");
  std::string tmpl = std::string(tmp && *tmp ? tmp : "/tmp") + "/qvl-" + tag + "-XXXXXX";
  std::vector<char> buf(tmpl.begin(), tmpl.end());
  buf.push_back('\0');
  QVL_CHECK(::mkdtemp(buf.data()), "%s: cannot create scratch folder (%s)", tmpl.c_str(), std::strerror(errno));
  return buf.data();
}

void remove_tree(const std::string& dir) {
  std::error_code ec;
  fs::remove_all(dir, ec);
}

int run_process(const std::vector<std::string>& argv, std::string* out, const std::vector<std::string>& env) {
  QVL_ASSERT(!argv.empty());
  int fds[2];
  QVL_CHECK(::pipe(fds) == 0, "%s: cannot create a pipe", argv[0].c_str());
  pid_t pid = ::fork();
  QVL_CHECK(pid >= 0, "%s: cannot fork", argv[0].c_str());
  if (pid == 0) {
    ::dup2(fds[1], 1);
    ::dup2(fds[1], 2);
    ::close(fds[0]);
    ::close(fds[1]);
    for (const auto& kv : env) ::putenv(const_cast<char*>(kv.c_str()));
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    ::execvp(args[0], args.data());
    std::fprintf(stderr, "%s: cannot execute (%s)\n", argv[0].c_str(), std::strerror(errno));
    ::_exit(127);
  }
  ::close(fds[1]);
  std::string text;
  char buf[4096];
  ssize_t n;
  while ((n = ::read(fds[0], buf, sizeof buf)) > 0) text.append(buf, static_cast<size_t>(n));
  ::close(fds[0]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  if (out) *out = text;
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

namespace {

// Last non-empty line of a tool's output (its one-line error).
std::string last_line(const std::string& s) {
  size_t end = s.find_last_not_of("\n ");
  if (end == std::string::npos) return "(no output)";
  size_t start = s.rfind('\n', end);
  return s.substr(start == std::string::npos ? 0 : start + 1, end + 1 - (start == std::string::npos ? 0 : start + 1));
}

}  // namespace

void ort_run(const std::string& tools, const std::string& model, const std::string& in_dir,
             const std::string& out_dir, const std::vector<std::string>& outputs, int threads) {
  std::vector<std::string> argv = {tools + "/ort-run", model, in_dir, out_dir};
  if (!outputs.empty()) {
    std::string list;
    for (const auto& o : outputs) list += (list.empty() ? "" : ",") + o;
    argv.push_back("--outputs");
    argv.push_back(list);
  }
  if (threads > 0) {
    argv.push_back("--threads");
    argv.push_back(std::to_string(threads));
  }
  std::string out;
  int rc = run_process(argv, &out);
  QVL_CHECK(rc == 0, "ort-run %s failed: %s", model.c_str(), last_line(out).c_str());
}

void run_python_tool(const std::string& script, const std::vector<std::string>& args) {
  std::vector<std::string> argv = {"python3", script};
  argv.insert(argv.end(), args.begin(), args.end());
  std::string out;
  int rc = run_process(argv, &out, {"PYENV_VERSION=system"});
  QVL_CHECK(rc == 0, "%s failed: %s", script.c_str(), last_line(out).c_str());
}

std::string npy_stem(const std::string& value_name) {
  std::string s = value_name;
  for (char& c : s)
    if (c == '/' || c == ':') c = '_';
  return s;
}

}  // namespace qvl
