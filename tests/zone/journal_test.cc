// The zone change journal (zone/journal.h): entries written by zone_edit in
// the same transaction as the changes, through a real store.
#include "zone/journal.h"

#include <gtest/gtest.h>
#include <lmdb.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <set>
#include <string>
#include <vector>

#include "storage/accounts.h"
#include "storage/node.h"
#include "storage/schema.h"
#include "storage/store.h"
#include "zone/name.h"
#include "zone/wire.h"
#include "zone/zone_edit.h"
#include "zone/zone_file.h"

namespace updns::zone {
namespace {

namespace fs = std::filesystem;

constexpr const char* kZone = R"($ORIGIN dyn.example.
@ 3600 IN SOA ns1 hostmaster 1 7200 3600 1209600 300
@ 3600 IN NS ns1
ns1 3600 IN A 192.0.2.1
ns1 3600 IN AAAA 2001:db8::1
www 300 IN A 192.0.2.10
www 300 IN A 192.0.2.11
)";

// The same zone, edited: www lost .11 and gained .12, ns1 lost its AAAA,
// mail is new, and the file's serial jumped.
constexpr const char* kZoneV2 = R"($ORIGIN dyn.example.
@ 3600 IN SOA ns1 hostmaster 50 7200 3600 1209600 300
@ 3600 IN NS ns1
ns1 3600 IN A 192.0.2.1
www 300 IN A 192.0.2.10
www 300 IN A 192.0.2.12
mail 600 IN A 192.0.2.25
)";

constexpr const char* kOtherZone = R"($ORIGIN other.example.
@ 3600 IN SOA ns hostmaster 100 7200 3600 1209600 300
@ 3600 IN NS ns
ns 3600 IN A 192.0.2.99
)";

std::string Wire(std::string_view text) {
  auto wire = LowercaseWireNameFromText(text);
  EXPECT_TRUE(wire.ok()) << text;
  return wire.ok() ? *wire : std::string();
}
std::string V4(uint8_t a, uint8_t b, uint8_t c, uint8_t d) {
  return std::string{char(a), char(b), char(c), char(d)};
}
OwnedRR A(std::string_view owner, uint32_t ttl, const std::string& address) {
  return {Wire(owner), type::kA, kClassIN, ttl, address};
}
uint32_t SerialOf(const std::string& soa_rdata) {
  return storage::LoadU32(soa_rdata.data() + soa_rdata.size() - 20);
}
std::vector<OwnedRR> Sorted(std::vector<OwnedRR> rrs) {
  std::sort(rrs.begin(), rrs.end(), [](const OwnedRR& a, const OwnedRR& b) {
    return std::tie(a.owner, a.type, a.rdata, a.ttl) < std::tie(b.owner, b.type, b.rdata, b.ttl);
  });
  return rrs;
}

std::string ShowRRs(const std::vector<OwnedRR>& rrs) {
  std::string text;
  for (const OwnedRR& rr : rrs)
    text += TextFromWireName(rr.owner) + " " + std::to_string(rr.ttl) + " type" +
            std::to_string(rr.type) + " rdata(" + std::to_string(rr.rdata.size()) + ")\n";
  return text;
}

class JournalTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = fs::path("/tmp") /
           ("updns_journal_test_" + std::string(info->name()) + "_" + std::to_string(getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    store_ = Open(false);
    ASSERT_NE(store_, nullptr);
    Import("dyn.example", kZone);
  }
  void TearDown() override {
    store_.reset();
    fs::remove_all(dir_);
  }

  std::unique_ptr<storage::Store> Open(bool read_only) {
    storage::Options options;
    options.path = (dir_ / "store").string();
    options.map_size = uint64_t{256} << 20;
    options.read_only = read_only;
    auto store = storage::Store::Open(options);
    EXPECT_TRUE(store.ok()) << store.status().message();
    return store.ok() ? std::move(store).value() : nullptr;
  }

  void Import(const std::string& zone, const std::string& text, const JournalLimits& limits = {}) {
    std::string path = (dir_ / (zone + ".zone")).string();
    std::ofstream(path, std::ios::binary) << text;
    auto result = ImportZoneFile(*store_, zone, path, false, 60, limits);
    ASSERT_TRUE(result.ok()) << result.status().message();
  }

  // Runs `change` in a write transaction, then FinishZoneChanges for the
  // zones and commit.
  template <typename Fn>
  void Commit(Fn change, std::set<std::string> zones = {}, const JournalLimits& limits = {}) {
    if (zones.empty()) zones.insert(Wire("dyn.example"));
    auto txn = store_->BeginWrite();
    ASSERT_TRUE(txn.ok()) << txn.status().message();
    change(*txn);
    Status s = FinishZoneChanges(*txn, zones, limits);
    ASSERT_TRUE(s.ok()) << s.message();
    ASSERT_TRUE(txn->Commit().ok());
  }
  void SetHost(const char* host, const std::string& v4, uint32_t ttl = 60,
               const JournalLimits& limits = {}) {
    Commit(
        [&](storage::WriteTxn& txn) {
          Status s = WriteHostAddresses(txn, Wire("dyn.example"), Wire(host), v4, "", ttl);
          ASSERT_TRUE(s.ok()) << s.message();
        },
        {}, limits);
  }

  uint32_t ZoneId(std::string_view zone = "dyn.example") {
    auto txn = store_->BeginRead();
    auto record = storage::ReadZoneRecord(*txn, Wire(zone));
    EXPECT_TRUE(record.ok());
    return record.ok() ? record->zone_id : 0;
  }
  std::vector<JournalEntry> Journal(std::string_view zone = "dyn.example") {
    uint32_t id = ZoneId(zone);
    auto txn = store_->BeginRead();
    auto entries = ReadJournal(*txn, id);
    EXPECT_TRUE(entries.ok()) << entries.status().message();
    return entries.ok() ? *entries : std::vector<JournalEntry>{};
  }
  size_t Staged(std::string_view zone = "dyn.example") {
    uint32_t id = ZoneId(zone);
    auto txn = store_->BeginRead();
    return StagedChangeCount(*txn, id);
  }
  uint32_t Serial(std::string_view zone = "dyn.example") {
    auto txn = store_->BeginRead();
    auto serial = ReadSerial(*txn, Wire(zone));
    EXPECT_TRUE(serial.ok());
    return serial.ok() ? *serial : 0;
  }
  std::string SoaRdata(std::string_view zone = "dyn.example") {
    auto txn = store_->BeginRead();
    storage::NodeKey key;
    EXPECT_TRUE(key.Assign(ZoneId(zone), Wire(zone)));
    auto value = txn->Get(storage::Table::kNodes, key.view());
    storage::RRsetView soa;
    EXPECT_TRUE(value && storage::NodeView(*value).Find(type::kSOA, soa));
    return std::string(soa.body.substr(2, storage::LoadU16(soa.body.data())));
  }

  fs::path dir_;
  std::unique_ptr<storage::Store> store_;
};

TEST(SerialArithmetic, Rfc1982) {
  EXPECT_TRUE(SerialAfter(2, 1));
  EXPECT_FALSE(SerialAfter(1, 2));
  EXPECT_FALSE(SerialAfter(7, 7));
  EXPECT_TRUE(SerialAfter(0, 0xFFFFFFFFu));  // wraps
  EXPECT_TRUE(SerialAfter(5, 0xFFFFFFF0u));
  EXPECT_FALSE(SerialAfter(0x80000000u, 0));  // 2^31 apart: undefined, not after
  EXPECT_FALSE(SerialAfter(0, 0x80000000u));
}

TEST_F(JournalTest, FirstImportStartsEmpty) {
  EXPECT_TRUE(Journal().empty());
  EXPECT_EQ(Staged(), 0u);
  EXPECT_EQ(Serial(), 1u);
}

TEST_F(JournalTest, HostUpdatesBecomeEntries) {
  const std::string soa_before = SoaRdata();
  SetHost("h1.dyn.example", V4(192, 0, 2, 7));
  const std::string soa_after = SoaRdata();
  SetHost("h1.dyn.example", V4(192, 0, 2, 8));

  auto entries = Journal();
  ASSERT_EQ(entries.size(), 2u);
  EXPECT_EQ(entries[0].old_serial, 1u);
  EXPECT_EQ(entries[0].new_serial, 2u);
  EXPECT_EQ(entries[0].old_soa_rdata, soa_before);
  EXPECT_EQ(entries[0].new_soa_rdata, soa_after);
  EXPECT_EQ(SerialOf(entries[0].new_soa_rdata), 2u);
  EXPECT_TRUE(entries[0].removed.empty()) << ShowRRs(entries[0].removed);
  EXPECT_EQ(entries[0].added, std::vector<OwnedRR>{A("h1.dyn.example", 60, V4(192, 0, 2, 7))});

  EXPECT_EQ(entries[1].old_serial, 2u);
  EXPECT_EQ(entries[1].new_serial, 3u);
  EXPECT_EQ(entries[1].old_soa_rdata, soa_after);
  EXPECT_EQ(entries[1].removed, std::vector<OwnedRR>{A("h1.dyn.example", 60, V4(192, 0, 2, 7))});
  EXPECT_EQ(entries[1].added, std::vector<OwnedRR>{A("h1.dyn.example", 60, V4(192, 0, 2, 8))});
  EXPECT_EQ(Serial(), 3u);
  EXPECT_EQ(Staged(), 0u);
}

TEST_F(JournalTest, OwnerCaseAndAaaaAndRemoval) {
  const std::string v6(16, '\x20');
  Commit([&](storage::WriteTxn& txn) {
    ASSERT_TRUE(WriteHostAddresses(txn, Wire("dyn.example"), Wire("H2.dyn.example"),
                                   V4(192, 0, 2, 9), v6, 120)
                    .ok());
  });
  Commit([&](storage::WriteTxn& txn) {
    ASSERT_TRUE(RemoveHostAddresses(txn, Wire("dyn.example"), Wire("h2.dyn.example")).ok());
  });
  auto entries = Journal();
  ASSERT_EQ(entries.size(), 2u);
  std::vector<OwnedRR> both = {A("h2.dyn.example", 120, V4(192, 0, 2, 9)),
                               {Wire("h2.dyn.example"), type::kAAAA, kClassIN, 120, v6}};
  EXPECT_EQ(Sorted(entries[0].added), Sorted(both));
  EXPECT_TRUE(entries[0].removed.empty());
  EXPECT_EQ(Sorted(entries[1].removed), Sorted(both));
  EXPECT_TRUE(entries[1].added.empty());
  for (const OwnedRR& rr : entries[0].added) EXPECT_EQ(rr.owner, Wire("h2.dyn.example"));
}

TEST_F(JournalTest, RolledBackNestedTxnLeavesNothing) {
  const uint32_t id = ZoneId();
  {
    auto txn = store_->BeginWrite();
    ASSERT_TRUE(txn.ok());
    {
      auto child = txn->BeginNested();
      ASSERT_TRUE(child.ok());
      ASSERT_TRUE(WriteHostAddresses(*child, Wire("dyn.example"), Wire("h1.dyn.example"),
                                     V4(192, 0, 2, 7), "", 60)
                      .ok());
      EXPECT_EQ(StagedChangeCount(*child, id), 1u);
      // Dropped: rolled back, as the writer does with a failed request.
    }
    EXPECT_EQ(StagedChangeCount(*txn, id), 0u);
    ASSERT_TRUE(txn->Commit().ok());  // the writer finishes only zones that changed
  }
  EXPECT_TRUE(Journal().empty());
  EXPECT_EQ(Staged(), 0u);
  EXPECT_EQ(Serial(), 1u);

  // One request commits, the next fails: only the first is journaled.
  Commit([&](storage::WriteTxn& txn) {
    auto ok_child = txn.BeginNested();
    ASSERT_TRUE(ok_child.ok());
    ASSERT_TRUE(WriteHostAddresses(*ok_child, Wire("dyn.example"), Wire("h1.dyn.example"),
                                   V4(192, 0, 2, 7), "", 60)
                    .ok());
    ASSERT_TRUE(ok_child->Commit().ok());
    auto failed_child = txn.BeginNested();
    ASSERT_TRUE(failed_child.ok());
    ASSERT_TRUE(WriteHostAddresses(*failed_child, Wire("dyn.example"), Wire("h2.dyn.example"),
                                   V4(192, 0, 2, 8), "", 60)
                    .ok());
    // The failed one also tried to take the first one's change back.
    ASSERT_TRUE(
        RemoveHostAddresses(*failed_child, Wire("dyn.example"), Wire("h1.dyn.example")).ok());
  });
  auto entries = Journal();
  ASSERT_EQ(entries.size(), 1u);
  EXPECT_TRUE(entries[0].removed.empty());
  EXPECT_EQ(entries[0].added, std::vector<OwnedRR>{A("h1.dyn.example", 60, V4(192, 0, 2, 7))});
  EXPECT_EQ(Staged(), 0u);
}

TEST_F(JournalTest, AddThenRemoveCancelsAndViceVersa) {
  Commit([&](storage::WriteTxn& txn) {
    ASSERT_TRUE(WriteHostAddresses(txn, Wire("dyn.example"), Wire("h1.dyn.example"),
                                   V4(192, 0, 2, 7), "", 60)
                    .ok());
    ASSERT_TRUE(RemoveHostAddresses(txn, Wire("dyn.example"), Wire("h1.dyn.example")).ok());
    // And a file record removed, then put back in a later nested txn.
    EditableNode www;
    ASSERT_TRUE(LoadNodeForEdit(txn, Wire("dyn.example"), Wire("www.dyn.example"), www).ok());
    ASSERT_TRUE(www.node.RemoveRR(type::kA, V4(192, 0, 2, 10)));
    ASSERT_TRUE(StoreNode(txn, www).ok());
    auto child = txn.BeginNested();
    ASSERT_TRUE(child.ok());
    EditableNode again;
    ASSERT_TRUE(LoadNodeForEdit(*child, Wire("dyn.example"), Wire("www.dyn.example"), again).ok());
    again.node.Add(type::kA, kClassIN, 300, V4(192, 0, 2, 10));
    ASSERT_TRUE(StoreNode(*child, again).ok());
    ASSERT_TRUE(child->Commit().ok());
  });
  auto entries = Journal();
  ASSERT_EQ(entries.size(), 1u);
  EXPECT_TRUE(entries[0].removed.empty()) << ShowRRs(entries[0].removed);
  EXPECT_TRUE(entries[0].added.empty()) << ShowRRs(entries[0].added);
  EXPECT_EQ(entries[0].old_serial, 1u);
  EXPECT_EQ(entries[0].new_serial, 2u);
}

TEST_F(JournalTest, StoringTheSameEditableNodeTwiceStagesOnce) {
  Commit([&](storage::WriteTxn& txn) {
    EditableNode at;
    ASSERT_TRUE(LoadNodeForEdit(txn, Wire("dyn.example"), Wire("x.dyn.example"), at).ok());
    at.node.Add(type::kA, kClassIN, 60, V4(192, 0, 2, 1));
    ASSERT_TRUE(StoreNode(txn, at).ok());
    at.node.Add(type::kA, kClassIN, 60, V4(192, 0, 2, 2));
    ASSERT_TRUE(StoreNode(txn, at).ok());
  });
  auto entries = Journal();
  ASSERT_EQ(entries.size(), 1u);
  EXPECT_EQ(Sorted(entries[0].added), Sorted({A("x.dyn.example", 60, V4(192, 0, 2, 1)),
                                              A("x.dyn.example", 60, V4(192, 0, 2, 2))}));
}

TEST_F(JournalTest, TtlChangeIsRemoveAndAdd) {
  SetHost("h1.dyn.example", V4(192, 0, 2, 7), 60);
  SetHost("h1.dyn.example", V4(192, 0, 2, 7), 300);
  auto entries = Journal();
  ASSERT_EQ(entries.size(), 2u);
  EXPECT_EQ(entries[1].removed, std::vector<OwnedRR>{A("h1.dyn.example", 60, V4(192, 0, 2, 7))});
  EXPECT_EQ(entries[1].added, std::vector<OwnedRR>{A("h1.dyn.example", 300, V4(192, 0, 2, 7))});

  // A new RR with another TTL changes the whole RRset's TTL (RFC 2181 §5.2).
  Commit([&](storage::WriteTxn& txn) {
    EditableNode www;
    ASSERT_TRUE(LoadNodeForEdit(txn, Wire("dyn.example"), Wire("www.dyn.example"), www).ok());
    www.node.Add(type::kA, kClassIN, 30, V4(192, 0, 2, 13));
    ASSERT_TRUE(StoreNode(txn, www).ok());
  });
  entries = Journal();
  ASSERT_EQ(entries.size(), 3u);
  EXPECT_EQ(Sorted(entries[2].removed), Sorted({A("www.dyn.example", 300, V4(192, 0, 2, 10)),
                                                A("www.dyn.example", 300, V4(192, 0, 2, 11))}));
  EXPECT_EQ(Sorted(entries[2].added), Sorted({A("www.dyn.example", 30, V4(192, 0, 2, 10)),
                                              A("www.dyn.example", 30, V4(192, 0, 2, 11)),
                                              A("www.dyn.example", 30, V4(192, 0, 2, 13))}));
}

TEST_F(JournalTest, SoaChangeIsTheEntrysSoaNotAnRR) {
  // An edit of the SOA itself (as RFC 2136 may do): the entry goes from the
  // SOA before the edit to the one after the serial bump.
  const std::string soa_before = SoaRdata();
  Commit([&](storage::WriteTxn& txn) {
    EditableNode apex;
    ASSERT_TRUE(LoadNodeForEdit(txn, Wire("dyn.example"), Wire("dyn.example"), apex).ok());
    std::string rdata = soa_before;
    rdata[rdata.size() - 1] = 60;  // MINIMUM 300 -> 316
    apex.node.RemoveRRset(type::kSOA);
    apex.node.Add(type::kSOA, kClassIN, 3600, rdata);
    ASSERT_TRUE(StoreNode(txn, apex).ok());
  });
  auto entries = Journal();
  ASSERT_EQ(entries.size(), 1u);
  EXPECT_EQ(entries[0].old_soa_rdata, soa_before);
  EXPECT_EQ(entries[0].new_soa_rdata, SoaRdata());
  EXPECT_NE(entries[0].new_soa_rdata.back(), soa_before.back());
  EXPECT_TRUE(entries[0].removed.empty());
  EXPECT_TRUE(entries[0].added.empty());
}

TEST_F(JournalTest, TrimmedByCount) {
  JournalLimits limits;
  limits.max_entries = 3;
  for (int i = 0; i < 6; ++i) SetHost("h1.dyn.example", V4(192, 0, 2, uint8_t(i)), 60, limits);
  auto entries = Journal();
  ASSERT_EQ(entries.size(), 3u);
  // The newest three, still a chain.
  EXPECT_EQ(entries[0].old_serial, 4u);
  EXPECT_EQ(entries[1].old_serial, entries[0].new_serial);
  EXPECT_EQ(entries[2].old_serial, entries[1].new_serial);
  EXPECT_EQ(entries[2].new_serial, Serial());
  EXPECT_EQ(entries[0].sequence, 3u);
  auto txn = store_->BeginRead();
  JournalInfo info = ReadJournalInfo(*txn, ZoneId());
  EXPECT_EQ(info.entries(), 3u);
  EXPECT_FALSE(ReadJournalEntry(*txn, ZoneId(), 2).has_value());
}

TEST_F(JournalTest, TrimmedByBytes) {
  SetHost("h1.dyn.example", V4(192, 0, 2, 1));
  SetHost("h1.dyn.example", V4(192, 0, 2, 2));
  uint64_t one = 0;  // an entry that replaces one A by another, as all below
  {
    auto txn = store_->BeginRead();
    auto first = ReadJournalEntry(*txn, ZoneId(), 0);
    auto value = ReadJournalEntry(*txn, ZoneId(), 1);
    ASSERT_TRUE(first && value);
    one = value->size();
    EXPECT_EQ(ReadJournalInfo(*txn, ZoneId()).bytes, first->size() + one);
  }
  JournalLimits limits;
  limits.max_bytes = one * 2 + one / 2;  // room for two of those, not three
  for (int i = 3; i < 8; ++i) SetHost("h1.dyn.example", V4(192, 0, 2, uint8_t(i)), 60, limits);
  auto entries = Journal();
  ASSERT_EQ(entries.size(), 2u);
  EXPECT_EQ(entries[1].new_serial, Serial());
  auto txn = store_->BeginRead();
  JournalInfo info = ReadJournalInfo(*txn, ZoneId());
  EXPECT_LE(info.bytes, limits.max_bytes);
  uint64_t sum = 0;
  for (uint64_t seq = info.first; seq < info.next; ++seq)
    sum += ReadJournalEntry(*txn, ZoneId(), seq)->size();
  EXPECT_EQ(info.bytes, sum);
}

TEST_F(JournalTest, EntryBiggerThanTheLimitClearsTheJournal) {
  SetHost("h1.dyn.example", V4(192, 0, 2, 1));
  ASSERT_EQ(Journal().size(), 1u);
  JournalLimits tiny;
  tiny.max_bytes = 64;  // smaller than any entry
  SetHost("h1.dyn.example", V4(192, 0, 2, 2), 60, tiny);
  EXPECT_TRUE(Journal().empty());
  EXPECT_EQ(Staged(), 0u);
  EXPECT_EQ(Serial(), 3u);
  // And it starts again from there.
  SetHost("h1.dyn.example", V4(192, 0, 2, 3));
  auto entries = Journal();
  ASSERT_EQ(entries.size(), 1u);
  EXPECT_EQ(entries[0].old_serial, 3u);

  JournalLimits none;
  none.max_entries = 0;
  SetHost("h1.dyn.example", V4(192, 0, 2, 4), 60, none);
  EXPECT_TRUE(Journal().empty());
}

TEST_F(JournalTest, ZoneImportJournalsTheDifference) {
  // A host from the hosts table: its address is the dynamic layer over the
  // file and survives the import, so it is not part of the difference.
  storage::HostRecord host;
  host.name = "dyn1.dyn.example";
  host.account = "alice";
  host.zone = "dyn.example";
  host.ipv4 = V4(198, 51, 100, 7);
  {
    auto txn = store_->BeginWrite();
    ASSERT_TRUE(txn->Put(storage::Table::kHosts, host.name, host.Encode()).ok());
    ASSERT_TRUE(
        WriteHostAddresses(*txn, Wire("dyn.example"), Wire(host.name), host.ipv4, "", 60).ok());
    ASSERT_TRUE(FinishZoneChanges(*txn, {Wire("dyn.example")}).ok());
    ASSERT_TRUE(txn->Commit().ok());
  }
  // And one written without a hosts row: the import drops it.
  SetHost("gone.dyn.example", V4(192, 0, 2, 66));
  ASSERT_EQ(Journal().size(), 2u);
  const std::string soa_before = SoaRdata();

  Import("dyn.example", kZoneV2);
  auto entries = Journal();
  ASSERT_EQ(entries.size(), 3u);
  const JournalEntry& e = entries[2];
  EXPECT_EQ(e.old_serial, 3u);
  EXPECT_EQ(e.new_serial, 50u);
  EXPECT_EQ(e.old_soa_rdata, soa_before);
  EXPECT_EQ(e.new_soa_rdata, SoaRdata());
  std::vector<OwnedRR> removed = {A("www.dyn.example", 300, V4(192, 0, 2, 11)),
                                  {Wire("ns1.dyn.example"), type::kAAAA, kClassIN, 3600,
                                   std::string("\x20\x01\x0d\xb8\0\0\0\0\0\0\0\0\0\0\0\x01", 16)},
                                  A("gone.dyn.example", 60, V4(192, 0, 2, 66))};
  std::vector<OwnedRR> added = {A("www.dyn.example", 300, V4(192, 0, 2, 12)),
                                A("mail.dyn.example", 600, V4(192, 0, 2, 25))};
  EXPECT_EQ(Sorted(e.removed), Sorted(removed)) << ShowRRs(e.removed);
  EXPECT_EQ(Sorted(e.added), Sorted(added)) << ShowRRs(e.added);
  EXPECT_EQ(Staged(), 0u);

  // Importing the same file again changes nothing but the serial.
  Import("dyn.example", kZoneV2);
  entries = Journal();
  ASSERT_EQ(entries.size(), 4u);
  EXPECT_EQ(entries[3].old_serial, 50u);
  EXPECT_EQ(entries[3].new_serial, 51u);
  EXPECT_TRUE(entries[3].removed.empty()) << ShowRRs(entries[3].removed);
  EXPECT_TRUE(entries[3].added.empty()) << ShowRRs(entries[3].added);
}

TEST_F(JournalTest, ZoneImportTooBigForTheLimitClearsTheJournal) {
  SetHost("h1.dyn.example", V4(192, 0, 2, 1));
  ASSERT_EQ(Journal().size(), 1u);
  JournalLimits tiny;
  tiny.max_bytes = 100;
  Import("dyn.example", kZoneV2, tiny);
  EXPECT_TRUE(Journal().empty());
  EXPECT_EQ(Staged(), 0u);
  EXPECT_EQ(Serial(), 50u);
}

TEST_F(JournalTest, ZonesAreIndependent) {
  Import("other.example", kOtherZone);
  const std::string other = Wire("other.example");
  SetHost("h1.dyn.example", V4(192, 0, 2, 1));
  Commit(
      [&](storage::WriteTxn& txn) {
        ASSERT_TRUE(
            WriteHostAddresses(txn, other, Wire("h9.other.example"), V4(192, 0, 2, 9), "", 60)
                .ok());
        ASSERT_TRUE(WriteHostAddresses(txn, Wire("dyn.example"), Wire("h2.dyn.example"),
                                       V4(192, 0, 2, 2), "", 60)
                        .ok());
      },
      {other, Wire("dyn.example")});
  auto dyn = Journal("dyn.example");
  auto oth = Journal("other.example");
  ASSERT_EQ(dyn.size(), 2u);
  ASSERT_EQ(oth.size(), 1u);
  EXPECT_EQ(dyn[1].added, std::vector<OwnedRR>{A("h2.dyn.example", 60, V4(192, 0, 2, 2))});
  EXPECT_EQ(oth[0].added, std::vector<OwnedRR>{A("h9.other.example", 60, V4(192, 0, 2, 9))});
  EXPECT_EQ(oth[0].old_serial, 100u);
  EXPECT_EQ(oth[0].new_serial, 101u);

  // Trimming or clearing one zone leaves the other alone.
  JournalLimits one;
  one.max_entries = 1;
  Commit(
      [&](storage::WriteTxn& txn) {
        ASSERT_TRUE(
            WriteHostAddresses(txn, other, Wire("h9.other.example"), V4(192, 0, 2, 10), "", 60)
                .ok());
      },
      {other}, one);
  EXPECT_EQ(Journal("other.example").size(), 1u);
  EXPECT_EQ(Journal("dyn.example").size(), 2u);
  {
    auto txn = store_->BeginWrite();
    ASSERT_TRUE(ClearJournal(*txn, ZoneId("other.example")).ok());
    ASSERT_TRUE(txn->Commit().ok());
  }
  EXPECT_TRUE(Journal("other.example").empty());
  EXPECT_EQ(Journal("dyn.example").size(), 2u);
}

TEST_F(JournalTest, StoreWithoutJournalTable) {
  // A store written before the journal existed: drop the table.
  {
    auto txn = store_->BeginWrite();
    ASSERT_EQ(mdb_drop(txn->handle(), store_->dbi(storage::Table::kJournal), 1), MDB_SUCCESS);
    ASSERT_TRUE(txn->Commit().ok());
  }
  store_.reset();
  {
    auto read_only = Open(true);
    ASSERT_NE(read_only, nullptr);
    EXPECT_FALSE(read_only->has_table(storage::Table::kJournal));
    EXPECT_TRUE(read_only->has_table(storage::Table::kNodes));
    auto txn = read_only->BeginRead();
    ASSERT_TRUE(txn.ok());
    EXPECT_EQ(ReadJournalInfo(*txn, 1).entries(), 0u);
    EXPECT_FALSE(txn->Get(storage::Table::kJournal, std::string("\0\0\0\1\0", 5)).has_value());
    auto cursor = txn->OpenCursor(storage::Table::kJournal);
    EXPECT_TRUE(cursor.status().IsNotFound()) << cursor.status().message();
    auto serial = ReadSerial(*txn, Wire("dyn.example"));
    ASSERT_TRUE(serial.ok());
    EXPECT_EQ(*serial, 1u);
  }
  store_ = Open(false);  // a writer creates it
  ASSERT_NE(store_, nullptr);
  EXPECT_TRUE(store_->has_table(storage::Table::kJournal));
  SetHost("h1.dyn.example", V4(192, 0, 2, 1));
  EXPECT_EQ(Journal().size(), 1u);
}

}  // namespace
}  // namespace updns::zone
