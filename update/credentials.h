// Secrets of accounts and hosts: account passwords as scrypt hashes, host
// update tokens as SHA-256 digests. Clear passwords and tokens are never
// stored; a clear token exists only in NewToken's result.
//
// Thread safety: every function may be called from any thread.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "common/status.h"

namespace updns::update {

// Longest password HashPassword and VerifyPassword accept, in bytes.
inline constexpr size_t kMaxPasswordSize = 1024;

// scrypt cost (RFC 7914). The defaults cost about 16 MiB and tens of
// milliseconds per hash. Every stored hash carries its own parameters, so
// raising them affects only hashes made afterwards.
struct ScryptParams {
  uint64_t n = 16384;  // CPU/memory cost, a power of two
  uint32_t r = 8;      // block size
  uint32_t p = 1;      // parallelism
};

// "scrypt$N$r$p$SALT$HASH": SALT 16 random bytes, HASH 32 bytes, both in
// standard base64 with padding. Invalid for an empty password, one longer
// than kMaxPasswordSize, or `params` that VerifyPassword would refuse;
// IoError when the random generator or scrypt fails.
Result<std::string> HashPassword(std::string_view password, const ScryptParams& params = {});

// True when `password` hashes to `stored` under the parameters and salt that
// `stored` names. The hashes are compared in constant time. False for an
// empty or oversized password and for a malformed or implausibly costly
// `stored` (N not a power of two or above 2^20, r above 32, p above 16, or
// more than 256 MiB of memory).
bool VerifyPassword(std::string_view password, std::string_view stored);

// A valid hash of no one's password, made once. Checking a password against
// it when the name is unknown makes "no such name" take as long as "wrong
// password", so timing does not tell which names exist.
const std::string& DummyPasswordHash();

// Length of a clear token: 20 random bytes (160 bits) in lowercase base32.
inline constexpr size_t kTokenLength = 32;
inline constexpr size_t kTokenDigestSize = 32;

// A fresh clear token of kTokenLength characters from [a-z2-7]. IoError when
// the random generator fails.
Result<std::string> NewToken();

// SHA-256 of the token's bytes: the only form of a token the store keeps.
std::string TokenDigest(std::string_view token);

// True when `digest` is TokenDigest(token); constant time in the digest.
// False when `digest` is not kTokenDigestSize bytes.
bool TokenMatches(std::string_view token, std::string_view digest);

}  // namespace updns::update
