#include "cli/flags.h"

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>

#include "kernels/base.h"

namespace qvl::cli {

void Flags::add_spec(const char* name, Type t, void* target, const char* help) {
  specs_.push_back(Spec{{name}, t, target, help});
}
void Flags::add(const char* n, bool* t, const char* h) { add_spec(n, Type::Bool, t, h); }
void Flags::add(const char* n, int* t, const char* h) { add_spec(n, Type::Int, t, h); }
void Flags::add(const char* n, int64_t* t, const char* h) { add_spec(n, Type::Int64, t, h); }
void Flags::add(const char* n, uint64_t* t, const char* h) { add_spec(n, Type::UInt64, t, h); }
void Flags::add(const char* n, float* t, const char* h) { add_spec(n, Type::Float, t, h); }
void Flags::add(const char* n, std::string* t, const char* h) { add_spec(n, Type::String, t, h); }
void Flags::add(const char* n, std::vector<std::string>* t, const char* h) {
  add_spec(n, Type::List, t, h);
}
void Flags::alias(const char* name) { specs_.back().names.push_back(name); }

Flags::Spec* Flags::find(const std::string& name) {
  for (auto& s : specs_)
    for (auto& n : s.names)
      if (n == name) return &s;
  return nullptr;
}

bool Flags::given(const char* name) const {
  for (auto& s : specs_)
    for (auto& n : s.names)
      if (n == name) return s.seen;
  return false;
}

static int64_t parse_int(const std::string& flag, const std::string& v) {
  errno = 0;
  char* end = nullptr;
  long long x = std::strtoll(v.c_str(), &end, 10);
  QVL_CHECK(!v.empty() && end && *end == '\0' && errno == 0,
            "flag %s expects an integer, got '%s'", flag.c_str(), v.c_str());
  return x;
}

static float parse_float(const std::string& flag, const std::string& v) {
  char* end = nullptr;
  float x = std::strtof(v.c_str(), &end);
  QVL_CHECK(!v.empty() && end && *end == '\0' && std::isfinite(x),
            "flag %s expects a number, got '%s'", flag.c_str(), v.c_str());
  return x;
}

bool Flags::parse(int argc, char** argv, bool allow_positional) {
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--help" || a == "-h") {
      std::fputs(help().c_str(), stdout);
      return false;
    }
    if (a.size() > 1 && a[0] == '-' && !(a.size() > 1 && (std::isdigit((unsigned char)a[1]) || a[1] == '.'))) {
      std::string value;
      bool has_value = false;
      size_t eq = a.find('=');
      if (a.rfind("--", 0) == 0 && eq != std::string::npos) {
        value = a.substr(eq + 1);
        a = a.substr(0, eq);
        has_value = true;
      }
      Spec* s = find(a);
      QVL_CHECK(s, "unknown flag '%s' (see %s --help)", a.c_str(), argv[0]);
      s->seen = true;
      if (s->type == Type::Bool) {
        QVL_CHECK(!has_value, "flag %s takes no value", a.c_str());
        *static_cast<bool*>(s->target) = true;
        continue;
      }
      if (!has_value) {
        QVL_CHECK(i + 1 < argc, "flag %s needs a value", a.c_str());
        value = argv[++i];
      }
      switch (s->type) {
        case Type::Int: {
          int64_t x = parse_int(a, value);
          QVL_CHECK(x >= INT32_MIN && x <= INT32_MAX, "flag %s: value %s out of range", a.c_str(),
                    value.c_str());
          *static_cast<int*>(s->target) = static_cast<int>(x);
          break;
        }
        case Type::Int64: *static_cast<int64_t*>(s->target) = parse_int(a, value); break;
        case Type::UInt64: {
          int64_t x = parse_int(a, value);
          QVL_CHECK(x >= 0, "flag %s must be >= 0", a.c_str());
          *static_cast<uint64_t*>(s->target) = static_cast<uint64_t>(x);
          break;
        }
        case Type::Float: *static_cast<float*>(s->target) = parse_float(a, value); break;
        case Type::String: *static_cast<std::string*>(s->target) = value; break;
        case Type::List: static_cast<std::vector<std::string>*>(s->target)->push_back(value); break;
        case Type::Bool: break;
      }
      continue;
    }
    QVL_CHECK(allow_positional, "unexpected argument '%s' (see %s --help)", a.c_str(), argv[0]);
    positional_.push_back(a);
  }
  return true;
}

std::string Flags::help() const {
  std::string out = "usage: " + usage_ + "\n\noptions:\n";
  for (const auto& s : specs_) {
    std::string names;
    for (size_t i = 0; i < s.names.size(); ++i) names += (i ? ", " : "") + s.names[i];
    const char* meta = s.type == Type::Bool ? "" : s.type == Type::String || s.type == Type::List ? " STR" : " N";
    out += strfmt("  %-28s %s\n", (names + meta).c_str(), s.help.c_str());
  }
  return out;
}

}  // namespace qvl::cli
