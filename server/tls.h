// Server-side TLS with OpenSSL 3, apart from sockets: a TlsContext is a
// certificate and key loaded into an SSL_CTX; a TlsSession is one
// connection's TLS state driven through memory BIOs: the caller feeds it the
// bytes read from the socket and writes out what it produces. HttpServer
// keeps one TlsSession per HTTPS connection; tests pump two of them into
// each other.
//
// Protocol: TLS 1.2 and 1.3 only. TLS 1.3 uses OpenSSL's default suites;
// TLS 1.2 only forward-secret AEAD suites (Mozilla's "intermediate" list:
// ECDHE/DHE with AES-GCM or ChaCha20-Poly1305). No renegotiation, no
// compression.
#pragma once

#include <openssl/ssl.h>

#include <memory>
#include <string>
#include <string_view>

#include "common/status.h"

namespace updns::server {

struct SslCtxDeleter {
  void operator()(SSL_CTX* ctx) const noexcept { SSL_CTX_free(ctx); }
};
struct SslDeleter {
  void operator()(SSL* ssl) const noexcept { SSL_free(ssl); }
};
using SslCtxPtr = std::unique_ptr<SSL_CTX, SslCtxDeleter>;
using SslPtr = std::unique_ptr<SSL, SslDeleter>;

// The PEM files of a server: `cert` holds the certificate, optionally
// followed by its intermediates; `key` the unencrypted private key (may be
// the same file). `name` prefixes them in messages ("http.tls" gives
// "http.tls.key /etc/updns/key.pem: key does not match the certificate").
struct TlsFiles {
  std::string cert;
  std::string key;
  std::string name = "tls";
};

// An SSL_CTX holding one certificate and key. Immutable once loaded, so it
// may be shared between threads. Sessions made from it keep the SSL_CTX
// alive on their own (OpenSSL counts references): a context may be dropped
// while its connections go on.
class TlsContext {
 public:
  // Reads both files now. Errors name the file and the problem: unreadable,
  // not PEM, an encrypted key (no passphrase prompt, ever), a key that does
  // not match the certificate.
  static Result<std::shared_ptr<const TlsContext>> Load(const TlsFiles& files);

  // "CN = dyn.example, serial 0x1001, valid until Mar  1 12:00:00 2027 GMT"
  // (" (EXPIRED)" after it when it is), for the log.
  const std::string& description() const { return description_; }
  SSL_CTX* handle() const { return ctx_.get(); }

 private:
  TlsContext(SslCtxPtr ctx, std::string description)
      : ctx_(std::move(ctx)), description_(std::move(description)) {}
  SslCtxPtr ctx_;
  std::string description_;
};

// One server-side TLS connection. Not thread-safe; use it on one thread.
class TlsSession {
 public:
  // A session in the accept state, taking its own reference on the context.
  static Result<std::unique_ptr<TlsSession>> Accept(const TlsContext& context);
  ~TlsSession() = default;
  TlsSession(const TlsSession&) = delete;
  TlsSession& operator=(const TlsSession&) = delete;

  enum class Progress {
    kOk,      // go on: more input may be needed; take the output
    kClosed,  // the peer sent close_notify: nothing more will come
  };
  // Takes `ciphertext` read from the socket, advances the handshake and
  // appends the application data it decrypts to `plaintext`. An error
  // (a bad client hello, plain HTTP, TLS 1.1, a bad record) ends the
  // session: it says what went wrong in OpenSSL's words ("wrong version
  // number", "unsupported protocol"); the output may still hold an alert
  // worth sending before the socket closes.
  Result<Progress> Receive(std::string_view ciphertext, std::string& plaintext);
  // Encrypts `plaintext` into the output.
  // REQUIRES: established().
  Status Send(std::string_view plaintext);
  // Queues close_notify (once). Later Send()s fail.
  void Close();
  // Ciphertext to write to the socket, in order; empties the output.
  std::string TakeOutput();

  // The handshake has completed.
  bool established() const;
  // "TLSv1.3 TLS_AES_256_GCM_SHA384" once established, for the log.
  std::string Describe() const;

 private:
  explicit TlsSession(SslPtr ssl) : ssl_(std::move(ssl)) {}
  SslPtr ssl_;          // owns the memory BIOs
  BIO* in_ = nullptr;   // what the peer sent, for OpenSSL to read
  BIO* out_ = nullptr;  // what OpenSSL wrote, for the socket
  bool closed_ = false;
};

}  // namespace updns::server
