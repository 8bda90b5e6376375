#include "server/tls.h"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <utility>

namespace updns::server {
namespace {

// PEM files of a server are a few KiB; anything this large is the wrong file.
constexpr size_t kMaxPemBytes = size_t{1} << 20;

// Mozilla's "intermediate" TLS 1.2 suites (forward secrecy, AEAD only); TLS
// 1.3 keeps OpenSSL's default suites, which are all of that kind.
constexpr const char* kTls12Ciphers =
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:"
    "DHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES256-GCM-SHA384:DHE-RSA-CHACHA20-POLY1305";

struct BioDeleter {
  void operator()(BIO* bio) const noexcept { BIO_free(bio); }
};
struct X509Deleter {
  void operator()(X509* x) const noexcept { X509_free(x); }
};
struct PkeyDeleter {
  void operator()(EVP_PKEY* k) const noexcept { EVP_PKEY_free(k); }
};
struct FileCloser {
  void operator()(std::FILE* f) const noexcept { std::fclose(f); }
};
using BioPtr = std::unique_ptr<BIO, BioDeleter>;
using X509Ptr = std::unique_ptr<X509, X509Deleter>;
using PkeyPtr = std::unique_ptr<EVP_PKEY, PkeyDeleter>;

// OpenSSL's reason for the oldest error queued on this thread ("no start
// line", "wrong version number"), and clears the queue. The oldest is the
// cause; later ones are callers giving up.
std::string TakeOpenSslReason() {
  unsigned long code = ERR_get_error();
  std::string reason;
  if (code != 0) {
    const char* text = ERR_reason_error_string(code);
    if (text != nullptr) {
      reason = text;
    } else {
      char buf[256];
      ERR_error_string_n(code, buf, sizeof buf);
      reason = buf;
    }
  }
  ERR_clear_error();
  return reason.empty() ? "unknown OpenSSL error" : reason;
}

Result<std::string> ReadPemFile(const std::string& path) {
  std::unique_ptr<std::FILE, FileCloser> file(std::fopen(path.c_str(), "rb"));
  if (!file) return Status::IoError(std::string("cannot read: ") + std::strerror(errno));
  std::string text;
  char buffer[8192];
  while (size_t n = std::fread(buffer, 1, sizeof buffer, file.get())) {
    text.append(buffer, n);
    if (text.size() > kMaxPemBytes) return Status::Invalid("larger than 1 MiB; not a PEM file");
  }
  if (std::ferror(file.get()))
    return Status::IoError(std::string("cannot read: ") + std::strerror(errno));
  return text;
}

BioPtr MemoryBio(const std::string& text) {
  return BioPtr(BIO_new_mem_buf(text.data(), static_cast<int>(text.size())));
}

// Never ask for a passphrase: a daemon has no terminal, and a prompt would
// block start-up (OpenSSL's default prompts on the tty).
int NoPassphrase(char*, int, int, void*) { return -1; }

std::string Name(X509_NAME* name) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio || X509_NAME_print_ex(bio.get(), name, 0, XN_FLAG_ONELINE & ~ASN1_STRFLGS_ESC_MSB) < 0)
    return "?";
  char* data = nullptr;
  long n = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<size_t>(n));
}

std::string Describe(X509* cert) {
  std::string out = Name(X509_get_subject_name(cert));
  if (BIGNUM* serial = ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert), nullptr)) {
    if (char* hex = BN_bn2hex(serial)) {
      out += std::string(", serial 0x") + hex;
      OPENSSL_free(hex);
    }
    BN_free(serial);
  }
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (bio && ASN1_TIME_print(bio.get(), X509_get0_notAfter(cert)) == 1) {
    char* data = nullptr;
    long n = BIO_get_mem_data(bio.get(), &data);
    out += ", valid until " + std::string(data, static_cast<size_t>(n));
  }
  return out;
}

// Loads the certificate and the chain after it into `ctx`; returns the
// leaf's description.
Result<std::string> LoadCertificate(SSL_CTX* ctx, const std::string& path) {
  Result<std::string> text = ReadPemFile(path);
  if (!text.ok()) return text.status();
  BioPtr bio = MemoryBio(*text);
  X509Ptr leaf(PEM_read_bio_X509_AUX(bio.get(), nullptr, NoPassphrase, nullptr));
  if (!leaf) {
    return Status::Invalid(
        "no PEM certificate in it (expected '-----BEGIN CERTIFICATE-----'; OpenSSL: " +
        TakeOpenSslReason() + ")");
  }
  if (SSL_CTX_use_certificate(ctx, leaf.get()) != 1)
    return Status::Invalid("certificate refused: " + TakeOpenSslReason());
  while (X509Ptr extra{PEM_read_bio_X509(bio.get(), nullptr, NoPassphrase, nullptr)}) {
    if (SSL_CTX_add0_chain_cert(ctx, extra.get()) != 1)
      return Status::Invalid("chain certificate refused: " + TakeOpenSslReason());
    static_cast<void>(extra.release());  // owned by ctx now
  }
  // The loop ends on "no start line" at the end of the file, which is no error.
  ERR_clear_error();
  std::string description = Describe(leaf.get());
  if (X509_cmp_current_time(X509_get0_notAfter(leaf.get())) < 0) description += " (EXPIRED)";
  return description;
}

Status LoadKey(SSL_CTX* ctx, const std::string& path, const std::string& cert_path) {
  Result<std::string> text = ReadPemFile(path);
  if (!text.ok()) return text.status();
  if (text->find("ENCRYPTED") != std::string::npos) {
    return Status::Invalid(
        "the key is encrypted and a daemon cannot ask for its passphrase; store it "
        "decrypted (openssl pkey -in KEY -out KEY.plain), readable by the daemon only");
  }
  BioPtr bio = MemoryBio(*text);
  PkeyPtr key(PEM_read_bio_PrivateKey(bio.get(), nullptr, NoPassphrase, nullptr));
  if (!key) {
    return Status::Invalid(
        "no PEM private key in it (expected '-----BEGIN PRIVATE KEY-----' or similar; OpenSSL: " +
        TakeOpenSslReason() + ")");
  }
  if (SSL_CTX_use_PrivateKey(ctx, key.get()) != 1 || SSL_CTX_check_private_key(ctx) != 1) {
    ERR_clear_error();
    return Status::Invalid("key does not match the certificate " + cert_path);
  }
  return Status::Ok();
}

}  // namespace

Result<std::shared_ptr<const TlsContext>> TlsContext::Load(const TlsFiles& files) {
  ERR_clear_error();
  SslCtxPtr ctx(SSL_CTX_new(TLS_server_method()));
  if (!ctx) return Status::IoError("cannot create a TLS context: " + TakeOpenSslReason());
  SSL_CTX* c = ctx.get();
  SSL_CTX_set_min_proto_version(c, TLS1_2_VERSION);
  // Client-initiated renegotiation costs the server handshakes on demand;
  // no client of ours needs it. Every suite offered is strong, so the
  // client's preference stands (ChaCha20 where AES is slow), as Mozilla advises.
  SSL_CTX_set_options(c, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION);
  // Idle keep-alive connections give their read and write buffers back.
  SSL_CTX_set_mode(c, SSL_MODE_RELEASE_BUFFERS);
  SSL_CTX_set_default_passwd_cb(c, NoPassphrase);
  if (SSL_CTX_set_cipher_list(c, kTls12Ciphers) != 1)
    return Status::IoError("cannot set the TLS 1.2 ciphers: " + TakeOpenSslReason());
  SSL_CTX_set_dh_auto(c, 1);  // DHE suites use RFC 7919 groups sized to the key

  const std::string cert_label = files.name + ".cert " + files.cert + ": ";
  const std::string key_label = files.name + ".key " + files.key + ": ";
  Result<std::string> description = LoadCertificate(c, files.cert);
  if (!description.ok()) return description.status().WithContext(cert_label);
  if (Status status = LoadKey(c, files.key, files.cert); !status.ok())
    return status.WithContext(key_label);
  return std::shared_ptr<const TlsContext>(
      new TlsContext(std::move(ctx), std::move(description).value()));
}

Result<std::unique_ptr<TlsSession>> TlsSession::Accept(const TlsContext& context) {
  SslPtr ssl(SSL_new(context.handle()));
  if (!ssl) return Status::IoError("cannot create a TLS session: " + TakeOpenSslReason());
  BIO* in = BIO_new(BIO_s_mem());
  BIO* out = BIO_new(BIO_s_mem());
  if (in == nullptr || out == nullptr) {
    BIO_free(in);
    BIO_free(out);
    return Status::IoError("cannot create TLS buffers: out of memory");
  }
  // An empty memory BIO reports "retry" rather than EOF: more may come.
  BIO_set_mem_eof_return(in, -1);
  SSL_set_bio(ssl.get(), in, out);  // owned by ssl now
  SSL_set_accept_state(ssl.get());
  std::unique_ptr<TlsSession> session(new TlsSession(std::move(ssl)));
  session->in_ = in;
  session->out_ = out;
  return session;
}

Result<TlsSession::Progress> TlsSession::Receive(std::string_view ciphertext,
                                                 std::string& plaintext) {
  // OpenSSL's error queue is per thread; a stale entry would be taken for
  // this session's error.
  ERR_clear_error();
  if (!ciphertext.empty() &&
      BIO_write(in_, ciphertext.data(), static_cast<int>(ciphertext.size())) !=
          static_cast<int>(ciphertext.size())) {
    return Status::IoError("cannot buffer TLS input: out of memory");
  }
  char buffer[16384];
  while (true) {
    size_t n = 0;
    int rc = SSL_read_ex(ssl_.get(), buffer, sizeof buffer, &n);
    if (rc == 1) {
      plaintext.append(buffer, n);
      continue;
    }
    switch (SSL_get_error(ssl_.get(), rc)) {
      case SSL_ERROR_WANT_READ:
      case SSL_ERROR_WANT_WRITE:  // memory BIOs grow; output is taken by the caller
        return Progress::kOk;
      case SSL_ERROR_ZERO_RETURN:
        return Progress::kClosed;
      case SSL_ERROR_SSL:
        return Status::Invalid(TakeOpenSslReason());
      default:
        return Status::Invalid("TLS error " + std::to_string(SSL_get_error(ssl_.get(), rc)) + ": " +
                               TakeOpenSslReason());
    }
  }
}

Status TlsSession::Send(std::string_view plaintext) {
  if (closed_) return Status::Invalid("the TLS session is closed");
  ERR_clear_error();
  while (!plaintext.empty()) {
    size_t n = 0;
    if (SSL_write_ex(ssl_.get(), plaintext.data(), plaintext.size(), &n) != 1)
      return Status::IoError("TLS write failed: " + TakeOpenSslReason());
    plaintext.remove_prefix(n);
  }
  return Status::Ok();
}

void TlsSession::Close() {
  if (closed_) return;
  closed_ = true;
  ERR_clear_error();
  // Only after a handshake: close_notify in the middle of one is an error.
  if (SSL_is_init_finished(ssl_.get())) SSL_shutdown(ssl_.get());
  ERR_clear_error();
}

std::string TlsSession::TakeOutput() {
  std::string out(BIO_ctrl_pending(out_), '\0');
  if (out.empty()) return out;
  int n = BIO_read(out_, out.data(), static_cast<int>(out.size()));
  out.resize(n > 0 ? static_cast<size_t>(n) : 0);
  return out;
}

bool TlsSession::established() const { return SSL_is_init_finished(ssl_.get()) == 1; }

std::string TlsSession::Describe() const {
  return std::string(SSL_get_version(ssl_.get())) + " " + SSL_get_cipher_name(ssl_.get());
}

}  // namespace updns::server
