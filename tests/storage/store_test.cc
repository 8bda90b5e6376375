// The LMDB store (storage/store.h) and the node value (storage/node.h).
#include "storage/store.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include "storage/node.h"
#include "storage/schema.h"

namespace updns::storage {
namespace {

namespace fs = std::filesystem;

class StoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/updns_store_test_XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { fs::remove_all(dir_); }

  Options StoreOptions(uint64_t map_size = uint64_t{16} << 20) const {
    Options options;
    options.path = (dir_ / "store").string();
    options.map_size = map_size;
    return options;
  }
  std::unique_ptr<Store> Open(uint64_t map_size = uint64_t{16} << 20) {
    auto store = Store::Open(StoreOptions(map_size));
    EXPECT_TRUE(store.ok()) << store.status().message();
    return store.ok() ? std::move(store).value() : nullptr;
  }
  static std::optional<std::string> Read(const Store& store, Table table, std::string_view key) {
    auto txn = store.BeginRead();
    EXPECT_TRUE(txn.ok());
    auto value = txn->Get(table, key);
    return value ? std::optional<std::string>(std::string(*value)) : std::nullopt;
  }
  static void Write(Store& store, Table table, std::string_view key, std::string_view value) {
    auto txn = store.BeginWrite();
    ASSERT_TRUE(txn.ok()) << txn.status().message();
    ASSERT_TRUE(txn->Put(table, key, value).ok());
    ASSERT_TRUE(txn->Commit().ok());
  }

  fs::path dir_;
};

TEST_F(StoreTest, StatsReportMapSizePagesReadersAndTheOutbox) {
  auto store = Open(uint64_t{32} << 20);
  ASSERT_NE(store, nullptr);
  auto empty = store->GetStats();
  ASSERT_TRUE(empty.ok()) << empty.status().message();
  EXPECT_EQ(empty->map_size, uint64_t{32} << 20);
  EXPECT_GE(empty->page_size, 4096u);
  EXPECT_GE(empty->pages_used, 2u) << "two meta pages at least";
  EXPECT_EQ(empty->readers_max, 512u);
  EXPECT_EQ(empty->outbox_entries, 0u);

  Write(*store, Table::kOutbox, "k1", "mail 1");
  Write(*store, Table::kOutbox, "k2", "mail 2");
  // A reader held on another thread's behalf: its slot is in use.
  auto reader = store->BeginRead();
  ASSERT_TRUE(reader.ok());
  auto stats = store->GetStats();
  ASSERT_TRUE(stats.ok()) << stats.status().message();
  EXPECT_EQ(stats->outbox_entries, 2u);
  EXPECT_GE(stats->readers_used, 1u);
  EXPECT_GE(stats->pages_used, empty->pages_used);
}

// Pages of `file` in the page cache, of the whole file.
std::pair<size_t, size_t> ResidentPages(const fs::path& file) {
  int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
  EXPECT_GE(fd, 0);
  struct stat st {};
  ::fstat(fd, &st);
  const size_t page = static_cast<size_t>(::sysconf(_SC_PAGESIZE));
  const size_t pages = (static_cast<size_t>(st.st_size) + page - 1) / page;
  void* map = ::mmap(nullptr, static_cast<size_t>(st.st_size), PROT_READ, MAP_SHARED, fd, 0);
  EXPECT_NE(map, MAP_FAILED);
  std::vector<unsigned char> in_core(pages);
  EXPECT_EQ(::mincore(map, static_cast<size_t>(st.st_size), in_core.data()), 0);
  ::munmap(map, static_cast<size_t>(st.st_size));
  ::close(fd);
  size_t resident = 0;
  for (unsigned char c : in_core) resident += c & 1;
  return {resident, pages};
}

TEST_F(StoreTest, PrefetchReadsEveryUsedPageIntoThePageCache) {
  auto store = Open();
  ASSERT_NE(store, nullptr);
  {
    auto txn = store->BeginWrite();
    ASSERT_TRUE(txn.ok());
    for (int i = 0; i < 4000; ++i)
      ASSERT_TRUE(txn->Put(Table::kMeta, "key" + std::to_string(i), std::string(1000, 'v')).ok());
    ASSERT_TRUE(txn->Commit().ok());
  }
  const fs::path file = dir_ / "store" / "data.mdb";
  // Out of the page cache, as after a reboot (the pages are clean: committed).
  int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED), 0);
  ::close(fd);
  auto [before, pages] = ResidentPages(file);
  ASSERT_GT(pages, 900u);
  EXPECT_LT(before, pages / 2) << "the cache kept the file; the test proves nothing";

  std::atomic<bool> stop{true};
  auto none = store->Prefetch(stop);
  ASSERT_TRUE(none.ok()) << none.status().message();
  EXPECT_EQ(*none, 0u) << "stopped before it began";

  stop = false;
  auto read = store->Prefetch(stop);
  ASSERT_TRUE(read.ok()) << read.status().message();
  auto stats = store->GetStats();
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(*read, stats->pages_used * stats->page_size);
  auto [after, total] = ResidentPages(file);
  EXPECT_GE(after, *read / static_cast<size_t>(::sysconf(_SC_PAGESIZE)))
      << after << " of " << total << " pages resident";
}

TEST_F(StoreTest, CreatesAndWritesSchemaVersion) {
  auto store = Open();
  ASSERT_NE(store, nullptr);
  EXPECT_TRUE(fs::exists(dir_ / "store" / "data.mdb"));
  auto version = Read(*store, Table::kMeta, kMetaSchemaKey);
  ASSERT_TRUE(version.has_value());
  ASSERT_EQ(version->size(), 4u);
  EXPECT_EQ(DecodeU32(*version), Store::kSchemaVersion);
  auto txn = store->BeginRead();
  ASSERT_TRUE(txn.ok());
  EXPECT_EQ(ReadGeneration(*txn), 0u);
  EXPECT_EQ(store->path(), (dir_ / "store").string());
  EXPECT_GE(store->map_size(), uint64_t{16} << 20);
}

TEST_F(StoreTest, ReopensAndKeepsData) {
  {
    auto store = Open();
    ASSERT_NE(store, nullptr);
    Write(*store, Table::kZones, "k", "v");
  }
  auto store = Open();
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(Read(*store, Table::kZones, "k"), "v");
}

TEST_F(StoreTest, ExistingLargerMapWins) {
  {
    auto store = Open(uint64_t{64} << 20);
    ASSERT_NE(store, nullptr);
    EXPECT_EQ(store->map_size(), uint64_t{64} << 20);
    Write(*store, Table::kNodes, "k", "v");  // commits the map size in the meta page
  }
  {
    auto store = Open(uint64_t{2} << 20);
    ASSERT_NE(store, nullptr);
    EXPECT_EQ(store->map_size(), uint64_t{64} << 20);
    Write(*store, Table::kNodes, "k2", "v");
  }
  auto store = Open(uint64_t{128} << 20);  // a larger configured map grows it
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(store->map_size(), uint64_t{128} << 20);
  EXPECT_EQ(Read(*store, Table::kNodes, "k2"), "v");
}

TEST_F(StoreTest, RefusesOtherSchemaVersion) {
  {
    auto store = Open();
    ASSERT_NE(store, nullptr);
    Write(*store, Table::kMeta, kMetaSchemaKey, EncodeU32(Store::kSchemaVersion + 6));
  }
  auto store = Store::Open(StoreOptions());
  ASSERT_FALSE(store.ok());
  std::string message(store.status().message());
  EXPECT_NE(message.find("version " + std::to_string(Store::kSchemaVersion + 6)), std::string::npos)
      << message;
  EXPECT_NE(message.find("version " + std::to_string(Store::kSchemaVersion)), std::string::npos)
      << message;
  EXPECT_NE(message.find((dir_ / "store").string()), std::string::npos) << message;
}

TEST_F(StoreTest, ReadOnlyOpenReadsTables) {
  {
    auto store = Open();
    ASSERT_NE(store, nullptr);
    Write(*store, Table::kNodes, "node", "value");
  }
  Options options = StoreOptions();
  options.read_only = true;
  auto store = Store::Open(options);
  ASSERT_TRUE(store.ok()) << store.status().message();
  // The table handles opened at start-up stay usable in later transactions.
  EXPECT_EQ(Read(**store, Table::kNodes, "node"), "value");
  EXPECT_EQ(Read(**store, Table::kMeta, kMetaSchemaKey), EncodeU32(Store::kSchemaVersion));

  options.path = (dir_ / "absent").string();
  EXPECT_FALSE(Store::Open(options).ok());
}

TEST_F(StoreTest, PutGetDelete) {
  auto store = Open();
  ASSERT_NE(store, nullptr);
  auto txn = store->BeginWrite();
  ASSERT_TRUE(txn.ok());
  EXPECT_FALSE(txn->Get(Table::kNodes, "a").has_value());
  ASSERT_TRUE(txn->Put(Table::kNodes, "a", "1").ok());
  ASSERT_TRUE(txn->Put(Table::kNodes, "b", std::string("\0\1", 2)).ok());
  EXPECT_EQ(txn->Get(Table::kNodes, "a"), "1");
  ASSERT_TRUE(txn->Put(Table::kNodes, "a", "2").ok());  // overwrite
  EXPECT_EQ(txn->Get(Table::kNodes, "a"), "2");
  // Tables are separate key spaces.
  EXPECT_FALSE(txn->Get(Table::kZones, "a").has_value());
  ASSERT_TRUE(txn->Commit().ok());

  EXPECT_EQ(Read(*store, Table::kNodes, "a"), "2");
  EXPECT_EQ(Read(*store, Table::kNodes, "b"), std::string("\0\1", 2));

  auto del = store->BeginWrite();
  ASSERT_TRUE(del.ok());
  EXPECT_TRUE(del->Delete(Table::kNodes, "a").ok());
  EXPECT_TRUE(del->Delete(Table::kNodes, "a").IsNotFound());
  EXPECT_TRUE(del->Delete(Table::kNodes, "zzz").IsNotFound());
  ASSERT_TRUE(del->Commit().ok());
  EXPECT_FALSE(Read(*store, Table::kNodes, "a").has_value());
  EXPECT_TRUE(Read(*store, Table::kNodes, "b").has_value());
}

TEST_F(StoreTest, CursorWalksInByteOrder) {
  auto store = Open();
  ASSERT_NE(store, nullptr);
  auto txn = store->BeginWrite();
  ASSERT_TRUE(txn.ok());
  for (const char* k : {"b", "a\xff", "a", "c\x01", "\x80"})
    ASSERT_TRUE(txn->Put(Table::kNodes, k, k).ok());
  ASSERT_TRUE(txn->Commit().ok());
  auto read = store->BeginRead();
  ASSERT_TRUE(read.ok());
  auto cursor = read->OpenCursor(Table::kNodes);
  ASSERT_TRUE(cursor.ok());
  std::vector<std::string> keys;
  for (bool more = cursor->First(); more; more = cursor->Next()) keys.emplace_back(cursor->key());
  EXPECT_EQ(keys, (std::vector<std::string>{"a", "a\xff", "b", "c\x01", "\x80"}));
  ASSERT_TRUE(cursor->Seek("a\x01"));
  EXPECT_EQ(cursor->key(), "a\xff");
  ASSERT_TRUE(cursor->Prev());
  EXPECT_EQ(cursor->key(), "a");
  EXPECT_FALSE(cursor->Prev());
  EXPECT_FALSE(cursor->Seek("\x81"));
  EXPECT_TRUE(cursor->key().empty());
  ASSERT_TRUE(cursor->Last());
  EXPECT_EQ(cursor->key(), "\x80");
  EXPECT_EQ(cursor->value(), "\x80");
}

TEST_F(StoreTest, DeleteRange) {
  auto store = Open();
  ASSERT_NE(store, nullptr);
  {
    auto txn = store->BeginWrite();
    ASSERT_TRUE(txn.ok());
    // Enough keys to span many pages, in three "zones".
    for (uint32_t zone = 1; zone <= 3; ++zone) {
      for (int i = 0; i < 2000; ++i) {
        ASSERT_TRUE(
            txn->Put(Table::kNodes, EncodeU32(zone) + EncodeU32(i), std::string(40, 'v')).ok());
      }
    }
    ASSERT_TRUE(txn->Commit().ok());
  }
  auto txn = store->BeginWrite();
  ASSERT_TRUE(txn.ok());
  auto deleted = txn->DeleteRange(Table::kNodes, EncodeU32(2), EncodeU32(3));
  ASSERT_TRUE(deleted.ok()) << deleted.status().message();
  EXPECT_EQ(*deleted, 2000u);
  auto none = txn->DeleteRange(Table::kNodes, EncodeU32(2), EncodeU32(3));
  ASSERT_TRUE(none.ok());
  EXPECT_EQ(*none, 0u);
  auto empty = txn->DeleteRange(Table::kNodes, EncodeU32(9), EncodeU32(10));
  ASSERT_TRUE(empty.ok());
  EXPECT_EQ(*empty, 0u);
  ASSERT_TRUE(txn->Commit().ok());

  auto read = store->BeginRead();
  ASSERT_TRUE(read.ok());
  auto cursor = read->OpenCursor(Table::kNodes);
  ASSERT_TRUE(cursor.ok());
  size_t count[4] = {};
  for (bool more = cursor->First(); more; more = cursor->Next()) ++count[DecodeU32(cursor->key())];
  EXPECT_EQ(count[1], 2000u);
  EXPECT_EQ(count[2], 0u);
  EXPECT_EQ(count[3], 2000u);
  EXPECT_TRUE(read->Get(Table::kNodes, EncodeU32(1) + EncodeU32(1999)).has_value());
  EXPECT_TRUE(read->Get(Table::kNodes, EncodeU32(3) + EncodeU32(0)).has_value());
}

TEST_F(StoreTest, NestedTransactions) {
  auto store = Open();
  ASSERT_NE(store, nullptr);
  auto txn = store->BeginWrite();
  ASSERT_TRUE(txn.ok());
  ASSERT_TRUE(txn->Put(Table::kNodes, "parent", "p").ok());
  {
    auto child = txn->BeginNested();
    ASSERT_TRUE(child.ok()) << child.status().message();
    EXPECT_EQ(child->Get(Table::kNodes, "parent"), "p");  // sees the parent's writes
    ASSERT_TRUE(child->Put(Table::kNodes, "dropped", "d").ok());
    ASSERT_TRUE(child->Delete(Table::kNodes, "parent").ok());
    EXPECT_FALSE(child->Get(Table::kNodes, "parent").has_value());
    // Dropped without Commit: rolled back.
  }
  EXPECT_EQ(txn->Get(Table::kNodes, "parent"), "p");
  EXPECT_FALSE(txn->Get(Table::kNodes, "dropped").has_value());
  {
    auto child = txn->BeginNested();
    ASSERT_TRUE(child.ok());
    ASSERT_TRUE(child->Put(Table::kNodes, "kept", "k").ok());
    ASSERT_TRUE(child->Commit().ok());
  }
  EXPECT_EQ(txn->Get(Table::kNodes, "kept"), "k");
  // Nothing is visible to readers before the outer commit.
  EXPECT_FALSE(Read(*store, Table::kNodes, "kept").has_value());
  ASSERT_TRUE(txn->Commit().ok());
  EXPECT_EQ(Read(*store, Table::kNodes, "parent"), "p");
  EXPECT_EQ(Read(*store, Table::kNodes, "kept"), "k");
  EXPECT_FALSE(Read(*store, Table::kNodes, "dropped").has_value());
}

TEST_F(StoreTest, DestructorAborts) {
  auto store = Open();
  ASSERT_NE(store, nullptr);
  {
    auto txn = store->BeginWrite();
    ASSERT_TRUE(txn.ok());
    ASSERT_TRUE(txn->Put(Table::kNodes, "x", "1").ok());
  }
  EXPECT_FALSE(Read(*store, Table::kNodes, "x").has_value());
  // The writer lock was released: a new write transaction starts.
  auto txn = store->BeginWrite();
  ASSERT_TRUE(txn.ok());
  // Move-assigning a transaction aborts the one it replaces.
  ASSERT_TRUE(txn->Put(Table::kNodes, "y", "1").ok());
  WriteTxn moved = std::move(txn).value();
  EXPECT_EQ(moved.Get(Table::kNodes, "y"), "1");
  ASSERT_TRUE(moved.Commit().ok());
  EXPECT_EQ(Read(*store, Table::kNodes, "y"), "1");
}

TEST_F(StoreTest, ReadTxnResetRenewSeesNewCommits) {
  auto store = Open();
  ASSERT_NE(store, nullptr);
  Write(*store, Table::kNodes, "k", "old");
  auto read = store->BeginRead();
  ASSERT_TRUE(read.ok());
  auto cursor = read->OpenCursor(Table::kNodes);
  ASSERT_TRUE(cursor.ok());
  EXPECT_EQ(read->Get(Table::kNodes, "k"), "old");

  Write(*store, Table::kNodes, "k", "new");
  EXPECT_EQ(read->Get(Table::kNodes, "k"), "old");  // a snapshot
  read->Reset();
  ASSERT_TRUE(read->Renew().ok());
  ASSERT_TRUE(ReadTxn::RenewCursor(*read, *cursor).ok());
  EXPECT_EQ(read->Get(Table::kNodes, "k"), "new");
  ASSERT_TRUE(cursor->First());
  EXPECT_EQ(cursor->value(), "new");

  {
    auto txn = store->BeginWrite();
    ASSERT_TRUE(txn.ok());
    ASSERT_TRUE(BumpGeneration(*txn).ok());
    ASSERT_TRUE(BumpGeneration(*txn).ok());
    ASSERT_TRUE(txn->Commit().ok());
  }
  EXPECT_EQ(ReadGeneration(*read), 0u);
  read->Reset();
  read->Reset();  // twice is harmless
  ASSERT_TRUE(read->Renew().ok());
  EXPECT_EQ(ReadGeneration(*read), 2u);
}

TEST_F(StoreTest, ZoneIdsAndZoneRecords) {
  auto store = Open();
  ASSERT_NE(store, nullptr);
  auto txn = store->BeginWrite();
  ASSERT_TRUE(txn.ok());
  auto a = AllocateZoneId(*txn), b = AllocateZoneId(*txn);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(*a, 1u);
  EXPECT_EQ(*b, 2u);
  ZoneRecord record;
  record.zone_id = *b;
  record.delegation_count = 3;
  record.source_digest = std::string(32, '\xab');
  std::string apex(
      "\x07"
      "example\x00",
      9);
  ASSERT_TRUE(txn->Put(Table::kZones, CanonicalName(apex), record.Encode()).ok());
  auto read = ReadZoneRecord(*txn, std::string("\x07"
                                               "EXAMPLE\x00",
                                               9));
  ASSERT_TRUE(read.ok()) << read.status().message();
  EXPECT_EQ(read->zone_id, 2u);
  EXPECT_EQ(read->delegation_count, 3u);
  EXPECT_EQ(read->source_digest, record.source_digest);
  EXPECT_TRUE(ReadZoneRecord(*txn, std::string("\x03"
                                               "org\x00",
                                               5))
                  .status()
                  .IsNotFound());
  EXPECT_FALSE(ReadZoneRecord(*txn, std::string("\x09"
                                                "x",
                                                2))
                   .ok());
  EXPECT_FALSE(ZoneRecord::Decode("").ok());
  EXPECT_FALSE(ZoneRecord::Decode(record.Encode() + "x").ok());
  std::string bad_version = record.Encode();
  bad_version[0] = 9;
  EXPECT_FALSE(ZoneRecord::Decode(bad_version).ok());
}

TEST_F(StoreTest, MapFullIsAnErrorNotACrash) {
  auto store = Open(uint64_t{1} << 20);
  ASSERT_NE(store, nullptr);
  Write(*store, Table::kNodes, "survivor", "still here");
  const std::string value(3000, 'x');
  Status full;
  int committed = 0;
  for (int batch = 0; batch < 1000 && full.ok(); ++batch) {
    auto txn = store->BeginWrite();
    ASSERT_TRUE(txn.ok()) << txn.status().message();
    for (int i = 0; i < 10 && full.ok(); ++i) {
      full = txn->Put(Table::kNodes, EncodeU32(batch) + EncodeU32(i), value);
    }
    if (full.ok()) {
      full = txn->Commit();
      if (full.ok()) ++committed;
    }
  }
  ASSERT_FALSE(full.ok()) << "1 MiB never filled up";
  EXPECT_TRUE(full.IsFull()) << full.message();
  EXPECT_NE(full.message().find("storage.map_size"), std::string::npos) << full.message();
  EXPECT_GT(committed, 0);

  // Readers go on; what was committed is intact; the writer can still write
  // something small after dropping the failed transaction.
  EXPECT_EQ(Read(*store, Table::kNodes, "survivor"), "still here");
  EXPECT_TRUE(Read(*store, Table::kNodes, EncodeU32(0) + EncodeU32(0)).has_value());
  auto txn = store->BeginWrite();
  ASSERT_TRUE(txn.ok()) << txn.status().message();
  auto deleted = txn->DeleteRange(Table::kNodes, EncodeU32(0), EncodeU32(3));
  ASSERT_TRUE(deleted.ok()) << deleted.status().message();
  EXPECT_GT(*deleted, 0u);
  ASSERT_TRUE(txn->Commit().ok());
}

// ---- node values ----

std::string A(uint8_t last) { return std::string("\xc0\x00\x02", 3) + char(last); }

std::string Encode(const NodeBuilder& builder) {
  auto value = builder.Encode();
  EXPECT_TRUE(value.ok()) << value.status().message();
  return value.ok() ? *value : std::string();
}

std::vector<std::string> Rdatas(const RRsetView& set) {
  std::vector<std::string> out;
  for (size_t pos = 0; pos + 2 <= set.body.size();) {
    size_t len = LoadU16(set.body.data() + pos);
    out.emplace_back(set.body.substr(pos + 2, len));
    pos += 2 + len;
  }
  return out;
}

TEST(NodeTest, BuilderViewRoundTrip) {
  NodeBuilder builder;
  EXPECT_TRUE(builder.empty());
  builder.Add(28, 1, 60, std::string(16, '\x20'));
  builder.Add(1, 1, 300, A(1));
  builder.Add(16, 1, 100, std::string("\x05hello", 6));
  builder.Add(1, 1, 300, A(2));
  EXPECT_TRUE(builder.Has(1));
  EXPECT_FALSE(builder.Has(15));
  std::string value = Encode(builder);

  NodeView view(value);
  ASSERT_TRUE(view.Valid());
  EXPECT_EQ(view.rrset_count(), 3u);
  std::vector<uint16_t> types;
  view.ForEach([&](const RRsetView& set) {
    types.push_back(set.type);
    return true;
  });
  EXPECT_EQ(types, (std::vector<uint16_t>{1, 16, 28}));  // ascending by type

  RRsetView set;
  ASSERT_TRUE(view.Find(1, set));
  EXPECT_EQ(set.rclass, 1);
  EXPECT_EQ(set.ttl, 300u);
  EXPECT_EQ(set.rr_count, 2);
  EXPECT_EQ(set.type_class_ttl, std::string("\x00\x01\x00\x01\x00\x00\x01\x2c", 8));
  EXPECT_EQ(Rdatas(set), (std::vector<std::string>{A(1), A(2)}));
  ASSERT_TRUE(view.Find(28, set));
  EXPECT_EQ(set.ttl, 60u);
  EXPECT_FALSE(view.Find(2, set));
  EXPECT_FALSE(view.Find(99, set));

  // ForEach stops when told to.
  int visited = 0;
  view.ForEach([&](const RRsetView&) { return ++visited < 2; });
  EXPECT_EQ(visited, 2);

  NodeBuilder loaded;
  ASSERT_TRUE(loaded.Load(value));
  EXPECT_EQ(Encode(loaded), value);
}

TEST(NodeTest, AddDeduplicatesAndLastTtlWins) {
  NodeBuilder builder;
  builder.Add(1, 1, 300, A(1));
  builder.Add(1, 1, 300, A(1));
  builder.Add(1, 1, 60, A(2));
  std::string value = Encode(builder);
  RRsetView set;
  ASSERT_TRUE(NodeView(value).Find(1, set));
  EXPECT_EQ(set.rr_count, 2);
  EXPECT_EQ(set.ttl, 60u);  // RFC 2181 §5.2: one TTL per RRset
}

TEST(NodeTest, RemoveRRAndRRset) {
  NodeBuilder builder;
  builder.Add(1, 1, 300, A(1));
  builder.Add(1, 1, 300, A(2));
  builder.Add(16, 1, 300, std::string("\x01x", 2));
  EXPECT_FALSE(builder.RemoveRR(1, A(3)));
  EXPECT_FALSE(builder.RemoveRR(2, A(1)));
  EXPECT_TRUE(builder.RemoveRR(1, A(1)));
  RRsetView set;
  std::string value = Encode(builder);
  ASSERT_TRUE(NodeView(value).Find(1, set));
  EXPECT_EQ(Rdatas(set), std::vector<std::string>{A(2)});
  EXPECT_TRUE(builder.RemoveRR(1, A(2)));  // the last RR takes its RRset along
  EXPECT_FALSE(builder.Has(1));
  EXPECT_FALSE(builder.RemoveRRset(1));
  EXPECT_TRUE(builder.RemoveRRset(16));
  EXPECT_TRUE(builder.empty());
  value = Encode(builder);
  EXPECT_EQ(value, std::string("\x01\x00", 2));
}

TEST(NodeTest, EncodeRefusesOversizedRRsets) {
  NodeBuilder builder;
  for (int i = 0; i < 300; ++i) builder.Add(16, 1, 1, std::string(250, char(i)) + char(i >> 8));
  EXPECT_FALSE(builder.Encode().ok());
}

TEST(NodeTest, MalformedNodesAreInvalid) {
  NodeBuilder builder;
  builder.Add(1, 1, 300, A(1));
  builder.Add(16, 1, 300,
              std::string("\x03"
                          "abc",
                          4));
  const std::string good = Encode(builder);
  ASSERT_TRUE(NodeView(good).Valid());

  auto expect_invalid = [](const std::string& bytes, const char* why) {
    NodeView view(bytes);
    EXPECT_FALSE(view.Valid()) << why;
    EXPECT_EQ(view.rrset_count(), 0u) << why;
    RRsetView set;
    EXPECT_FALSE(view.Find(1, set)) << why;
    int visited = 0;
    view.ForEach([&](const RRsetView&) { return ++visited > 0; });
    EXPECT_EQ(visited, 0) << why;
    NodeBuilder b;
    EXPECT_FALSE(b.Load(bytes)) << why;
  };
  expect_invalid("", "empty");
  expect_invalid(std::string("\x01", 1), "no count");
  expect_invalid(std::string("\x02\x00", 2), "unknown version");
  expect_invalid(good.substr(0, good.size() - 1), "truncated rdata");
  for (size_t cut = 2; cut < good.size(); ++cut) expect_invalid(good.substr(0, cut), "truncated");
  expect_invalid(good + "x", "trailing byte");

  std::string more = good;
  more[1] = 3;  // claims a third RRset
  expect_invalid(more, "rrset count beyond the bytes");

  // Offsets inside the first RRset (type A): 2 type, 4 class, 6 ttl,
  // 10 rr count, 12 body length, 14 first rdlength.
  std::string body_long = good;
  body_long[13] = char(body_long[13] + 1);
  expect_invalid(body_long, "body length beyond the RRset");
  std::string rdlength_long = good;
  rdlength_long[15] = 5;
  expect_invalid(rdlength_long, "rdlength beyond the body");
  std::string rr_count_high = good;
  rr_count_high[11] = 2;
  expect_invalid(rr_count_high, "more RRs than the body holds");
  std::string rr_count_low = good;
  rr_count_low[11] = 0;
  expect_invalid(rr_count_low, "body holds more than the RR count");
  std::string huge_rdlength = good;
  huge_rdlength[14] = '\xff';
  expect_invalid(huge_rdlength, "rdlength 0xff04");

  // RRsets out of type order, or a type twice: Find() would miss them.
  // The second RRset (TXT) starts at 2 + 12 + 6 = 20.
  std::string descending = good;
  descending[3] = 16;
  descending[21] = 1;
  expect_invalid(descending, "types descending");
  std::string twice = good;
  twice[21] = 1;
  expect_invalid(twice, "a type twice");
  expect_invalid(std::string("\x01\x01"
                             "\x00\x01\x00\x01\x00\x00\x00\x3c"
                             "\x00\x00\x00\x00",
                             14),
                 "an RRset without RRs");
  expect_invalid(std::string("\x01\x01"
                             "\x00\x00\x00\x01\x00\x00\x00\x3c"
                             "\x00\x01\x00\x02\x00\x00",
                             16),
                 "type 0");
  // A node without RRsets is well-formed (and empty).
  NodeView empty(std::string("\x01\x00", 2));
  EXPECT_TRUE(empty.Valid());
  EXPECT_EQ(empty.rrset_count(), 0u);
}

}  // namespace
}  // namespace updns::storage
