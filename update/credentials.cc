#include "update/credentials.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include <charconv>
#include <optional>
#include <vector>

namespace updns::update {
namespace {

constexpr size_t kSaltSize = 16;
constexpr size_t kHashSize = 32;
constexpr size_t kTokenBytes = 20;  // 160 bits = 32 base32 characters exactly

// Bounds on what a stored hash may ask for: the store is ours, but a
// tampered or corrupt record must not make a login allocate gigabytes.
constexpr uint64_t kMaxN = uint64_t{1} << 20;
constexpr uint32_t kMaxR = 32;
constexpr uint32_t kMaxP = 16;
constexpr uint64_t kMaxMemory = uint64_t{256} << 20;
// Salt and hash sizes a stored string may have. A hash shorter than we make
// still verifies (scrypt output is a prefix of a longer one), so the floor
// keeps a tampered, truncated hash from weakening a login much.
constexpr size_t kMinSaltSize = 8, kMinHashSize = 16, kMaxStoredBytes = 64;

constexpr char kBase64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
constexpr char kBase32[] = "abcdefghijklmnopqrstuvwxyz234567";

std::string Base64Encode(const unsigned char* data, size_t size) {
  std::string out;
  out.reserve((size + 2) / 3 * 4);
  for (size_t i = 0; i < size; i += 3) {
    uint32_t group = uint32_t{data[i]} << 16;
    if (i + 1 < size) group |= uint32_t{data[i + 1]} << 8;
    if (i + 2 < size) group |= data[i + 2];
    out.push_back(kBase64[group >> 18 & 63]);
    out.push_back(kBase64[group >> 12 & 63]);
    out.push_back(i + 1 < size ? kBase64[group >> 6 & 63] : '=');
    out.push_back(i + 2 < size ? kBase64[group & 63] : '=');
  }
  return out;
}

// Strict: padded groups of four only, as Base64Encode writes them.
std::optional<std::string> Base64Decode(std::string_view text) {
  if (text.empty() || text.size() % 4 != 0) return std::nullopt;
  std::string out;
  for (size_t i = 0; i < text.size(); i += 4) {
    uint32_t group = 0;
    int padding = 0;
    for (size_t j = 0; j < 4; ++j) {
      char c = text[i + j];
      uint32_t v = 0;
      if (c == '=' && i + 4 == text.size() && j >= 2) {
        ++padding;
      } else if (padding > 0) {
        return std::nullopt;  // data after '='
      } else if (const char* at = std::char_traits<char>::find(kBase64, 64, c)) {
        v = static_cast<uint32_t>(at - kBase64);
      } else {
        return std::nullopt;
      }
      group = group << 6 | v;
    }
    out.push_back(static_cast<char>(group >> 16));
    if (padding < 2) out.push_back(static_cast<char>(group >> 8));
    if (padding < 1) out.push_back(static_cast<char>(group));
  }
  return out;
}

bool PlausibleParams(uint64_t n, uint64_t r, uint64_t p) {
  if (n < 2 || n > kMaxN || (n & (n - 1)) != 0) return false;
  if (r < 1 || r > kMaxR || p < 1 || p > kMaxP) return false;
  return 128 * r * (n + p + 2) <= kMaxMemory;
}

bool Scrypt(std::string_view password, std::string_view salt, uint64_t n, uint64_t r, uint64_t p,
            unsigned char* key, size_t key_size) {
  // EVP_PBE_scrypt refuses to run when its buffers would exceed maxmem:
  // 128*r*p for B plus 128*r*(N+2) for V.
  uint64_t memory = 128 * r * (n + p + 2);
  return EVP_PBE_scrypt(password.data(), password.size(),
                        reinterpret_cast<const unsigned char*>(salt.data()), salt.size(), n, r, p,
                        memory, key, key_size) == 1;
}

bool ParseNumber(std::string_view text, uint64_t& value) {
  if (text.empty() || text.size() > 10 || text.front() < '1' || text.front() > '9') return false;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  return ec == std::errc() && end == text.data() + text.size();
}

std::vector<std::string_view> Split(std::string_view text, char separator) {
  std::vector<std::string_view> parts;
  while (true) {
    size_t at = text.find(separator);
    parts.push_back(text.substr(0, at));
    if (at == std::string_view::npos) return parts;
    text.remove_prefix(at + 1);
  }
}

}  // namespace

Result<std::string> HashPassword(std::string_view password, const ScryptParams& params) {
  if (password.empty()) return Status::Invalid("the password is empty");
  if (password.size() > kMaxPasswordSize) {
    return Status::Invalid("the password is longer than " + std::to_string(kMaxPasswordSize) +
                           " bytes");
  }
  if (!PlausibleParams(params.n, params.r, params.p))
    return Status::Invalid("unusable scrypt parameters");
  unsigned char salt[kSaltSize];
  if (RAND_bytes(salt, sizeof salt) != 1) return Status::IoError("the random generator failed");
  unsigned char hash[kHashSize];
  std::string_view salt_view(reinterpret_cast<const char*>(salt), sizeof salt);
  if (!Scrypt(password, salt_view, params.n, params.r, params.p, hash, sizeof hash)) {
    return Status::IoError("scrypt failed");
  }
  std::string out = "scrypt$" + std::to_string(params.n) + "$" + std::to_string(params.r) + "$" +
                    std::to_string(params.p) + "$" + Base64Encode(salt, sizeof salt) + "$" +
                    Base64Encode(hash, sizeof hash);
  OPENSSL_cleanse(hash, sizeof hash);
  return out;
}

bool VerifyPassword(std::string_view password, std::string_view stored) {
  if (password.empty() || password.size() > kMaxPasswordSize) return false;
  std::vector<std::string_view> parts = Split(stored, '$');
  if (parts.size() != 6 || parts[0] != "scrypt") return false;
  uint64_t n = 0, r = 0, p = 0;
  if (!ParseNumber(parts[1], n) || !ParseNumber(parts[2], r) || !ParseNumber(parts[3], p))
    return false;
  if (!PlausibleParams(n, r, p)) return false;
  std::optional<std::string> salt = Base64Decode(parts[4]);
  std::optional<std::string> expected = Base64Decode(parts[5]);
  if (!salt || !expected) return false;
  if (salt->size() < kMinSaltSize || salt->size() > kMaxStoredBytes) return false;
  if (expected->size() < kMinHashSize || expected->size() > kMaxStoredBytes) return false;
  unsigned char derived[kMaxStoredBytes];
  if (!Scrypt(password, *salt, n, r, p, derived, expected->size())) return false;
  bool same = CRYPTO_memcmp(derived, expected->data(), expected->size()) == 0;
  OPENSSL_cleanse(derived, sizeof derived);
  return same;
}

Result<std::string> NewToken() {
  unsigned char bytes[kTokenBytes];
  if (RAND_bytes(bytes, sizeof bytes) != 1) return Status::IoError("the random generator failed");
  std::string token;
  token.reserve(kTokenLength);
  // 20 bytes are four groups of 5 bytes = 40 bits = 8 characters each.
  for (size_t i = 0; i < kTokenBytes; i += 5) {
    uint64_t group = 0;
    for (size_t j = 0; j < 5; ++j) group = group << 8 | bytes[i + j];
    for (int shift = 35; shift >= 0; shift -= 5) token.push_back(kBase32[group >> shift & 31]);
  }
  OPENSSL_cleanse(bytes, sizeof bytes);
  return token;
}

std::string TokenDigest(std::string_view token) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int size = 0;
  if (EVP_Digest(token.data(), token.size(), digest, &size, EVP_sha256(), nullptr) != 1) {
    // Only a broken OpenSSL gets here; an empty digest matches nothing.
    return std::string();
  }
  return std::string(reinterpret_cast<const char*>(digest), size);
}

bool TokenMatches(std::string_view token, std::string_view digest) {
  if (digest.size() != kTokenDigestSize) return false;
  std::string computed = TokenDigest(token);
  return computed.size() == kTokenDigestSize &&
         CRYPTO_memcmp(computed.data(), digest.data(), kTokenDigestSize) == 0;
}

const std::string& DummyPasswordHash() {
  static const std::string hash = [] {
    auto made = HashPassword("updns: no such name");
    return made.ok() ? std::move(made).value() : std::string();
  }();
  return hash;
}

}  // namespace updns::update
