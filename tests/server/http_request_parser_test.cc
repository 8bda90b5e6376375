// server::HttpRequestParser without sockets: pipelining, input split
// anywhere, limits, chunked trailers, Expect: 100-continue. The socket side
// is in http_server_test.cc; tests/fuzz/http_fuzzer.cc fuzzes this.
#include "server/http_request_parser.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>

#include <cstring>
#include <string>

namespace updns::server {
namespace {

using Outcome = HttpRequestParser::Outcome;

constexpr HttpParserLimits kLimits{256, 64};

struct CountingEvents : HttpParserEvents {
  void OnRequestBegin() override { ++begun; }
  bool OnExpectContinue() override {
    ++continues;
    return accept_continue;
  }
  int begun = 0, continues = 0;
  bool accept_continue = true;
};

TEST(HttpRequestParserTest, PipelinedRequestsOneAtATime) {
  CountingEvents events;
  HttpRequestParser parser(kLimits, &events);
  sockaddr_in peer{};
  peer.sin_family = AF_INET;
  inet_pton(AF_INET, "192.0.2.7", &peer.sin_addr);
  std::memcpy(&parser.request().peer, &peer, sizeof peer);
  parser.request().peer_text = "192.0.2.7";

  parser.Append(
      "GET /nic/update?hostname=a.example HTTP/1.1\r\nHost: x\r\nX-Two:  b \r\n\r\n"
      "POST /api/v1/login HTTP/1.1\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}"
      "GET /third");
  ASSERT_EQ(parser.Parse(), Outcome::kRequest);
  EXPECT_EQ(parser.Parse(), Outcome::kRequest) << "waits for Next()";
  const HttpRequest& first = parser.request();
  EXPECT_EQ(first.method, "GET");
  EXPECT_EQ(first.path, "/nic/update");
  EXPECT_EQ(first.query, "hostname=a.example");
  ASSERT_NE(first.Header("x-two"), nullptr);
  EXPECT_EQ(*first.Header("x-two"), "b");
  EXPECT_TRUE(parser.keep_alive());

  parser.Next();
  ASSERT_EQ(parser.Parse(), Outcome::kRequest);
  EXPECT_EQ(parser.request().method, "POST");
  EXPECT_EQ(parser.request().body, "{}");
  EXPECT_FALSE(parser.keep_alive());
  EXPECT_EQ(parser.request().peer_text, "192.0.2.7") << "the peer stays with the connection";
  EXPECT_EQ(parser.request().peer.ss_family, AF_INET);

  parser.Next();
  EXPECT_EQ(parser.Parse(), Outcome::kNeedMore);
  parser.Append(" HTTP/1.1\r\n\r\n");
  ASSERT_EQ(parser.Parse(), Outcome::kRequest);
  EXPECT_EQ(parser.request().path, "/third");
  EXPECT_EQ(events.begun, 3);
}

TEST(HttpRequestParserTest, ByteByByteGivesTheSameRequest) {
  const std::string text =
      "POST /nic/update HTTP/1.1\r\nAuthorization: Basic YTpi\r\nTransfer-Encoding: chunked\r\n"
      "\r\n5\r\nhostn\r\n9\r\name=a.b.c\r\n0\r\n\r\n";
  HttpRequestParser parser(kLimits);
  for (size_t i = 0; i + 1 < text.size(); ++i) {
    parser.Append(text.substr(i, 1));
    ASSERT_EQ(parser.Parse(), Outcome::kNeedMore) << i;
  }
  parser.Append(text.substr(text.size() - 1));
  ASSERT_EQ(parser.Parse(), Outcome::kRequest);
  EXPECT_EQ(parser.request().body, "hostname=a.b.c");
  ASSERT_NE(parser.request().Header("authorization"), nullptr);
  EXPECT_EQ(*parser.request().Header("authorization"), "Basic YTpi");
}

TEST(HttpRequestParserTest, LimitsAnswer431And413AndStick) {
  {
    HttpRequestParser parser(kLimits);
    parser.Append("GET / HTTP/1.1\r\nX-Long: " + std::string(300, 'a'));
    EXPECT_EQ(parser.Parse(), Outcome::kError);
    EXPECT_EQ(parser.error_status(), 431);
    parser.Append("\r\n\r\n");
    EXPECT_EQ(parser.Parse(), Outcome::kError) << "an error ends the connection";
  }
  {
    HttpRequestParser parser(kLimits);
    parser.Append("POST / HTTP/1.1\r\nContent-Length: 65\r\n\r\n");
    EXPECT_EQ(parser.Parse(), Outcome::kError);
    EXPECT_EQ(parser.error_status(), 413);
  }
  {
    HttpRequestParser parser(kLimits);
    parser.Append("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n41\r\n" +
                  std::string(65, 'x') + "\r\n0\r\n\r\n");
    EXPECT_EQ(parser.Parse(), Outcome::kError);
    EXPECT_EQ(parser.error_status(), 413);
  }
  {
    HttpRequestParser parser(kLimits);
    parser.Append("GET / HTTP/1.1\r\nBad Header\r\n\r\n");
    EXPECT_EQ(parser.Parse(), Outcome::kError);
    EXPECT_EQ(parser.error_status(), 400);
  }
}

TEST(HttpRequestParserTest, ChunkedTrailersAreDroppedAndBounded) {
  {
    HttpRequestParser parser(kLimits);
    parser.Append(
        "POST /nic/update HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
        "3\r\nabc\r\n0\r\nAuthorization: Basic YTpi\r\n\r\n");
    ASSERT_EQ(parser.Parse(), Outcome::kRequest);
    EXPECT_EQ(parser.request().body, "abc");
    EXPECT_EQ(parser.request().Header("authorization"), nullptr)
        << "a trailer must not pass for a header";
  }
  {
    HttpRequestParser parser(kLimits);
    parser.Append("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n");
    for (int i = 0; i < 20; ++i) parser.Append("X-T: " + std::string(20, 't') + "\r\n");
    parser.Append("\r\n");
    EXPECT_EQ(parser.Parse(), Outcome::kError);
    EXPECT_EQ(parser.error_status(), 431);
  }
}

TEST(HttpRequestParserTest, ExpectContinueAsksTheConnection) {
  CountingEvents events;
  HttpRequestParser parser(kLimits, &events);
  parser.Append("POST / HTTP/1.1\r\nExpect: 100-Continue\r\nContent-Length: 2\r\n\r\n");
  EXPECT_EQ(parser.Parse(), Outcome::kNeedMore);
  EXPECT_EQ(events.continues, 1);
  parser.Append("ok");
  ASSERT_EQ(parser.Parse(), Outcome::kRequest);
  EXPECT_EQ(parser.request().body, "ok");

  CountingEvents refusing;
  refusing.accept_continue = false;
  HttpRequestParser failing(kLimits, &refusing);
  failing.Append("POST / HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n");
  EXPECT_EQ(failing.Parse(), Outcome::kError);
  EXPECT_EQ(failing.error_status(), 400);

  CountingEvents http10;
  HttpRequestParser old(kLimits, &http10);
  old.Append("POST / HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 0\r\n\r\n");
  EXPECT_EQ(old.Parse(), Outcome::kRequest);
  EXPECT_EQ(http10.continues, 0) << "HTTP/1.0 clients do not wait for 100";
}

TEST(HttpRequestParserTest, DiscardInputDropsBufferedBytes) {
  HttpRequestParser parser(kLimits);
  parser.Append("GET / HTTP/1.1\r\n\r\nGET /next HTTP/1.1\r\n\r\n");
  ASSERT_EQ(parser.Parse(), Outcome::kRequest);
  parser.DiscardInput();
  parser.Next();
  EXPECT_EQ(parser.Parse(), Outcome::kNeedMore);
}

}  // namespace
}  // namespace updns::server
