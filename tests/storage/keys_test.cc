// Key encodings of storage/schema.h: canonical name order (RFC 4034 §6.1),
// escaping, the reverse mapping and the helpers the lookup relies on.
#include <gtest/gtest.h>
#include <ldns/ldns.h>

#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include "storage/schema.h"
#include "tests/support/ldns_wire.h"

namespace updns::storage {
namespace {

using test::Wire;  // through ldns

std::string Key(uint32_t zone_id, const std::string& wire) {
  NodeKey key;
  EXPECT_TRUE(key.Assign(zone_id, wire));
  return std::string(key.view());
}

std::string Label(size_t size, char c) {
  std::string label(size + 1, c);
  label[0] = static_cast<char>(size);
  return label;
}

TEST(KeysTest, Rfc4034CanonicalOrder) {
  // RFC 4034 §6.1, in canonical order.
  const std::vector<const char*> expected = {
      "example.",         "a.example.",      "yljkjljk.a.example.",
      "Z.a.example.",     "zABC.a.EXAMPLE.", "z.example.",
      "\\001.z.example.", "*.z.example.",    "\\200.z.example.",
  };
  std::vector<std::pair<std::string, size_t>> keys;
  for (size_t i = 0; i < expected.size(); ++i) keys.emplace_back(Key(7, Wire(expected[i])), i);
  // Shuffle deterministically, then sort as LMDB does: bytewise (memcmp).
  std::reverse(keys.begin(), keys.end());
  std::swap(keys[1], keys[5]);
  std::sort(keys.begin(), keys.end(), [](const auto& a, const auto& b) {
    size_t n = std::min(a.first.size(), b.first.size());
    int c = std::memcmp(a.first.data(), b.first.data(), n);
    return c != 0 ? c < 0 : a.first.size() < b.first.size();
  });
  for (size_t i = 0; i < keys.size(); ++i) EXPECT_EQ(keys[i].second, i) << expected[i];
  // Distinct names, distinct keys.
  for (size_t i = 1; i < keys.size(); ++i) EXPECT_NE(keys[i - 1].first, keys[i].first);
}

TEST(KeysTest, ZoneIdLeadsBigEndian) {
  std::string a = Key(1, Wire("zzz.example.")), b = Key(256, Wire("a.example."));
  EXPECT_LT(a, b);
  EXPECT_EQ(a.substr(0, 4), std::string("\0\0\0\1", 4));
  EXPECT_EQ(b.substr(0, 4), std::string("\0\0\1\0", 4));
  NodeKey key;
  ASSERT_TRUE(key.Assign(0x01020304, Wire("example.")));
  EXPECT_EQ(key.zone_id(), 0x01020304u);
  EXPECT_EQ(key.name_part(), std::string("example\0", 8));
}

TEST(KeysTest, LowercasesAndReversesLabels) {
  EXPECT_EQ(CanonicalName(Wire("Host.DYN.Example.")), std::string("example\0dyn\0host\0", 17));
  EXPECT_EQ(CanonicalName(Wire("host.dyn.example.")), CanonicalName(Wire("HOST.dyn.EXAMPLE.")));
  // Only A-Z fold; other bytes stay.
  EXPECT_EQ(CanonicalName(Wire("\\128\\219.")), std::string("\x80\xdb\0", 3));
  EXPECT_EQ(CanonicalName(Wire(".")), std::string());
  // A parent is a prefix of its children's keys.
  std::string parent = CanonicalName(Wire("dyn.example."));
  std::string child = CanonicalName(Wire("a.b.dyn.example."));
  EXPECT_EQ(child.substr(0, parent.size()), parent);
}

TEST(KeysTest, EscapesZeroAndOneBytes) {
  std::string one_label(
      "\x03"
      "a\0b"
      "\x00",
      5);
  std::string two_labels(
      "\x01"
      "b"
      "\x01"
      "a"
      "\x00",
      5);
  std::string with_one(
      "\x03"
      "a\x01"
      "b"
      "\x00",
      5);
  EXPECT_EQ(CanonicalName(one_label), std::string("a\x01\x01"
                                                  "b\0",
                                                  5));
  EXPECT_EQ(CanonicalName(with_one), std::string("a\x01\x02"
                                                 "b\0",
                                                 5));
  EXPECT_EQ(CanonicalName(two_labels), std::string("a\0b\0", 4));
  EXPECT_NE(CanonicalName(one_label), CanonicalName(two_labels));
  EXPECT_NE(CanonicalName(one_label), CanonicalName(with_one));
  // Order within a label still follows the raw bytes: \000 < \001 < \002,
  // and every label byte sorts above the separator ("a" < "a\000").
  std::string k0 = CanonicalName(std::string("\x01\x00\x00", 3));
  std::string k1 = CanonicalName(std::string("\x01\x01\x00", 3));
  std::string k2 = CanonicalName(std::string("\x01\x02\x00", 3));
  std::string a = CanonicalName(Wire("a."));
  std::string a0 =
      CanonicalName(std::string("\x02"
                                "a\x00"
                                "\x00",
                                4));
  std::string xa = CanonicalName(Wire("x.a."));
  EXPECT_LT(k0, k1);
  EXPECT_LT(k1, k2);
  EXPECT_LT(a, xa);
  EXPECT_LT(xa, a0);  // x.a is a child of a; a\000 is a sibling after a
  // Decoding gets the original bytes back.
  EXPECT_EQ(WireNameFromCanonical(CanonicalName(one_label)), one_label);
  EXPECT_EQ(WireNameFromCanonical(CanonicalName(with_one)), with_one);
}

TEST(KeysTest, WireNameFromCanonicalRoundTrip) {
  for (const char* text : {"example.", "a.b.c.example.", "*.wild.example.", "\\000\\001\\002.x.",
                           "\\255\\.\\\\.example."}) {
    std::string wire = Wire(text);
    EXPECT_EQ(WireNameFromCanonical(CanonicalName(wire)), wire) << text;
  }
  EXPECT_EQ(WireNameFromCanonical(CanonicalName(Wire("MiXeD.Example."))), Wire("mixed.example."));
  EXPECT_EQ(WireNameFromCanonical(""), std::string(1, '\0'));  // the root
  // Not valid encodings.
  EXPECT_EQ(WireNameFromCanonical(std::string("abc", 3)), "");          // no separator
  EXPECT_EQ(WireNameFromCanonical(std::string("\0", 1)), "");           // empty label
  EXPECT_EQ(WireNameFromCanonical(std::string("a\x01\0", 3)), "");      // bad escape
  EXPECT_EQ(WireNameFromCanonical(std::string("a\x01\x03\0", 4)), "");  // bad escape
  EXPECT_EQ(WireNameFromCanonical(std::string("a\x01", 2)), "");        // cut escape
  EXPECT_EQ(WireNameFromCanonical(std::string(64, 'a') + '\0'), "");    // label > 63
}

TEST(KeysTest, CommonAncestorLength) {
  auto c = [](const char* text) { return CanonicalName(Wire(text)); };
  auto cal = [&](const char* a, const char* b) { return CommonAncestorLength(c(a), c(b)); };
  EXPECT_EQ(cal("a.example.", "b.example."), c("example.").size());
  EXPECT_EQ(cal("a.example.", "ab.example."), c("example.").size());  // not "a" as a prefix
  EXPECT_EQ(cal("x.a.example.", "y.ab.example."), c("example.").size());
  EXPECT_EQ(cal("example.", "x.y.example."), c("example.").size());
  EXPECT_EQ(cal("x.y.example.", "example."), c("example.").size());
  EXPECT_EQ(cal("x.y.example.", "z.y.example."), c("y.example.").size());
  EXPECT_EQ(cal("x.y.example.", "x.y.example."), c("x.y.example.").size());
  EXPECT_EQ(cal("example.", "example2."), 0u);
  EXPECT_EQ(cal("example.", "org."), 0u);
  EXPECT_EQ(cal(".", "org."), 0u);
  // Escaped bytes never look like separators: a\000.q and x.a.q share only q.
  std::string a =
      CanonicalName(std::string("\x02"
                                "a\x00"
                                "\x01"
                                "q\x00",
                                6));
  std::string b = CanonicalName(Wire("x.a.q."));
  EXPECT_EQ(CommonAncestorLength(a, b), c("q.").size());
}

TEST(KeysTest, CanonicalLabelCount) {
  EXPECT_EQ(CanonicalLabelCount(""), 0u);
  EXPECT_EQ(CanonicalLabelCount(CanonicalName(Wire("example."))), 1u);
  EXPECT_EQ(CanonicalLabelCount(CanonicalName(Wire("a.b.example."))), 3u);
  EXPECT_EQ(CanonicalLabelCount(CanonicalName(std::string("\x03\x00\x00\x00\x00", 5))), 1u);
}

TEST(KeysTest, RejectsMalformedWireNames) {
  NodeKey key;
  char out[NodeKey::kMaxSize];
  size_t size = 0;
  const std::vector<std::string> bad = {
      std::string(),  // empty
      std::string("\x03"
                  "abc",
                  4),  // no root label
      std::string("\x05"
                  "abc\x00",
                  5),                                     // label runs past the end
      std::string("\x40") + std::string(64, 'a') + '\0',  // label of 64
      std::string("\x01"
                  "a\xc0\x0c",
                  4),  // compression pointer
      std::string("\x01"
                  "a\x80\x00",
                  4),  // extended label type
  };
  for (const std::string& name : bad) {
    EXPECT_FALSE(EncodeCanonicalName(name, out, &size)) << testing::PrintToString(name);
    EXPECT_FALSE(key.Assign(1, name)) << testing::PrintToString(name);
    EXPECT_EQ(CanonicalName(name), "");
  }
  // 256 bytes: one too long.
  std::string too_long;
  for (int i = 0; i < 4; ++i) too_long += Label(62, 'x');
  too_long += Label(2, 'y');  // 4*63 + 3 = 255, + root = 256
  too_long += '\0';
  ASSERT_EQ(too_long.size(), 256u);
  EXPECT_FALSE(key.Assign(1, too_long));
  // 128 labels (257 bytes).
  std::string many;
  for (int i = 0; i < 128; ++i) many += Label(1, 'a');
  many += '\0';
  EXPECT_FALSE(key.Assign(1, many));
}

TEST(KeysTest, LongestNamesFitInNodeKey) {
  // 255 bytes with every byte escaped: the largest key there is.
  std::string name;
  for (int i = 0; i < 3; ++i) name += Label(63, '\0');
  name += Label(61, '\x01');
  name += '\0';
  ASSERT_EQ(name.size(), 255u);
  NodeKey key;
  ASSERT_TRUE(key.Assign(0xffffffff, name));
  EXPECT_EQ(key.view().size(), 4u + 2 * 250 + 4);
  EXPECT_LE(key.view().size(), 511u);  // LMDB's default key limit
  EXPECT_EQ(WireNameFromCanonical(key.name_part()), name);

  // 127 one-byte labels: the most labels there are.
  std::string many;
  for (int i = 0; i < 127; ++i) many += Label(1, '\0');
  many += '\0';
  ASSERT_EQ(many.size(), 255u);
  ASSERT_TRUE(key.Assign(1, many));
  EXPECT_EQ(CanonicalLabelCount(key.name_part()), 127u);
  EXPECT_EQ(WireNameFromCanonical(key.name_part()), many);

  NodeKey copy;
  ASSERT_TRUE(copy.AssignEncoded(key.view()));
  EXPECT_EQ(copy.view(), key.view());
  EXPECT_FALSE(copy.AssignEncoded("abc"));
  EXPECT_FALSE(copy.AssignEncoded(std::string(NodeKey::kMaxSize + 1, 'a')));
}

TEST(KeysTest, IntegerEncodingsSortAsNumbers) {
  EXPECT_LT(EncodeU32(255), EncodeU32(256));
  EXPECT_LT(EncodeU64(0xffffffffULL), EncodeU64(0x100000000ULL));
  EXPECT_EQ(DecodeU32(EncodeU32(0xdeadbeef)), 0xdeadbeefu);
  EXPECT_EQ(DecodeU64(EncodeU64(0x0123456789abcdefULL)), 0x0123456789abcdefULL);
}

}  // namespace
}  // namespace updns::storage
