// server/tls.h without sockets: contexts loaded from files the test makes
// with the openssl command (good, missing, not PEM, mismatched, encrypted),
// a TlsSession pumped against an OpenSSL client on memory BIOs, and
// HttpServer::ReloadTls keeping the old context when the new files fail.
#include "server/tls.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <openssl/err.h>
#include <stdlib.h>

#include <cstring>
#include <filesystem>
#include <functional>

#include "server/http_server.h"
#include "tests/support/test_ca.h"

namespace updns::server {
namespace {

using test::TestCa;

class TlsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!test::HaveProgram("openssl")) GTEST_SKIP() << "the openssl command is not installed";
    std::string pattern = ::testing::TempDir() + "updns-tls-XXXXXX";
    ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
    std::string error;
    ASSERT_TRUE(ca_.Create(dir_, &error)) << error;
    ASSERT_TRUE(ca_.Issue("server", "unit server", 0x1234, &error)) << error;
  }

  TlsFiles Files(const std::filesystem::path& cert, const std::filesystem::path& key) const {
    return {cert.string(), key.string(), "http.tls"};
  }
  TlsFiles Good() const { return Files(ca_.cert("server"), ca_.key("server")); }

  // The error of loading `files`, or "<loaded>".
  std::string ErrorOf(const TlsFiles& files) const {
    auto context = TlsContext::Load(files);
    return context.ok() ? "<loaded>" : std::string(context.status().message());
  }

  void TearDown() override {
    std::error_code ignored;
    if (!dir_.empty()) std::filesystem::remove_all(dir_, ignored);
  }

  std::filesystem::path dir_;
  TestCa ca_;
};

TEST_F(TlsTest, LoadsCertificateAndKeyAndDescribesTheCertificate) {
  auto context = TlsContext::Load(Good());
  ASSERT_TRUE(context.ok()) << context.status().message();
  EXPECT_NE((*context)->description().find("CN = unit server"), std::string::npos)
      << (*context)->description();
  EXPECT_NE((*context)->description().find("serial 0x1234"), std::string::npos);
  EXPECT_NE((*context)->description().find("valid until"), std::string::npos);
  EXPECT_EQ(SSL_CTX_get_min_proto_version((*context)->handle()), TLS1_2_VERSION);
}

TEST_F(TlsTest, CertificateFollowedByItsChainLoads) {
  test::WriteFile(dir_ / "chain.pem",
                  test::ReadFile(ca_.cert("server")) + test::ReadFile(ca_.ca_file()));
  EXPECT_EQ(ErrorOf(Files(dir_ / "chain.pem", ca_.key("server"))), "<loaded>");
}

TEST_F(TlsTest, ErrorsNameTheKeyTheFileAndTheProblem) {
  std::string missing = (dir_ / "missing.pem").string();
  EXPECT_EQ(ErrorOf(Files(missing, ca_.key("server"))),
            "http.tls.cert " + missing + ": cannot read: No such file or directory");
  EXPECT_EQ(ErrorOf(Files(ca_.cert("server"), missing)),
            "http.tls.key " + missing + ": cannot read: No such file or directory");

  test::WriteFile(dir_ / "text.pem", "not a certificate\n");
  std::string error = ErrorOf(Files(dir_ / "text.pem", ca_.key("server")));
  EXPECT_EQ(error.rfind(
                "http.tls.cert " + (dir_ / "text.pem").string() + ": no PEM certificate in it", 0),
            0u)
      << error;
  // A key where the certificate belongs, and the other way round.
  error = ErrorOf(Files(ca_.key("server"), ca_.key("server")));
  EXPECT_NE(error.find("http.tls.cert "), std::string::npos) << error;
  error = ErrorOf(Files(ca_.cert("server"), ca_.cert("server")));
  EXPECT_EQ(error.rfind("http.tls.key " + ca_.cert("server").string() + ": no PEM private key", 0),
            0u)
      << error;
}

TEST_F(TlsTest, KeyOfAnotherCertificateDoesNotMatch) {
  std::string error;
  ASSERT_TRUE(ca_.Issue("other", "other", 7, &error)) << error;
  EXPECT_EQ(ErrorOf(Files(ca_.cert("server"), ca_.key("other"))),
            "http.tls.key " + ca_.key("other").string() + ": key does not match the certificate " +
                ca_.cert("server").string());
}

TEST_F(TlsTest, EncryptedKeyIsRefusedWithoutAskingForAPassphrase) {
  std::filesystem::path encrypted = dir_ / "encrypted.key";
  test::CommandResult r =
      test::RunCommand({"openssl", "pkey", "-in", ca_.key("server").string(), "-aes256", "-passout",
                        "pass:secret", "-out", encrypted.string()},
                       "", dir_);
  ASSERT_EQ(r.exit_code, 0) << r.Describe();
  std::string error = ErrorOf(Files(ca_.cert("server"), encrypted));
  EXPECT_NE(error.find("http.tls.key " + encrypted.string() + ": the key is encrypted"),
            std::string::npos)
      << error;
}

// ---------------------------------------------------------------------------
// Sessions against an OpenSSL client on memory BIOs

struct SslCtxFree {
  void operator()(SSL_CTX* c) const { SSL_CTX_free(c); }
};

class Peer {
 public:
  // A client on memory BIOs; `configure` adjusts its context.
  explicit Peer(const std::function<void(SSL_CTX*)>& configure = {}) {
    ctx_.reset(SSL_CTX_new(TLS_client_method()));
    if (configure) configure(ctx_.get());
    ssl_.reset(SSL_new(ctx_.get()));
    in_ = BIO_new(BIO_s_mem());
    out_ = BIO_new(BIO_s_mem());
    BIO_set_mem_eof_return(in_, -1);
    SSL_set_bio(ssl_.get(), in_, out_);
    SSL_set_connect_state(ssl_.get());
  }

  // Runs the client and the server until neither has anything to say.
  // The server's error, if any, is returned; what the server decrypted is
  // appended to `server_plaintext`.
  Status Pump(TlsSession& server, std::string& server_plaintext) {
    for (int round = 0; round < 20; ++round) {
      SSL_do_handshake(ssl_.get());
      std::string to_server = Take(out_);
      auto progress = server.Receive(to_server, server_plaintext);
      std::string to_client = server.TakeOutput();
      BIO_write(in_, to_client.data(), static_cast<int>(to_client.size()));
      if (!progress.ok()) return progress.status();
      if (to_server.empty() && to_client.empty()) break;
    }
    ERR_clear_error();
    return Status::Ok();
  }

  void Write(std::string_view text) {
    size_t n = 0;
    SSL_write_ex(ssl_.get(), text.data(), text.size(), &n);
  }
  std::string Read() {
    std::string out;
    char buffer[4096];
    size_t n = 0;
    while (SSL_read_ex(ssl_.get(), buffer, sizeof buffer, &n) == 1) out.append(buffer, n);
    ERR_clear_error();
    return out;
  }
  // Hands the server's output to the client.
  void Deliver(TlsSession& server) {
    std::string bytes = server.TakeOutput();
    BIO_write(in_, bytes.data(), static_cast<int>(bytes.size()));
  }
  std::string Pending() { return Take(out_); }
  SSL* ssl() { return ssl_.get(); }

 private:
  static std::string Take(BIO* bio) {
    std::string out(BIO_ctrl_pending(bio), '\0');
    if (!out.empty()) BIO_read(bio, out.data(), static_cast<int>(out.size()));
    return out;
  }
  std::unique_ptr<SSL_CTX, SslCtxFree> ctx_;
  SslPtr ssl_;
  BIO* in_;
  BIO* out_;
};

TEST_F(TlsTest, SessionHandshakesAndCarriesDataBothWays) {
  auto context = TlsContext::Load(Good());
  ASSERT_TRUE(context.ok()) << context.status().message();
  for (int version : {TLS1_3_VERSION, TLS1_2_VERSION}) {
    auto session = TlsSession::Accept(**context);
    ASSERT_TRUE(session.ok());
    Peer client([&](SSL_CTX* c) { SSL_CTX_set_max_proto_version(c, version); });
    std::string plaintext;
    ASSERT_TRUE(client.Pump(**session, plaintext).ok());
    ASSERT_TRUE((*session)->established());
    EXPECT_EQ(SSL_version(client.ssl()), version);
    EXPECT_NE((*session)->Describe().find(version == TLS1_3_VERSION ? "TLSv1.3" : "TLSv1.2"),
              std::string::npos);

    client.Write("GET / HTTP/1.1\r\n\r\n");
    auto progress = (*session)->Receive(client.Pending(), plaintext);
    ASSERT_TRUE(progress.ok()) << progress.status().message();
    EXPECT_EQ(plaintext, "GET / HTTP/1.1\r\n\r\n");

    ASSERT_TRUE((*session)->Send("HTTP/1.1 200 OK\r\n\r\n").ok());
    (*session)->Close();
    client.Deliver(**session);
    EXPECT_EQ(client.Read(), "HTTP/1.1 200 OK\r\n\r\n");
    EXPECT_EQ(SSL_get_shutdown(client.ssl()) & SSL_RECEIVED_SHUTDOWN, SSL_RECEIVED_SHUTDOWN)
        << "close_notify";
    EXPECT_FALSE((*session)->Send("more").ok());

    // The client's close_notify ends the session cleanly.
    SSL_shutdown(client.ssl());
    progress = (*session)->Receive(client.Pending(), plaintext);
    ASSERT_TRUE(progress.ok());
    EXPECT_EQ(*progress, TlsSession::Progress::kClosed);
  }
}

TEST_F(TlsTest, OldProtocolsWeakCiphersAndPlainHttpFailTheHandshake) {
  auto context = TlsContext::Load(Good());
  ASSERT_TRUE(context.ok()) << context.status().message();
  struct Case {
    const char* what;
    std::function<void(SSL_CTX*)> configure;
    const char* reason;
  };
  std::vector<Case> cases = {
      {"TLS 1.1",
       [](SSL_CTX* c) {
         SSL_CTX_set_security_level(c, 0);
         SSL_CTX_set_min_proto_version(c, TLS1_1_VERSION);
         SSL_CTX_set_max_proto_version(c, TLS1_1_VERSION);
       },
       "unsupported protocol"},
      {"TLS 1.2 with CBC only",
       [](SSL_CTX* c) {
         SSL_CTX_set_max_proto_version(c, TLS1_2_VERSION);
         SSL_CTX_set_cipher_list(c, "ECDHE-ECDSA-AES128-SHA:AES128-SHA");
       },
       "no shared cipher"},
  };
  for (const Case& c : cases) {
    auto session = TlsSession::Accept(**context);
    ASSERT_TRUE(session.ok());
    Peer client(c.configure);
    std::string plaintext;
    Status status = client.Pump(**session, plaintext);
    EXPECT_FALSE(status.ok()) << c.what;
    EXPECT_NE(status.message().find(c.reason), std::string::npos)
        << c.what << ": " << status.message();
    EXPECT_FALSE((*session)->established()) << c.what;
  }

  auto session = TlsSession::Accept(**context);
  ASSERT_TRUE(session.ok());
  std::string plaintext;
  auto progress = (*session)->Receive("GET / HTTP/1.1\r\nHost: x\r\n\r\n", plaintext);
  ASSERT_FALSE(progress.ok());
  EXPECT_EQ(progress.status().message(), "http request");
  EXPECT_TRUE(plaintext.empty());
}

TEST_F(TlsTest, SessionsKeepTheirContextAfterItIsDropped) {
  auto context = TlsContext::Load(Good());
  ASSERT_TRUE(context.ok());
  auto session = TlsSession::Accept(**context);
  ASSERT_TRUE(session.ok());
  context = Status::NotFound("dropped, as a reload does");
  Peer client;
  std::string plaintext;
  ASSERT_TRUE(client.Pump(**session, plaintext).ok());
  EXPECT_TRUE((*session)->established());
}

// ---------------------------------------------------------------------------
// HttpServer::ReloadTls without a daemon

HttpServerOptions TlsOptions(const TlsFiles& files) {
  HttpServerOptions options;
  // Port 0: the kernel picks one (the config would refuse it).
  config::Endpoint any;
  any.text = "127.0.0.1@0";
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  std::memcpy(&any.address, &address, sizeof address);
  any.address_length = sizeof address;
  options.tls_listen.push_back(any);
  options.tls_cert = files.cert;
  options.tls_key = files.key;
  return options;
}

TEST_F(TlsTest, ServerLoadsAtCreateAndReloadKeepsTheOldContextOnError) {
  auto handler = [](const HttpRequest&, HttpReply reply) { reply(HttpResponse{}); };
  std::string missing = (dir_ / "missing.key").string();
  auto bad = HttpServer::Create(TlsOptions(Files(ca_.cert("server"), missing)), handler);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().message(),
            "http.tls.key " + missing + ": cannot read: No such file or directory");

  auto server = HttpServer::Create(TlsOptions(Good()), handler);
  ASSERT_TRUE(server.ok()) << server.status().message();
  EXPECT_TRUE((*server)->ReloadTls().ok());
  std::string key = test::ReadFile(ca_.key("server"));
  test::WriteFile(ca_.key("server"), "garbage\n");
  Status status = (*server)->ReloadTls();
  EXPECT_FALSE(status.ok());
  EXPECT_EQ(status.message().rfind("http.tls.key " + ca_.key("server").string() + ": ", 0), 0u)
      << status.message();
  test::WriteFile(ca_.key("server"), key);
  EXPECT_TRUE((*server)->ReloadTls().ok());

  auto plain = HttpServer::Create(HttpServerOptions{}, handler);
  ASSERT_TRUE(plain.ok());
  status = (*plain)->ReloadTls();
  EXPECT_TRUE(status.IsInvalid());
  EXPECT_NE(status.message().find("no HTTPS listener"), std::string::npos) << status.message();
}

}  // namespace
}  // namespace updns::server
