// Hot-path benchmarks of the query path, in process (no sockets).
//
// Workloads, each at 1k, 100k, 1M and 10M host names (Arg = names):
//   BM_ParseQuery        parse one query packet
//   BM_ZoneFind          find the enclosing zone of a parsed query
//   BM_NodeLookup        one cursor seek for a host's node
//   BM_RespondHit        whole path: parse, find, look up, build (A hit)
//   BM_RespondNxdomain   whole path for a name that does not exist
//   BM_RespondWildcard   whole path for a name a wildcard answers
//   BM_RespondReferral   whole path for a name below a delegation
//   BM_RespondHitCounted BM_RespondHit plus the query loop's metrics counting
//                        (server::DnsCounters::CountAnswer), to compare
//   BM_CountAnswer       the counting alone
// Every Respond benchmark reports allocs/query (must be 0) from a counting
// operator new in this binary.
//
// Stores are generated once and cached under UPDNS_BENCH_DIR (default
// ./bench-stores, i.e. inside the build directory). 10M names take a few
// minutes and ~2 GB the first time; set UPDNS_BENCH_MAX_NAMES to skip sizes.
#include <benchmark/benchmark.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <memory>
#include <new>
#include <string>
#include <vector>

#include "server/dns_counters.h"
#include "storage/node.h"
#include "storage/schema.h"
#include "storage/store.h"
#include "zone/name.h"
#include "zone/responder.h"
#include "zone/wire.h"

// ldns last: its headers define bool-related macros that confuse <optional>.
#include <ldns/ldns.h>

namespace {
std::atomic<uint64_t> allocations{0};
}  // namespace

void* operator new(size_t size) {
  allocations.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(size ? size : 1)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, size_t) noexcept { std::free(p); }

namespace {

using namespace updns;

constexpr const char* kApex = "dyn.example";

std::string Wire(const std::string& text) { return zone::WireNameFromText(text).value(); }

std::string Rdata4(uint8_t a, uint8_t b, uint8_t c, uint8_t d) {
  return std::string{char(a), char(b), char(c), char(d)};
}

// Writes a dyndns-shaped zone straight into the store: apex SOA/NS, a
// wildcard, a delegation with glue and `names` hosts with an A record.
void Generate(storage::Store& store, uint32_t names) {
  auto put_node = [](storage::WriteTxn& txn, uint32_t zone_id, const std::string& name,
                     const storage::NodeBuilder& node) {
    storage::NodeKey key;
    key.Assign(zone_id, Wire(name));
    (void)txn.Put(storage::Table::kNodes, key.view(), node.Encode().value());
  };
  auto txn = store.BeginWrite().value();
  storage::ZoneRecord record{1, 1, {}};
  (void)txn.Put(storage::Table::kZones, storage::CanonicalName(Wire(kApex)), record.Encode());
  storage::NodeBuilder apex;
  std::string soa = Wire("ns1.dyn.example") + Wire("hostmaster.dyn.example") +
                    std::string("\x78\xb4\x5c\xd5\0\0\x0e\x10\0\0\x03\x84\0\x12\x75\0\0\0\x01\x2c", 20);
  apex.Add(zone::type::kSOA, 1, 3600, soa);
  apex.Add(zone::type::kNS, 1, 3600, Wire("ns1.dyn.example"));
  put_node(txn, 1, kApex, apex);
  storage::NodeBuilder ns1, wildcard, sub, glue;
  ns1.Add(zone::type::kA, 1, 3600, Rdata4(192, 0, 2, 1));
  put_node(txn, 1, "ns1.dyn.example", ns1);
  wildcard.Add(zone::type::kA, 1, 60, Rdata4(198, 51, 100, 99));
  put_node(txn, 1, "*.wild.dyn.example", wildcard);
  sub.Add(zone::type::kNS, 1, 3600, Wire("ns.sub.dyn.example"));
  put_node(txn, 1, "sub.dyn.example", sub);
  glue.Add(zone::type::kA, 1, 3600, Rdata4(192, 0, 2, 53));
  put_node(txn, 1, "ns.sub.dyn.example", glue);
  for (uint32_t i = 0; i < names; ++i) {
    if (i > 0 && i % 500000 == 0) {
      (void)txn.Commit();
      txn = store.BeginWrite().value();
    }
    storage::NodeBuilder host;
    host.Add(zone::type::kA, 1, 60, Rdata4(10, uint8_t(i >> 16), uint8_t(i >> 8), uint8_t(i)));
    put_node(txn, 1, "host" + std::to_string(i) + ".dyn.example", host);
  }
  (void)storage::BumpGeneration(txn);
  (void)txn.Commit();
}

struct Fixture {
  std::unique_ptr<storage::Store> store;
  std::unique_ptr<zone::Responder> responder;
};

Fixture& StoreWith(uint32_t names) {
  static std::map<uint32_t, Fixture> fixtures;
  auto it = fixtures.find(names);
  if (it != fixtures.end()) return it->second;
  const char* dir = std::getenv("UPDNS_BENCH_DIR");
  std::string path = std::string(dir ? dir : "bench-stores") + "/names-" + std::to_string(names);
  bool fresh = !std::filesystem::exists(path + "/data.mdb");
  Fixture f;
  f.store = storage::Store::Open({path, uint64_t{64} << 30, false}).value();
  if (fresh) Generate(*f.store, names);
  zone::ResponderOptions options;
  options.zones = {Wire(kApex)};
  f.responder = zone::Responder::Create(*f.store, options).value();
  return fixtures.emplace(names, std::move(f)).first->second;
}

std::vector<uint8_t> QueryPacket(const std::string& name, uint16_t type) {
  ldns_pkt* pkt = nullptr;
  ldns_pkt_query_new_frm_str(&pkt, name.c_str(), static_cast<ldns_rr_type>(type), LDNS_RR_CLASS_IN, 0);
  ldns_pkt_set_edns_udp_size(pkt, 1232);
  uint8_t* wire = nullptr;
  size_t size = 0;
  ldns_pkt2wire(&wire, pkt, &size);
  std::vector<uint8_t> out(wire, wire + size);
  free(wire);
  ldns_pkt_free(pkt);
  return out;
}

// Queries spread over the whole zone so that lookups are not all cached.
std::vector<std::vector<uint8_t>> HostQueries(uint32_t names) {
  std::vector<std::vector<uint8_t>> queries;
  uint64_t x = 88172645463325252ull;
  for (int i = 0; i < 1024; ++i) {
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    queries.push_back(QueryPacket("host" + std::to_string(x % names) + ".dyn.example", 1));
  }
  return queries;
}

bool SizeEnabled(uint32_t names) {
  const char* max = std::getenv("UPDNS_BENCH_MAX_NAMES");
  return !max || names <= std::strtoull(max, nullptr, 10);
}

void BM_ParseQuery(benchmark::State& state) {
  auto packet = QueryPacket("host12345.dyn.example", 1);
  zone::Query q;
  for (auto _ : state) {
    benchmark::DoNotOptimize(zone::ParseQuery(packet.data(), packet.size(), q));
  }
}

void BM_ZoneFind(benchmark::State& state) {
  if (!SizeEnabled(state.range(0))) return state.SkipWithError("size disabled");
  Fixture& f = StoreWith(state.range(0));
  auto packet = QueryPacket("host12345.dyn.example", 1);
  zone::Query q;
  (void)zone::ParseQuery(packet.data(), packet.size(), q);
  for (auto _ : state) benchmark::DoNotOptimize(f.responder->zone_index().Find(q));
}

void BM_NodeLookup(benchmark::State& state) {
  if (!SizeEnabled(state.range(0))) return state.SkipWithError("size disabled");
  uint32_t names = state.range(0);
  Fixture& f = StoreWith(names);
  std::vector<storage::NodeKey> keys(1024);
  for (size_t i = 0; i < keys.size(); ++i)
    keys[i].Assign(1, Wire("host" + std::to_string((i * 7919) % names) + ".dyn.example"));
  auto txn = f.store->BeginRead().value();
  auto cursor = txn.OpenCursor(storage::Table::kNodes).value();
  size_t i = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(cursor.Seek(keys[i++ & 1023].view()));
  }
}

// With `counters`, each answer is counted as a query loop counts it.
void RespondLoop(benchmark::State& state, const std::vector<std::vector<uint8_t>>& queries,
                 server::DnsCounters* counters = nullptr) {
  Fixture& f = StoreWith(state.range(0));
  uint8_t out[4096];
  size_t i = 0;
  (void)f.responder->BeginBatch();
  // One renewal per 64 queries, as a query loop does per recvmmsg batch.
  uint64_t before = 0;
  int64_t in_batch = 0;
  for (auto _ : state) {
    if (++in_batch == 64) {
      f.responder->EndBatch();
      (void)f.responder->BeginBatch();
      in_batch = 0;
    }
    if (i == 1) before = allocations.load();
    const auto& q = queries[i++ % queries.size()];
    size_t size = f.responder->Respond(q.data(), q.size(), zone::Transport::kUdp, out, sizeof out);
    benchmark::DoNotOptimize(size);
    if (counters && size != 0 && size != zone::Responder::kHandOff)
      counters->CountAnswer(zone::Transport::kUdp, f.responder->last_query(), out);
  }
  f.responder->EndBatch();
  double counted = double(allocations.load() - before);
  state.counters["allocs/query"] = state.iterations() > 1 ? counted / double(state.iterations() - 1) : 0;
}

void BM_RespondHit(benchmark::State& state) {
  if (!SizeEnabled(state.range(0))) return state.SkipWithError("size disabled");
  RespondLoop(state, HostQueries(state.range(0)));
}
void BM_RespondHitCounted(benchmark::State& state) {
  if (!SizeEnabled(state.range(0))) return state.SkipWithError("size disabled");
  auto counters = std::make_unique<server::DnsCounters>();
  RespondLoop(state, HostQueries(state.range(0)), counters.get());
  benchmark::DoNotOptimize(counters->queries[0][0][0].value());
}
void BM_CountAnswer(benchmark::State& state) {
  auto counters = std::make_unique<server::DnsCounters>();
  zone::Query query;
  std::vector<uint8_t> packet = QueryPacket("host-1.dyn.example", 1);
  (void)zone::ParseQuery(packet.data(), packet.size(), query);
  uint8_t answer[12] = {0, 1, 0x84, 0, 0, 1, 0, 1, 0, 0, 0, 0};
  for (auto _ : state) {
    counters->CountAnswer(zone::Transport::kUdp, query, answer);
    benchmark::ClobberMemory();
  }
  benchmark::DoNotOptimize(counters->queries[0][0][0].value());
}
void BM_RespondNxdomain(benchmark::State& state) {
  if (!SizeEnabled(state.range(0))) return state.SkipWithError("size disabled");
  RespondLoop(state, {QueryPacket("nonexistent-7.dyn.example", 1), QueryPacket("zzz.dyn.example", 28)});
}
void BM_RespondWildcard(benchmark::State& state) {
  if (!SizeEnabled(state.range(0))) return state.SkipWithError("size disabled");
  RespondLoop(state, {QueryPacket("anything.wild.dyn.example", 1)});
}
void BM_RespondReferral(benchmark::State& state) {
  if (!SizeEnabled(state.range(0))) return state.SkipWithError("size disabled");
  RespondLoop(state, {QueryPacket("www.sub.dyn.example", 1)});
}

#define SIZES Arg(1000)->Arg(100000)->Arg(1000000)->Arg(10000000)
BENCHMARK(BM_ParseQuery);
BENCHMARK(BM_ZoneFind)->SIZES;
BENCHMARK(BM_NodeLookup)->SIZES;
BENCHMARK(BM_RespondHit)->SIZES;
BENCHMARK(BM_RespondHitCounted)->SIZES;
BENCHMARK(BM_CountAnswer);
BENCHMARK(BM_RespondNxdomain)->SIZES;
BENCHMARK(BM_RespondWildcard)->SIZES;
BENCHMARK(BM_RespondReferral)->SIZES;

}  // namespace

BENCHMARK_MAIN();
