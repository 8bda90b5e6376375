// A small explicit binary encoding for records: big-endian integers and
// length-prefixed byte strings, appended to a std::string and read back with
// every length checked. Records start with their own version byte.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace updns::storage {

class Encoder {
 public:
  Encoder& U8(uint8_t v) {
    out_.push_back(static_cast<char>(v));
    return *this;
  }
  Encoder& U16(uint16_t v) { return U8(uint8_t(v >> 8)).U8(uint8_t(v)); }
  Encoder& U32(uint32_t v) { return U16(uint16_t(v >> 16)).U16(uint16_t(v)); }
  Encoder& U64(uint64_t v) { return U32(uint32_t(v >> 32)).U32(uint32_t(v)); }
  // Up to 65535 bytes, u16 length first.
  Encoder& Bytes(std::string_view s) {
    U16(static_cast<uint16_t>(s.size()));
    out_.append(s.data(), s.size() > 65535 ? 65535 : s.size());
    return *this;
  }
  std::string Take() { return std::move(out_); }

 private:
  std::string out_;
};

// Reads what an Encoder wrote. After any read past the end, ok() is false
// and every further read yields zero/empty.
class Decoder {
 public:
  explicit Decoder(std::string_view in) : in_(in) {}
  uint8_t U8() {
    if (pos_ + 1 > in_.size()) return Fail();
    return static_cast<uint8_t>(in_[pos_++]);
  }
  uint16_t U16() { return static_cast<uint16_t>(U8() << 8 | U8()); }
  uint32_t U32() { return uint32_t{U16()} << 16 | U16(); }
  uint64_t U64() { return uint64_t{U32()} << 32 | U32(); }
  std::string Bytes() {
    size_t n = U16();
    if (!ok_ || pos_ + n > in_.size()) return Fail(), std::string();
    std::string s(in_.substr(pos_, n));
    pos_ += n;
    return s;
  }
  bool ok() const { return ok_; }
  bool at_end() const { return pos_ == in_.size(); }

 private:
  uint8_t Fail() {
    ok_ = false;
    pos_ = in_.size();
    return 0;
  }
  std::string_view in_;
  size_t pos_ = 0;
  bool ok_ = true;
};

}  // namespace updns::storage
