// The fuzz targets' entry points. Each is a plain function: libfuzzer_main.cc
// turns one into a libFuzzer binary (UPDNS_FUZZ=ON, `make fuzz`), and
// replay_test.cc runs every one over its seed corpus and its regressions in
// the ordinary test suite.
//
// An entry returns 0 for every input; a bug is a crash: a sanitizer report,
// or abort() from Check() when an invariant the target checks is broken.
// State an entry needs (a store with a zone in it) is made once per process,
// in a scratch directory removed at exit.
#pragma once

#include <sys/socket.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "storage/store.h"

namespace updns::fuzz {

// A DNS query through zone::Responder over UDP and TCP, against zones with
// wildcards, delegations, CNAME chains and a large RRset; every answer is
// parsed back by ldns and checked against the query.
int FuzzQuery(const uint8_t* data, size_t size);
// Bytes of one HTTP connection through server::HttpRequestParser, at once and
// split into pieces (same requests either way); each request then through the
// dyndns2 parameter and Basic auth parsing and the API route table.
int FuzzHttp(const uint8_t* data, size_t size);
// A JSON API request body through the API's body and field parsing and the
// name checks and error answers that follow it.
int FuzzJsonApi(const uint8_t* data, size_t size);
// A YAML configuration through config::ParseConfig.
int FuzzConfig(const uint8_t* data, size_t size);
// A master file through zone::ImportZoneFile into a store; an accepted zone
// is exported, imported again and must export the same.
int FuzzZoneFile(const uint8_t* data, size_t size);
// A message through TSIG verification, stripping and answer signing (server
// side), the answer and stream verifiers (client side), and signed by us
// then verified (must pass when the message could be walked).
int FuzzTsig(const uint8_t* data, size_t size);
// An UPDATE message through update::ParseUpdateMessage and
// BuildUpdateResponse, then applied by UpdateRequest with three keys in
// transactions that are aborted.
int FuzzRfc2136(const uint8_t* data, size_t size);
// A message handed off by the Responder (TSIG-signed query, AXFR, IXFR,
// UPDATE) through server::DnsControl; the first byte picks transport,
// signing key and client address (see dns_control_fuzzer.cc).
int FuzzDnsControl(const uint8_t* data, size_t size);

struct Target {
  const char* name;  // folder under tests/fuzz/corpus and tests/fuzz/regressions
  int (*entry)(const uint8_t* data, size_t size);
};
inline constexpr Target kTargets[] = {
    {"query", FuzzQuery},        {"http", FuzzHttp},
    {"json_api", FuzzJsonApi},   {"config", FuzzConfig},
    {"zone_file", FuzzZoneFile}, {"tsig", FuzzTsig},
    {"rfc2136", FuzzRfc2136},    {"dns_control", FuzzDnsControl},
};

// Aborts with `what` on stderr when `ok` is false: an invariant the target
// checks is broken, which both libFuzzer and the replay test report as a crash.
void Check(bool ok, const char* what);
// A directory for this process's state (on /dev/shm when there is one, so
// that LMDB's fsync costs nothing), removed at exit. `name` tells them apart.
std::string ScratchDir(const char* name);

// A store at `path` with a map of `map_size` bytes; aborts when it does not
// open.
std::unique_ptr<storage::Store> OpenStore(const std::string& path, uint64_t map_size);
// Writes `text` to DIR/ZONE.zone and imports it as `zone`; aborts, with the
// importer's message, when it does not load.
void ImportZone(storage::Store& store, const std::string& dir, const std::string& zone,
                const char* text);

// A client address from numeric text, IPv6 when it has a ':' ("192.0.2.1",
// "2001:db8::5", "::ffff:10.0.0.1").
sockaddr_storage Address(const char* text);

}  // namespace updns::fuzz
