// Hot-path benchmarks of the query path, in process (no sockets).
//
// Workloads, each at 1k, 100k, 1M and 10M host names (Arg = names):
//   BM_ParseQuery         parse one query packet
//   BM_ZoneFind           find the enclosing zone of a parsed query
//   BM_BatchRenew         BeginBatch + EndBatch (LMDB txn and cursor renew),
//                         paid once per recvmmsg batch, not per query
//   BM_NodeLookup         one cursor seek for a host's node, 1024 names
//   BM_AnswerBuild        the answer to an A hit written from a node value
//                         already found (header, question, one A RR with a
//                         compression pointer, OPT), as the responder's
//                         hit path does it; no store access
//   BM_NodeLookupCold     the same over 262,144 names spread over the zone
//   BM_RespondHit         whole path: parse, find, look up, build (A hit),
//                         1024 distinct names (their pages stay in cache)
//   BM_RespondHitCold     the same over 262,144 distinct names: at 1M and
//                         10M names most lookups miss the CPU caches and TLB
// Before timing, each Respond and lookup benchmark runs its queries once, so
// that the pages it needs are mapped (first_pass_ns: what that pass cost).
//   BM_RespondNxdomain    whole path for a name that does not exist
//   BM_RespondWildcard    whole path for a name a wildcard answers
//   BM_RespondReferral    whole path for a name below a delegation
//   BM_RespondHitCounted  BM_RespondHit plus the query loop's metrics counting
//                         (server::DnsCounters::CountAnswer), to compare
//   BM_CountAnswer        the counting alone
// Every Respond benchmark reports allocs/query (must be 0): this binary
// interposes malloc, calloc and realloc (operator new goes through malloc),
// so LMDB's and libstdc++'s allocations are counted too. The lookups report
// the B-tree depth of the nodes table (btree_depth), which is what makes
// the cost grow with the zone.
//
// Stores are generated once and cached under UPDNS_BENCH_DIR (default
// ./bench-stores, i.e. inside the build directory): keys are written in
// sorted order with MDB_APPEND (full leaf pages, no splits): 10M names take
// about 10 s and 0.6 GB. A store whose generation did not finish (no
// `complete` marker) is rebuilt. UPDNS_BENCH_MAX_NAMES skips larger sizes.
#include <benchmark/benchmark.h>
#include <lmdb.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "server/dns_counters.h"
#include "storage/node.h"
#include "storage/schema.h"
#include "storage/store.h"
#include "zone/name.h"
#include "zone/responder.h"
#include "zone/wire.h"

// ---------------------------------------------------------------------------
// Allocation counting. glibc 2.34 removed __malloc_hook; interposing the
// entry points and forwarding to glibc's own (__libc_*) works everywhere.

namespace {
std::atomic<uint64_t> allocations{0};
}  // namespace

extern "C" {
void* __libc_malloc(size_t size);
void* __libc_calloc(size_t n, size_t size);
void* __libc_realloc(void* p, size_t size);

void* malloc(size_t size) noexcept {
  allocations.fetch_add(1, std::memory_order_relaxed);
  return __libc_malloc(size);
}
void* calloc(size_t n, size_t size) noexcept {
  allocations.fetch_add(1, std::memory_order_relaxed);
  return __libc_calloc(n, size);
}
void* realloc(void* p, size_t size) noexcept {
  allocations.fetch_add(1, std::memory_order_relaxed);
  return __libc_realloc(p, size);
}
}  // extern "C"

namespace {

using namespace updns;

constexpr const char* kApex = "dyn.example";
constexpr uint32_t kZoneId = 1;
constexpr uint32_t kCommitEvery = 1000000;
constexpr size_t kHotQueries = 1024;
constexpr size_t kColdQueries = 262144;

std::string Wire(const std::string& text) { return zone::WireNameFromText(text).value(); }

std::string Rdata4(uint8_t a, uint8_t b, uint8_t c, uint8_t d) {
  return std::string{char(a), char(b), char(c), char(d)};
}

std::string HostName(uint32_t i) { return "host" + std::to_string(i) + "." + kApex; }

// Appends nodes in key order through one cursor with MDB_APPEND (LMDB then
// fills each leaf page and never splits), committing every kCommitEvery
// nodes so that no transaction dirties more pages than LMDB keeps in memory.
class Appender {
 public:
  explicit Appender(storage::Store& store) : store_(store) { Begin(); }
  ~Appender() {
    if (cursor_) mdb_cursor_close(cursor_);
  }

  void Put(const std::string& name, const storage::NodeBuilder& node) {
    storage::NodeKey key;
    if (!key.Assign(kZoneId, Wire(name))) Fail("bad name " + name);
    std::string value = node.Encode().value();
    MDB_val k{key.view().size(), const_cast<char*>(key.view().data())};
    MDB_val v{value.size(), value.data()};
    if (int rc = mdb_cursor_put(cursor_, &k, &v, MDB_APPEND); rc != MDB_SUCCESS)
      Fail("append " + name + ": " + mdb_strerror(rc) + " (keys must come in sorted order)");
    if (++in_txn_ == kCommitEvery) {
      Commit();
      Begin();
    }
  }

  storage::WriteTxn& txn() { return *txn_; }

  void Commit() {
    mdb_cursor_close(cursor_);
    cursor_ = nullptr;
    if (Status s = txn_->Commit(); !s.ok()) Fail(std::string(s.message()));
    txn_.reset();
  }

 private:
  static void Fail(const std::string& what) {
    std::fprintf(stderr, "query_bench: generating the store: %s\n", what.c_str());
    std::exit(1);
  }
  void Begin() {
    txn_.emplace(store_.BeginWrite().value());
    if (int rc = mdb_cursor_open(txn_->handle(), store_.dbi(storage::Table::kNodes), &cursor_);
        rc != MDB_SUCCESS)
      Fail(mdb_strerror(rc));
    in_txn_ = 0;
  }

  storage::Store& store_;
  std::optional<storage::WriteTxn> txn_;
  MDB_cursor* cursor_ = nullptr;
  uint32_t in_txn_ = 0;
};

// A dyndns-shaped zone: apex SOA/NS, `names` hosts with an A record, a
// glue-less name server, a wildcard and a delegation with glue. In canonical
// order (labels root first, 0x00 after each label) the apex comes first,
// then host<decimal> in the lexicographic order of the decimal strings
// ("host1" < "host10" < "host100" < "host11"), then ns1, sub, ns.sub and
// *.wild, whose first labels sort after "host".
void Generate(storage::Store& store, uint32_t names) {
  Appender out(store);
  storage::ZoneRecord record{kZoneId, 1, {}};
  (void)out.txn().Put(storage::Table::kZones, storage::CanonicalName(Wire(kApex)), record.Encode());
  storage::NodeBuilder apex;
  std::string soa = Wire("ns1.dyn.example") + Wire("hostmaster.dyn.example") +
                    std::string("\x78\xb4\x5c\xd5\0\0\x0e\x10\0\0\x03\x84\0\x12\x75\0\0\0\x01\x2c", 20);
  apex.Add(zone::type::kSOA, 1, 3600, soa);
  apex.Add(zone::type::kNS, 1, 3600, Wire("ns1.dyn.example"));
  out.Put(kApex, apex);

  auto host = [&](uint32_t i) {
    storage::NodeBuilder node;
    node.Add(zone::type::kA, 1, 60, Rdata4(10, uint8_t(i >> 16), uint8_t(i >> 8), uint8_t(i)));
    out.Put(HostName(i), node);
  };
  if (names > 0) host(0);  // "0" has no decimal extensions (no leading zeros)
  uint64_t cur = 1;
  for (uint32_t done = 1; done < names; ++done) {
    host(static_cast<uint32_t>(cur));
    if (cur * 10 < names) {
      cur *= 10;  // the next string extends this one
    } else {
      while (cur % 10 == 9 || cur + 1 >= names) cur /= 10;  // back up past exhausted digits
      ++cur;
    }
  }

  storage::NodeBuilder ns1, sub, glue, wildcard;
  ns1.Add(zone::type::kA, 1, 3600, Rdata4(192, 0, 2, 1));
  out.Put("ns1.dyn.example", ns1);
  sub.Add(zone::type::kNS, 1, 3600, Wire("ns.sub.dyn.example"));
  out.Put("sub.dyn.example", sub);
  glue.Add(zone::type::kA, 1, 3600, Rdata4(192, 0, 2, 53));
  out.Put("ns.sub.dyn.example", glue);
  wildcard.Add(zone::type::kA, 1, 60, Rdata4(198, 51, 100, 99));
  out.Put("*.wild.dyn.example", wildcard);
  (void)storage::BumpGeneration(out.txn());
  out.Commit();
}

struct Fixture {
  std::unique_ptr<storage::Store> store;
  std::unique_ptr<zone::Responder> responder;
  unsigned depth = 0;
  size_t leaf_pages = 0;
};

Fixture& StoreWith(uint32_t names) {
  static std::map<uint32_t, Fixture> fixtures;
  auto it = fixtures.find(names);
  if (it != fixtures.end()) return it->second;
  const char* dir = std::getenv("UPDNS_BENCH_DIR");
  std::filesystem::path path =
      std::filesystem::path(dir ? dir : "bench-stores") / ("names-" + std::to_string(names));
  std::filesystem::path marker = path / "complete";
  bool fresh = !std::filesystem::exists(marker);
  if (fresh) std::filesystem::remove_all(path);
  Fixture f;
  // About twice what the nodes need (~57 bytes each), and small enough for
  // valgrind, whose address space is limited.
  uint64_t map_size = (uint64_t{256} << 20) + uint64_t{names} * 128;
  f.store = storage::Store::Open({path.string(), map_size, false}).value();
  if (fresh) {
    std::fprintf(stderr, "query_bench: generating %u names in %s ...\n", names, path.c_str());
    Generate(*f.store, names);
    std::ofstream(marker) << names << "\n";
  }
  zone::ResponderOptions options;
  options.zones = {Wire(kApex)};
  f.responder = zone::Responder::Create(*f.store, options).value();
  auto txn = f.store->BeginRead().value();
  MDB_stat stat{};
  mdb_stat(txn.handle(), f.store->dbi(storage::Table::kNodes), &stat);
  f.depth = stat.ms_depth;
  f.leaf_pages = stat.ms_leaf_pages;
  return fixtures.emplace(names, std::move(f)).first->second;
}

// A query for `name` (presentation form, no trailing dot) with EDNS
// (payload 1232), as resolvers send them.
std::vector<uint8_t> QueryPacket(const std::string& name, uint16_t type) {
  std::vector<uint8_t> p = {0x12, 0x34, 0, 0, 0, 1, 0, 0, 0, 0, 0, 1};
  size_t start = 0;
  while (start <= name.size()) {
    size_t dot = name.find('.', start);
    if (dot == std::string::npos) dot = name.size();
    p.push_back(static_cast<uint8_t>(dot - start));
    p.insert(p.end(), name.begin() + start, name.begin() + dot);
    start = dot + 1;
  }
  p.push_back(0);
  const uint8_t tail[] = {uint8_t(type >> 8), uint8_t(type), 0, 1,  // qtype, class IN
                          0, 0, 41, 0x04, 0xd0, 0, 0, 0, 0, 0, 0};  // OPT, 1232
  p.insert(p.end(), tail, tail + sizeof tail);
  return p;
}

// `count` queries for hosts spread over the whole zone (xorshift).
std::vector<std::vector<uint8_t>> HostQueries(uint32_t names, size_t count) {
  std::vector<std::vector<uint8_t>> queries;
  queries.reserve(count);
  uint64_t x = 88172645463325252ull;
  for (size_t i = 0; i < count; ++i) {
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    queries.push_back(QueryPacket(HostName(static_cast<uint32_t>(x % names)), zone::type::kA));
  }
  return queries;
}

bool SizeEnabled(uint32_t names) {
  const char* max = std::getenv("UPDNS_BENCH_MAX_NAMES");
  return !max || names <= std::strtoull(max, nullptr, 10);
}

void StoreCounters(benchmark::State& state, const Fixture& f) {
  state.counters["btree_depth"] = f.depth;
  state.counters["leaf_pages"] = static_cast<double>(f.leaf_pages);
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

void BM_BatchRenew(benchmark::State& state) {
  if (!SizeEnabled(state.range(0))) return state.SkipWithError("size disabled");
  Fixture& f = StoreWith(state.range(0));
  uint64_t before = allocations.load();
  for (auto _ : state) {
    benchmark::DoNotOptimize(f.responder->BeginBatch());
    f.responder->EndBatch();
  }
  state.counters["allocs/batch"] =
      double(allocations.load() - before) / double(std::max<int64_t>(state.iterations(), 1));
}

void LookupLoop(benchmark::State& state, size_t count) {
  if (!SizeEnabled(state.range(0))) return state.SkipWithError("size disabled");
  uint32_t names = state.range(0);
  Fixture& f = StoreWith(names);
  std::vector<storage::NodeKey> keys(count);
  uint64_t x = 88172645463325252ull;
  for (size_t i = 0; i < keys.size(); ++i) {
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    keys[i].Assign(kZoneId, Wire(HostName(static_cast<uint32_t>(x % names))));
  }
  auto txn = f.store->BeginRead().value();
  auto cursor = txn.OpenCursor(storage::Table::kNodes).value();
  for (const storage::NodeKey& key : keys) benchmark::DoNotOptimize(cursor.Seek(key.view()));
  size_t i = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(cursor.Seek(keys[i].view()));
    if (++i == keys.size()) i = 0;
  }
  StoreCounters(state, f);
}

void BM_NodeLookup(benchmark::State& state) { LookupLoop(state, kHotQueries); }

void BM_AnswerBuild(benchmark::State& state) {
  storage::NodeBuilder builder;
  builder.Add(zone::type::kA, 1, 60, Rdata4(10, 0, 48, 57));
  builder.Add(zone::type::kAAAA, 1, 60, std::string(16, '\x01'));
  const std::string value = builder.Encode().value();
  auto packet = QueryPacket("host12345.dyn.example", zone::type::kA);
  zone::Query q;
  if (zone::ParseQuery(packet.data(), packet.size(), q) != zone::ParseOutcome::kOk)
    return state.SkipWithError("parse failed");
  uint8_t out[1232];
  uint64_t before = allocations.load();
  for (auto _ : state) {
    zone::MessageWriter w(out, sizeof out);
    const uint8_t header[12] = {uint8_t(q.id >> 8), uint8_t(q.id), 0x84, 0, 0, 1, 0, 0, 0, 0, 0, 1};
    bool ok = w.PutBytes(header, sizeof header) && w.PutBytes(q.question.data(), q.question.size());
    w.AddCompressionTarget(zone::kHeaderSize, q.qname_view());
    storage::RRsetView rrset;
    uint16_t answers = 0;
    if (ok && storage::NodeView(value).Find(q.qtype, rrset)) {
      for (size_t pos = 0; pos + 2 <= rrset.body.size();) {
        size_t rdlength = storage::LoadU16(rrset.body.data() + pos);
        std::string_view rdata = rrset.body.substr(pos + 2, rdlength);
        pos += 2 + rdlength;
        ok = ok && w.PutPointer(zone::kHeaderSize) && w.PutBytes(rrset.type_class_ttl.data(), 8);
        size_t at = w.size();
        ok = ok && w.PutU16(0) && w.PutRdata(rrset.type, rdata);
        w.SetU16(at, static_cast<uint16_t>(w.size() - at - 2));
        ++answers;
      }
    }
    const uint8_t opt[zone::kOptRecordSize] = {0, 0, 41, 0x04, 0xd0, 0, 0, 0, 0, 0, 0};
    ok = ok && w.PutBytes(opt, sizeof opt);
    w.SetU16(6, answers);
    benchmark::DoNotOptimize(ok);
    benchmark::DoNotOptimize(out);
  }
  state.counters["allocs/query"] =
      double(allocations.load() - before) / double(std::max<int64_t>(state.iterations(), 1));
  state.counters["bytes"] = double(zone::kHeaderSize + q.question.size() + 16 + zone::kOptRecordSize);
}
void BM_NodeLookupCold(benchmark::State& state) { LookupLoop(state, kColdQueries); }

// With `counters`, each answer is counted as a query loop counts it.
void RespondLoop(benchmark::State& state, const std::vector<std::vector<uint8_t>>& queries,
                 server::DnsCounters* counters = nullptr) {
  Fixture& f = StoreWith(state.range(0));
  uint8_t out[4096];
  size_t i = 0;
  // Check once, outside the timing, that the answers are what we think.
  (void)f.responder->BeginBatch();
  size_t size = f.responder->Respond(queries[0].data(), queries[0].size(), zone::Transport::kUdp,
                                     out, sizeof out);
  f.responder->EndBatch();
  if (size < zone::kHeaderSize) return state.SkipWithError("no answer");
  // And that the allocation counter sees a malloc made anywhere.
  uint64_t probe = allocations.load();
  void* p = std::malloc(16);
  benchmark::DoNotOptimize(p);
  std::free(p);
  if (allocations.load() == probe) return state.SkipWithError("allocation counter not working");
  state.counters["rcode"] = out[3] & 0x0F;
  state.counters["ancount"] = out[6] << 8 | out[7];

  // One untimed pass over every query first: the map's pages are touched
  // (page-faulted in) once, as a server does in its first seconds; the
  // timing is of the steady state. What that first pass cost per query is
  // reported as first_pass_ns.
  auto start = std::chrono::steady_clock::now();
  (void)f.responder->BeginBatch();
  for (size_t k = 0; k < queries.size(); ++k) {
    if (k % 64 == 63) {
      f.responder->EndBatch();
      (void)f.responder->BeginBatch();
    }
    benchmark::DoNotOptimize(f.responder->Respond(queries[k].data(), queries[k].size(),
                                                  zone::Transport::kUdp, out, sizeof out));
  }
  f.responder->EndBatch();
  state.counters["first_pass_ns"] =
      std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - start).count() /
      double(queries.size());

  (void)f.responder->BeginBatch();
  // One renewal per 64 queries, as a query loop does per recvmmsg batch.
  int64_t in_batch = 0;
  uint64_t before = allocations.load();
  for (auto _ : state) {
    if (++in_batch == 64) {
      f.responder->EndBatch();
      (void)f.responder->BeginBatch();
      in_batch = 0;
    }
    const auto& q = queries[i];
    if (++i == queries.size()) i = 0;
    size_t size = f.responder->Respond(q.data(), q.size(), zone::Transport::kUdp, out, sizeof out);
    benchmark::DoNotOptimize(size);
    if (counters && size != 0 && size != zone::Responder::kHandOff)
      counters->CountAnswer(zone::Transport::kUdp, f.responder->last_query(), out);
  }
  uint64_t counted = allocations.load() - before;
  f.responder->EndBatch();
  state.counters["allocs/query"] = double(counted) / double(std::max<int64_t>(state.iterations(), 1));
  StoreCounters(state, f);
}

void BM_RespondHit(benchmark::State& state) {
  if (!SizeEnabled(state.range(0))) return state.SkipWithError("size disabled");
  RespondLoop(state, HostQueries(state.range(0), kHotQueries));
}
void BM_RespondHitCounted(benchmark::State& state) {
  if (!SizeEnabled(state.range(0))) return state.SkipWithError("size disabled");
  auto counters = std::make_unique<server::DnsCounters>();
  RespondLoop(state, HostQueries(state.range(0), kHotQueries), counters.get());
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
void BM_RespondHitCold(benchmark::State& state) {
  if (!SizeEnabled(state.range(0))) return state.SkipWithError("size disabled");
  RespondLoop(state, HostQueries(state.range(0), kColdQueries));
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
BENCHMARK(BM_BatchRenew)->SIZES;
BENCHMARK(BM_NodeLookup)->SIZES;
BENCHMARK(BM_NodeLookupCold)->SIZES;
BENCHMARK(BM_AnswerBuild);
BENCHMARK(BM_RespondHit)->SIZES;
BENCHMARK(BM_RespondHitCold)->SIZES;
BENCHMARK(BM_RespondHitCounted)->SIZES;
BENCHMARK(BM_CountAnswer);
BENCHMARK(BM_RespondNxdomain)->SIZES;
BENCHMARK(BM_RespondWildcard)->SIZES;
BENCHMARK(BM_RespondReferral)->SIZES;

}  // namespace

BENCHMARK_MAIN();
