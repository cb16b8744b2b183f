#include "kernels/base.h"

#include <sys/mman.h>

#include <cstdarg>
#include <cstdio>
#include <vector>

namespace qvl {

std::string strfmt(const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  va_list ap2;
  va_copy(ap2, ap);
  int n = std::vsnprintf(nullptr, 0, fmt, ap);
  va_end(ap);
  std::string out;
  if (n > 0) {
    out.resize(static_cast<size_t>(n));
    std::vsnprintf(out.data(), out.size() + 1, fmt, ap2);
  }
  va_end(ap2);
  return out;
}

void throw_error(const std::string& msg) { throw Error(msg); }

void* alloc_aligned(size_t bytes) {
  constexpr size_t kHuge = size_t(2) << 20;
  if (bytes < 2 * kHuge) return std::aligned_alloc(64, bytes);
  const size_t rounded = (bytes + kHuge - 1) / kHuge * kHuge;
  void* p = std::aligned_alloc(kHuge, rounded);
  if (p) madvise(p, rounded, MADV_HUGEPAGE);  // advice only: failure leaves 4 KiB pages
  return p;
}

void check_failed(const char* file, int line, const char* cond, const std::string& msg) {
  throw Error(strfmt("internal error at %s:%d: %s %s", file, line, cond, msg.c_str()));
}

}  // namespace qvl
