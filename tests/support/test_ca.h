// A certificate authority for TLS tests, made with the `openssl` command
// line in a directory the caller owns. Header-only; runs openssl through
// RunCommand (tests/support/process.h).
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "tests/support/process.h"

namespace updns::test {

// A certificate authority in a directory: ca.pem and ca.key, and server
// certificates NAME.pem / NAME.key it signs (EC P-256, valid two days, for
// 127.0.0.1 and localhost).
class TestCa {
 public:
  // Makes the CA in `dir`. False with a message when openssl fails.
  bool Create(const std::filesystem::path& dir, std::string* error) {
    dir_ = dir;
    return Run({"openssl",
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-nodes",
                "-keyout",
                (dir_ / "ca.key").string(),
                "-out",
                ca_file().string(),
                "-days",
                "2",
                "-subj",
                "/CN=updns test CA",
                "-addext",
                "basicConstraints=critical,CA:TRUE",
                "-addext",
                "keyUsage=critical,keyCertSign"},
               error);
  }

  // Issues NAME.pem (subject CN=`cn`, serial `serial`) and NAME.key.
  bool Issue(const std::string& name, const std::string& cn, unsigned serial,
             std::string* error) const {
    WriteFile(dir_ / "server.ext",
              "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n"
              "extendedKeyUsage=serverAuth\n");
    std::string csr = (dir_ / (name + ".csr")).string();
    return Run({"openssl", "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                "-keyout", key(name).string(), "-out", csr, "-subj", "/CN=" + cn},
               error) &&
           Run({"openssl", "x509", "-req", "-in", csr, "-CA", ca_file().string(), "-CAkey",
                (dir_ / "ca.key").string(), "-set_serial", std::to_string(serial), "-days", "2",
                "-extfile", (dir_ / "server.ext").string(), "-out", cert(name).string()},
               error);
  }

  std::filesystem::path ca_file() const { return dir_ / "ca.pem"; }
  std::filesystem::path cert(const std::string& name) const { return dir_ / (name + ".pem"); }
  std::filesystem::path key(const std::string& name) const { return dir_ / (name + ".key"); }

 private:
  bool Run(const std::vector<std::string>& argv, std::string* error) const {
    CommandResult r = RunCommand(argv, "", dir_);
    if (r.exit_code == 0) return true;
    *error = argv[0] + " " + argv[1] + " failed: " + r.Describe();
    return false;
  }
  std::filesystem::path dir_;
};

}  // namespace updns::test
