// RFC 2136 UPDATE through the real writer and a temporary store. Messages
// are built with ldns (compressing names, as real clients do), parsed by
// ParseUpdateMessage and applied by UpdateRequest in update::Writer.
#include "update/rfc2136.h"

#include <gtest/gtest.h>
#include <ldns/ldns.h>
#include <stdbool.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <future>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "storage/accounts.h"
#include "storage/node.h"
#include "storage/schema.h"
#include "tests/update/store_fixture.h"
#include "update/accounts.h"
#include "update/writer.h"
#include "zone/journal.h"
#include "zone/wire.h"
#include "zone/zone_edit.h"
#include "zone/zone_file.h"

namespace updns::update {
namespace {

using testing_support::NodeValue;
using testing_support::Wire;

constexpr std::string_view kZone = "dyn.example";
constexpr std::string_view kClient = "192.0.2.99";

// ---- Building messages with ldns ---------------------------------------------

struct RrListFree {
  void operator()(ldns_rr_list* list) const { ldns_rr_list_deep_free(list); }
};
struct PktFree {
  void operator()(ldns_pkt* pkt) const { ldns_pkt_free(pkt); }
};
using RrList = std::unique_ptr<ldns_rr_list, RrListFree>;
using Pkt = std::unique_ptr<ldns_pkt, PktFree>;

// An RR in presentation form ("name ttl class type rdata").
ldns_rr* Rr(const std::string& text) {
  ldns_rr* rr = nullptr;
  ldns_status status = ldns_rr_new_frm_str(&rr, text.c_str(), 0, nullptr, nullptr);
  EXPECT_EQ(status, LDNS_STATUS_OK) << text << ": " << ldns_get_errorstr_by_id(status);
  return rr;
}

// An RR without rdata (RDLENGTH 0), as ANY and NONE records are.
ldns_rr* Empty(const std::string& owner, ldns_rr_type type, ldns_rr_class rclass,
               uint32_t ttl = 0) {
  ldns_rr* rr = ldns_rr_new();
  ldns_rdf* name = ldns_dname_new_frm_str(owner.c_str());
  EXPECT_NE(name, nullptr) << owner;
  ldns_rr_set_owner(rr, name);
  ldns_rr_set_type(rr, type);
  ldns_rr_set_class(rr, rclass);
  ldns_rr_set_ttl(rr, ttl);
  return rr;
}

// An RR of `type` with raw rdata bytes.
ldns_rr* Raw(const std::string& owner, uint16_t type, const std::string& rdata,
             uint32_t ttl = 300) {
  ldns_rr* rr = Empty(owner, static_cast<ldns_rr_type>(type), LDNS_RR_CLASS_IN, ttl);
  ldns_rr_push_rdf(rr, ldns_rdf_new_frm_data(LDNS_RDF_TYPE_UNKNOWN, rdata.size(), rdata.data()));
  return rr;
}

class Message {
 public:
  explicit Message(std::string zone = "dyn.example.", ldns_rr_class zclass = LDNS_RR_CLASS_IN)
      : zone_(std::move(zone)), zclass_(zclass) {}
  Message& Pre(ldns_rr* rr) {
    prereqs_.push_back(rr);
    return *this;
  }
  Message& Pre(const std::string& text) { return Pre(Rr(text)); }
  Message& Up(ldns_rr* rr) {
    updates_.push_back(rr);
    return *this;
  }
  Message& Up(const std::string& text) { return Up(Rr(text)); }

  std::string Wire() const {
    RrList pr(ldns_rr_list_new()), up(ldns_rr_list_new());
    for (ldns_rr* rr : prereqs_) ldns_rr_list_push_rr(pr.get(), ldns_rr_clone(rr));
    for (ldns_rr* rr : updates_) ldns_rr_list_push_rr(up.get(), ldns_rr_clone(rr));
    Pkt pkt(ldns_update_pkt_new(ldns_dname_new_frm_str(zone_.c_str()), zclass_, pr.get(), up.get(),
                                nullptr));
    EXPECT_NE(pkt, nullptr);
    if (!pkt) return {};
    ldns_pkt_set_id(pkt.get(), 0x1234);
    uint8_t* wire = nullptr;
    size_t size = 0;
    EXPECT_EQ(ldns_pkt2wire(&wire, pkt.get(), &size), LDNS_STATUS_OK);
    std::string out(reinterpret_cast<char*>(wire), size);
    free(wire);
    return out;
  }

  ~Message() {
    for (ldns_rr* rr : prereqs_) ldns_rr_free(rr);
    for (ldns_rr* rr : updates_) ldns_rr_free(rr);
  }
  Message(const Message&) = delete;
  Message& operator=(const Message&) = delete;

 private:
  std::string zone_;
  ldns_rr_class zclass_;
  std::vector<ldns_rr*> prereqs_, updates_;
};

Result<UpdateMessage> Parse(const std::string& wire) {
  return ParseUpdateMessage(reinterpret_cast<const uint8_t*>(wire.data()), wire.size());
}

// ---- The fixture ----------------------------------------------------------------

class Rfc2136Test : public testing::Test {
 protected:
  void SetUp() override {
    store_ = testing_support::OpenStoreWithZone(dir_);
    ASSERT_NE(store_, nullptr);
    auto policy = std::make_shared<UpdatePolicy>();
    auto rule = [&](std::string_view key, std::vector<std::string> names,
                    std::vector<std::string> types, std::string_view zone = kZone) {
      UpdateRule made;
      made.key = Wire(key);
      for (const std::string& name : names) made.names.push_back(Wire(name));
      for (const std::string& text : types) {
        auto type = zone::TypeFromText(text);
        ASSERT_TRUE(type.ok()) << type.status().message();
        made.types.push_back(*type);
      }
      (*policy)[Wire(zone)].push_back(std::move(made));
    };
    rule("ddns-key", {}, {});
    rule("narrow-key", {"*.hosts.dyn.example", "exact.dyn.example"}, {"A", "AAAA", "TXT"});
    rule("admin-key", {}, {"SOA", "NS", "A", "TXT", "CNAME", "MX"});
    rule("other-key", {}, {}, "other.example");
    policy_ = std::move(policy);
    writer_ = std::make_unique<Writer>(*store_);
    writer_->Start();
  }

  // A request for the writer, answering into `*rcode` (a future's promise).
  std::unique_ptr<UpdateRequest> Request(const std::string& wire, std::string_view key,
                                         std::promise<uint8_t>& answered) {
    auto parsed = Parse(wire);
    EXPECT_TRUE(parsed.ok()) << parsed.status().message();
    std::string key_wire = key.empty() ? std::string() : Wire(key);
    return std::make_unique<UpdateRequest>(
        parsed.ok() ? *parsed : UpdateMessage{}, key_wire, std::string(kClient), policy_,
        [&answered](uint8_t rcode) { answered.set_value(rcode); });
  }

  // Sends the message as the server would: FORMERR when it does not parse,
  // else through the writer; returns the RCODE the client would get.
  uint8_t Send(const Message& message, std::string_view key = "ddns-key") {
    std::string wire = message.Wire();
    if (!Parse(wire).ok()) return rcode::kFormErr;
    std::promise<uint8_t> answered;
    auto done = answered.get_future();
    writer_->Submit(Request(wire, key, answered));
    return done.get();
  }

  // The records at `name`, as "name ttl IN TYPE rdata" (ldns presentation
  // form, tabs as spaces), in store order.
  std::vector<std::string> Records(std::string_view name) {
    auto txn = store_->BeginRead();
    EXPECT_TRUE(txn.ok());
    std::vector<std::string> out;
    auto value = NodeValue(*txn, kZone, name);
    if (!value) return out;
    storage::NodeView node(*value);
    EXPECT_TRUE(node.Valid());
    std::string owner = Wire(name);
    node.ForEach([&](const storage::RRsetView& set) {
      for (size_t pos = 0; pos < set.body.size();) {
        size_t len = storage::LoadU16(set.body.data() + pos);
        std::string wire =
            owner + std::string(set.type_class_ttl) + std::string(set.body.substr(pos, 2 + len));
        pos += 2 + len;
        ldns_rr* rr = nullptr;
        size_t at = 0;
        EXPECT_EQ(ldns_wire2rr(&rr, reinterpret_cast<const uint8_t*>(wire.data()), wire.size(), &at,
                               LDNS_SECTION_ANSWER),
                  LDNS_STATUS_OK);
        char* text = ldns_rr2str(rr);
        std::string line(text);
        free(text);
        ldns_rr_free(rr);
        std::replace(line.begin(), line.end(), '\t', ' ');
        while (!line.empty() && line.back() == '\n') line.pop_back();
        out.push_back(line);
      }
      return true;
    });
    return out;
  }

  bool Has(std::string_view name, const std::string& record) {
    auto records = Records(name);
    return std::find(records.begin(), records.end(), record) != records.end();
  }

  bool NodeExists(std::string_view name) {
    auto txn = store_->BeginRead();
    return txn.ok() && NodeValue(*txn, kZone, name).has_value();
  }

  uint32_t Serial() {
    auto txn = store_->BeginRead();
    return txn.ok() ? testing_support::Serial(*txn, kZone) : 0;
  }

  uint64_t Generation() {
    auto txn = store_->BeginRead();
    return txn.ok() ? storage::ReadGeneration(*txn) : 0;
  }

  uint32_t Delegations() {
    auto txn = store_->BeginRead();
    if (!txn.ok()) return 0;
    auto record = storage::ReadZoneRecord(*txn, Wire(kZone));
    return record.ok() ? record->delegation_count : 0;
  }

  // Creates account alice and host `fqdn` (no records yet).
  void AddHostForAlice(std::string_view fqdn) {
    auto txn = store_->BeginWrite();
    ASSERT_TRUE(txn.ok());
    std::set<std::string> zones;
    ASSERT_TRUE(CreateAccount(*txn, "alice", "alice@example.org", "a long passphrase", 10, 1).ok());
    Status s = AddHost(*txn, fqdn, "alice", {HostZone{"dyn.example", 60}}, 1, zones);
    ASSERT_TRUE(s.ok()) << s.message();
    ASSERT_TRUE(zone::FinishZoneChanges(*txn, zones).ok());
    ASSERT_TRUE(txn->Commit().ok());
  }

  storage::HostRecord Host(std::string_view fqdn) {
    auto txn = store_->BeginRead();
    EXPECT_TRUE(txn.ok());
    auto host = GetHost(*txn, fqdn);
    EXPECT_TRUE(host.ok()) << host.status().message();
    return host.ok() ? *host : storage::HostRecord{};
  }

  testing_support::TempDir dir_;
  std::unique_ptr<storage::Store> store_;
  UpdatePolicyPtr policy_;
  std::unique_ptr<Writer> writer_;
};

constexpr uint32_t kFileSerial = 2024010100;

// ---- Adds and deletes -------------------------------------------------------------

TEST_F(Rfc2136Test, AddCreatesTheNameAndBumpsTheSerialOnce) {
  EXPECT_EQ(Send(Message()
                     .Up("new.dyn.example. 300 IN A 192.0.2.77")
                     .Up("new.dyn.example. 300 IN AAAA 2001:db8::77")),
            rcode::kNoError);
  EXPECT_EQ(Records("new.dyn.example"),
            (std::vector<std::string>{"new.dyn.example. 300 IN A 192.0.2.77",
                                      "new.dyn.example. 300 IN AAAA 2001:db8::77"}));
  EXPECT_EQ(Serial(), kFileSerial + 1);
}

TEST_F(Rfc2136Test, NamesInRdataArriveCompressedAndAreStoredWhole) {
  // ldns compresses the MX and CNAME targets against earlier names.
  auto message = [] {
    auto m = std::make_unique<Message>();
    m->Up("mail.dyn.example. 300 IN MX 10 static.dyn.example.")
        .Up("www.dyn.example. 300 IN CNAME static.dyn.example.");
    return m;
  };
  ASSERT_NE(message()->Wire().find("\xc0\x0c"), std::string::npos) << "no compressed name";
  EXPECT_EQ(Send(*message()), rcode::kNoError);
  EXPECT_EQ(Records("mail.dyn.example"),
            (std::vector<std::string>{"mail.dyn.example. 300 IN MX 10 static.dyn.example."}));
  EXPECT_EQ(Records("www.dyn.example"),
            (std::vector<std::string>{"www.dyn.example. 300 IN CNAME static.dyn.example."}));
  // Names in rdata keep the case sent (this target shares no suffix, so
  // nothing is compressed into an earlier name's case).
  EXPECT_EQ(Send(Message().Up("ftp.dyn.example. 300 IN CNAME Files.Example.NET.")),
            rcode::kNoError);
  EXPECT_EQ(Records("ftp.dyn.example"),
            (std::vector<std::string>{"ftp.dyn.example. 300 IN CNAME Files.Example.NET."}));
}

TEST_F(Rfc2136Test, DuplicateAddIsIgnoredAndLeavesTheSerial) {
  uint64_t generation = Generation();
  EXPECT_EQ(Send(Message().Up("static.dyn.example. 3600 IN A 192.0.2.10")), rcode::kNoError);
  // Names in rdata compare case-insensitively.
  EXPECT_EQ(Send(Message().Up("dyn.example. 3600 IN NS NS1.DYN.EXAMPLE."), "admin-key"),
            rcode::kNoError);
  EXPECT_EQ(Serial(), kFileSerial);
  EXPECT_EQ(Generation(), generation);
  EXPECT_EQ(Records("static.dyn.example").size(), 2u);
  EXPECT_EQ(Records("dyn.example").size(), 2u);  // SOA and one NS
}

TEST_F(Rfc2136Test, AddWithAnotherTtlRetimesTheRRset) {
  EXPECT_EQ(Send(Message().Up("static.dyn.example. 60 IN A 192.0.2.11")), rcode::kNoError);
  EXPECT_TRUE(Has("static.dyn.example", "static.dyn.example. 60 IN A 192.0.2.10"));
  EXPECT_TRUE(Has("static.dyn.example", "static.dyn.example. 60 IN A 192.0.2.11"));
  EXPECT_EQ(Serial(), kFileSerial + 1);
}

TEST_F(Rfc2136Test, DeleteRRsetKeepsTheOtherTypes) {
  EXPECT_EQ(Send(Message().Up(Empty("static.dyn.example.", LDNS_RR_TYPE_A, LDNS_RR_CLASS_ANY))),
            rcode::kNoError);
  EXPECT_EQ(Records("static.dyn.example"),
            (std::vector<std::string>{"static.dyn.example. 3600 IN TXT \"hello\""}));
  EXPECT_EQ(Serial(), kFileSerial + 1);
}

TEST_F(Rfc2136Test, DeleteNameRemovesEveryRRset) {
  EXPECT_EQ(Send(Message().Up(Empty("static.dyn.example.", LDNS_RR_TYPE_ANY, LDNS_RR_CLASS_ANY))),
            rcode::kNoError);
  EXPECT_FALSE(NodeExists("static.dyn.example"));
}

TEST_F(Rfc2136Test, DeleteOneRecordMatchesRdataNotTtlAndNamesWithoutCase) {
  ASSERT_EQ(Send(Message()
                     .Up("static.dyn.example. 3600 IN A 192.0.2.11")
                     .Up("mail.dyn.example. 300 IN MX 10 Mx.Example.NET.")
                     .Up("mail.dyn.example. 300 IN MX 20 other.example.")),
            rcode::kNoError);
  EXPECT_EQ(Send(Message()
                     .Up("static.dyn.example. 0 NONE A 192.0.2.10")
                     .Up("mail.dyn.example. 0 NONE MX 10 MX.EXAMPLE.net.")),
            rcode::kNoError);
  EXPECT_FALSE(Has("static.dyn.example", "static.dyn.example. 3600 IN A 192.0.2.10"));
  EXPECT_TRUE(Has("static.dyn.example", "static.dyn.example. 3600 IN A 192.0.2.11"));
  EXPECT_EQ(Records("mail.dyn.example"),
            (std::vector<std::string>{"mail.dyn.example. 300 IN MX 20 other.example."}));
  // Deleting the last record of a name removes the name.
  EXPECT_EQ(Send(Message().Up("mail.dyn.example. 0 NONE MX 20 other.example.")), rcode::kNoError);
  EXPECT_FALSE(NodeExists("mail.dyn.example"));
}

TEST_F(Rfc2136Test, NoOpUpdateLeavesSerialAndGeneration) {
  uint64_t generation = Generation();
  EXPECT_EQ(Send(Message()
                     .Up(Empty("nothing.dyn.example.", LDNS_RR_TYPE_A, LDNS_RR_CLASS_ANY))
                     .Up(Empty("nothing.dyn.example.", LDNS_RR_TYPE_ANY, LDNS_RR_CLASS_ANY))
                     .Up("static.dyn.example. 0 NONE A 192.0.2.99")),
            rcode::kNoError);
  EXPECT_EQ(Serial(), kFileSerial);
  EXPECT_EQ(Generation(), generation);
  // An add and a delete of the same record in one message change nothing either.
  EXPECT_EQ(Send(Message()
                     .Up("tmp.dyn.example. 300 IN A 192.0.2.5")
                     .Up("tmp.dyn.example. 0 NONE A 192.0.2.5")),
            rcode::kNoError);
  EXPECT_EQ(Serial(), kFileSerial);
  EXPECT_FALSE(NodeExists("tmp.dyn.example"));
}

// ---- Prerequisites ------------------------------------------------------------------

TEST_F(Rfc2136Test, NameInUse) {
  EXPECT_EQ(Send(Message()
                     .Pre(Empty("static.dyn.example.", LDNS_RR_TYPE_ANY, LDNS_RR_CLASS_ANY))
                     .Up("a.dyn.example. 300 IN A 192.0.2.1")),
            rcode::kNoError);
  EXPECT_EQ(Send(Message()
                     .Pre(Empty("missing.dyn.example.", LDNS_RR_TYPE_ANY, LDNS_RR_CLASS_ANY))
                     .Up("b.dyn.example. 300 IN A 192.0.2.1")),
            rcode::kNXDomain);
  EXPECT_TRUE(NodeExists("a.dyn.example"));
  EXPECT_FALSE(NodeExists("b.dyn.example"));
}

TEST_F(Rfc2136Test, NameNotInUse) {
  EXPECT_EQ(Send(Message()
                     .Pre(Empty("missing.dyn.example.", LDNS_RR_TYPE_ANY, LDNS_RR_CLASS_NONE))
                     .Up("a.dyn.example. 300 IN A 192.0.2.1")),
            rcode::kNoError);
  EXPECT_EQ(Send(Message()
                     .Pre(Empty("static.dyn.example.", LDNS_RR_TYPE_ANY, LDNS_RR_CLASS_NONE))
                     .Up("b.dyn.example. 300 IN A 192.0.2.1")),
            rcode::kYXDomain);
  EXPECT_FALSE(NodeExists("b.dyn.example"));
  // An empty non-terminal owns no RR: it is not in use (RFC 2136 §2.4.5).
  ASSERT_EQ(Send(Message().Up("x.ent.dyn.example. 300 IN A 192.0.2.1")), rcode::kNoError);
  EXPECT_EQ(Send(Message()
                     .Pre(Empty("ent.dyn.example.", LDNS_RR_TYPE_ANY, LDNS_RR_CLASS_NONE))
                     .Up("c.dyn.example. 300 IN A 192.0.2.1")),
            rcode::kNoError);
  EXPECT_TRUE(NodeExists("c.dyn.example"));
}

TEST_F(Rfc2136Test, RRsetExistsValueIndependent) {
  EXPECT_EQ(Send(Message()
                     .Pre(Empty("static.dyn.example.", LDNS_RR_TYPE_TXT, LDNS_RR_CLASS_ANY))
                     .Up("a.dyn.example. 300 IN A 192.0.2.1")),
            rcode::kNoError);
  EXPECT_EQ(Send(Message()
                     .Pre(Empty("static.dyn.example.", LDNS_RR_TYPE_AAAA, LDNS_RR_CLASS_ANY))
                     .Up("b.dyn.example. 300 IN A 192.0.2.1")),
            rcode::kNXRRset);
  EXPECT_FALSE(NodeExists("b.dyn.example"));
}

TEST_F(Rfc2136Test, RRsetDoesNotExist) {
  EXPECT_EQ(Send(Message()
                     .Pre(Empty("static.dyn.example.", LDNS_RR_TYPE_AAAA, LDNS_RR_CLASS_NONE))
                     .Up("a.dyn.example. 300 IN A 192.0.2.1")),
            rcode::kNoError);
  EXPECT_EQ(Send(Message()
                     .Pre(Empty("static.dyn.example.", LDNS_RR_TYPE_A, LDNS_RR_CLASS_NONE))
                     .Up("b.dyn.example. 300 IN A 192.0.2.1")),
            rcode::kYXRRset);
  EXPECT_FALSE(NodeExists("b.dyn.example"));
}

TEST_F(Rfc2136Test, RRsetExistsValueDependent) {
  ASSERT_EQ(Send(Message().Up("static.dyn.example. 3600 IN A 192.0.2.11")), rcode::kNoError);
  // The whole RRset, in any order, TTL not compared.
  EXPECT_EQ(Send(Message()
                     .Pre("static.dyn.example. 0 IN A 192.0.2.11")
                     .Pre("static.dyn.example. 0 IN A 192.0.2.10")
                     .Up("a.dyn.example. 300 IN A 192.0.2.1")),
            rcode::kNoError);
  // A subset is not the RRset.
  EXPECT_EQ(Send(Message()
                     .Pre("static.dyn.example. 0 IN A 192.0.2.10")
                     .Up("b.dyn.example. 300 IN A 192.0.2.1")),
            rcode::kNXRRset);
  // Nor a different value, nor a missing RRset.
  EXPECT_EQ(Send(Message()
                     .Pre("static.dyn.example. 0 IN A 192.0.2.10")
                     .Pre("static.dyn.example. 0 IN A 192.0.2.12")
                     .Up("b.dyn.example. 300 IN A 192.0.2.1")),
            rcode::kNXRRset);
  EXPECT_EQ(Send(Message()
                     .Pre("static.dyn.example. 0 IN AAAA 2001:db8::1")
                     .Up("b.dyn.example. 300 IN A 192.0.2.1")),
            rcode::kNXRRset);
  // Names inside rdata compare without case.
  EXPECT_EQ(Send(Message()
                     .Pre("dyn.example. 0 IN NS Ns1.Dyn.Example.")
                     .Up("c.dyn.example. 300 IN A 192.0.2.1")),
            rcode::kNoError);
  EXPECT_TRUE(NodeExists("a.dyn.example"));
  EXPECT_FALSE(NodeExists("b.dyn.example"));
  EXPECT_TRUE(NodeExists("c.dyn.example"));
}

TEST_F(Rfc2136Test, MalformedPrerequisitesAreFormErr) {
  // TTL must be 0.
  EXPECT_EQ(Send(Message()
                     .Pre(Empty("static.dyn.example.", LDNS_RR_TYPE_ANY, LDNS_RR_CLASS_ANY, 30))
                     .Up("a.dyn.example. 300 IN A 192.0.2.1")),
            rcode::kFormErr);
  // ANY and NONE carry no rdata.
  EXPECT_EQ(Send(Message()
                     .Pre("static.dyn.example. 0 ANY A 192.0.2.10")
                     .Up("a.dyn.example. 300 IN A 192.0.2.1")),
            rcode::kFormErr);
  EXPECT_EQ(Send(Message()
                     .Pre("static.dyn.example. 0 CH A 192.0.2.10")
                     .Up("a.dyn.example. 300 IN A 192.0.2.1")),
            rcode::kFormErr);
  EXPECT_FALSE(NodeExists("a.dyn.example"));
}

// ---- Zone, class and policy ---------------------------------------------------------

TEST_F(Rfc2136Test, NamesOutsideTheZoneAreNotZone) {
  EXPECT_EQ(Send(Message().Up("host.other.example. 300 IN A 192.0.2.1")), rcode::kNotZone);
  EXPECT_EQ(Send(Message()
                     .Pre(Empty("other.example.", LDNS_RR_TYPE_ANY, LDNS_RR_CLASS_ANY))
                     .Up("a.dyn.example. 300 IN A 192.0.2.1")),
            rcode::kNotZone);
  // Nothing of a refused message is written, not even its valid records.
  EXPECT_EQ(
      Send(Message().Up("a.dyn.example. 300 IN A 192.0.2.1").Up("example. 300 IN A 192.0.2.1")),
      rcode::kNotZone);
  EXPECT_FALSE(NodeExists("a.dyn.example"));
  EXPECT_EQ(Serial(), kFileSerial);
}

TEST_F(Rfc2136Test, UnknownZoneOrClassIsNotAuth) {
  EXPECT_EQ(Send(Message("other.example.").Up("a.other.example. 300 IN A 192.0.2.1"), "other-key"),
            rcode::kNotAuth);
  EXPECT_EQ(Send(Message("dyn.example.", LDNS_RR_CLASS_CH).Up("a.dyn.example. 300 CH A 192.0.2.1")),
            rcode::kNotAuth);
}

TEST_F(Rfc2136Test, UnsignedOrUnauthorizedIsRefused) {
  EXPECT_EQ(Send(Message().Up("a.dyn.example. 300 IN A 192.0.2.1"), ""), rcode::kRefused);
  // A key known for another zone only.
  EXPECT_EQ(Send(Message().Up("a.dyn.example. 300 IN A 192.0.2.1"), "other-key"), rcode::kRefused);
  EXPECT_EQ(Send(Message().Up("a.dyn.example. 300 IN A 192.0.2.1"), "unknown-key"),
            rcode::kRefused);
  // Refused before the prerequisites are looked at: no probing of names.
  EXPECT_EQ(
      Send(Message().Pre(Empty("missing.dyn.example.", LDNS_RR_TYPE_ANY, LDNS_RR_CLASS_ANY)), ""),
      rcode::kRefused);
  EXPECT_FALSE(NodeExists("a.dyn.example"));
}

TEST_F(Rfc2136Test, RulesLimitNamesAndTypes) {
  // *.hosts.dyn.example: strictly below, any depth; exact.dyn.example: itself only.
  EXPECT_EQ(Send(Message().Up("a.hosts.dyn.example. 300 IN A 192.0.2.1"), "narrow-key"),
            rcode::kNoError);
  EXPECT_EQ(Send(Message().Up("b.c.hosts.dyn.example. 300 IN TXT \"x\""), "narrow-key"),
            rcode::kNoError);
  EXPECT_EQ(Send(Message().Up("exact.dyn.example. 300 IN AAAA 2001:db8::1"), "narrow-key"),
            rcode::kNoError);
  EXPECT_EQ(Send(Message().Up("hosts.dyn.example. 300 IN A 192.0.2.1"), "narrow-key"),
            rcode::kRefused);
  EXPECT_EQ(Send(Message().Up("x.exact.dyn.example. 300 IN A 192.0.2.1"), "narrow-key"),
            rcode::kRefused);
  EXPECT_EQ(Send(Message().Up("static.dyn.example. 0 NONE A 192.0.2.10"), "narrow-key"),
            rcode::kRefused);
  // Types outside the rule's list, whatever the name.
  EXPECT_EQ(
      Send(Message().Up("a.hosts.dyn.example. 300 IN MX 10 a.hosts.dyn.example."), "narrow-key"),
      rcode::kRefused);
  // All or nothing: the allowed first record is not written either.
  EXPECT_EQ(Send(Message()
                     .Up("d.hosts.dyn.example. 300 IN A 192.0.2.4")
                     .Up("d.hosts.dyn.example. 300 IN MX 10 d.hosts.dyn.example."),
                 "narrow-key"),
            rcode::kRefused);
  EXPECT_FALSE(NodeExists("d.hosts.dyn.example"));
  // Without a type list, every type but SOA and NS.
  EXPECT_EQ(Send(Message().Up("a.hosts.dyn.example. 300 IN MX 10 a.hosts.dyn.example.")),
            rcode::kNoError);
  EXPECT_EQ(Send(Message().Up("dyn.example. 3600 IN NS ns2.dyn.example.")), rcode::kRefused);
  EXPECT_EQ(Send(Message().Up("newsub.dyn.example. 3600 IN NS ns.example.")), rcode::kRefused);
  EXPECT_EQ(Send(Message().Up(
                "dyn.example. 3600 IN SOA ns1.dyn.example. hostmaster.dyn.example. 2030000000 "
                "3600 900 1209600 300")),
            rcode::kRefused);
  EXPECT_EQ(Serial(), kFileSerial + 4);
}

TEST_F(Rfc2136Test, DeletingANameNeedsEveryTypeItHolds) {
  ASSERT_EQ(Send(Message()
                     .Up("a.hosts.dyn.example. 300 IN A 192.0.2.1")
                     .Up("a.hosts.dyn.example. 300 IN MX 10 a.hosts.dyn.example.")),
            rcode::kNoError);
  auto delete_all = [] {
    auto m = std::make_unique<Message>();
    m->Up(Empty("a.hosts.dyn.example.", LDNS_RR_TYPE_ANY, LDNS_RR_CLASS_ANY));
    return m;
  };
  EXPECT_EQ(Send(*delete_all(), "narrow-key"), rcode::kRefused);  // holds MX
  EXPECT_EQ(Records("a.hosts.dyn.example").size(), 2u);
  ASSERT_EQ(Send(Message().Up(Empty("a.hosts.dyn.example.", LDNS_RR_TYPE_MX, LDNS_RR_CLASS_ANY))),
            rcode::kNoError);
  EXPECT_EQ(Send(*delete_all(), "narrow-key"), rcode::kNoError);
  EXPECT_FALSE(NodeExists("a.hosts.dyn.example"));
  // A name outside the key's names, even empty, is refused.
  EXPECT_EQ(Send(Message().Up(Empty("elsewhere.dyn.example.", LDNS_RR_TYPE_ANY, LDNS_RR_CLASS_ANY)),
                 "narrow-key"),
            rcode::kRefused);
}

TEST_F(Rfc2136Test, MetaTypesAndBadClassesAreFormErr) {
  for (ldns_rr_type meta : {LDNS_RR_TYPE_ANY, LDNS_RR_TYPE_AXFR, LDNS_RR_TYPE_IXFR,
                            LDNS_RR_TYPE_MAILA, LDNS_RR_TYPE_MAILB, LDNS_RR_TYPE_OPT}) {
    EXPECT_EQ(Send(Message().Up(Empty("a.dyn.example.", meta, LDNS_RR_CLASS_IN, 300))),
              rcode::kFormErr)
        << "add of type " << meta;
  }
  EXPECT_EQ(Send(Message().Up(Empty("a.dyn.example.", LDNS_RR_TYPE_AXFR, LDNS_RR_CLASS_ANY))),
            rcode::kFormErr);
  EXPECT_EQ(Send(Message().Up(Empty("a.dyn.example.", LDNS_RR_TYPE_ANY, LDNS_RR_CLASS_NONE))),
            rcode::kFormErr);
  // Deletions carry TTL 0; ANY deletions carry no rdata.
  EXPECT_EQ(Send(Message().Up(Empty("static.dyn.example.", LDNS_RR_TYPE_A, LDNS_RR_CLASS_ANY, 5))),
            rcode::kFormErr);
  EXPECT_EQ(Send(Message().Up("static.dyn.example. 0 ANY A 192.0.2.10")), rcode::kFormErr);
  EXPECT_EQ(Send(Message().Up("static.dyn.example. 5 NONE A 192.0.2.10")), rcode::kFormErr);
  EXPECT_EQ(Send(Message().Up("static.dyn.example. 300 CH A 192.0.2.10")), rcode::kFormErr);
  EXPECT_EQ(Records("static.dyn.example").size(), 2u);
  EXPECT_EQ(Serial(), kFileSerial);
}

// ---- Apex SOA and NS, CNAME ---------------------------------------------------------

TEST_F(Rfc2136Test, ApexKeepsSoaAndItsLastNs) {
  const std::vector<std::string> apex = Records("dyn.example");
  EXPECT_EQ(Send(Message()
                     .Up(Empty("dyn.example.", LDNS_RR_TYPE_SOA, LDNS_RR_CLASS_ANY))
                     .Up(Empty("dyn.example.", LDNS_RR_TYPE_NS, LDNS_RR_CLASS_ANY))
                     .Up("dyn.example. 0 NONE NS ns1.dyn.example.")
                     .Up("dyn.example. 0 NONE SOA ns1.dyn.example. hostmaster.dyn.example. "
                         "2024010100 3600 900 1209600 300"),
                 "admin-key"),
            rcode::kNoError);
  EXPECT_EQ(Records("dyn.example"), apex);
  EXPECT_EQ(Serial(), kFileSerial);

  // Those deletions change nothing, so a key without SOA and NS in its
  // types may send them; it may not delete an apex NS record, nor may a
  // key whose names do not cover the apex send even those.
  const auto no_op_deletions = [] {
    auto m = std::make_unique<Message>();
    m->Up(Empty("dyn.example.", LDNS_RR_TYPE_SOA, LDNS_RR_CLASS_ANY))
        .Up(Empty("dyn.example.", LDNS_RR_TYPE_NS, LDNS_RR_CLASS_ANY))
        .Up("dyn.example. 0 NONE SOA ns1.dyn.example. hostmaster.dyn.example. "
            "2024010100 3600 900 1209600 300");
    return m;
  };
  EXPECT_EQ(Send(*no_op_deletions(), "ddns-key"), rcode::kNoError);
  EXPECT_EQ(Send(*no_op_deletions(), "narrow-key"), rcode::kRefused);
  EXPECT_EQ(Send(Message().Up("dyn.example. 0 NONE NS ns1.dyn.example."), "ddns-key"),
            rcode::kRefused);
  EXPECT_EQ(Records("dyn.example"), apex);
  EXPECT_EQ(Serial(), kFileSerial);

  // With a second NS, the first may go.
  EXPECT_EQ(Send(Message()
                     .Up("dyn.example. 3600 IN NS ns2.dyn.example.")
                     .Up("dyn.example. 0 NONE NS ns1.dyn.example."),
                 "admin-key"),
            rcode::kNoError);
  EXPECT_FALSE(Has("dyn.example", "dyn.example. 3600 IN NS ns1.dyn.example."));
  EXPECT_TRUE(Has("dyn.example", "dyn.example. 3600 IN NS ns2.dyn.example."));
}

TEST_F(Rfc2136Test, DeletingTheApexNameKeepsSoaAndNs) {
  ASSERT_EQ(Send(Message().Up("dyn.example. 300 IN TXT \"v=spf1 -all\""), "admin-key"),
            rcode::kNoError);
  ASSERT_EQ(Records("dyn.example").size(), 3u);
  EXPECT_EQ(
      Send(Message().Up(Empty("dyn.example.", LDNS_RR_TYPE_ANY, LDNS_RR_CLASS_ANY)), "admin-key"),
      rcode::kNoError);
  auto records = Records("dyn.example");
  ASSERT_EQ(records.size(), 2u);
  EXPECT_NE(records[0].find(" IN NS "), std::string::npos);
  EXPECT_NE(records[1].find(" IN SOA "), std::string::npos);
  EXPECT_EQ(Serial(), kFileSerial + 2);
}

TEST_F(Rfc2136Test, SoaIsReplacedOnlyByAGreaterSerialWhichIsThenServed) {
  const std::string soa = "dyn.example. 600 IN SOA ns1.dyn.example. hostmaster.dyn.example. ";
  // Lower and equal serials are ignored.
  EXPECT_EQ(Send(Message().Up(soa + "2023000000 7200 900 1209600 300"), "admin-key"),
            rcode::kNoError);
  EXPECT_EQ(Send(Message().Up(soa + "2024010100 7200 900 1209600 300"), "admin-key"),
            rcode::kNoError);
  EXPECT_EQ(Serial(), kFileSerial);
  // An SOA elsewhere than the apex is ignored.
  EXPECT_EQ(Send(Message().Up("static.dyn.example. 600 IN SOA ns1.dyn.example. "
                              "hostmaster.dyn.example. 2030000000 1 1 1 1"),
                 "admin-key"),
            rcode::kNoError);
  EXPECT_FALSE(Has("static.dyn.example",
                   "static.dyn.example. 600 IN SOA ns1.dyn.example. hostmaster.dyn.example. "
                   "2030000000 1 1 1 1"));
  // A greater one replaces it, and its serial is the one served, even with
  // other changes in the same message.
  EXPECT_EQ(Send(Message()
                     .Up(soa + "2025000000 7200 900 1209600 300")
                     .Up("a.dyn.example. 300 IN A 192.0.2.1"),
                 "admin-key"),
            rcode::kNoError);
  EXPECT_EQ(Serial(), 2025000000u);
  EXPECT_TRUE(Has("dyn.example", soa + "2025000000 7200 900 1209600 300"));
  // The serial just above the current one is honoured too.
  EXPECT_EQ(Send(Message().Up(soa + "2025000001 7200 900 1209600 300"), "admin-key"),
            rcode::kNoError);
  EXPECT_EQ(Serial(), 2025000001u);
  // Without an SOA, the serial moves by one.
  EXPECT_EQ(Send(Message().Up("b.dyn.example. 300 IN A 192.0.2.2")), rcode::kNoError);
  EXPECT_EQ(Serial(), 2025000002u);
}

TEST_F(Rfc2136Test, CnameAndOtherDataExcludeEachOther) {
  // A CNAME where other data lives is ignored...
  EXPECT_EQ(Send(Message().Up("static.dyn.example. 300 IN CNAME ns1.dyn.example.")),
            rcode::kNoError);
  EXPECT_EQ(Records("static.dyn.example").size(), 2u);
  EXPECT_EQ(Serial(), kFileSerial);
  // ...and other data at a CNAME too.
  ASSERT_EQ(Send(Message().Up("www.dyn.example. 300 IN CNAME static.dyn.example.")),
            rcode::kNoError);
  EXPECT_EQ(Send(Message().Up("www.dyn.example. 300 IN A 192.0.2.1")), rcode::kNoError);
  EXPECT_EQ(Records("www.dyn.example"),
            (std::vector<std::string>{"www.dyn.example. 300 IN CNAME static.dyn.example."}));
  // A second CNAME replaces the first.
  EXPECT_EQ(Send(Message().Up("www.dyn.example. 600 IN CNAME ns1.dyn.example.")), rcode::kNoError);
  EXPECT_EQ(Records("www.dyn.example"),
            (std::vector<std::string>{"www.dyn.example. 600 IN CNAME ns1.dyn.example."}));
  // In one message: deleting the data first lets the CNAME in.
  EXPECT_EQ(Send(Message()
                     .Up(Empty("static.dyn.example.", LDNS_RR_TYPE_ANY, LDNS_RR_CLASS_ANY))
                     .Up("static.dyn.example. 300 IN CNAME ns1.dyn.example.")),
            rcode::kNoError);
  EXPECT_EQ(Records("static.dyn.example"),
            (std::vector<std::string>{"static.dyn.example. 300 IN CNAME ns1.dyn.example."}));
}

TEST_F(Rfc2136Test, DelegationsAreCounted) {
  ASSERT_EQ(Delegations(), 1u);  // sub.dyn.example in the file
  EXPECT_EQ(Send(Message().Up("newsub.dyn.example. 3600 IN NS ns.example."), "admin-key"),
            rcode::kNoError);
  EXPECT_EQ(Delegations(), 2u);
  EXPECT_EQ(Send(Message()
                     .Up(Empty("newsub.dyn.example.", LDNS_RR_TYPE_NS, LDNS_RR_CLASS_ANY))
                     .Up(Empty("sub.dyn.example.", LDNS_RR_TYPE_NS, LDNS_RR_CLASS_ANY)),
                 "admin-key"),
            rcode::kNoError);
  EXPECT_EQ(Delegations(), 0u);
}

TEST_F(Rfc2136Test, TheJournalSeesOneEntryPerUpdateWithTheRequestedSerial) {
  EXPECT_EQ(Send(Message()
                     .Up("dyn.example. 600 IN SOA ns1.dyn.example. hostmaster.dyn.example. "
                         "2025000000 7200 900 1209600 300")
                     .Up("a.dyn.example. 300 IN A 192.0.2.1")
                     .Up("static.dyn.example. 0 NONE A 192.0.2.10"),
                 "admin-key"),
            rcode::kNoError);
  auto txn = store_->BeginRead();
  ASSERT_TRUE(txn.ok());
  auto zone = storage::ReadZoneRecord(*txn, Wire(kZone));
  ASSERT_TRUE(zone.ok());
  auto journal = zone::ReadJournal(*txn, zone->zone_id);
  ASSERT_TRUE(journal.ok()) << journal.status().message();
  ASSERT_EQ(journal->size(), 1u);
  const zone::JournalEntry& entry = journal->front();
  EXPECT_EQ(entry.old_serial, kFileSerial);
  EXPECT_EQ(entry.new_serial, 2025000000u);
  ASSERT_EQ(entry.added.size(), 1u);
  EXPECT_EQ(entry.added[0].owner, Wire("a.dyn.example"));
  EXPECT_EQ(entry.added[0].rdata, std::string("\xc0\x00\x02\x01", 4));
  ASSERT_EQ(entry.removed.size(), 1u);
  EXPECT_EQ(entry.removed[0].owner, Wire("static.dyn.example"));
  EXPECT_EQ(entry.removed[0].rdata, std::string("\xc0\x00\x02\x0a", 4));
  EXPECT_EQ(zone::StagedChangeCount(*txn, zone->zone_id), 0u);
}

// ---- The writer's group ---------------------------------------------------------------

TEST_F(Rfc2136Test, AFailedRequestInAGroupLeavesTheOthersAlone) {
  // Requests queued before the writer starts are applied as one group.
  writer_ = std::make_unique<Writer>(*store_);
  std::promise<uint8_t> first, second, third;
  auto first_done = first.get_future(), second_done = second.get_future(),
       third_done = third.get_future();
  writer_->Submit(
      Request(Message().Up("one.dyn.example. 300 IN A 192.0.2.1").Wire(), "ddns-key", first));
  writer_->Submit(
      Request(Message()
                  .Up("bad.dyn.example. 300 IN A 192.0.2.2")
                  .Pre(Empty("missing.dyn.example.", LDNS_RR_TYPE_ANY, LDNS_RR_CLASS_ANY))
                  .Wire(),
              "ddns-key", second));
  writer_->Submit(
      Request(Message().Up("three.dyn.example. 300 IN A 192.0.2.3").Wire(), "ddns-key", third));
  writer_->Start();
  EXPECT_EQ(first_done.get(), rcode::kNoError);
  EXPECT_EQ(second_done.get(), rcode::kNXDomain);
  EXPECT_EQ(third_done.get(), rcode::kNoError);
  Writer::Stats stats = writer_->stats();
  EXPECT_EQ(stats.commits, 1u);
  EXPECT_EQ(stats.requests, 3u);
  EXPECT_TRUE(NodeExists("one.dyn.example"));
  EXPECT_FALSE(NodeExists("bad.dyn.example"));
  EXPECT_TRUE(NodeExists("three.dyn.example"));
  EXPECT_EQ(Serial(), kFileSerial + 1);  // once for the group
  // The failed request's changes left nothing staged for the journal.
  auto txn = store_->BeginRead();
  ASSERT_TRUE(txn.ok());
  auto zone = storage::ReadZoneRecord(*txn, Wire(kZone));
  ASSERT_TRUE(zone.ok());
  EXPECT_EQ(zone::StagedChangeCount(*txn, zone->zone_id), 0u);
}

TEST_F(Rfc2136Test, AFailureAfterWritesRollsBackTheWholeRequest) {
  // A private-use type with 40000 bytes of rdata: twice that is more than an
  // RRset can hold, which is only found when the node is encoded, after
  // earlier names of the same request were written.
  std::string big_a(40000, 'a'), big_b(40000, 'b');
  ASSERT_EQ(Send(Message().Up(Raw("big.dyn.example.", 65280, big_a))), rcode::kNoError);
  uint32_t serial = Serial();
  EXPECT_EQ(Send(Message()
                     .Up("a.dyn.example. 300 IN A 192.0.2.1")
                     .Up(Raw("big.dyn.example.", 65280, big_b))),
            rcode::kRefused);
  EXPECT_FALSE(NodeExists("a.dyn.example"));
  EXPECT_EQ(Serial(), serial);
  // Nor is anything of it left staged for the journal.
  auto txn = store_->BeginRead();
  ASSERT_TRUE(txn.ok());
  auto zone = storage::ReadZoneRecord(*txn, Wire(kZone));
  ASSERT_TRUE(zone.ok());
  EXPECT_EQ(zone::StagedChangeCount(*txn, zone->zone_id), 0u);
}

// ---- Hosts ------------------------------------------------------------------------------

TEST_F(Rfc2136Test, HostRecordFollowsItsNode) {
  AddHostForAlice("router.dyn.example");
  EXPECT_EQ(Send(Message()
                     .Up("router.dyn.example. 60 IN A 203.0.113.7")
                     .Up("router.dyn.example. 60 IN AAAA 2001:db8::7")),
            rcode::kNoError);
  storage::HostRecord host = Host("router.dyn.example");
  EXPECT_EQ(host.ipv4, std::string("\xcb\x00\x71\x07", 4));
  EXPECT_EQ(host.ipv6.size(), 16u);
  EXPECT_EQ(host.updated_from, kClient);
  EXPECT_GT(host.updated_at, 0u);

  // A change of A only: the host's AAAA stays.
  EXPECT_EQ(Send(Message()
                     .Up(Empty("router.dyn.example.", LDNS_RR_TYPE_A, LDNS_RR_CLASS_ANY))
                     .Up("router.dyn.example. 60 IN A 198.51.100.9")),
            rcode::kNoError);
  host = Host("router.dyn.example");
  EXPECT_EQ(host.ipv4, std::string("\xc6\x33\x64\x09", 4));
  EXPECT_EQ(host.ipv6.size(), 16u);

  // A zone re-import writes hosts back over the file: the UPDATE's address
  // survives it.
  auto imported = zone::ImportZoneFile(*store_, kZone, dir_.File("dyn.example.zone"));
  ASSERT_TRUE(imported.ok()) << imported.status().message();
  EXPECT_TRUE(Has("router.dyn.example", "router.dyn.example. 60 IN A 198.51.100.9"));

  // Emptied by UPDATE, a host's name goes away (NXDOMAIN, as on the
  // secondaries, which cannot receive a name without records).
  EXPECT_EQ(Send(Message().Up(Empty("router.dyn.example.", LDNS_RR_TYPE_ANY, LDNS_RR_CLASS_ANY))),
            rcode::kNoError);
  EXPECT_FALSE(NodeExists("router.dyn.example"));
  EXPECT_TRUE(Records("router.dyn.example").empty());
  host = Host("router.dyn.example");
  EXPECT_TRUE(host.ipv4.empty());
  EXPECT_TRUE(host.ipv6.empty());
}

TEST_F(Rfc2136Test, OtherRecordsOfAHostLeaveItsAddressesAndTime) {
  AddHostForAlice("router.dyn.example");
  ASSERT_EQ(Send(Message().Up("router.dyn.example. 60 IN A 203.0.113.7")), rcode::kNoError);
  storage::HostRecord before = Host("router.dyn.example");
  before.updated_at = 12345;  // recognisable
  {
    auto txn = store_->BeginWrite();
    ASSERT_TRUE(txn.ok());
    ASSERT_TRUE(txn->Put(storage::Table::kHosts, before.name, before.Encode()).ok());
    ASSERT_TRUE(txn->Commit().ok());
  }
  EXPECT_EQ(Send(Message().Up("router.dyn.example. 60 IN TXT \"note\"")), rcode::kNoError);
  storage::HostRecord after = Host("router.dyn.example");
  EXPECT_EQ(after.updated_at, 12345u);
  EXPECT_EQ(after.ipv4, before.ipv4);
}

// ---- Malformed messages -------------------------------------------------------------------

TEST_F(Rfc2136Test, MalformedMessagesAreFormErr) {
  const std::string good = Message()
                               .Pre(Empty("static.dyn.example.", LDNS_RR_TYPE_A, LDNS_RR_CLASS_ANY))
                               .Up("mail.dyn.example. 300 IN MX 10 static.dyn.example.")
                               .Up("a.dyn.example. 300 IN A 192.0.2.1")
                               .Wire();
  ASSERT_TRUE(Parse(good).ok()) << Parse(good).status().message();
  // Every truncation.
  for (size_t size = 0; size < good.size(); ++size) {
    EXPECT_FALSE(Parse(good.substr(0, size)).ok()) << "truncated to " << size;
  }
  // Trailing bytes.
  EXPECT_FALSE(Parse(good + std::string(1, '\0')).ok());
  // ZOCOUNT 0 and 2.
  for (char zocount : {0, 2}) {
    std::string bad = good;
    bad[5] = zocount;
    EXPECT_FALSE(Parse(bad).ok());
  }
  // A response, or another opcode.
  std::string response = good;
  response[2] = static_cast<char>(response[2] | 0x80);
  EXPECT_FALSE(Parse(response).ok());
  std::string query = good;
  query[2] = static_cast<char>(query[2] & 0x87);
  EXPECT_FALSE(Parse(query).ok());

  // The last record is the A: its RDLENGTH sits 6 bytes before the end.
  const size_t rdlength_at = good.size() - 6;
  ASSERT_EQ(good.substr(rdlength_at, 2), std::string("\x00\x04", 2));
  std::string short_a = good.substr(0, good.size() - 1);
  short_a[rdlength_at + 1] = 3;  // an A of 3 bytes
  EXPECT_FALSE(Parse(short_a).ok());
  std::string long_a = good + "x";
  long_a[rdlength_at + 1] = 5;
  EXPECT_FALSE(Parse(long_a).ok());
  std::string past_end = good;
  past_end[rdlength_at + 1] = 9;  // beyond the message
  EXPECT_FALSE(Parse(past_end).ok());
}

TEST_F(Rfc2136Test, MalformedZoneSectionAndNames) {
  auto header = [](uint16_t zocount, uint16_t upcount) {
    std::string h = {
        0x12, 0x34, 0x28, 0x00, 0, static_cast<char>(zocount), 0, 0, 0, static_cast<char>(upcount),
        0,    0};
    return h;
  };
  const std::string zone(
      "\x03"
      "dyn"
      "\x07"
      "example"
      "\x00",
      13);
  // The zone section must name type SOA.
  EXPECT_FALSE(Parse(header(1, 0) + zone + std::string("\x00\x01\x00\x01", 4)).ok());
  EXPECT_TRUE(Parse(header(1, 0) + zone + std::string("\x00\x06\x00\x01", 4)).ok());
  // A pointer into the header, a forward pointer, a pointer to itself.
  EXPECT_FALSE(Parse(header(1, 0) + std::string("\xc0\x02\x00\x06\x00\x01", 6)).ok());
  const std::string zone_section = header(1, 1) + zone + std::string("\x00\x06\x00\x01", 4);
  const std::string rest("\x00\x01\x00\x01\x00\x00\x01\x2c\x00\x04\xc0\x00\x02\x01", 14);
  EXPECT_TRUE(Parse(zone_section +
                    std::string("\x01"
                                "a"
                                "\xc0\x0c",
                                4) +
                    rest)
                  .ok());
  EXPECT_FALSE(Parse(zone_section +
                     std::string("\x01"
                                 "a"
                                 "\xc0\x40",
                                 4) +
                     rest)
                   .ok());
  const size_t self = zone_section.size() + 2;
  EXPECT_FALSE(Parse(zone_section +
                     std::string("\x01"
                                 "a"
                                 "\xc0",
                                 3) +
                     static_cast<char>(self) + rest)
                   .ok());
  // A label over 63 bytes (extended label type).
  EXPECT_FALSE(Parse(zone_section +
                     std::string("\x41"
                                 "a"
                                 "\x00",
                                 3) +
                     rest)
                   .ok());
  // A name longer than 255 bytes.
  std::string long_name;
  for (int i = 0; i < 5; ++i) long_name += std::string(1, 63) + std::string(63, 'x');
  EXPECT_FALSE(Parse(header(1, 0) + long_name + std::string("\x00\x00\x06\x00\x01", 5)).ok());
}

TEST_F(Rfc2136Test, ResponsesEchoTheZoneSection) {
  const std::string request = Message().Up("a.dyn.example. 300 IN A 192.0.2.1").Wire();
  uint8_t out[512];
  size_t size = BuildUpdateResponse(reinterpret_cast<const uint8_t*>(request.data()),
                                    request.size(), rcode::kNXRRset, out, sizeof out);
  const std::string zone(
      "\x03"
      "dyn"
      "\x07"
      "example"
      "\x00"
      "\x00\x06\x00\x01",
      17);
  ASSERT_EQ(size, 12 + zone.size());
  EXPECT_EQ(out[0], 0x12);
  EXPECT_EQ(out[1], 0x34);
  EXPECT_EQ(out[2], 0xA8);  // QR, opcode UPDATE
  EXPECT_EQ(out[3], rcode::kNXRRset);
  EXPECT_EQ(std::string(reinterpret_cast<char*>(out) + 4, 8), std::string("\0\1\0\0\0\0\0\0", 8));
  EXPECT_EQ(std::string(reinterpret_cast<char*>(out) + 12, zone.size()), zone);
  // ldns reads it back as an UPDATE response.
  ldns_pkt* pkt = nullptr;
  ASSERT_EQ(ldns_wire2pkt(&pkt, out, size), LDNS_STATUS_OK);
  EXPECT_EQ(ldns_pkt_get_opcode(pkt), LDNS_PACKET_UPDATE);
  EXPECT_EQ(static_cast<int>(ldns_pkt_get_rcode(pkt)), rcode::kNXRRset);
  EXPECT_TRUE(ldns_pkt_qr(pkt));
  ldns_pkt_free(pkt);

  // Too malformed to echo: the header alone, FORMERR.
  const std::string garbage(
      "\xab\xcd\x28\x00\x00\x01\x00\x00\x00\x00\x00\x00\x05"
      "dy",
      15);
  size = BuildUpdateResponse(reinterpret_cast<const uint8_t*>(garbage.data()), garbage.size(),
                             rcode::kNoError, out, sizeof out);
  ASSERT_EQ(size, 12u);
  EXPECT_EQ(out[0], 0xab);
  EXPECT_EQ(out[3], rcode::kFormErr);
  EXPECT_EQ(out[5], 0);
  // Shorter than a header, or no room: nothing to send.
  EXPECT_EQ(BuildUpdateResponse(reinterpret_cast<const uint8_t*>(request.data()), 11,
                                rcode::kFormErr, out, sizeof out),
            0u);
  EXPECT_EQ(BuildUpdateResponse(reinterpret_cast<const uint8_t*>(request.data()), request.size(),
                                rcode::kNoError, out, 20),
            0u);
}

}  // namespace
}  // namespace updns::update
