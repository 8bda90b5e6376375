#include "tsig/tsig.h"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include <algorithm>
#include <cstring>

#include "zone/name.h"
#include "zone/wire.h"

namespace updns::tsig {
namespace {

using zone::kHeaderSize;

struct AlgorithmInfo {
  std::string_view name;
  std::string_view wire_name;
  const char* digest;  // OpenSSL's name for the hash
  size_t mac_length;
};

// Indexed by Algorithm. Wire names end with the root label's zero byte
// (octal escapes: they stop after three digits).
constexpr AlgorithmInfo kAlgorithms[] = {
    {"hmac-sha1", std::string_view("\011hmac-sha1\000", 11), "SHA1", 20},
    {"hmac-sha256", std::string_view("\013hmac-sha256\000", 13), "SHA256", 32},
    {"hmac-sha384", std::string_view("\013hmac-sha384\000", 13), "SHA384", 48},
    {"hmac-sha512", std::string_view("\013hmac-sha512\000", 13), "SHA512", 64},
};

const AlgorithmInfo& Info(Algorithm algorithm) noexcept {
  return kAlgorithms[static_cast<size_t>(algorithm)];
}

uint16_t Load16(const uint8_t* p) noexcept { return static_cast<uint16_t>(p[0] << 8 | p[1]); }
uint64_t Load48(const uint8_t* p) noexcept {
  uint64_t v = 0;
  for (int i = 0; i < 6; ++i) v = v << 8 | p[i];
  return v;
}
void Store16(uint8_t* p, uint16_t v) noexcept {
  p[0] = static_cast<uint8_t>(v >> 8);
  p[1] = static_cast<uint8_t>(v);
}
void Store32(uint8_t* p, uint32_t v) noexcept {
  Store16(p, static_cast<uint16_t>(v >> 16));
  Store16(p + 2, static_cast<uint16_t>(v));
}
void Store48(uint8_t* p, uint64_t v) noexcept {
  for (int i = 5; i >= 0; --i, v >>= 8) p[i] = static_cast<uint8_t>(v);
}

char LowerChar(char c) noexcept { return c >= 'A' && c <= 'Z' ? static_cast<char>(c + 32) : c; }

bool EqualsIgnoringCase(std::string_view a, std::string_view b) noexcept {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (LowerChar(a[i]) != LowerChar(b[i])) return false;
  }
  return true;
}

// --- HMAC through OpenSSL 3 EVP_MAC ---------------------------------------

struct EvpMacFree {
  void operator()(EVP_MAC* mac) const noexcept { EVP_MAC_free(mac); }
};
struct EvpMacCtxFree {
  void operator()(EVP_MAC_CTX* ctx) const noexcept { EVP_MAC_CTX_free(ctx); }
};

EVP_MAC* FetchHmac() noexcept {
  // Fetched once: a fetch searches the provider tables, and the fetched
  // object is safe to share between threads.
  static const std::unique_ptr<EVP_MAC, EvpMacFree> hmac(EVP_MAC_fetch(nullptr, "HMAC", nullptr));
  return hmac.get();
}

// An HMAC computed over pieces, so that a message is hashed where it lies
// (its header patched on the side) instead of being copied. A failure is
// sticky: Finish reports it, and the OpenSSL error is taken off the thread's
// queue, where it would otherwise confuse the next TLS call on this thread.
class HmacDigest {
 public:
  bool Start(const Key& key) noexcept {
    ok_ = false;
    error_ = 0;
    if (!ctx_) {
      EVP_MAC* hmac = FetchHmac();
      if (hmac == nullptr) return Fail();
      ctx_.reset(EVP_MAC_CTX_new(hmac));
      if (!ctx_) return Fail();
    }
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST,
                                         const_cast<char*>(Info(key.algorithm).digest), 0),
        OSSL_PARAM_construct_end()};
    // A null key would mean "keep the previous key" to EVP_MAC_init.
    static const unsigned char kNoBytes = 0;
    const auto* secret =
        key.secret.empty() ? &kNoBytes : reinterpret_cast<const unsigned char*>(key.secret.data());
    if (EVP_MAC_init(ctx_.get(), secret, key.secret.size(), params) != 1) return Fail();
    ok_ = true;
    return true;
  }

  void Update(const void* bytes, size_t n) noexcept {
    if (ok_ && n > 0 &&
        EVP_MAC_update(ctx_.get(), static_cast<const unsigned char*>(bytes), n) != 1) {
      Fail();
    }
  }
  void Update(std::string_view bytes) noexcept { Update(bytes.data(), bytes.size()); }
  void Update16(uint16_t v) noexcept {
    uint8_t b[2];
    Store16(b, v);
    Update(b, 2);
  }
  // A MAC as RFC 8945 §4.3.1 puts it in a digest: its 2-byte size, then it.
  void UpdateMac(const Mac& mac) noexcept {
    Update16(mac.size);
    Update(mac.bytes, mac.size);
  }
  // The message before its TSIG RR, as its signer saw it: with the original
  // ID and with ARCOUNT not counting the TSIG RR (RFC 8945 §4.3.1).
  void UpdateMessage(const uint8_t* message, size_t size, uint16_t id, uint16_t arcount) noexcept {
    uint8_t header[kHeaderSize];
    std::memcpy(header, message, kHeaderSize);
    Store16(header, id);
    Store16(header + 10, arcount);
    Update(header, kHeaderSize);
    Update(message + kHeaderSize, size - kHeaderSize);
  }
  // RFC 8945 §4.3.3; names in canonical (lowercase, uncompressed) form.
  void UpdateVariables(std::string_view key_name, std::string_view algorithm_name,
                       uint64_t time_signed, uint16_t fudge, uint16_t error,
                       std::span<const uint8_t> other) noexcept {
    uint8_t fixed[6];
    Update(key_name);
    Update16(zone::kClassANY);
    Store32(fixed, 0);  // TTL
    Update(fixed, 4);
    Update(algorithm_name);
    UpdateTimers(time_signed, fudge);
    Update16(error);
    Update16(static_cast<uint16_t>(other.size()));
    Update(other.data(), other.size());
  }
  void UpdateTimers(uint64_t time_signed, uint16_t fudge) noexcept {
    uint8_t time[6];
    Store48(time, time_signed);
    Update(time, 6);
    Update16(fudge);
  }

  bool Finish(Mac& out) noexcept {
    if (!ok_) return false;
    size_t length = 0;
    if (EVP_MAC_final(ctx_.get(), out.bytes, &length, sizeof out.bytes) != 1) return Fail();
    out.size = static_cast<uint8_t>(length);
    ok_ = false;  // a new Start is needed before more input
    return true;
  }

  // What OpenSSL said about the last failure.
  std::string ErrorText() const {
    if (error_ == 0) return "no error reported";
    char text[256];
    ERR_error_string_n(error_, text, sizeof text);
    return text;
  }

 private:
  bool Fail() noexcept {
    ok_ = false;
    if (error_ == 0) error_ = ERR_peek_last_error();
    ERR_clear_error();
    return false;
  }

  std::unique_ptr<EVP_MAC_CTX, EvpMacCtxFree> ctx_;
  bool ok_ = false;
  unsigned long error_ = 0;
};

Status HmacError(Algorithm algorithm, const HmacDigest& digest) {
  return Status::Unsupported("TSIG: OpenSSL cannot compute " + std::string(Info(algorithm).name) +
                             ": " + digest.ErrorText());
}

// --- Reading the TSIG RR ---------------------------------------------------

// Position after the (possibly compressed) name at `pos`, or 0 when it runs
// past the message or uses a reserved label type.
size_t SkipName(const uint8_t* p, size_t size, size_t pos) noexcept {
  while (pos < size) {
    uint8_t length = p[pos];
    if ((length & 0xC0) == 0xC0) return pos + 2 <= size ? pos + 2 : 0;
    if (length & 0xC0) return 0;
    if (length == 0) return pos + 1;
    pos += 1 + static_cast<size_t>(length);
  }
  return 0;
}

enum class Located { kNone, kRecord, kMalformed };

// Walks every record to find the TSIG RR. RFC 8945 §5.2: it must be the
// last record of the additional section and appear once. Nothing may follow
// it: bytes after the record would not be covered by the MAC.
Located LocateRecord(const uint8_t* p, size_t size, size_t* record_offset) noexcept {
  const size_t questions = Load16(p + 4);
  const size_t before_additional = size_t{Load16(p + 6)} + Load16(p + 8);
  const size_t records = before_additional + Load16(p + 10);
  size_t pos = kHeaderSize;
  for (size_t i = 0; i < questions; ++i) {
    pos = SkipName(p, size, pos);
    if (pos == 0 || size - pos < 4) return Located::kMalformed;
    pos += 4;
  }
  Located found = Located::kNone;
  for (size_t i = 0; i < records; ++i) {
    const size_t start = pos;
    pos = SkipName(p, size, pos);
    if (pos == 0 || size - pos < 10) return Located::kMalformed;
    const uint16_t type = Load16(p + pos);
    const size_t rdlength = Load16(p + pos + 8);
    pos += 10;
    if (rdlength > size - pos) return Located::kMalformed;
    pos += rdlength;
    if (type == zone::type::kTSIG) {
      if (i + 1 != records || i < before_additional) return Located::kMalformed;
      found = Located::kRecord;
      *record_offset = start;
    }
  }
  if (found == Located::kRecord && pos != size) return Located::kMalformed;
  return found;
}

// Locates and reads the TSIG RR into `v`. Returns kOk when it was read (the
// checks are yet to run), kUnsigned or kFormErr otherwise. `other` gets the
// Other Data, which only the digest needs.
Outcome ReadRecord(std::span<const uint8_t> message, Verified& v,
                   std::span<const uint8_t>& other) noexcept {
  const uint8_t* p = message.data();
  const size_t size = message.size();
  if (size < kHeaderSize) return Outcome::kFormErr;
  // The common query has no records past the question: nothing to walk. A
  // TSIG RR counted in another section is still found, and refused.
  if (Load16(p + 6) == 0 && Load16(p + 8) == 0 && Load16(p + 10) == 0) {
    return Outcome::kUnsigned;
  }
  size_t start = 0;
  switch (LocateRecord(p, size, &start)) {
    case Located::kNone:
      return Outcome::kUnsigned;
    case Located::kMalformed:
      return Outcome::kFormErr;
    case Located::kRecord:
      break;
  }
  v.record_offset = start;
  size_t name_size = 0;
  size_t pos = zone::ReadName(p, size, start, v.key_name.bytes, &name_size);
  if (pos == 0 || size - pos < 10) return Outcome::kFormErr;
  v.key_name.size = static_cast<uint8_t>(name_size);
  // RFC 8945 §4.2: class ANY, TTL 0. The digest takes them as constants, so
  // other values would be unauthenticated bytes.
  if (Load16(p + pos + 2) != zone::kClassANY || Load16(p + pos + 4) != 0 ||
      Load16(p + pos + 6) != 0) {
    return Outcome::kFormErr;
  }
  const size_t end = pos + 10 + Load16(p + pos + 8);  // == size, checked by LocateRecord
  pos += 10;
  // Bounded by `end`: the algorithm name must lie inside the RDATA.
  pos = zone::ReadName(p, end, pos, v.algorithm_name.bytes, &name_size);
  if (pos == 0 || end - pos < 10) return Outcome::kFormErr;
  v.algorithm_name.size = static_cast<uint8_t>(name_size);
  v.time_signed = Load48(p + pos);
  v.fudge = Load16(p + pos + 6);
  const size_t mac_size = Load16(p + pos + 8);
  pos += 10;
  // Longer than any algorithm's output: malformed whatever the key.
  if (mac_size > kMaxMacSize || mac_size > end - pos) return Outcome::kFormErr;
  std::memcpy(v.mac.bytes, p + pos, mac_size);
  v.mac.size = static_cast<uint8_t>(mac_size);
  pos += mac_size;
  if (end - pos < 6) return Outcome::kFormErr;
  v.original_id = Load16(p + pos);
  v.error = Load16(p + pos + 2);
  const size_t other_size = Load16(p + pos + 4);
  pos += 6;
  if (other_size != end - pos) return Outcome::kFormErr;
  other = message.subspan(pos, other_size);
  v.peer_time = other_size == 6 ? Load48(p + pos) : 0;
  return Outcome::kOk;
}

bool MatchesKey(const Verified& v, const Key& key) noexcept {
  return EqualsIgnoringCase(v.key_name.view(), key.name) &&
         v.algorithm_name.view() == Info(key.algorithm).wire_name;
}

// RFC 8945 §5.2.2.1: a MAC longer than the hash, or shorter than both 10
// bytes and half the hash, is malformed.
bool MacSizeAllowed(size_t mac_size, size_t full) noexcept {
  return mac_size <= full && mac_size >= std::max<size_t>(10, full / 2);
}

bool OutsideWindow(uint64_t now, uint64_t time_signed, uint16_t fudge) noexcept {
  const uint64_t skew = now > time_signed ? now - time_signed : time_signed - now;
  return skew > fudge;
}

// The checks after the MAC was computed, in RFC 8945 §5.2 order.
Outcome Judge(const Verified& v, const Mac& computed, size_t full, uint64_t now) noexcept {
  // A truncated MAC is compared on its own length (§5.2.2.1, rule 4).
  if (CRYPTO_memcmp(v.mac.bytes, computed.bytes, v.mac.size) != 0) return Outcome::kBadSig;
  if (OutsideWindow(now, v.time_signed, v.fudge)) return Outcome::kBadTime;
  // Our policy accepts only full MACs: truncation weakens them for no gain
  // on TCP or with EDNS.
  if (v.mac.size < full) return Outcome::kBadTrunc;
  return Outcome::kOk;
}

// Checks a single message signed over `prior_mac` (when given), the message
// and all TSIG variables: a request, an answer, a stream's first message.
Outcome CheckMessage(const Verified& v, std::span<const uint8_t> message, const Key& key,
                     const Mac* prior_mac, std::span<const uint8_t> other, uint64_t now) noexcept {
  const size_t full = Info(key.algorithm).mac_length;
  if (!MacSizeAllowed(v.mac.size, full)) return Outcome::kFormErr;
  HmacDigest digest;
  if (!digest.Start(key)) return Outcome::kInternal;
  if (prior_mac != nullptr) digest.UpdateMac(*prior_mac);
  const uint8_t* p = message.data();
  digest.UpdateMessage(p, v.record_offset, v.original_id, Load16(p + 10) - 1);
  digest.UpdateVariables(v.key_name.view(), v.algorithm_name.view(), v.time_signed, v.fudge,
                         v.error, other);
  Mac computed;
  if (!digest.Finish(computed)) return Outcome::kInternal;
  return Judge(v, computed, full, now);
}

// The checks of an answer that come before its MAC: our key, and whether
// the peer signed at all. kOk when the MAC is to be checked.
Outcome CheckAnswerKey(Verified& v, const Key& key) noexcept {
  if (!MatchesKey(v, key)) return Outcome::kBadKey;
  v.key = &key;
  // §5.3.2: errors about key or MAC come back unsigned; we cannot trust
  // them, but `error` tells the caller what the peer said.
  if (v.mac.size == 0 && v.error != error::kNoError) return Outcome::kBadSig;
  return Outcome::kOk;
}

// --- Writing the TSIG RR ---------------------------------------------------

size_t RecordBytes(size_t owner, size_t algorithm, size_t mac, size_t other) noexcept {
  // type, class, TTL, RDLENGTH; time, fudge, MAC size; original ID, error,
  // other length.
  return owner + 10 + algorithm + 10 + mac + 6 + other;
}

struct SignSpec {
  const Key* key = nullptr;           // nullptr: an unsigned error record
  std::string_view owner, algorithm;  // wire names, written uncompressed
  const Mac* prior_mac = nullptr;     // request MAC or the stream's prior MAC
  bool timers_only = false;           // a stream's later message
  uint64_t time_signed = 0;
  uint16_t error = error::kNoError;
  std::span<const uint8_t> other;
};

Result<Signed> AppendRecord(std::span<uint8_t> buffer, size_t message_size, const SignSpec& spec) {
  if (message_size < kHeaderSize || message_size > buffer.size()) {
    return Status::Invalid("TSIG: cannot sign a " + std::to_string(message_size) +
                           "-byte message in a " + std::to_string(buffer.size()) +
                           "-byte buffer: a DNS message has at least a 12-byte header");
  }
  uint8_t* p = buffer.data();
  const uint16_t arcount = Load16(p + 10);
  if (arcount == 0xFFFF) {
    return Status::Invalid("TSIG: cannot sign a message whose ARCOUNT is already 65535");
  }
  const size_t mac_size = spec.key ? Info(spec.key->algorithm).mac_length : 0;
  const size_t record =
      RecordBytes(spec.owner.size(), spec.algorithm.size(), mac_size, spec.other.size());
  if (record > buffer.size() - message_size) {
    return Status::Invalid("TSIG: no room for the TSIG RR: the buffer holds " +
                           std::to_string(buffer.size()) + " bytes, the message takes " +
                           std::to_string(message_size) + " and the record " +
                           std::to_string(record) + " (reserve RecordSize/ResponseRecordSize)");
  }
  Signed result;
  if (spec.key != nullptr) {
    HmacDigest digest;
    if (!digest.Start(*spec.key)) return HmacError(spec.key->algorithm, digest);
    if (spec.prior_mac != nullptr) digest.UpdateMac(*spec.prior_mac);
    digest.Update(p, message_size);
    if (spec.timers_only) {
      digest.UpdateTimers(spec.time_signed, kFudge);
    } else {
      digest.UpdateVariables(spec.owner, spec.algorithm, spec.time_signed, kFudge, spec.error,
                             spec.other);
    }
    if (!digest.Finish(result.mac)) return HmacError(spec.key->algorithm, digest);
  }
  uint8_t* out = p + message_size;
  auto put = [&out](const void* bytes, size_t n) {
    if (n == 0) return;  // an empty span's data() may be null: no memcpy
    std::memcpy(out, bytes, n);
    out += n;
  };
  auto put16 = [&out](uint16_t v) {
    Store16(out, v);
    out += 2;
  };
  put(spec.owner.data(), spec.owner.size());
  put16(zone::type::kTSIG);
  put16(zone::kClassANY);
  Store32(out, 0);  // TTL
  out += 4;
  put16(static_cast<uint16_t>(record - spec.owner.size() - 10));
  put(spec.algorithm.data(), spec.algorithm.size());
  Store48(out, spec.time_signed);
  out += 6;
  put16(kFudge);
  put16(static_cast<uint16_t>(mac_size));
  put(result.mac.bytes, mac_size);
  put16(Load16(p));  // original ID: the message's own
  put16(spec.error);
  put16(static_cast<uint16_t>(spec.other.size()));
  put(spec.other.data(), spec.other.size());
  Store16(p + 10, static_cast<uint16_t>(arcount + 1));
  result.size = message_size + record;
  return result;
}

SignSpec SignedSpec(const Key& key, uint64_t time_signed) {
  SignSpec spec;
  spec.key = &key;
  spec.owner = key.name;
  spec.algorithm = Info(key.algorithm).wire_name;
  spec.time_signed = time_signed;
  return spec;
}

}  // namespace

// --- Algorithms and keys ---------------------------------------------------

Result<Algorithm> ParseAlgorithm(std::string_view text) {
  std::string_view bare = text;
  if (!bare.empty() && bare.back() == '.') bare.remove_suffix(1);
  for (size_t i = 0; i < std::size(kAlgorithms); ++i) {
    if (EqualsIgnoringCase(bare, kAlgorithms[i].name)) return static_cast<Algorithm>(i);
  }
  std::string message = "unknown TSIG algorithm '" + std::string(text) + "': use one of ";
  for (size_t i = 0; i < std::size(kAlgorithms); ++i) {
    message += (i ? ", " : "") + std::string(kAlgorithms[i].name);
  }
  if (EqualsIgnoringCase(bare, "hmac-md5") ||
      EqualsIgnoringCase(bare, "hmac-md5.sig-alg.reg.int")) {
    message += " (HMAC-MD5 is deprecated by RFC 8945 and not supported)";
  }
  return Status::Invalid(message);
}

std::string_view AlgorithmName(Algorithm algorithm) noexcept { return Info(algorithm).name; }
std::string_view AlgorithmWireName(Algorithm algorithm) noexcept {
  return Info(algorithm).wire_name;
}
size_t MacLength(Algorithm algorithm) noexcept { return Info(algorithm).mac_length; }

Result<std::string> DecodeSecret(std::string_view base64) {
  constexpr std::string_view kPrefix = "the secret is not valid base64: ";
  if (base64.empty()) return Status::Invalid("the secret is empty: give it in base64");
  // EVP_DecodeBlock takes an int length; real secrets are under 100 bytes.
  if (base64.size() > 4096) {
    return Status::Invalid(std::string(kPrefix) + std::to_string(base64.size()) +
                           " characters is far longer than any TSIG secret");
  }
  size_t padding = 0;
  for (size_t i = 0; i < base64.size(); ++i) {
    const char c = base64[i];
    const bool alphabet = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
                          (c >= '0' && c <= '9') || c == '+' || c == '/';
    if (c == '=' && i + 2 >= base64.size()) {
      ++padding;
      continue;
    }
    if (!alphabet || padding > 0) {
      std::string shown = c >= 0x21 && c <= 0x7E ? std::string("'") + c + "'"
                                                 : "byte " + std::to_string(uint8_t(c));
      return Status::Invalid(std::string(kPrefix) + "unexpected " + shown + " at position " +
                             std::to_string(i + 1));
    }
  }
  if (base64.size() % 4 != 0) {
    return Status::Invalid(std::string(kPrefix) + "its length " + std::to_string(base64.size()) +
                           " is not a multiple of 4 (cut short, or missing '=' padding?)");
  }
  std::string raw(base64.size() / 4 * 3, '\0');
  const int decoded = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(raw.data()),
                                      reinterpret_cast<const unsigned char*>(base64.data()),
                                      static_cast<int>(base64.size()));
  if (decoded < 0 || static_cast<size_t>(decoded) != raw.size()) {
    ERR_clear_error();
    return Status::Invalid(std::string(kPrefix) + "OpenSSL could not decode it");
  }
  raw.resize(raw.size() - padding);  // EVP_DecodeBlock counts padding as zero bytes
  if (raw.empty()) return Status::Invalid("the secret decodes to no bytes");
  return raw;
}

Result<Key> MakeKey(std::string_view name, std::string_view algorithm,
                    std::string_view base64_secret) {
  const std::string context = "TSIG key '" + std::string(name) + "': ";
  Result<std::string> wire = zone::LowercaseWireNameFromText(name);
  if (!wire.ok()) return wire.status().WithContext(context + "name: ");
  Result<Algorithm> parsed = ParseAlgorithm(algorithm);
  if (!parsed.ok()) return parsed.status().WithContext(context);
  Result<std::string> secret = DecodeSecret(base64_secret);
  if (!secret.ok()) return secret.status().WithContext(context);
  return Key{std::move(wire).value(), *parsed, std::move(secret).value()};
}

Status KeyRing::Add(Key key) {
  if (key.name.empty() || zone::WireNameLength(key.name) != key.name.size()) {
    return Status::Invalid("TSIG key: the name is not a valid uncompressed wire-format name");
  }
  for (char& c : key.name) c = LowerChar(c);
  const std::string context = "TSIG key '" + zone::TextFromWireName(key.name) + "': ";
  if (key.secret.empty()) return Status::Invalid(context + "the secret is empty");
  // Fails here, at configuration time, rather than on the first request
  // when OpenSSL lacks the hash (a FIPS-only provider refusing SHA-1, say).
  HmacDigest probe;
  Mac ignored;
  if (!probe.Start(key) || !probe.Finish(ignored)) {
    return HmacError(key.algorithm, probe).WithContext(context);
  }
  std::string lookup_name = key.name;
  if (!keys_.emplace(std::move(lookup_name), std::move(key)).second) {
    return Status::Exists(context + "defined twice (key names compare case-insensitively)");
  }
  return Status::Ok();
}

const Key* KeyRing::Find(std::string_view wire_name) const noexcept {
  if (wire_name.size() > zone::kMaxNameSize) return nullptr;
  char lower[zone::kMaxNameSize] = {};
  for (size_t i = 0; i < wire_name.size(); ++i) lower[i] = LowerChar(wire_name[i]);
  auto it = keys_.find(std::string_view(lower, wire_name.size()));
  return it == keys_.end() ? nullptr : &it->second;
}

// --- Outcomes ----------------------------------------------------------------

std::string_view OutcomeName(Outcome outcome) noexcept {
  switch (outcome) {
    case Outcome::kUnsigned:
      return "unsigned";
    case Outcome::kOk:
      return "OK";
    case Outcome::kFormErr:
      return "FORMERR";
    case Outcome::kBadKey:
      return "BADKEY";
    case Outcome::kBadSig:
      return "BADSIG";
    case Outcome::kBadTime:
      return "BADTIME";
    case Outcome::kBadTrunc:
      return "BADTRUNC";
    case Outcome::kInternal:
      return "internal error";
  }
  return "?";
}

uint8_t ResponseRcode(Outcome outcome) noexcept {
  switch (outcome) {
    case Outcome::kFormErr:
      return zone::rcode::kFormErr;
    case Outcome::kBadKey:
    case Outcome::kBadSig:
    case Outcome::kBadTime:
    case Outcome::kBadTrunc:
      return zone::rcode::kNotAuth;
    case Outcome::kInternal:
      return zone::rcode::kServFail;
    case Outcome::kUnsigned:
    case Outcome::kOk:
      return zone::rcode::kNoError;
  }
  return zone::rcode::kServFail;
}

// --- Server side ---------------------------------------------------------------

Verified VerifyRequest(std::span<const uint8_t> message, const KeyRing& keys,
                       uint64_t now) noexcept {
  Verified v;
  std::span<const uint8_t> other;
  v.outcome = ReadRecord(message, v, other);
  if (v.outcome != Outcome::kOk) return v;
  const Key* key = keys.Find(v.key_name.view());
  if (key == nullptr || v.algorithm_name.view() != Info(key->algorithm).wire_name) {
    v.outcome = Outcome::kBadKey;
    return v;
  }
  v.key = key;
  v.outcome = CheckMessage(v, message, *key, nullptr, other, now);
  return v;
}

size_t StripRecord(std::span<uint8_t> message, const Verified& verified) noexcept {
  uint8_t* p = message.data();
  Store16(p + 10, static_cast<uint16_t>(Load16(p + 10) - 1));
  return verified.record_offset;
}

size_t ResponseRecordSize(const Verified& request) noexcept {
  switch (request.outcome) {
    case Outcome::kOk:
    case Outcome::kBadTrunc:
      return RecordSize(*request.key);
    case Outcome::kBadTime:
      return RecordSize(*request.key) + 6;
    case Outcome::kBadKey:
    case Outcome::kBadSig:
      return RecordBytes(request.key_name.size, request.algorithm_name.size, 0, 0);
    default:
      return 0;
  }
}

Result<Signed> SignResponse(std::span<uint8_t> buffer, size_t message_size, const Verified& request,
                            uint64_t now) {
  SignSpec spec;
  uint8_t server_time[6];
  switch (request.outcome) {
    case Outcome::kOk:
    case Outcome::kBadTrunc:
      spec = SignedSpec(*request.key, now);
      spec.prior_mac = &request.mac;  // truncated or not, as received
      if (request.outcome == Outcome::kBadTrunc) spec.error = error::kBadTrunc;
      break;
    case Outcome::kBadTime:
      // §5.2.3: signed, echoing the client's time so it can check the
      // answer against its own clock, with ours in Other Data.
      spec = SignedSpec(*request.key, request.time_signed);
      spec.prior_mac = &request.mac;
      spec.error = error::kBadTime;
      Store48(server_time, now);
      spec.other = server_time;
      break;
    case Outcome::kBadKey:
    case Outcome::kBadSig:
      // §5.3.2: nothing trustworthy to sign with; the name and algorithm
      // are echoed so the client can match the answer to its key.
      spec.owner = request.key_name.view();
      spec.algorithm = request.algorithm_name.view();
      spec.time_signed = now;
      spec.error = request.outcome == Outcome::kBadKey ? error::kBadKey : error::kBadSig;
      break;
    default:
      return Status::Invalid("TSIG: a request whose TSIG check gave " +
                             std::string(OutcomeName(request.outcome)) +
                             " is answered without a TSIG RR");
  }
  return AppendRecord(buffer, message_size, spec);
}

Result<Signed> StreamSigner::Sign(std::span<uint8_t> buffer, size_t message_size, uint64_t now) {
  SignSpec spec = SignedSpec(*key_, now);
  spec.prior_mac = &prior_mac_;
  spec.timers_only = !first_;
  Result<Signed> result = AppendRecord(buffer, message_size, spec);
  if (result.ok()) {
    prior_mac_ = result->mac;
    first_ = false;
  }
  return result;
}

// --- Client side -----------------------------------------------------------------

size_t RecordSize(const Key& key) noexcept {
  return RecordBytes(key.name.size(), Info(key.algorithm).wire_name.size(),
                     Info(key.algorithm).mac_length, 0);
}

Result<Signed> SignRequest(std::span<uint8_t> buffer, size_t message_size, const Key& key,
                           uint64_t now) {
  return AppendRecord(buffer, message_size, SignedSpec(key, now));
}

Verified VerifyResponse(std::span<const uint8_t> message, const Key& key, const Mac& request_mac,
                        uint64_t now) noexcept {
  Verified v;
  std::span<const uint8_t> other;
  v.outcome = ReadRecord(message, v, other);
  if (v.outcome != Outcome::kOk) return v;
  v.outcome = CheckAnswerKey(v, key);
  if (v.outcome != Outcome::kOk) return v;
  v.outcome = CheckMessage(v, message, key, &request_mac, other, now);
  return v;
}

struct StreamVerifier::Running {
  HmacDigest digest;
};

StreamVerifier::StreamVerifier(const Key& key, const Mac& request_mac)
    : key_(key), prior_mac_(request_mac), running_(std::make_unique<Running>()) {}

StreamVerifier::~StreamVerifier() = default;

Verified StreamVerifier::Verify(std::span<const uint8_t> message, uint64_t now) noexcept {
  Verified v;
  if (failed_ != Outcome::kOk) {
    v.outcome = failed_;
    return v;
  }
  std::span<const uint8_t> other;
  v.outcome = ReadRecord(message, v, other);
  if (v.outcome == Outcome::kUnsigned) {
    // §5.3.1: the first message is signed, and at most 99 in a row are not.
    if (!started_ || unsigned_run_ >= 99) {
      v.outcome = failed_ = Outcome::kBadSig;
      return v;
    }
    running_->digest.Update(message.data(), message.size());
    ++unsigned_run_;
    return v;
  }
  if (v.outcome == Outcome::kOk) v.outcome = CheckAnswerKey(v, key_);
  if (v.outcome == Outcome::kOk) {
    if (!started_) {
      v.outcome = CheckMessage(v, message, key_, &prior_mac_, other, now);
    } else {
      const size_t full = Info(key_.algorithm).mac_length;
      Mac computed;
      HmacDigest& digest = running_->digest;
      const uint8_t* p = message.data();
      digest.UpdateMessage(p, v.record_offset, v.original_id, Load16(p + 10) - 1);
      digest.UpdateTimers(v.time_signed, v.fudge);
      if (!MacSizeAllowed(v.mac.size, full)) {
        v.outcome = Outcome::kFormErr;
      } else if (!digest.Finish(computed)) {
        v.outcome = Outcome::kInternal;
      } else {
        v.outcome = Judge(v, computed, full, now);
      }
    }
  }
  if (v.outcome != Outcome::kOk) {
    failed_ = v.outcome;
    return v;
  }
  started_ = true;
  unsigned_run_ = 0;
  prior_mac_ = v.mac;
  // The next signed message's digest starts with this MAC.
  if (!running_->digest.Start(key_)) {
    v.outcome = failed_ = Outcome::kInternal;
    return v;
  }
  running_->digest.UpdateMac(prior_mac_);
  return v;
}

}  // namespace updns::tsig
