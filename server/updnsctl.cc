// updnsctl: operator commands on the store, whether or not updnsd runs.
// LMDB serializes our write transactions with the daemon's.
#include <arpa/inet.h>
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <fstream>
#include <functional>
#include <initializer_list>
#include <iostream>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "config/config.h"
#include "server/setup.h"
#include "storage/schema.h"
#include "update/accounts.h"
#include "update/links.h"
#include "update/outbox.h"
#include "zone/name.h"
#include "zone/zone_edit.h"
#include "zone/zone_file.h"

namespace {

constexpr const char* kUsage =
    "usage: updnsctl --config FILE COMMAND [ARGS]\n"
    "\n"
    "Commands:\n"
    "  zone import ZONE FILE       load a master file as ZONE's data (one transaction;\n"
    "                              on error nothing changes)\n"
    "  zone export ZONE [OUTFILE]  write ZONE as a master file (default: stdout)\n"
    "  zone list                   configured zones and whether the store has them\n"
    "\n"
    "  account add NAME --email E [--host-limit N]\n"
    "                              create an account; its password is the first line\n"
    "                              of stdin (host limit default: accounts.host_limit)\n"
    "  account list                every account with state and host count\n"
    "  account show NAME           one account's fields\n"
    "  account disable|enable NAME a disabled account cannot log in or add hosts\n"
    "  account delete NAME         delete the account and all its hosts\n"
    "\n"
    "  host add FQDN --account NAME\n"
    "                              add a host below a configured zone; its name\n"
    "                              answers NODATA until the first update\n"
    "  host list [--account NAME]  hosts with state, addresses, token and last update\n"
    "  host disable|enable FQDN    a disabled host refuses updates, keeps its records\n"
    "  host delete FQDN            delete the host and its DNS records\n"
    "\n"
    "  token create FQDN           new update token for the host, printed once;\n"
    "                              the old one stops working\n"
    "  token create-missing --account NAME [--csv FILE]\n"
    "                              tokens for every active host of the account that\n"
    "                              has none, as CSV (hostname,token) to FILE (created,\n"
    "                              mode 0600; e.g. spdyn_update_token.csv) or stdout\n"
    "  token revoke FQDN           remove the host's token\n"
    "\n"
    "  reseller add NAME --email E create a reseller account; its password is the\n"
    "                              first line of stdin\n"
    "  reseller list               every reseller with e-mail and linked account\n"
    "  reseller delete NAME        delete a reseller account (refused while linked)\n"
    "  link ACCOUNT --reseller NAME\n"
    "                              link the account to the reseller account: every\n"
    "                              active host needs a token used at least once, and\n"
    "                              neither side may be linked already\n"
    "  unlink ACCOUNT              remove the account's link; its password stops\n"
    "                              working and a password reset mail is queued\n"
    "\n"
    "  outbox list                 queued mail: id, to, subject, attempts, next\n"
    "                              attempt, last error\n"
    "\n"
    "Options:\n"
    "  -c, --config FILE   the YAML configuration updnsd uses (required)\n"
    "  -h, --help          show this help\n"
    "\n"
    "Exit status: 0 on success, 1 when the command failed, 2 on a usage error.\n";

int Usage(const std::string& problem) {
  std::fprintf(stderr, "updnsctl: %s\n\n%s", problem.c_str(), kUsage);
  return 2;
}

int Fail(const updns::Status& status) {
  std::fprintf(stderr, "updnsctl: %s\n", std::string(status.message()).c_str());
  return 1;
}

int ZoneCommand(const updns::config::Config& config, const std::vector<std::string>& args) {
  using namespace updns;
  if (args.empty()) return Usage("zone: missing subcommand (import, export, list)");
  const std::string& sub = args[0];
  if (sub == "list") {
    if (args.size() != 1) return Usage("zone list takes no arguments");
    auto store = server::OpenStore(config);
    if (!store.ok()) return Fail(store.status());
    auto txn = (*store)->BeginRead();
    if (!txn.ok()) return Fail(txn.status());
    for (const config::ZoneConfig& zone : config.zones) {
      auto wire = zone::WireNameFromText(zone.name);
      auto record = wire.ok() ? storage::ReadZoneRecord(*txn, *wire) : wire.status();
      std::printf("%s\t%s\n", zone.name.c_str(), record.ok() ? "loaded" : "not in store");
    }
    return 0;
  }
  if (args.size() < 2) return Usage("zone " + sub + ": missing ZONE");
  const std::string& name = args[1];
  if (!config.FindZone(name))
    return Fail(Status::NotFound("zone " + name + " is not configured in " + config.source +
                                 "; add it under zones: first"));
  if (sub == "import") {
    if (args.size() != 3) return Usage("zone import needs ZONE and FILE");
    auto store = server::OpenStore(config);
    if (!store.ok()) return Fail(store.status());
    auto result = zone::ImportZoneFile(**store, name, args[2], /*only_if_changed=*/false,
                                       config.FindZone(name)->host_ttl,
                                       server::JournalLimitsOf(config));
    if (!result.ok()) return Fail(result.status());
    std::printf("zone %s: imported %zu records at %zu names from %s\n", name.c_str(),
                result->records, result->nodes, args[2].c_str());
    return 0;
  }
  if (sub == "export") {
    if (args.size() > 3) return Usage("zone export takes ZONE and an optional OUTFILE");
    auto store = server::OpenStore(config);
    if (!store.ok()) return Fail(store.status());
    if (args.size() == 3) {
      std::ofstream out(args[2]);
      if (!out) return Fail(Status::IoError("cannot write " + args[2]));
      if (Status s = zone::ExportZone(**store, name, out); !s.ok()) return Fail(s);
      out.close();
      if (!out) return Fail(Status::IoError("error writing " + args[2]));
      return 0;
    }
    if (Status s = zone::ExportZone(**store, name, std::cout); !s.ok()) return Fail(s);
    return std::cout.flush() ? 0 : 1;
  }
  return Usage("zone: unknown subcommand '" + sub + "'");
}

// --- accounts, hosts, tokens --------------------------------------------------

// A subcommand's words: positional arguments and "--name VALUE" options.
struct Words {
  std::vector<std::string> positional;
  std::map<std::string, std::string> options;
  std::optional<std::string> Option(const std::string& name) const {
    auto it = options.find(name);
    if (it == options.end()) return std::nullopt;
    return it->second;
  }
};

// Splits `args` (after the subcommand); `problem` names the first usage error.
std::optional<Words> SplitWords(const std::vector<std::string>& args,
                                std::initializer_list<std::string> allowed, std::string& problem) {
  Words words;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a.rfind("--", 0) != 0) {
      words.positional.push_back(a);
      continue;
    }
    std::string name = a, value;
    bool has_value = false;
    if (size_t eq = a.find('='); eq != std::string::npos) {
      name = a.substr(0, eq);
      value = a.substr(eq + 1);
      has_value = true;
    }
    if (std::find(allowed.begin(), allowed.end(), name) == allowed.end()) {
      problem = "unknown option '" + name + "'";
      return std::nullopt;
    }
    if (!has_value) {
      if (i + 1 >= args.size()) {
        problem = name + " needs a value";
        return std::nullopt;
      }
      value = args[++i];
    }
    if (!words.options.emplace(name, value).second) {
      problem = name + " given twice";
      return std::nullopt;
    }
  }
  return words;
}

uint64_t Now() { return static_cast<uint64_t>(std::time(nullptr)); }

std::string FormatTime(uint64_t seconds) {
  if (seconds == 0) return "-";
  std::time_t t = static_cast<std::time_t>(seconds);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char text[32];
  std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return text;
}

std::string FormatAddress(const std::string& bytes) {
  char text[INET6_ADDRSTRLEN] = "-";
  if (bytes.size() == 4) inet_ntop(AF_INET, bytes.data(), text, sizeof text);
  if (bytes.size() == 16) inet_ntop(AF_INET6, bytes.data(), text, sizeof text);
  return text;
}

const char* StateName(updns::storage::State state) {
  return state == updns::storage::State::kActive ? "active" : "disabled";
}

std::vector<updns::update::HostZone> HostZones(const updns::config::Config& config) {
  std::vector<updns::update::HostZone> zones;
  for (const updns::config::ZoneConfig& zone : config.zones)
    zones.push_back({zone.name, zone.host_ttl});
  return zones;
}

// Runs `change` in one write transaction, bumps the serial of every zone it
// changed, commits. `before_commit` (optional) runs after the change and
// before the commit; an error from it aborts everything.
updns::Status WriteAndCommit(
    const updns::config::Config& config,
    const std::function<updns::Status(updns::storage::WriteTxn&, std::set<std::string>&)>& change,
    const std::function<updns::Status()>& before_commit = nullptr) {
  using namespace updns;
  auto store = server::OpenStore(config);
  if (!store.ok()) return store.status();
  auto txn = (*store)->BeginWrite();
  if (!txn.ok()) return txn.status();
  std::set<std::string> changed_zones;
  if (Status s = change(*txn, changed_zones); !s.ok()) return s;
  if (Status s = zone::FinishZoneChanges(*txn, changed_zones, server::JournalLimitsOf(config));
      !s.ok())
    return s;
  if (before_commit) {
    if (Status s = before_commit(); !s.ok()) return s;
  }
  return txn->Commit();
}

// Runs `read` on a read transaction of the configured store.
updns::Status Read(const updns::config::Config& config,
                   const std::function<updns::Status(const updns::storage::ReadTxn&)>& read) {
  auto store = updns::server::OpenStore(config);
  if (!store.ok()) return store.status();
  auto txn = (*store)->BeginRead();
  if (!txn.ok()) return txn.status();
  return read(*txn);
}

// Reads the password from the first line of stdin; empty when there is none.
std::string ReadPassword(const char* kind, const std::string& name) {
  if (isatty(STDIN_FILENO)) std::fprintf(stderr, "password for %s %s: ", kind, name.c_str());
  std::string password;
  if (!std::getline(std::cin, password)) password.clear();
  if (!password.empty() && password.back() == '\r') password.pop_back();
  return password;
}

int AccountCommand(const updns::config::Config& config, const std::vector<std::string>& args) {
  using namespace updns;
  if (args.empty())
    return Usage("account: missing subcommand (add, list, show, disable, enable, delete)");
  const std::string& sub = args[0];
  std::string problem;
  auto words =
      SplitWords({args.begin() + 1, args.end()},
                 sub == "add" ? std::initializer_list<std::string>{"--email", "--host-limit"}
                              : std::initializer_list<std::string>{},
                 problem);
  if (!words) return Usage("account " + sub + ": " + problem);
  const auto& positional = words->positional;

  if (sub == "list") {
    if (!positional.empty()) return Usage("account list takes no arguments");
    Status s = Read(config, [](const storage::ReadTxn& txn) {
      auto accounts = update::ListAccounts(txn);
      if (!accounts.ok()) return accounts.status();
      std::printf("NAME\tSTATE\tHOSTS\tLIMIT\tEMAIL\tCREATED\n");
      for (const storage::AccountRecord& account : *accounts) {
        auto hosts = update::CountHosts(txn, account.name);
        if (!hosts.ok()) return hosts.status();
        std::printf("%s\t%s\t%zu\t%u\t%s\t%s\n", account.name.c_str(), StateName(account.state),
                    *hosts, account.host_limit, account.email.c_str(),
                    FormatTime(account.created_at).c_str());
      }
      return Status::Ok();
    });
    return s.ok() ? 0 : Fail(s);
  }
  if (sub != "add" && sub != "show" && sub != "disable" && sub != "enable" && sub != "delete")
    return Usage("account: unknown subcommand '" + sub + "'");
  if (positional.size() != 1) return Usage("account " + sub + " needs exactly one account NAME");
  const std::string& name = positional[0];

  if (sub == "add") {
    auto email = words->Option("--email");
    if (!email) return Usage("account add needs --email E");
    uint32_t host_limit = config.accounts.host_limit;
    if (auto limit = words->Option("--host-limit")) {
      auto [end, ec] = std::from_chars(limit->data(), limit->data() + limit->size(), host_limit);
      if (ec != std::errc() || end != limit->data() + limit->size() || limit->empty() ||
          (*limit)[0] == '+')
        return Usage("--host-limit needs a number from 0 to 4294967295, got '" + *limit + "'");
    }
    std::string password = ReadPassword("account", name);
    if (password.empty())
      return Fail(Status::Invalid("account '" + name +
                                  "': no password on stdin (give it as the first line)"));
    Status s = WriteAndCommit(config, [&](storage::WriteTxn& txn, std::set<std::string>&) {
      return update::CreateAccount(txn, name, *email, password, host_limit, Now());
    });
    if (!s.ok()) return Fail(s);
    std::printf("account %s created (host limit %u)\n", update::NormalizeAccountName(name)->c_str(),
                host_limit);
    return 0;
  }
  if (sub == "show") {
    Status s = Read(config, [&](const storage::ReadTxn& txn) {
      auto account = update::GetAccount(txn, name);
      if (!account.ok()) return account.status();
      auto hosts = update::CountHosts(txn, account->name);
      if (!hosts.ok()) return hosts.status();
      std::printf(
          "name: %s\nemail: %s\nstate: %s\nhosts: %zu\nhost limit: %u\ncreated: %s\n"
          "linked reseller: %s\n",
          account->name.c_str(), account->email.c_str(), StateName(account->state), *hosts,
          account->host_limit, FormatTime(account->created_at).c_str(),
          account->linked_reseller.empty() ? "-" : account->linked_reseller.c_str());
      return Status::Ok();
    });
    return s.ok() ? 0 : Fail(s);
  }
  if (sub == "disable" || sub == "enable") {
    storage::State state = sub == "enable" ? storage::State::kActive : storage::State::kDisabled;
    Status s = WriteAndCommit(config, [&](storage::WriteTxn& txn, std::set<std::string>&) {
      return update::SetAccountState(txn, name, state);
    });
    if (!s.ok()) return Fail(s);
    std::printf("account %s %s\n", update::NormalizeAccountName(name)->c_str(), StateName(state));
    return 0;
  }
  size_t deleted_hosts = 0;  // sub == "delete"
  Status s = WriteAndCommit(config, [&](storage::WriteTxn& txn, std::set<std::string>& zones) {
    auto hosts = update::CountHosts(txn, name);
    if (!hosts.ok()) return hosts.status();
    deleted_hosts = *hosts;
    return update::DeleteAccount(txn, name, zones);
  });
  if (!s.ok()) return Fail(s);
  std::printf("account %s deleted with %zu host(s)\n", update::NormalizeAccountName(name)->c_str(),
              deleted_hosts);
  return 0;
}

int HostCommand(const updns::config::Config& config, const std::vector<std::string>& args) {
  using namespace updns;
  if (args.empty()) return Usage("host: missing subcommand (add, list, disable, enable, delete)");
  const std::string& sub = args[0];
  std::string problem;
  auto words =
      SplitWords({args.begin() + 1, args.end()},
                 sub == "add" || sub == "list" ? std::initializer_list<std::string>{"--account"}
                                               : std::initializer_list<std::string>{},
                 problem);
  if (!words) return Usage("host " + sub + ": " + problem);
  const auto& positional = words->positional;
  auto account = words->Option("--account");

  if (sub == "list") {
    if (!positional.empty()) return Usage("host list takes only --account NAME");
    Status s = Read(config, [&](const storage::ReadTxn& txn) {
      auto hosts = account ? update::ListHosts(txn, *account) : update::ListHosts(txn);
      if (!hosts.ok()) return hosts.status();
      std::printf("HOST\tACCOUNT\tSTATE\tA\tAAAA\tTOKEN\tTOKEN_USED\tLAST_UPDATE\n");
      for (const storage::HostRecord& host : *hosts) {
        std::printf("%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", host.name.c_str(), host.account.c_str(),
                    StateName(host.state), FormatAddress(host.ipv4).c_str(),
                    FormatAddress(host.ipv6).c_str(), host.has_token() ? "yes" : "no",
                    host.has_token() ? (host.token_used ? "yes" : "no") : "-",
                    FormatTime(host.updated_at).c_str());
      }
      return Status::Ok();
    });
    return s.ok() ? 0 : Fail(s);
  }
  if (sub != "add" && sub != "disable" && sub != "enable" && sub != "delete")
    return Usage("host: unknown subcommand '" + sub + "'");
  if (positional.size() != 1) return Usage("host " + sub + " needs exactly one FQDN");
  const std::string& fqdn = positional[0];
  auto normalized = update::NormalizeHostName(fqdn);
  std::string shown = normalized.ok() ? *normalized : fqdn;

  if (sub == "add") {
    if (!account) return Usage("host add needs --account NAME");
    Status s = WriteAndCommit(config, [&](storage::WriteTxn& txn, std::set<std::string>& zones) {
      return update::AddHost(txn, fqdn, *account, HostZones(config), Now(), zones);
    });
    if (!s.ok()) return Fail(s);
    std::printf("host %s added to account %s\n", shown.c_str(),
                update::NormalizeAccountName(*account)->c_str());
    return 0;
  }
  if (sub == "disable" || sub == "enable") {
    storage::State state = sub == "enable" ? storage::State::kActive : storage::State::kDisabled;
    Status s = WriteAndCommit(config, [&](storage::WriteTxn& txn, std::set<std::string>&) {
      return update::SetHostState(txn, fqdn, state);
    });
    if (!s.ok()) return Fail(s);
    std::printf("host %s %s\n", shown.c_str(), StateName(state));
    return 0;
  }
  Status s = WriteAndCommit(config, [&](storage::WriteTxn& txn, std::set<std::string>& zones) {
    return update::DeleteHost(txn, fqdn, zones);
  });
  if (!s.ok()) return Fail(s);
  std::printf("host %s deleted\n", shown.c_str());
  return 0;
}

// Creates `path` (refusing to replace a file: it may hold the only copy of
// earlier tokens) readable by its owner only, and writes `text` to it.
updns::Status WriteNewSecretFile(const std::string& path, const std::string& text) {
  int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) {
    std::string hint = errno == EEXIST ? " (it exists; remove it or choose another name)" : "";
    return updns::Status::IoError("cannot create " + path + ": " + std::strerror(errno) + hint);
  }
  size_t done = 0;
  while (done < text.size()) {
    ssize_t n = write(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    done += static_cast<size_t>(n);
  }
  bool ok = done == text.size() && fsync(fd) == 0;
  int saved = errno;
  if (close(fd) != 0) ok = false;
  if (!ok) {
    unlink(path.c_str());
    return updns::Status::IoError("cannot write " + path + ": " + std::strerror(saved));
  }
  return updns::Status::Ok();
}

int TokenCommand(const updns::config::Config& config, const std::vector<std::string>& args) {
  using namespace updns;
  if (args.empty()) return Usage("token: missing subcommand (create, create-missing, revoke)");
  const std::string& sub = args[0];
  std::string problem;
  auto words =
      SplitWords({args.begin() + 1, args.end()},
                 sub == "create-missing" ? std::initializer_list<std::string>{"--account", "--csv"}
                                         : std::initializer_list<std::string>{},
                 problem);
  if (!words) return Usage("token " + sub + ": " + problem);
  const auto& positional = words->positional;

  if (sub == "create-missing") {
    if (!positional.empty()) return Usage("token create-missing takes --account NAME [--csv FILE]");
    auto account = words->Option("--account");
    if (!account) return Usage("token create-missing needs --account NAME");
    auto csv_path = words->Option("--csv");
    std::vector<update::HostToken> tokens;
    std::string csv;
    // With --csv the file is written before the commit, so that no token is
    // stored that nobody has seen; a failed commit removes the file again.
    bool file_written = false;
    Status s = WriteAndCommit(
        config,
        [&](storage::WriteTxn& txn, std::set<std::string>&) {
          auto created = update::CreateMissingTokens(txn, *account, Now());
          if (!created.ok()) return created.status();
          tokens = std::move(created).value();
          csv = update::TokensCsv(tokens);
          return Status::Ok();
        },
        [&] {
          if (!csv_path) return Status::Ok();
          Status w = WriteNewSecretFile(*csv_path, csv);
          file_written = w.ok();
          return w;
        });
    if (!s.ok()) {
      if (file_written) unlink(csv_path->c_str());
      return Fail(s);
    }
    if (!csv_path) {
      std::fwrite(csv.data(), 1, csv.size(), stdout);
      if (std::fflush(stdout) != 0) return Fail(Status::IoError("cannot write the CSV to stdout"));
    }
    std::fprintf(stderr, "created %zu token(s) for account %s%s%s\n", tokens.size(),
                 update::NormalizeAccountName(*account)->c_str(), csv_path ? " in " : "",
                 csv_path ? csv_path->c_str() : "");
    return 0;
  }
  if (sub != "create" && sub != "revoke") return Usage("token: unknown subcommand '" + sub + "'");
  if (positional.size() != 1) return Usage("token " + sub + " needs exactly one FQDN");
  const std::string& fqdn = positional[0];
  if (sub == "create") {
    std::string token;
    Status s = WriteAndCommit(config, [&](storage::WriteTxn& txn, std::set<std::string>&) {
      auto created = update::CreateToken(txn, fqdn, Now());
      if (!created.ok()) return created.status();
      token = std::move(created).value();
      return Status::Ok();
    });
    if (!s.ok()) return Fail(s);
    std::printf("%s\n", token.c_str());
    std::fprintf(stderr, "the update token of host %s is shown only this once\n",
                 update::NormalizeHostName(fqdn)->c_str());
    return 0;
  }
  Status s = WriteAndCommit(config, [&](storage::WriteTxn& txn, std::set<std::string>&) {
    return update::RevokeToken(txn, fqdn);
  });
  if (!s.ok()) return Fail(s);
  std::printf("token of host %s revoked\n", update::NormalizeHostName(fqdn)->c_str());
  return 0;
}

// --- resellers, links, outbox ---------------------------------------------------

// Untrusted text (an e-mail subject, an SMTP error) on one table cell.
std::string Cell(std::string_view text) {
  std::string out;
  for (char c : text) {
    auto u = static_cast<unsigned char>(c);
    out.push_back(u < 0x20 || u == 0x7f ? ' ' : c);
  }
  return out.empty() ? "-" : out;
}

int ResellerCommand(const updns::config::Config& config, const std::vector<std::string>& args) {
  using namespace updns;
  if (args.empty()) return Usage("reseller: missing subcommand (add, list, delete)");
  const std::string& sub = args[0];
  std::string problem;
  auto words = SplitWords({args.begin() + 1, args.end()},
                          sub == "add" ? std::initializer_list<std::string>{"--email"}
                                       : std::initializer_list<std::string>{},
                          problem);
  if (!words) return Usage("reseller " + sub + ": " + problem);
  const auto& positional = words->positional;

  if (sub == "list") {
    if (!positional.empty()) return Usage("reseller list takes no arguments");
    Status s = Read(config, [](const storage::ReadTxn& txn) {
      auto resellers = update::ListResellers(txn);
      if (!resellers.ok()) return resellers.status();
      std::printf("NAME\tEMAIL\tLINKED_ACCOUNT\tCREATED\n");
      for (const storage::ResellerRecord& r : *resellers) {
        std::printf("%s\t%s\t%s\t%s\n", r.name.c_str(), r.email.c_str(),
                    r.linked_account.empty() ? "-" : r.linked_account.c_str(),
                    FormatTime(r.created_at).c_str());
      }
      return Status::Ok();
    });
    return s.ok() ? 0 : Fail(s);
  }
  if (sub != "add" && sub != "delete") return Usage("reseller: unknown subcommand '" + sub + "'");
  if (positional.size() != 1) return Usage("reseller " + sub + " needs exactly one NAME");
  const std::string& name = positional[0];

  if (sub == "add") {
    auto email = words->Option("--email");
    if (!email) return Usage("reseller add needs --email E");
    std::string password = ReadPassword("reseller", name);
    if (password.empty())
      return Fail(Status::Invalid("reseller '" + name +
                                  "': no password on stdin (give it as the first line)"));
    Status s = WriteAndCommit(config, [&](storage::WriteTxn& txn, std::set<std::string>&) {
      return update::CreateReseller(txn, name, *email, password, Now());
    });
    if (!s.ok()) return Fail(s);
    std::printf("reseller %s created\n", update::NormalizeAccountName(name)->c_str());
    return 0;
  }
  Status s = WriteAndCommit(config, [&](storage::WriteTxn& txn, std::set<std::string>&) {
    return update::DeleteReseller(txn, name);
  });
  if (!s.ok()) return Fail(s);
  std::printf("reseller %s deleted\n", update::NormalizeAccountName(name)->c_str());
  return 0;
}

int LinkCommand(const updns::config::Config& config, const std::vector<std::string>& args) {
  using namespace updns;
  std::string problem;
  auto words = SplitWords(args, {"--reseller"}, problem);
  if (!words) return Usage("link: " + problem);
  auto reseller = words->Option("--reseller");
  if (words->positional.size() != 1 || !reseller)
    return Usage("link needs ACCOUNT and --reseller NAME");
  const std::string& account = words->positional[0];
  update::LinkOutcome outcome;
  Status s = WriteAndCommit(config, [&](storage::WriteTxn& txn, std::set<std::string>&) {
    auto result = update::LinkAccount(txn, account, *reseller, Now());
    if (!result.ok()) return result.status();
    outcome = std::move(result).value();
    // A refusal wrote nothing; don't commit anyway.
    return outcome.linked ? Status::Ok() : Status::Invalid(outcome.refusal.message);
  });
  if (!outcome.linked && !outcome.refusal.rule.empty()) {
    const update::LinkRefusal& r = outcome.refusal;
    std::fprintf(stderr, "updnsctl: link refused (%s): %s\n", r.rule.c_str(), r.message.c_str());
    for (const std::string& host : r.hosts_without_token)
      std::fprintf(stderr, "  blocking host: %s (no update token)\n", host.c_str());
    for (const std::string& host : r.tokens_unused)
      std::fprintf(stderr, "  blocking host: %s (token never used)\n", host.c_str());
    return 1;
  }
  if (!s.ok()) return Fail(s);
  std::printf("account %s linked to reseller %s\n", update::NormalizeAccountName(account)->c_str(),
              update::NormalizeAccountName(*reseller)->c_str());
  return 0;
}

int UnlinkCommand(const updns::config::Config& config, const std::vector<std::string>& args) {
  using namespace updns;
  std::string problem;
  auto words = SplitWords(args, {}, problem);
  if (!words) return Usage("unlink: " + problem);
  if (words->positional.size() != 1) return Usage("unlink needs exactly one ACCOUNT");
  const std::string& name = words->positional[0];
  if (config.mail.reset_url.empty()) {
    return Fail(Status::Invalid("unlink needs mail.reset_url in " + config.source +
                                ": the password reset mail links to it"));
  }
  update::UnlinkOptions options;
  options.reset_url = config.mail.reset_url;
  options.reset_ttl = config.api.reset_ttl_seconds;
  storage::AccountRecord before;
  Status s = WriteAndCommit(config, [&](storage::WriteTxn& txn, std::set<std::string>&) {
    auto account = update::GetAccount(txn, name);
    if (!account.ok()) return account.status();
    before = std::move(account).value();
    return update::UnlinkAccount(txn, name, options, Now());
  });
  if (!s.ok()) return Fail(s);
  std::printf("account %s unlinked from reseller %s; password reset mail queued to %s\n",
              before.name.c_str(), before.linked_reseller.c_str(), before.email.c_str());
  return 0;
}

int OutboxCommand(const updns::config::Config& config, const std::vector<std::string>& args) {
  using namespace updns;
  if (args.size() != 1 || args[0] != "list") return Usage("outbox: the only subcommand is list");
  Status s = Read(config, [](const storage::ReadTxn& txn) {
    auto mails = update::ListMail(txn);
    if (!mails.ok()) return mails.status();
    std::printf("ID\tTO\tSUBJECT\tATTEMPTS\tNEXT_ATTEMPT\tLAST_ERROR\n");
    for (const auto& [id, mail] : *mails) {
      std::printf("%llu\t%s\t%s\t%u\t%s\t%s\n", static_cast<unsigned long long>(id),
                  Cell(mail.to).c_str(), Cell(mail.subject).c_str(), mail.attempts,
                  FormatTime(mail.next_attempt_at).c_str(), Cell(mail.last_error).c_str());
    }
    return Status::Ok();
  });
  return s.ok() ? 0 : Fail(s);
}

}  // namespace

int main(int argc, char** argv) {
  std::string config_path;
  std::vector<std::string> command;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if ((a == "--config" || a == "-c") && command.empty()) {
      if (i + 1 >= argc) return Usage("--config needs a FILE");
      config_path = argv[++i];
    } else if (a.rfind("--config=", 0) == 0 && command.empty()) {
      config_path = a.substr(9);
    } else if ((a == "--help" || a == "-h") && command.empty()) {
      std::fputs(kUsage, stdout);
      return 0;
    } else {
      command.push_back(a);
    }
  }
  if (config_path.empty()) return Usage("--config FILE is required");
  if (command.empty()) return Usage("missing COMMAND");
  auto config = updns::config::LoadConfig(config_path);
  if (!config.ok()) {
    std::fprintf(stderr, "%s\n", std::string(config.status().message()).c_str());
    return 1;
  }
  std::vector<std::string> rest(command.begin() + 1, command.end());
  if (command[0] == "zone") return ZoneCommand(*config, rest);
  if (command[0] == "account") return AccountCommand(*config, rest);
  if (command[0] == "host") return HostCommand(*config, rest);
  if (command[0] == "token") return TokenCommand(*config, rest);
  if (command[0] == "reseller") return ResellerCommand(*config, rest);
  if (command[0] == "link") return LinkCommand(*config, rest);
  if (command[0] == "unlink") return UnlinkCommand(*config, rest);
  if (command[0] == "outbox") return OutboxCommand(*config, rest);
  return Usage("unknown command '" + command[0] + "'");
}
