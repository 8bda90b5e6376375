// The LMDB store: one environment, a fixed set of named tables, RAII
// transactions and cursors. Layout of keys and values: storage/schema.h.
//
// Thread safety: a Store is shared by all threads. A ReadTxn or WriteTxn
// belongs to one thread at a time (the environment is opened with MDB_NOTLS,
// so a read transaction may move between threads while it is reset).
// LMDB serializes write transactions, also across processes.
#pragma once

#include <lmdb.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "common/status.h"

namespace updns::storage {

// The named databases. Their order is part of nothing persistent; names are.
// kJournal came after the first stores were written: a writer creates it
// when missing, a read-only open of such a store sees it as empty.
enum class Table : int { kMeta = 0, kZones, kNodes, kAccounts, kHosts, kAccountHosts, kResellers, kSessions, kOneTime, kOutbox, kJournal, kCount };

struct Options {
  std::string path;                        // directory; created if missing
  uint64_t map_size = uint64_t{1} << 30;   // bytes; an existing larger map wins
  bool read_only = false;
};

class Store;

// Positions over one table inside a transaction. Views returned by key() and
// value() point into the map and are valid until the cursor moves or the
// transaction ends.
class Cursor {
 public:
  Cursor(Cursor&& other) noexcept : cursor_(std::exchange(other.cursor_, nullptr)) {}
  Cursor& operator=(Cursor&&) = delete;
  ~Cursor();

  // Positions at the first key >= `key`. False when there is none.
  bool Seek(std::string_view key) noexcept;
  bool First() noexcept;
  bool Last() noexcept;
  bool Next() noexcept;
  bool Prev() noexcept;
  std::string_view key() const noexcept { return key_; }
  std::string_view value() const noexcept { return value_; }
  // Deletes the entry under the cursor (write transactions only).
  Status Delete();
  MDB_cursor* handle() const noexcept { return cursor_; }

 private:
  friend class Txn;
  explicit Cursor(MDB_cursor* cursor) : cursor_(cursor) {}
  bool Move(MDB_cursor_op op, std::string_view seek_key = {}) noexcept;

  MDB_cursor* cursor_;
  std::string_view key_, value_;
};

// What read and write transactions share. Aborted by the destructor unless
// committed.
class Txn {
 public:
  Txn(Txn&& other) noexcept
      : store_(other.store_), txn_(std::exchange(other.txn_, nullptr)) {}
  Txn& operator=(Txn&& other) noexcept;
  ~Txn();

  // The value under `key`, or nullopt when absent. The view points into the
  // map and is valid until the transaction ends or (write txn) the key is
  // changed. A corrupt store also reads as absent; Verify() in tools reports it.
  // A table the store does not have (Store::has_table) reads as empty.
  std::optional<std::string_view> Get(Table table, std::string_view key) const noexcept;
  // NotFound when the store does not have `table` (Store::has_table).
  Result<Cursor> OpenCursor(Table table) const;
  MDB_txn* handle() const noexcept { return txn_; }
  const Store& store() const noexcept { return *store_; }

 protected:
  Txn(const Store* store, MDB_txn* txn) : store_(store), txn_(txn) {}
  void Abort() noexcept;

  const Store* store_;
  MDB_txn* txn_;
};

// A read-only snapshot. Reset() releases the snapshot without freeing the
// handle; Renew() takes a fresh snapshot. Query loops keep one and renew it
// per batch of packets.
class ReadTxn : public Txn {
 public:
  void Reset() noexcept;
  Status Renew() noexcept;
  // Cursors opened on this txn survive Reset/Renew when renewed with this.
  static Status RenewCursor(const ReadTxn& txn, Cursor& cursor) noexcept;

 private:
  friend class Store;
  using Txn::Txn;
};

// A write transaction (or a nested one, see BeginNested). Writes are visible
// to others only after Commit() returns OK, and durable when it does.
class WriteTxn : public Txn {
 public:
  Status Put(Table table, std::string_view key, std::string_view value);
  // NotFound when the key is absent.
  Status Delete(Table table, std::string_view key);
  // Deletes every key in [begin, end). Returns how many were deleted.
  Result<size_t> DeleteRange(Table table, std::string_view begin, std::string_view end);
  // A child transaction: committing it folds its writes into this one;
  // dropping it rolls back only its own writes. REQUIRES: no other child open.
  Result<WriteTxn> BeginNested();
  Status Commit();

 private:
  friend class Store;
  using Txn::Txn;
};

class Store {
 public:
  static constexpr uint32_t kSchemaVersion = 1;

  // Opens or creates the store. Refuses stores written by a newer or unknown
  // schema with a message naming both versions.
  static Result<std::unique_ptr<Store>> Open(const Options& options);
  ~Store();
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  Result<ReadTxn> BeginRead() const;
  Result<WriteTxn> BeginWrite();

  MDB_dbi dbi(Table table) const noexcept { return dbis_[static_cast<int>(table)]; }
  // False only for a table added after the store was written, opened
  // read-only (a writer creates it). Its dbi() is then one LMDB refuses, so
  // reads find nothing.
  bool has_table(Table table) const noexcept { return dbis_[static_cast<int>(table)] != kNoDbi; }
  MDB_env* handle() const noexcept { return env_; }
  const std::string& path() const noexcept { return path_; }
  uint64_t map_size() const noexcept;

  // The environment's size and use, for monitoring (GET /metrics).
  struct Stats {
    uint64_t map_size = 0;        // bytes the map may grow to
    uint64_t page_size = 0;       // bytes
    uint64_t pages_used = 0;      // last page number + 1: the file's high-water mark
    uint64_t readers_max = 0;     // reader slots (mdb_env_set_maxreaders)
    uint64_t readers_used = 0;    // slots held by a live thread, idle (reset) ones included
    uint64_t outbox_entries = 0;  // queued mails
  };
  // Reads the environment info, the reader table and the outbox's entry
  // count (in a short read transaction of its own). Thread-safe; not for the
  // query path (it allocates and takes the reader table's lock).
  Result<Stats> GetStats() const;

  // Reads the store's used pages once, front to back, so that they are in
  // the page cache: a server started after the cache lost them (a reboot, a
  // restore) would otherwise take its first queries' pages from disk one
  // random read at a time. Returns the bytes read. Blocking (a 10M-host
  // store is ~0.7 GB): run it on a thread of its own; it returns early once
  // `stop` is set. Thread-safe.
  Result<uint64_t> Prefetch(const std::atomic<bool>& stop) const;

  // Translates an LMDB return code into a Status naming `what` and the store.
  Status Error(int rc, std::string_view what) const;

 private:
  Store() = default;
  Status Init(const Options& options);

  static constexpr MDB_dbi kNoDbi = ~MDB_dbi{0};

  MDB_env* env_ = nullptr;
  MDB_dbi dbis_[static_cast<int>(Table::kCount)] = {};
  std::string path_;
};

}  // namespace updns::storage
