#include "update/credentials.h"

#include <gtest/gtest.h>

#include <set>
#include <string>
#include <vector>

namespace updns::update {
namespace {

// Cheap parameters where the test is about the format, not the cost.
constexpr ScryptParams kFast{1024, 8, 1};

std::vector<std::string> Fields(const std::string& stored) {
  std::vector<std::string> parts;
  size_t start = 0;
  while (true) {
    size_t at = stored.find('$', start);
    parts.push_back(stored.substr(start, at - start));
    if (at == std::string::npos) return parts;
    start = at + 1;
  }
}

std::string Join(const std::vector<std::string>& parts) {
  std::string out;
  for (const std::string& part : parts) out += (out.empty() ? "" : "$") + part;
  return out;
}

std::string Hex(std::string_view bytes) {
  static const char kDigits[] = "0123456789abcdef";
  std::string out;
  for (unsigned char c : bytes) {
    out.push_back(kDigits[c >> 4]);
    out.push_back(kDigits[c & 15]);
  }
  return out;
}

TEST(PasswordTest, DefaultFormatAndVerify) {
  auto stored = HashPassword("correct horse");
  ASSERT_TRUE(stored.ok()) << stored.status().message();
  std::vector<std::string> parts = Fields(*stored);
  ASSERT_EQ(parts.size(), 6u) << *stored;
  EXPECT_EQ(parts[0], "scrypt");
  EXPECT_EQ(parts[1], "16384");
  EXPECT_EQ(parts[2], "8");
  EXPECT_EQ(parts[3], "1");
  EXPECT_EQ(parts[4].size(), 24u);  // 16 bytes in padded base64
  EXPECT_EQ(parts[5].size(), 44u);  // 32 bytes
  EXPECT_EQ(stored->find("correct horse"), std::string::npos);
  EXPECT_TRUE(VerifyPassword("correct horse", *stored));
  EXPECT_FALSE(VerifyPassword("correct horsf", *stored));
  EXPECT_FALSE(VerifyPassword("Correct horse", *stored));
  EXPECT_FALSE(VerifyPassword("correct horse ", *stored));
}

TEST(PasswordTest, SaltMakesEachHashDifferent) {
  auto a = HashPassword("same", kFast);
  auto b = HashPassword("same", kFast);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_NE(*a, *b);
  EXPECT_NE(Fields(*a)[4], Fields(*b)[4]);
  EXPECT_TRUE(VerifyPassword("same", *a));
  EXPECT_TRUE(VerifyPassword("same", *b));
}

TEST(PasswordTest, ParametersComeFromTheStoredString) {
  auto stored = HashPassword("pw", kFast);
  ASSERT_TRUE(stored.ok());
  std::vector<std::string> parts = Fields(*stored);
  EXPECT_EQ(parts[1], "1024");
  EXPECT_TRUE(VerifyPassword("pw", *stored));
  // The same salt and hash under other parameters no longer match.
  for (int field : {1, 2, 3}) {
    std::vector<std::string> changed = parts;
    changed[field] = field == 1 ? "2048" : "2";
    EXPECT_FALSE(VerifyPassword("pw", Join(changed))) << Join(changed);
  }
}

TEST(PasswordTest, TamperedOrMalformedHashesFail) {
  auto stored = HashPassword("secret", kFast);
  ASSERT_TRUE(stored.ok());
  std::vector<std::string> parts = Fields(*stored);

  std::vector<std::string> hash_flipped = parts;
  hash_flipped[5][3] = hash_flipped[5][3] == 'A' ? 'B' : 'A';
  EXPECT_FALSE(VerifyPassword("secret", Join(hash_flipped)));

  std::vector<std::string> salt_flipped = parts;
  salt_flipped[4][0] = salt_flipped[4][0] == 'A' ? 'B' : 'A';
  EXPECT_FALSE(VerifyPassword("secret", Join(salt_flipped)));

  std::vector<std::string> wrong_scheme = parts;
  wrong_scheme[0] = "bcrypt";
  EXPECT_FALSE(VerifyPassword("secret", Join(wrong_scheme)));

  std::vector<std::string> bad_base64 = parts;
  bad_base64[5][1] = '*';
  EXPECT_FALSE(VerifyPassword("secret", Join(bad_base64)));

  std::vector<std::string> short_hash = parts;
  short_hash[5] = "AAAA";  // 3 bytes: below the minimum
  EXPECT_FALSE(VerifyPassword("secret", Join(short_hash)));

  for (const char* n : {"0", "1", "1000", "01024", "-1024", "2097152", "99999999999999", ""}) {
    std::vector<std::string> bad_n = parts;
    bad_n[1] = n;
    EXPECT_FALSE(VerifyPassword("secret", Join(bad_n))) << n;
  }
  std::vector<std::string> huge_r = parts;
  huge_r[2] = "33";
  EXPECT_FALSE(VerifyPassword("secret", Join(huge_r)));
  std::vector<std::string> huge_p = parts;
  huge_p[3] = "17";
  EXPECT_FALSE(VerifyPassword("secret", Join(huge_p)));
  // 2^20 * 8 * 128 bytes = 1 GiB of memory: refused before scrypt runs.
  std::vector<std::string> costly = parts;
  costly[1] = "1048576";
  EXPECT_FALSE(VerifyPassword("secret", Join(costly)));

  EXPECT_FALSE(VerifyPassword("secret", ""));
  EXPECT_FALSE(VerifyPassword("secret", "scrypt"));
  EXPECT_FALSE(VerifyPassword("secret", *stored + "$"));
  EXPECT_FALSE(VerifyPassword("secret", stored->substr(0, stored->size() - 1)));
  // A hash shorter than 16 bytes is refused (scrypt output prefixes would match).
  std::vector<std::string> fifteen = parts;
  fifteen[5] = parts[5].substr(0, 20);  // 15 bytes
  EXPECT_FALSE(VerifyPassword("secret", Join(fifteen)));
  EXPECT_TRUE(VerifyPassword("secret", *stored));
}

TEST(PasswordTest, LengthLimits) {
  auto empty = HashPassword("");
  ASSERT_FALSE(empty.ok());
  EXPECT_TRUE(empty.status().IsInvalid());
  EXPECT_NE(empty.status().message().find("empty"), std::string_view::npos);

  std::string longest(kMaxPasswordSize, 'x');
  auto stored = HashPassword(longest, kFast);
  ASSERT_TRUE(stored.ok()) << stored.status().message();
  EXPECT_TRUE(VerifyPassword(longest, *stored));

  auto too_long = HashPassword(longest + "x", kFast);
  ASSERT_FALSE(too_long.ok());
  EXPECT_NE(too_long.status().message().find("1024"), std::string_view::npos);
  EXPECT_FALSE(VerifyPassword(longest + "x", *stored));
  EXPECT_FALSE(VerifyPassword("", *stored));
}

TEST(PasswordTest, RefusesUnusableParameters) {
  EXPECT_TRUE(
      HashPassword("pw", ScryptParams{1000, 8, 1}).status().IsInvalid());  // not a power of two
  EXPECT_TRUE(HashPassword("pw", ScryptParams{1024, 0, 1}).status().IsInvalid());
  EXPECT_TRUE(HashPassword("pw", ScryptParams{1024, 8, 0}).status().IsInvalid());
  EXPECT_TRUE(HashPassword("pw", ScryptParams{uint64_t{1} << 21, 8, 1}).status().IsInvalid());
}

TEST(TokenTest, LengthAlphabetAndUniqueness) {
  std::set<std::string> seen;
  for (int i = 0; i < 2000; ++i) {
    auto token = NewToken();
    ASSERT_TRUE(token.ok()) << token.status().message();
    ASSERT_EQ(token->size(), kTokenLength);
    for (char c : *token) {
      ASSERT_TRUE((c >= 'a' && c <= 'z') || (c >= '2' && c <= '7')) << *token;
    }
    EXPECT_TRUE(seen.insert(*token).second) << "repeated token " << *token;
  }
  // 160 random bits: every character position takes many values.
  for (size_t position = 0; position < kTokenLength; ++position) {
    std::set<char> values;
    for (const std::string& token : seen) values.insert(token[position]);
    EXPECT_GT(values.size(), 20u) << "position " << position;
  }
}

TEST(TokenTest, DigestIsSha256) {
  EXPECT_EQ(Hex(TokenDigest("abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(TokenDigest("").size(), kTokenDigestSize);
}

TEST(TokenTest, Matches) {
  auto token = NewToken();
  auto other = NewToken();
  ASSERT_TRUE(token.ok() && other.ok());
  std::string digest = TokenDigest(*token);
  EXPECT_EQ(digest.size(), kTokenDigestSize);
  EXPECT_TRUE(TokenMatches(*token, digest));
  EXPECT_FALSE(TokenMatches(*other, digest));
  EXPECT_FALSE(TokenMatches(token->substr(1), digest));
  EXPECT_FALSE(TokenMatches(*token + "a", digest));
  EXPECT_FALSE(TokenMatches(*token, digest.substr(1)));
  EXPECT_FALSE(TokenMatches(*token, ""));
  EXPECT_FALSE(TokenMatches("", ""));
  std::string flipped = digest;
  flipped[31] = static_cast<char>(flipped[31] ^ 1);
  EXPECT_FALSE(TokenMatches(*token, flipped));
}

}  // namespace
}  // namespace updns::update
