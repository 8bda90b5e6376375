// Helpers of the HTTPS end-to-end tests: a small blocking TLS client on the
// OpenSSL API (protocol versions and ciphers of our choosing, the server's
// certificate readable), and the test CA of tests/support/test_ca.h.
// Header-only; builds on dyndns_fixture.h (sockets, HTTP response parsing).
#pragma once

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <signal.h>
#include <sys/time.h>

#include <memory>

#include "tests/server/dyndns_fixture.h"
#include "tests/support/test_ca.h"

namespace updns::test {

struct TlsClientOptions {
  std::string ca_file;  // verify the server against this CA; empty = no verification
  int min_version = TLS1_2_VERSION;
  int max_version = 0;  // 0 = the highest
  // OpenSSL's security level 0, without which this OpenSSL refuses to
  // offer TLS 1.1 at all (the server must be the one that refuses it).
  bool legacy = false;
  std::string tls12_ciphers;  // empty = OpenSSL's default
};

// One TLS connection to 127.0.0.1 on blocking sockets, each read and write
// bounded by a timeout.
class TlsClient {
 public:
  // Connects and completes the handshake; false with error() otherwise.
  bool Connect(uint16_t port, const TlsClientOptions& options,
               milliseconds timeout = milliseconds(5000)) {
    // OpenSSL writes with write(2), without MSG_NOSIGNAL: a server that
    // closes first (as it should, over a limit) must not kill the test.
    ::signal(SIGPIPE, SIG_IGN);
    ERR_clear_error();
    ctx_.reset(SSL_CTX_new(TLS_client_method()));
    if (!ctx_) return Fail("SSL_CTX_new");
    if (options.legacy) SSL_CTX_set_security_level(ctx_.get(), 0);
    SSL_CTX_set_min_proto_version(ctx_.get(), options.min_version);
    SSL_CTX_set_max_proto_version(ctx_.get(), options.max_version);
    if (!options.tls12_ciphers.empty() &&
        SSL_CTX_set_cipher_list(ctx_.get(), options.tls12_ciphers.c_str()) != 1)
      return Fail("cipher list");
    if (!options.ca_file.empty()) {
      if (SSL_CTX_load_verify_locations(ctx_.get(), options.ca_file.c_str(), nullptr) != 1)
        return Fail("loading the CA");
      SSL_CTX_set_verify(ctx_.get(), SSL_VERIFY_PEER, nullptr);
    }
    fd_ = Fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    timeval tv{static_cast<time_t>(timeout.count() / 1000),
               static_cast<suseconds_t>(timeout.count() % 1000 * 1000)};
    ::setsockopt(fd_.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    ::setsockopt(fd_.get(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    SocketAddress server = Loopback4(port);
    if (::connect(fd_.get(), server.get(), server.length) != 0) {
      error_ = std::string("connect: ") + std::strerror(errno);
      return false;
    }
    ssl_.reset(SSL_new(ctx_.get()));
    SSL_set_fd(ssl_.get(), fd_.get());
    if (!options.ca_file.empty()) SSL_set1_host(ssl_.get(), "127.0.0.1");
    if (SSL_connect(ssl_.get()) != 1) return Fail("handshake");
    return true;
  }

  bool Send(std::string_view text) {
    size_t written = 0;
    return SSL_write_ex(ssl_.get(), text.data(), text.size(), &written) == 1 &&
           written == text.size();
  }

  // One Content-Length framed response; status 0 when none came whole.
  HttpResult Read() {
    HttpResult result;
    size_t head_end;
    while ((head_end = buffer_.find("\r\n\r\n")) == std::string::npos) {
      if (!Fill()) return Incomplete();
    }
    if (!ParseHead(buffer_.substr(0, head_end + 4), result)) return Incomplete();
    size_t want = std::strtoul(result.Header("content-length").value_or("0").c_str(), nullptr, 10);
    while (buffer_.size() < head_end + 4 + want) {
      if (!Fill()) return Incomplete();
    }
    result.body = buffer_.substr(head_end + 4, want);
    result.raw = buffer_.substr(0, head_end + 4 + want);
    buffer_.erase(0, head_end + 4 + want);
    return result;
  }

  HttpResult Exchange(std::string_view request) {
    if (!Send(request)) return {};
    return Read();
  }

  // Reads until the server ends the connection: true on close_notify or
  // EOF, false on timeout or when data arrives instead.
  bool WaitClosed() {
    char byte;
    size_t n = 0;
    int rc = SSL_read_ex(ssl_.get(), &byte, 1, &n);
    if (rc == 1) return false;
    int error = SSL_get_error(ssl_.get(), rc);
    return error == SSL_ERROR_ZERO_RETURN || (error == SSL_ERROR_SYSCALL && errno != EAGAIN);
  }

  // The server certificate's serial as an integer and its subject's CN.
  long PeerSerial() const {
    X509* cert = SSL_get0_peer_certificate(ssl_.get());
    return cert ? ASN1_INTEGER_get(X509_get0_serialNumber(cert)) : -1;
  }
  std::string PeerCommonName() const {
    X509* cert = SSL_get0_peer_certificate(ssl_.get());
    if (cert == nullptr) return "";
    char cn[256] = "";
    X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, cn, sizeof cn);
    return cn;
  }
  std::string Version() const { return SSL_get_version(ssl_.get()); }
  const std::string& error() const { return error_; }
  std::string& buffer() { return buffer_; }

 private:
  struct CtxDeleter {
    void operator()(SSL_CTX* c) const { SSL_CTX_free(c); }
  };
  struct SslDeleter {
    void operator()(SSL* s) const { SSL_free(s); }
  };

  bool Fail(const std::string& what) {
    unsigned long code = ERR_get_error();
    char text[256] = "no OpenSSL error";
    if (code != 0) ERR_error_string_n(code, text, sizeof text);
    error_ = what + ": " + text;
    ERR_clear_error();
    return false;
  }
  bool Fill() {
    char chunk[4096];
    size_t n = 0;
    if (SSL_read_ex(ssl_.get(), chunk, sizeof chunk, &n) != 1) return false;
    buffer_.append(chunk, n);
    return true;
  }
  HttpResult Incomplete() {
    HttpResult result;
    result.raw = buffer_;
    return result;
  }

  std::unique_ptr<SSL_CTX, CtxDeleter> ctx_;
  std::unique_ptr<SSL, SslDeleter> ssl_;  // does not close fd_
  Fd fd_;
  std::string buffer_;
  std::string error_;
};

}  // namespace updns::test
