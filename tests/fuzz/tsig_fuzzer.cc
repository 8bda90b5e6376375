// TSIG (tsig/tsig.h) on hostile messages, server and client side: finding
// and checking a request's TSIG RR, stripping it, signing the answer; the
// answer and stream verifiers; and signing the input then verifying it,
// which must succeed whenever the unsigned input could be walked.
#include <cstdint>
#include <cstdio>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "tests/fuzz/fuzz_targets.h"
#include "tsig/tsig.h"
#include "zone/wire.h"

namespace updns::fuzz {
namespace {

// The secret the seeds (make_seeds.py) were signed with.
constexpr std::string_view kSecret = "0123456789abcdef0123456789abcdef";
constexpr uint64_t kNow = 1767225600;  // 2026-01-01; seeds are re-checked at their own time

struct Keys {
  tsig::KeyRing ring;
  std::vector<tsig::Key> keys;
};

const Keys& TheKeys() {
  static const Keys keys = [] {
    Keys k;
    const struct {
      const char* name;
      tsig::Algorithm algorithm;
    } specs[] = {{"\12update-key\0", tsig::Algorithm::kHmacSha256},
                 {"\7xfr-key\0", tsig::Algorithm::kHmacSha1},
                 {"\3big\4keys\0", tsig::Algorithm::kHmacSha512}};
    for (const auto& spec : specs) {
      tsig::Key key{std::string(spec.name, std::char_traits<char>::length(spec.name) + 1),
                    spec.algorithm, std::string(kSecret)};
      Status added = k.ring.Add(key);
      if (!added.ok()) std::fprintf(stderr, "%s\n", std::string(added.message()).c_str());
      Check(added.ok(), "the fuzz keys go into a ring");
      k.keys.push_back(std::move(key));
    }
    return k;
  }();
  return keys;
}

bool Verdict(tsig::Outcome o) {
  return o == tsig::Outcome::kOk || o == tsig::Outcome::kBadKey || o == tsig::Outcome::kBadSig ||
         o == tsig::Outcome::kBadTime || o == tsig::Outcome::kBadTrunc;
}

// The server's side: verify, strip, sign the answer, and the client's check
// of that answer.
void Server(std::span<const uint8_t> message, const tsig::KeyRing& ring) {
  tsig::Verified first = tsig::VerifyRequest(message, ring, kNow);
  if (!Verdict(first.outcome)) return;
  Check(first.record_offset >= 12 && first.record_offset < message.size(),
        "the TSIG RR lies inside the message, after the header");
  Check(first.mac.size <= tsig::kMaxMacSize, "a MAC fits its buffer");
  // At its own time the clock cannot decide: the MAC check is reached.
  tsig::Verified v = tsig::VerifyRequest(message, ring, first.time_signed);
  Check(v.outcome != tsig::Outcome::kBadTime, "no BADTIME at the time signed");

  std::vector<uint8_t> answer(message.begin(), message.end());
  size_t stripped = tsig::StripRecord(answer, v);
  Check(stripped == v.record_offset, "StripRecord cuts at the record");
  answer.resize(stripped);
  answer[2] |= 0x80;  // a response
  size_t room = tsig::ResponseRecordSize(v);
  answer.resize(stripped + room);
  auto signed_answer = tsig::SignResponse(answer, stripped, v, v.time_signed);
  if (!signed_answer.ok()) return;  // ARCOUNT full, or no TSIG answer for this outcome
  Check(signed_answer->size <= answer.size(), "the signed answer fits the room reserved");
  if (v.outcome == tsig::Outcome::kOk) {
    tsig::Verified back = tsig::VerifyResponse(
        std::span<const uint8_t>(answer.data(), signed_answer->size), *v.key, v.mac, v.time_signed);
    Check(back.outcome == tsig::Outcome::kOk, "a signed answer verifies for its requester");
  }
}

// The client's side: the input as an answer, and as a transfer stream of
// TCP-framed messages.
void Client(std::span<const uint8_t> message, const tsig::Key& key) {
  tsig::Mac request_mac;
  request_mac.size = 32;
  for (uint8_t i = 0; i < request_mac.size; ++i) request_mac.bytes[i] = i;
  (void)tsig::VerifyResponse(message, key, request_mac, kNow);

  tsig::StreamVerifier stream(key, request_mac);
  for (size_t pos = 0; pos + 2 <= message.size();) {
    size_t length = size_t{message[pos]} << 8 | message[pos + 1];
    pos += 2;
    if (length > message.size() - pos) break;
    (void)stream.Verify(message.subspan(pos, length), kNow);
    pos += length;
  }
  (void)stream.Complete();
}

// Whether the sections the header counts end exactly at the end of the
// message (SignRequest appends after the last byte it is given, so trailing
// bytes would sit between the records and the TSIG RR).
bool RecordsFillMessage(std::span<const uint8_t> m) {
  if (m.size() < 12) return false;
  size_t pos = 12;
  uint8_t name[zone::kMaxNameSize];
  size_t name_size = 0;
  auto count = [&](size_t at) { return size_t{m[at]} << 8 | m[at + 1]; };
  for (size_t i = 0; i < count(4); ++i) {
    pos = zone::ReadName(m.data(), m.size(), pos, name, &name_size);
    if (pos == 0 || pos + 4 > m.size()) return false;
    pos += 4;
  }
  size_t records = count(6) + count(8) + count(10);
  for (size_t i = 0; i < records; ++i) {
    pos = zone::ReadName(m.data(), m.size(), pos, name, &name_size);
    if (pos == 0 || pos + 10 > m.size()) return false;
    pos += 10 + count(pos + 8);
    if (pos > m.size()) return false;
  }
  return pos == m.size();
}

// Signing the input as a request: a well-formed unsigned message must
// verify once signed.
void RoundTrip(std::span<const uint8_t> message, const Keys& keys) {
  if (message.size() < 12) return;
  tsig::Verified before = tsig::VerifyRequest(message, keys.ring, kNow);
  const bool well_formed =
      before.outcome == tsig::Outcome::kUnsigned && RecordsFillMessage(message);
  for (const tsig::Key& key : keys.keys) {
    std::vector<uint8_t> buffer(message.begin(), message.end());
    buffer.resize(message.size() + tsig::RecordSize(key));
    auto signed_request = tsig::SignRequest(buffer, message.size(), key, kNow);
    if (!signed_request.ok()) continue;
    Check(signed_request->size <= buffer.size(), "a signed request fits the room reserved");
    tsig::Verified after = tsig::VerifyRequest(
        std::span<const uint8_t>(buffer.data(), signed_request->size), keys.ring, kNow);
    if (well_formed) {
      Check(after.outcome == tsig::Outcome::kOk, "a request we signed verifies");
      Check(after.key != nullptr && after.key->name == key.name, "with the key that signed it");
    }
  }
}

}  // namespace

int FuzzTsig(const uint8_t* data, size_t size) {
  const Keys& keys = TheKeys();
  std::span<const uint8_t> message(data, size);
  Server(message, keys.ring);
  Client(message, keys.keys[0]);
  RoundTrip(message, keys);
  // Configured parts: a base64 secret and an algorithm name.
  std::string_view text(reinterpret_cast<const char*>(data), size);
  (void)tsig::DecodeSecret(text);
  (void)tsig::ParseAlgorithm(text);
  return 0;
}

}  // namespace updns::fuzz
