// Command-line flags declared once: each flag's name, value type, target and
// help drive both parsing and `--help`. Bad flags (unknown, missing value,
// not a number) throw qvl::Error naming the flag.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace qvl::cli {

class Flags {
 public:
  explicit Flags(std::string usage) : usage_(std::move(usage)) {}

  void add(const char* name, bool* target, const char* help);  // presence = true
  void add(const char* name, int* target, const char* help);
  void add(const char* name, int64_t* target, const char* help);
  void add(const char* name, uint64_t* target, const char* help);
  void add(const char* name, float* target, const char* help);
  void add(const char* name, std::string* target, const char* help);
  void add(const char* name, std::vector<std::string>* target, const char* help);  // repeatable
  // A second spelling for the flag added last (e.g. "-n" for "--max-tokens").
  void alias(const char* name);

  // Parses argv[1..argc) (argv[0] = command name). Non-flag arguments go to
  // positional() — rejected unless allow_positional. Returns false when
  // --help was given (help already printed).
  bool parse(int argc, char** argv, bool allow_positional = false);
  const std::vector<std::string>& positional() const { return positional_; }
  bool given(const char* name) const;  // was the flag on the command line?
  std::string help() const;

 private:
  enum class Type { Bool, Int, Int64, UInt64, Float, String, List };
  struct Spec {
    std::vector<std::string> names;
    Type type;
    void* target;
    std::string help;
    bool seen = false;
  };
  Spec* find(const std::string& name);
  void add_spec(const char* name, Type t, void* target, const char* help);
  std::string usage_;
  std::vector<Spec> specs_;
  std::vector<std::string> positional_;
};

}  // namespace qvl::cli
