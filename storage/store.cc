#include "storage/store.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>

#include "storage/schema.h"

namespace updns::storage {
namespace {

constexpr const char* kTableNames[] = {"meta", "zones", "nodes", "accounts", "hosts", "account_hosts",
                                       "resellers", "sessions", "onetime", "outbox", "journal"};
static_assert(std::size(kTableNames) == static_cast<size_t>(Table::kCount));

// Tables added after schema version 1 was first written. They need no
// schema version bump: a store without them is a store where they are empty.
bool IsLaterTable(Table table) { return table == Table::kJournal; }

MDB_val ToVal(std::string_view s) {
  return MDB_val{s.size(), const_cast<char*>(s.data())};
}
std::string_view ToView(const MDB_val& v) {
  return {static_cast<const char*>(v.mv_data), v.mv_size};
}

}  // namespace

// ---- Cursor ----

Cursor::~Cursor() {
  if (cursor_) mdb_cursor_close(cursor_);
}

bool Cursor::Move(MDB_cursor_op op, std::string_view seek_key) noexcept {
  MDB_val k = ToVal(seek_key), v{};
  if (mdb_cursor_get(cursor_, &k, &v, op) != MDB_SUCCESS) {
    key_ = value_ = {};
    return false;
  }
  key_ = ToView(k);
  value_ = ToView(v);
  return true;
}

bool Cursor::Seek(std::string_view key) noexcept { return Move(MDB_SET_RANGE, key); }
bool Cursor::First() noexcept { return Move(MDB_FIRST); }
bool Cursor::Last() noexcept { return Move(MDB_LAST); }
bool Cursor::Next() noexcept { return Move(MDB_NEXT); }
bool Cursor::Prev() noexcept { return Move(MDB_PREV); }

Status Cursor::Delete() {
  int rc = mdb_cursor_del(cursor_, 0);
  // Deleting dirties pages too, so it can fill the map; say so the way
  // Store::Error does, so that callers (DeleteRange) report IsFull().
  if (rc == MDB_MAP_FULL)
    return Status::Full(
        "cursor delete: the map is full; raise storage.map_size in the config and restart");
  if (rc != MDB_SUCCESS) return Status::IoError(std::string("cursor delete: ") + mdb_strerror(rc));
  return Status::Ok();
}

// ---- Txn ----

Txn& Txn::operator=(Txn&& other) noexcept {
  if (this != &other) {
    Abort();
    store_ = other.store_;
    txn_ = std::exchange(other.txn_, nullptr);
  }
  return *this;
}

Txn::~Txn() { Abort(); }

void Txn::Abort() noexcept {
  if (txn_) mdb_txn_abort(std::exchange(txn_, nullptr));
}

std::optional<std::string_view> Txn::Get(Table table, std::string_view key) const noexcept {
  MDB_val k = ToVal(key), v{};
  if (mdb_get(txn_, store_->dbi(table), &k, &v) != MDB_SUCCESS) return std::nullopt;
  return ToView(v);
}

Result<Cursor> Txn::OpenCursor(Table table) const {
  if (!store_->has_table(table))
    return Status::NotFound("store " + store_->path() +
                            ": a table is missing (an older store opened read-only)");
  MDB_cursor* cursor = nullptr;
  int rc = mdb_cursor_open(txn_, store_->dbi(table), &cursor);
  if (rc != MDB_SUCCESS) return store_->Error(rc, "opening a cursor");
  return Cursor(cursor);
}

// ---- ReadTxn ----

void ReadTxn::Reset() noexcept { mdb_txn_reset(txn_); }

Status ReadTxn::Renew() noexcept {
  int rc = mdb_txn_renew(txn_);
  if (rc == MDB_SUCCESS) return Status::Ok();
  return store_->Error(rc, "renewing a read transaction");
}

Status ReadTxn::RenewCursor(const ReadTxn& txn, Cursor& cursor) noexcept {
  int rc = mdb_cursor_renew(txn.handle(), cursor.handle());
  if (rc == MDB_SUCCESS) return Status::Ok();
  return txn.store().Error(rc, "renewing a cursor");
}

// ---- WriteTxn ----

Status WriteTxn::Put(Table table, std::string_view key, std::string_view value) {
  MDB_val k = ToVal(key), v = ToVal(value);
  int rc = mdb_put(txn_, store_->dbi(table), &k, &v, 0);
  if (rc != MDB_SUCCESS) return store_->Error(rc, "writing");
  return Status::Ok();
}

Status WriteTxn::Delete(Table table, std::string_view key) {
  MDB_val k = ToVal(key);
  int rc = mdb_del(txn_, store_->dbi(table), &k, nullptr);
  if (rc == MDB_NOTFOUND) return Status::NotFound("no such key");
  if (rc != MDB_SUCCESS) return store_->Error(rc, "deleting");
  return Status::Ok();
}

Result<size_t> WriteTxn::DeleteRange(Table table, std::string_view begin, std::string_view end) {
  auto cursor = OpenCursor(table);
  if (!cursor.ok()) return cursor.status();
  size_t deleted = 0;
  // After mdb_cursor_del, MDB_NEXT yields the entry that followed the deleted one.
  for (bool more = cursor->Seek(begin); more && cursor->key() < end; more = cursor->Next()) {
    if (Status s = cursor->Delete(); !s.ok()) return s;
    ++deleted;
  }
  return deleted;
}

Result<WriteTxn> WriteTxn::BeginNested() {
  MDB_txn* child = nullptr;
  int rc = mdb_txn_begin(store_->handle(), txn_, 0, &child);
  if (rc != MDB_SUCCESS) return store_->Error(rc, "beginning a nested transaction");
  return WriteTxn(store_, child);
}

Status WriteTxn::Commit() {
  MDB_txn* txn = std::exchange(txn_, nullptr);
  int rc = mdb_txn_commit(txn);
  if (rc != MDB_SUCCESS) return store_->Error(rc, "committing");
  return Status::Ok();
}

// ---- Store ----

Store::~Store() {
  if (env_) mdb_env_close(env_);
}

uint64_t Store::map_size() const noexcept {
  MDB_envinfo info{};
  mdb_env_info(env_, &info);
  return info.me_mapsize;
}

Result<Store::Stats> Store::GetStats() const {
  Stats stats;
  MDB_envinfo info{};
  if (int rc = mdb_env_info(env_, &info); rc != MDB_SUCCESS) return Error(rc, "reading its info");
  MDB_stat env_stat{};
  if (int rc = mdb_env_stat(env_, &env_stat); rc != MDB_SUCCESS)
    return Error(rc, "reading its statistics");
  stats.map_size = info.me_mapsize;
  stats.page_size = env_stat.ms_psize;
  stats.pages_used = static_cast<uint64_t>(info.me_last_pgno) + 1;
  stats.readers_max = info.me_maxreaders;
  // mdb_reader_list prints a header, then one line per slot a live thread
  // holds; LMDB has no call that just counts them.
  auto count_line = [](const char* line, void* context) -> int {
    if (std::strncmp(line, "    pid", 7) != 0 && std::strncmp(line, "(no active", 10) != 0)
      ++*static_cast<uint64_t*>(context);
    return 0;
  };
  if (int rc = mdb_reader_list(env_, count_line, &stats.readers_used); rc < 0)
    return Error(rc, "listing its readers");
  if (has_table(Table::kOutbox)) {
    auto txn = BeginRead();
    if (!txn.ok()) return txn.status();
    MDB_stat outbox{};
    if (int rc = mdb_stat(txn->handle(), dbi(Table::kOutbox), &outbox); rc != MDB_SUCCESS)
      return Error(rc, "reading the outbox's size");
    stats.outbox_entries = outbox.ms_entries;
  }
  return stats;
}

Result<uint64_t> Store::Prefetch(const std::atomic<bool>& stop) const {
  MDB_envinfo info{};
  MDB_stat env_stat{};
  mdb_filehandle_t fd = -1;
  if (int rc = mdb_env_info(env_, &info); rc != MDB_SUCCESS) return Error(rc, "reading its info");
  if (int rc = mdb_env_stat(env_, &env_stat); rc != MDB_SUCCESS)
    return Error(rc, "reading its statistics");
  if (int rc = mdb_env_get_fd(env_, &fd); rc != MDB_SUCCESS) return Error(rc, "reading its file");
  const uint64_t used = (static_cast<uint64_t>(info.me_last_pgno) + 1) * env_stat.ms_psize;
  // pread, not madvise(WILLNEED): the kernel caps one readahead request at
  // a few hundred KiB, and reading says when the pages are really in.
  // Small reads: the kernel's readahead makes them large on the disk, and
  // the buffer stays out of the daemon's memory figures.
  char buffer[64 << 10];
  uint64_t done = 0;
  while (done < used && !stop.load(std::memory_order_relaxed)) {
    ssize_t n = ::pread(fd, buffer, std::min<uint64_t>(sizeof buffer, used - done),
                        static_cast<off_t>(done));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0)
      return Status::IoError("prefetching the store at " + path_ + ": " + std::strerror(errno));
    if (n == 0) break;  // shorter than its pages say: nothing more to read
    done += static_cast<uint64_t>(n);
  }
  return done;
}

Status Store::Error(int rc, std::string_view what) const {
  std::string message = "store " + path_ + ": " + std::string(what) + ": ";
  switch (rc) {
    case MDB_MAP_FULL:
      return Status::Full(message + "the map is full (" + std::to_string(map_size() >> 20) +
                          " MiB); raise storage.map_size in the config and restart");
    case MDB_CORRUPTED:
    case MDB_PAGE_NOTFOUND:
    case MDB_INVALID:
    case MDB_VERSION_MISMATCH:
      return Status::Corrupt(message + mdb_strerror(rc));
    default:
      return Status::IoError(message + mdb_strerror(rc));
  }
}

Result<std::unique_ptr<Store>> Store::Open(const Options& options) {
  std::unique_ptr<Store> store(new Store());
  if (Status s = store->Init(options); !s.ok()) return s;
  return store;
}

Status Store::Init(const Options& options) {
  path_ = options.path;
  std::error_code ec;
  if (!options.read_only) std::filesystem::create_directories(path_, ec);
  if (ec) return Status::IoError("store " + path_ + ": cannot create directory: " + ec.message());

  int rc = mdb_env_create(&env_);
  if (rc != MDB_SUCCESS) return Error(rc, "creating the environment");
  mdb_env_set_maxdbs(env_, 32);
  // Query loops (one per core), the writer, the mailer and tools.
  mdb_env_set_maxreaders(env_, 512);
  unsigned flags = MDB_NOTLS | MDB_NORDAHEAD | (options.read_only ? MDB_RDONLY : 0);
  rc = mdb_env_open(env_, path_.c_str(), flags, 0640);
  if (rc != MDB_SUCCESS) return Error(rc, "opening");
  // A size set before mdb_env_open replaces the file's own, so a smaller
  // configured size would shrink an existing map (down to the data in it).
  // Open with the file's size instead, then only ever grow it.
  if (!options.read_only && options.map_size > map_size()) {
    rc = mdb_env_set_mapsize(env_, options.map_size);
    if (rc != MDB_SUCCESS) return Error(rc, "setting the map size");
  }

  // Open (and on first use create) every table, then check the schema.
  MDB_txn* txn = nullptr;
  rc = mdb_txn_begin(env_, nullptr, options.read_only ? MDB_RDONLY : 0, &txn);
  if (rc != MDB_SUCCESS) return Error(rc, "beginning the open transaction");
  WriteTxn guard(this, txn);  // aborts on every early return
  for (int i = 0; i < static_cast<int>(Table::kCount); ++i) {
    rc = mdb_dbi_open(txn, kTableNames[i], options.read_only ? 0 : MDB_CREATE, &dbis_[i]);
    if (rc == MDB_NOTFOUND && options.read_only && IsLaterTable(static_cast<Table>(i))) {
      // A store from before this table existed: a read-only open cannot
      // create it, and it holds nothing yet anyway.
      dbis_[i] = kNoDbi;
      continue;
    }
    if (rc == MDB_NOTFOUND) {
      return Status::NotFound("store " + path_ + ": table '" + kTableNames[i] +
                              "' is missing; is this an updns store?");
    }
    if (rc != MDB_SUCCESS) return Error(rc, std::string("opening table ") + kTableNames[i]);
  }
  auto version = guard.Get(Table::kMeta, kMetaSchemaKey);
  if (!version) {
    if (options.read_only) return Status::NotFound("store " + path_ + ": not initialized");
    if (Status s = guard.Put(Table::kMeta, kMetaSchemaKey, EncodeU32(kSchemaVersion)); !s.ok())
      return s;
  } else {
    uint32_t found = version->size() == 4 ? DecodeU32(*version) : 0;
    if (found != kSchemaVersion) {
      return Status::Unsupported("store " + path_ + " has schema version " +
                                 std::to_string(found) + ", this build reads version " +
                                 std::to_string(kSchemaVersion) +
                                 "; use the updns release that wrote it");
    }
  }
  // Commit also in read-only mode: LMDB closes the table handles opened in a
  // transaction that is aborted, which would leave dbis_ unusable. Committing
  // a read-only transaction keeps them for the environment.
  return guard.Commit();
}

Result<ReadTxn> Store::BeginRead() const {
  MDB_txn* txn = nullptr;
  int rc = mdb_txn_begin(env_, nullptr, MDB_RDONLY, &txn);
  if (rc == MDB_MAP_RESIZED) {
    // Another process grew the map: adopt its size and retry once.
    mdb_env_set_mapsize(env_, 0);
    rc = mdb_txn_begin(env_, nullptr, MDB_RDONLY, &txn);
  }
  if (rc != MDB_SUCCESS) return Error(rc, "beginning a read transaction");
  return ReadTxn(this, txn);
}

Result<WriteTxn> Store::BeginWrite() {
  MDB_txn* txn = nullptr;
  int rc = mdb_txn_begin(env_, nullptr, 0, &txn);
  if (rc == MDB_MAP_RESIZED) {
    mdb_env_set_mapsize(env_, 0);
    rc = mdb_txn_begin(env_, nullptr, 0, &txn);
  }
  if (rc != MDB_SUCCESS) return Error(rc, "beginning a write transaction");
  return WriteTxn(this, txn);
}

}  // namespace updns::storage
