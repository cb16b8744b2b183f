// Basic vocabulary shared by every layer: errors, checks, string formatting,
// aligned buffers. Kept free of any model or file-format knowledge.
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <stdexcept>
#include <string>

namespace qvl {

// A user-facing failure: bad file, bad input, bad flag. The CLI prints
// `qvl: error: <what()>` as one line and exits non-zero. Messages name the
// file / tensor / flag involved and what is wrong.
struct Error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// printf-style formatting into a std::string.
std::string strfmt(const char* fmt, ...) __attribute__((format(printf, 1, 2)));

[[noreturn]] void throw_error(const std::string& msg);
[[noreturn]] void check_failed(const char* file, int line, const char* cond, const std::string& msg);

}  // namespace qvl

// Always-on check for anything that depends on files, config or user input.
// Throws qvl::Error with the formatted message (no file/line in the user text).
#define QVL_CHECK(cond, ...)                                   \
  do {                                                         \
    if (!(cond)) ::qvl::throw_error(::qvl::strfmt(__VA_ARGS__)); \
  } while (0)

// Internal invariant (a bug in qvl if it fires); carries file:line.
#define QVL_ASSERT(cond)                                                   \
  do {                                                                     \
    if (!(cond)) ::qvl::check_failed(__FILE__, __LINE__, #cond, "");       \
  } while (0)

#ifdef NDEBUG
#define QVL_DCHECK(cond) ((void)0)
#else
#define QVL_DCHECK(cond) QVL_ASSERT(cond)
#endif

namespace qvl {

// Allocates `bytes` (a multiple of 64) aligned to 64 bytes; from 4 MiB up,
// aligned to 2 MiB and marked for transparent huge pages, so large
// activations, scratch and the KV cache take one page fault and one TLB entry
// per 2 MiB instead of per 4 KiB. Null when out of memory; release with free().
void* alloc_aligned(size_t bytes);

// 64-byte aligned heap array of T (uninitialized). Owner of activations,
// scratch and KV cache memory.
template <typename T>
class Buffer {
 public:
  Buffer() = default;
  explicit Buffer(size_t n) { resize(n); }
  void resize(size_t n) {
    if (n == n_) return;
    ptr_.reset();
    n_ = n;
    if (n == 0) return;
    size_t bytes = (n * sizeof(T) + 63) / 64 * 64;
    void* p = alloc_aligned(bytes);
    if (!p) throw Error(strfmt("out of memory allocating %zu bytes", bytes));
    ptr_.reset(static_cast<T*>(p));
  }
  void zero() {
    if (n_) __builtin_memset(ptr_.get(), 0, n_ * sizeof(T));
  }
  T* data() { return ptr_.get(); }
  const T* data() const { return ptr_.get(); }
  size_t size() const { return n_; }
  T& operator[](size_t i) { return ptr_.get()[i]; }
  const T& operator[](size_t i) const { return ptr_.get()[i]; }

 private:
  struct Free {
    void operator()(T* p) const { std::free(p); }
  };
  std::unique_ptr<T, Free> ptr_;
  size_t n_ = 0;
};

// Grow-only resize: scratch buffers reused across calls of different sizes
// (layers alternate K) without reallocating and faulting fresh pages each time.
template <typename T>
void grow(Buffer<T>& b, size_t n) {
  if (b.size() < n) b.resize(n);
}

}  // namespace qvl
