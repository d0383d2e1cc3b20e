// A small deterministic random number generator keyed by integers.
//
// mslr draws initial parameters, minibatch orders and simulated data from streams keyed by (seed, what,
// which), e.g. (seed, kMinibatch, subject, epoch), so a draw never depends on how many draws came before it
// elsewhere, on the number of ranks, or on the LibTorch version.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <string_view>
#include <vector>

namespace mslr {

class Rng {
 public:
  // A stream identified by a seed and any number of integer keys.
  Rng(uint64_t seed, std::initializer_list<uint64_t> keys);

  uint64_t next_u64();
  // Uniform on [0, 1) with 53 random bits.
  double uniform();
  // Standard normal (Box-Muller; both values of a pair are used).
  double normal();
  // Uniform integer in [0, n).
  uint64_t below(uint64_t n);
  // A uniformly random permutation of 0..n-1 (Fisher-Yates).
  std::vector<int64_t> permutation(int64_t n);

 private:
  uint64_t s_[4];
  bool has_spare_ = false;
  double spare_ = 0.0;
};

// A stable 64-bit hash of a string (FNV-1a), for keying streams by names.
uint64_t hash_name(std::string_view name);

// Stream domains, so that streams of different purposes never coincide.
enum RngDomain : uint64_t {
  kRngInit = 1,
  kRngMinibatch = 2,
  kRngSimulate = 3,
  kRngSample = 4,
};

}  // namespace mslr
