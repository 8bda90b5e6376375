// HttpServer through its public header, with real clients: raw sockets for
// the precise cases (pipelining, limits, timeouts) and curl for ordinary ones.
#include "server/http_server.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <future>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace updns::server {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

uint16_t FreePort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  EXPECT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  socklen_t length = sizeof a;
  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &length);
  close(fd);
  return ntohs(a.sin_port);
}

long ElapsedMs(Clock::time_point since) {
  return static_cast<long>(std::chrono::duration_cast<milliseconds>(Clock::now() - since).count());
}

struct Response {
  int status = 0;
  std::map<std::string, std::string> headers;  // names lowercased
  std::string body;
};

class Client {
 public:
  explicit Client(uint16_t port) {
    fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    connected_ = connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  }
  ~Client() { Close(); }
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  bool connected() const { return connected_; }
  void Close() {
    if (fd_ >= 0) close(fd_);
    fd_ = -1;
  }

  bool Send(std::string_view data) {
    while (!data.empty()) {
      ssize_t n = send(fd_, data.data(), data.size(), MSG_NOSIGNAL);
      if (n <= 0) return false;
      data.remove_prefix(static_cast<size_t>(n));
    }
    return true;
  }

  // Appends what arrives within `timeout_ms` to buffer_; false on EOF,
  // error or timeout.
  bool ReadMore(int timeout_ms) {
    pollfd p{fd_, POLLIN, 0};
    if (poll(&p, 1, timeout_ms) <= 0) return false;
    char buf[16384];
    ssize_t n = recv(fd_, buf, sizeof buf, 0);
    if (n <= 0) return false;
    buffer_.append(buf, static_cast<size_t>(n));
    return true;
  }

  // The next response; nullopt when the connection ends or nothing arrives.
  std::optional<Response> Read(int timeout_ms = 3000) {
    auto deadline = Clock::now() + milliseconds(timeout_ms);
    auto remaining = [&] {
      return std::max(
          0, static_cast<int>(timeout_ms - ElapsedMs(deadline - milliseconds(timeout_ms))));
    };
    size_t end;
    while ((end = buffer_.find("\r\n\r\n")) == std::string::npos)
      if (!ReadMore(remaining())) return std::nullopt;
    Response r;
    std::string head = buffer_.substr(0, end + 2);
    size_t line_end = head.find("\r\n");
    r.status = std::atoi(head.substr(9, 3).c_str());
    for (size_t pos = line_end + 2; pos < head.size();) {
      size_t next = head.find("\r\n", pos);
      std::string line = head.substr(pos, next - pos);
      size_t colon = line.find(':');
      std::string name = line.substr(0, colon);
      for (char& ch : name) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
      r.headers[name] = line.substr(std::min(line.size(), colon + 2));
      pos = next + 2;
    }
    size_t length = r.headers.count("content-length") ? std::stoul(r.headers["content-length"]) : 0;
    while (buffer_.size() < end + 4 + length)
      if (!ReadMore(remaining())) return std::nullopt;
    r.body = buffer_.substr(end + 4, length);
    buffer_.erase(0, end + 4 + length);
    return r;
  }

  // True when the server closes the connection within `timeout_ms`.
  bool WaitClosed(int timeout_ms) {
    auto start = Clock::now();
    while (ElapsedMs(start) < timeout_ms) {
      pollfd p{fd_, POLLIN, 0};
      if (poll(&p, 1, 50) <= 0) continue;
      char buf[4096];
      ssize_t n = recv(fd_, buf, sizeof buf, 0);
      if (n <= 0) return true;
      buffer_.append(buf, static_cast<size_t>(n));
    }
    return false;
  }

  const std::string& buffer() const { return buffer_; }

 private:
  int fd_ = -1;
  bool connected_ = false;
  std::string buffer_;
};

// Error bodies must not look like a dyndns2 success to substring matchers.
void ExpectHarmlessErrorBody(const std::string& body) {
  EXPECT_FALSE(body.empty());
  EXPECT_EQ(body.find("good"), std::string::npos) << body;
  EXPECT_EQ(body.find("nochg"), std::string::npos) << body;
  EXPECT_EQ(body.find("OK"), std::string::npos) << body;
}

std::string RunCurl(const std::string& args) {
  std::string command = "curl -s -S --max-time 5 " + args + " 2>&1";
  FILE* pipe = popen(command.c_str(), "r");
  if (pipe == nullptr) return "popen failed";
  std::string out;
  char buf[4096];
  while (size_t n = fread(buf, 1, sizeof buf, pipe)) out.append(buf, n);
  pclose(pipe);
  return out;
}

class HttpServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    options_.max_header_bytes = 1024;
    options_.max_body_bytes = 4096;
    options_.read_timeout_ms = 300;
    options_.idle_timeout_ms = 1000;
    options_.max_connections = 8;
  }

  void TearDown() override {
    server_.reset();
    std::lock_guard lock(threads_mutex_);
    for (auto& t : threads_) t.join();
  }

  void StartServer() {
    port_ = FreePort();
    auto ep = config::ParseEndpoint("127.0.0.1@" + std::to_string(port_), 0);
    ASSERT_TRUE(ep.ok()) << ep.status().message();
    options_.listen = {*ep};
    auto server = HttpServer::Create(
        options_, [this](const HttpRequest& r, HttpReply reply) { Handle(r, std::move(reply)); });
    ASSERT_TRUE(server.ok()) << server.status().message();
    server_ = std::move(server).value();
    server_->Start();
  }

  static std::string Echo(const HttpRequest& r) {
    const std::string* header = r.Header("x-test");
    return "method=" + r.method + "\npath=" + r.path + "\nquery=" + r.query + "\nbody=" + r.body +
           "\npeer=" + r.peer_text + "\nx-test=" + (header ? *header : "") + "\n";
  }

  void Handle(const HttpRequest& r, HttpReply reply) {
    ++requests_;
    if (r.path == "/async") {
      // Replies from another thread, as the writer does after its commit.
      std::lock_guard lock(threads_mutex_);
      threads_.emplace_back([text = Echo(r), reply = std::move(reply)] {
        std::this_thread::sleep_for(milliseconds(50));
        reply(HttpResponse{200, "text/plain", {{"X-Async", "yes"}}, text});
      });
      return;
    }
    if (r.path == "/forget") return;  // drops the reply without calling it
    if (r.path == "/throw") throw std::runtime_error("handler bug");
    HttpResponse response;
    response.body = Echo(r);
    response.headers = {{"X-Echo", "1"}, {"X-Bad", "a\r\nInjected: 1"}, {"Content-Length", "999"}};
    reply(std::move(response));
  }

  HttpServerOptions options_;
  uint16_t port_ = 0;
  std::unique_ptr<HttpServer> server_;
  std::mutex threads_mutex_;
  std::vector<std::thread> threads_;
  std::atomic<int> requests_{0};
};

TEST_F(HttpServerTest, CurlGetWithQuery) {
  StartServer();
  std::string out = RunCurl("-H 'X-Test: hello' 'http://127.0.0.1:" + std::to_string(port_) +
                            "/nic/update?hostname=a.example&myip=192.0.2.1'");
  EXPECT_EQ(out,
            "method=GET\npath=/nic/update\nquery=hostname=a.example&myip=192.0.2.1\nbody=\n"
            "peer=127.0.0.1\nx-test=hello\n");
}

TEST_F(HttpServerTest, CurlPostForm) {
  StartServer();
  std::string out =
      RunCurl("-d 'a=1&b=two' 'http://127.0.0.1:" + std::to_string(port_) + "/api/v1/x?y=z'");
  EXPECT_EQ(out,
            "method=POST\npath=/api/v1/x\nquery=y=z\nbody=a=1&b=two\npeer=127.0.0.1\nx-test=\n");
}

TEST_F(HttpServerTest, CurlExpectContinue) {
  StartServer();
  std::string body(2000, 'b');  // curl sends Expect: 100-continue above 1 KiB
  std::string out =
      RunCurl("-H 'Expect: 100-continue' -d '" + body +
              "' -w ' %{time_total}' 'http://127.0.0.1:" + std::to_string(port_) + "/'");
  EXPECT_NE(out.find("body=" + body + "\n"), std::string::npos) << out;
  EXPECT_LT(std::stod(out.substr(out.rfind(' ') + 1)), 0.9) << "curl waited for 100 Continue";
}

TEST_F(HttpServerTest, KeepAliveServesTwoRequestsAndSanitizesHeaders) {
  StartServer();
  Client c(port_);
  ASSERT_TRUE(c.connected());
  ASSERT_TRUE(c.Send("GET /one HTTP/1.1\r\nHost: x\r\nX-Test: a\r\n\r\n"));
  auto first = c.Read();
  ASSERT_TRUE(first);
  EXPECT_EQ(first->status, 200);
  EXPECT_EQ(first->headers["connection"], "keep-alive");
  EXPECT_EQ(first->headers["x-echo"], "1");
  EXPECT_EQ(first->headers.count("x-bad"), 0u);
  EXPECT_EQ(first->headers.count("injected"), 0u);
  EXPECT_EQ(first->headers["content-length"], std::to_string(first->body.size()));
  EXPECT_EQ(first->headers["content-type"], "text/plain; charset=utf-8");
  EXPECT_NE(first->body.find("path=/one\n"), std::string::npos);
  ASSERT_TRUE(c.Send("GET /two HTTP/1.1\r\nHost: x\r\n\r\n"));
  auto second = c.Read();
  ASSERT_TRUE(second);
  EXPECT_NE(second->body.find("path=/two\n"), std::string::npos);
  ASSERT_TRUE(c.Send("GET /three HTTP/1.1\r\nConnection: close\r\n\r\n"));
  auto third = c.Read();
  ASSERT_TRUE(third);
  EXPECT_EQ(third->headers["connection"], "close");
  EXPECT_TRUE(c.WaitClosed(1000));
}

TEST_F(HttpServerTest, Http10ClosesUnlessKeepAlive) {
  StartServer();
  {
    Client c(port_);
    ASSERT_TRUE(c.Send("GET /old HTTP/1.0\r\n\r\n"));
    auto r = c.Read();
    ASSERT_TRUE(r);
    EXPECT_EQ(r->headers["connection"], "close");
    EXPECT_TRUE(c.WaitClosed(1000));
  }
  Client c(port_);
  ASSERT_TRUE(c.Send("GET /old HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"));
  auto r = c.Read();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->headers["connection"], "keep-alive");
  ASSERT_TRUE(c.Send("GET /again HTTP/1.0\r\n\r\n"));
  ASSERT_TRUE(c.Read());
  EXPECT_TRUE(c.WaitClosed(1000));
}

TEST_F(HttpServerTest, HeadHasNoBody) {
  StartServer();
  Client c(port_);
  ASSERT_TRUE(c.Send("HEAD /h HTTP/1.1\r\n\r\nGET /after HTTP/1.1\r\n\r\n"));
  // The HEAD response announces a length but carries no body: the next bytes
  // are the second response.
  ASSERT_TRUE(c.ReadMore(3000));
  while (c.buffer().find("path=/after") == std::string::npos) ASSERT_TRUE(c.ReadMore(3000));
  EXPECT_EQ(c.buffer().find("HTTP/1.1 200"), 0u);
  EXPECT_EQ(c.buffer().find("method=HEAD"), std::string::npos);
}

TEST_F(HttpServerTest, PipelinedRequestsAnsweredInOrder) {
  StartServer();
  Client c(port_);
  // The first is answered 50 ms later from another thread; order must hold.
  ASSERT_TRUE(
      c.Send("GET /async?n=1 HTTP/1.1\r\nHost: x\r\n\r\n"
             "POST /sync?n=2 HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc"
             "GET /async?n=3 HTTP/1.1\r\n\r\n"));
  auto r1 = c.Read(), r2 = c.Read(), r3 = c.Read();
  ASSERT_TRUE(r1 && r2 && r3);
  EXPECT_NE(r1->body.find("query=n=1"), std::string::npos);
  EXPECT_EQ(r1->headers["x-async"], "yes");
  EXPECT_NE(r2->body.find("query=n=2\nbody=abc\n"), std::string::npos);
  EXPECT_NE(r3->body.find("query=n=3"), std::string::npos);
}

TEST_F(HttpServerTest, AsyncReplyFromAnotherThread) {
  StartServer();
  Client c(port_);
  auto start = Clock::now();
  ASSERT_TRUE(c.Send("GET /async?q=1 HTTP/1.1\r\nX-Test: t\r\n\r\n"));
  auto r = c.Read();
  ASSERT_TRUE(r);
  EXPECT_GE(ElapsedMs(start), 45);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->headers["content-type"], "text/plain");
  EXPECT_NE(r->body.find("path=/async\nquery=q=1\n"), std::string::npos);
  EXPECT_NE(r->body.find("x-test=t\n"), std::string::npos);
}

TEST_F(HttpServerTest, HeaderNameSplitAcrossReads) {
  options_.read_timeout_ms = 10000;  // the drip below must not meet the deadline
  StartServer();
  Client c(port_);
  std::string request = "GET /slow?a=b HTTP/1.1\r\nX-TeSt: split value\r\n\r\n";
  for (char ch : request) {  // one byte per segment
    ASSERT_TRUE(c.Send(std::string(1, ch)));
    std::this_thread::sleep_for(milliseconds(2));
  }
  auto r = c.Read();
  ASSERT_TRUE(r);
  EXPECT_NE(r->body.find("path=/slow\nquery=a=b\n"), std::string::npos);
  EXPECT_NE(r->body.find("x-test=split value\n"), std::string::npos) << r->body;
}

TEST_F(HttpServerTest, OversizedHeadersGet431) {
  StartServer();
  Client c(port_);
  ASSERT_TRUE(c.Send("GET / HTTP/1.1\r\nX-Big: " + std::string(2000, 'a') + "\r\n\r\n"));
  auto r = c.Read();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 431);
  EXPECT_EQ(r->headers["connection"], "close");
  ExpectHarmlessErrorBody(r->body);
  EXPECT_TRUE(c.WaitClosed(3000));
  EXPECT_EQ(requests_, 0);
}

TEST_F(HttpServerTest, HeadersJustUnderLimitAccepted) {
  StartServer();
  std::string head = "GET / HTTP/1.1\r\nX-Pad: ";
  std::string request = head + std::string(1024 - head.size() - 4, 'p') + "\r\n\r\n";
  ASSERT_EQ(request.size(), 1024u);
  Client c(port_);
  ASSERT_TRUE(c.Send(request));
  auto r = c.Read();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
}

TEST_F(HttpServerTest, OversizedBodyGets413) {
  StartServer();
  {  // Declared too large: refused before the body is sent.
    Client c(port_);
    ASSERT_TRUE(c.Send("POST / HTTP/1.1\r\nContent-Length: 100000\r\n\r\n"));
    auto r = c.Read();
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 413);
    ExpectHarmlessErrorBody(r->body);
    EXPECT_TRUE(c.WaitClosed(3000));
  }
  {  // Sent in full anyway: the client still reads the 413 (no RST first).
    Client c(port_);
    ASSERT_TRUE(
        c.Send("POST / HTTP/1.1\r\nContent-Length: 20000\r\n\r\n" + std::string(20000, 'x')));
    auto r = c.Read();
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 413);
  }
  {  // Chunked: counted as it arrives.
    Client c(port_);
    std::string chunk = "1000\r\n" + std::string(4096, 'y') + "\r\n";
    ASSERT_TRUE(c.Send("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n" + chunk + chunk));
    auto r = c.Read();
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 413);
  }
  EXPECT_EQ(requests_, 0);
}

TEST_F(HttpServerTest, MalformedRequestsGet400) {
  StartServer();
  using namespace std::string_literals;  // sizes include the embedded NULs
  for (const std::string& garbage :
       {"\x16\x03\x01\x02\x00 garbage\r\n\r\n"s, "GET / HTTP/1.1\r\nX-Nul: a\0b\r\n\r\n"s,
        "GET /a\0b HTTP/1.1\r\n\r\n"s, "GET / HTTP/1.1\r\nBad Header\r\n\r\n"s,
        "CONNECT example.com:443 HTTP/1.1\r\n\r\n"s,
        "GET / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n"s}) {
    Client c(port_);
    ASSERT_TRUE(c.Send(garbage));
    auto r = c.Read();
    ASSERT_TRUE(r) << garbage;
    EXPECT_EQ(r->status, 400) << garbage;
    ExpectHarmlessErrorBody(r->body);
    EXPECT_TRUE(c.WaitClosed(3000));
  }
  EXPECT_EQ(requests_, 0);
}

TEST_F(HttpServerTest, HandlerFailuresGet500) {
  StartServer();
  Client c(port_);
  ASSERT_TRUE(c.Send("GET /throw HTTP/1.1\r\n\r\n"));
  auto r = c.Read();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 500);
  ExpectHarmlessErrorBody(r->body);
  Client d(port_);
  ASSERT_TRUE(d.Send("GET /forget HTTP/1.1\r\n\r\n"));
  r = d.Read();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 500);
}

TEST_F(HttpServerTest, SlowRequestGets408) {
  StartServer();
  {
    Client c(port_);
    auto start = Clock::now();
    ASSERT_TRUE(c.Send("GET / HTTP/1.1\r\nHost: x\r\n"));
    auto r = c.Read(1300);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 408);
    ExpectHarmlessErrorBody(r->body);
    EXPECT_GE(ElapsedMs(start), 250);
    EXPECT_TRUE(c.WaitClosed(3000));
  }
  {  // Dripping bytes does not extend the deadline (slowloris).
    Client c(port_);
    auto start = Clock::now();
    bool answered = !c.Send("GET / HTTP/1.1\r\nX-Drip: ");
    for (int i = 0; i < 20 && !answered; ++i) {
      if (!c.Send("d")) break;
      answered = c.ReadMore(100);
    }
    EXPECT_TRUE(answered || c.WaitClosed(1000));
    EXPECT_LT(ElapsedMs(start), 1300);
    EXPECT_EQ(c.buffer().find("HTTP/1.1 408"), 0u) << c.buffer();
  }
}

TEST_F(HttpServerTest, IdleConnectionClosed) {
  StartServer();
  Client c(port_);
  ASSERT_TRUE(c.Send("GET / HTTP/1.1\r\n\r\n"));
  ASSERT_TRUE(c.Read());
  auto start = Clock::now();
  EXPECT_TRUE(c.WaitClosed(3000));
  EXPECT_GE(ElapsedMs(start), 900);
  EXPECT_EQ(c.buffer(), "");  // idle close sends nothing
}

TEST_F(HttpServerTest, ConnectionLimit) {
  StartServer();
  std::vector<std::unique_ptr<Client>> clients;
  for (unsigned i = 0; i < options_.max_connections; ++i) {
    clients.push_back(std::make_unique<Client>(port_));
    ASSERT_TRUE(clients.back()->Send("GET / HTTP/1.1\r\n\r\n"));
    ASSERT_TRUE(clients.back()->Read());
  }
  Client extra(port_);
  EXPECT_TRUE(extra.WaitClosed(1000));
  EXPECT_EQ(extra.buffer(), "");
  clients.pop_back();  // frees a slot once the server sees the close
  bool served = false;
  // A refused connection is closed at once, so without a pause all the
  // attempts could come and go before the server has seen the close.
  for (int attempt = 0; attempt < 50 && !served; ++attempt) {
    if (attempt > 0) std::this_thread::sleep_for(milliseconds(20));
    Client c(port_);
    served = c.Send("GET / HTTP/1.1\r\n\r\n") && c.Read(200).has_value();
  }
  EXPECT_TRUE(served);
}

TEST_F(HttpServerTest, ClientGoneBeforeAsyncReply) {
  StartServer();
  for (int i = 0; i < 5; ++i) {
    Client c(port_);
    ASSERT_TRUE(c.Send("GET /async HTTP/1.1\r\n\r\n"));
    std::this_thread::sleep_for(milliseconds(5));
  }  // closed before the reply arrives
  std::this_thread::sleep_for(milliseconds(150));
  Client c(port_);
  ASSERT_TRUE(c.Send("GET /after HTTP/1.1\r\n\r\n"));
  auto r = c.Read();
  ASSERT_TRUE(r);
  EXPECT_NE(r->body.find("path=/after"), std::string::npos);
}

TEST_F(HttpServerTest, StopWithOpenConnectionsIsPrompt) {
  StartServer();
  Client idle(port_), partial(port_), waiting(port_);
  ASSERT_TRUE(idle.Send("GET / HTTP/1.1\r\n\r\n"));
  ASSERT_TRUE(idle.Read());
  ASSERT_TRUE(partial.Send("GET / HTTP/1.1\r\nHo"));
  ASSERT_TRUE(waiting.Send("GET /async HTTP/1.1\r\n\r\n"));
  std::this_thread::sleep_for(milliseconds(10));
  auto start = Clock::now();
  server_->Stop();
  EXPECT_LT(ElapsedMs(start), 200);
  EXPECT_TRUE(idle.WaitClosed(500));
  EXPECT_TRUE(waiting.WaitClosed(500));
  server_->Stop();  // twice is fine
  // The async reply lands after Stop (TearDown joins its thread): dropped.
}

TEST_F(HttpServerTest, PostRunsOnLoopThreadAndIsDroppedAfterStop) {
  StartServer();
  std::promise<std::thread::id> ran;
  server_->Post([&] { ran.set_value(std::this_thread::get_id()); });
  auto id = ran.get_future();
  ASSERT_EQ(id.wait_for(std::chrono::seconds(2)), std::future_status::ready);
  EXPECT_NE(id.get(), std::this_thread::get_id());
  server_->Stop();
  auto witness = std::make_shared<int>(0);
  bool ran_after = false;
  server_->Post([&ran_after, witness] { ran_after = true; });
  EXPECT_EQ(witness.use_count(), 1);  // destroyed, not kept
  EXPECT_FALSE(ran_after);
}

TEST_F(HttpServerTest, BindErrorNamesTheAddress) {
  StartServer();
  auto ep = config::ParseEndpoint("127.0.0.1@" + std::to_string(port_), 0);
  ASSERT_TRUE(ep.ok());
  HttpServerOptions options;
  options.listen = {*ep};
  auto second = HttpServer::Create(
      options, [](const HttpRequest&, const HttpReply& reply) { reply(HttpResponse{}); });
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().message(),
            "cannot bind 127.0.0.1@" + std::to_string(port_) + " (http): Address already in use");
}

TEST_F(HttpServerTest, NeverStartedServerIsDestroyedCleanly) {
  port_ = FreePort();
  auto ep = config::ParseEndpoint("127.0.0.1@" + std::to_string(port_), 0);
  ASSERT_TRUE(ep.ok());
  options_.listen = {*ep};
  auto server = HttpServer::Create(options_, [](const HttpRequest&, const HttpReply&) {});
  ASSERT_TRUE(server.ok());
  (*server)->Post([] {});
}

TEST_F(HttpServerTest, Ipv6PeerText) {
  int probe = socket(AF_INET6, SOCK_STREAM, 0);
  sockaddr_in6 a{};
  a.sin6_family = AF_INET6;
  a.sin6_addr = in6addr_loopback;
  bool has_v6 = probe >= 0 && bind(probe, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  socklen_t length = sizeof a;
  if (has_v6) getsockname(probe, reinterpret_cast<sockaddr*>(&a), &length);
  if (probe >= 0) close(probe);
  if (!has_v6) GTEST_SKIP() << "no IPv6 loopback";
  uint16_t port = ntohs(a.sin6_port);
  auto ep = config::ParseEndpoint("::1@" + std::to_string(port), 0);
  ASSERT_TRUE(ep.ok());
  options_.listen = {*ep};
  auto server = HttpServer::Create(options_, [](const HttpRequest& r, const HttpReply& reply) {
    reply(HttpResponse{200, "text/plain", {}, r.peer_text});
  });
  ASSERT_TRUE(server.ok()) << server.status().message();
  (*server)->Start();
  EXPECT_EQ(RunCurl("'http://[::1]:" + std::to_string(port) + "/'"), "::1");
}

}  // namespace
}  // namespace updns::server
