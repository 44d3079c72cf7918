// Shared by the libFuzzer harnesses (scripts/fuzz-native.sh builds them; docs/SECURITY.md,
// "Fuzzing"). A harness calls the same plain C++ functions the N-API wrappers call, in the
// standard library context, with the same argument checks the wrapper makes first: an input the
// wrapper would refuse is not one the function can be given.
#pragma once
#include <openssl/err.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "../library_context.h"

namespace qt_fuzz {

// The process-wide standard context, created as the addon creates it (no configuration file).
inline qt::LibraryContext* Context() {
  static qt::LibraryContext* const lc = [] {
    std::string error;
    qt::LibraryContext* c = nullptr;
    if (!qt::InitOpenSslOnce(&error) || (c = qt::LibraryContext::Standard(&error)) == nullptr) {
      std::fprintf(stderr, "fuzz harness: no library context: %s\n", error.c_str());
      std::abort();
    }
    return c;
  }();
  return lc;
}

// Reads the input front to back: a selector byte, then fixed-size fields, then the rest.
class Input {
 public:
  Input(const uint8_t* data, size_t size) : p_(data), left_(size) {}
  uint8_t Byte() {
    if (left_ == 0) return 0;
    left_--;
    return *p_++;
  }
  // nullptr when fewer than n bytes are left.
  const uint8_t* Take(size_t n) {
    if (left_ < n) return nullptr;
    const uint8_t* out = p_;
    p_ += n;
    left_ -= n;
    return out;
  }
  const uint8_t* rest() const { return p_; }
  size_t left() const { return left_; }

 private:
  const uint8_t* p_;
  size_t left_;
};

}  // namespace qt_fuzz
