// Master files in and out of the store.
//
// Import: ldns parses each record (ldns_rr_new_frm_fp_l on an in-memory copy
// of the file); the directives $ORIGIN, $TTL and $INCLUDE are handled here,
// because ldns drops the text of an $INCLUDE line, does not resolve a relative
// $ORIGIN against the current one and accepts any $TTL text as 0.
//
// TTL policy: a record without a TTL gets the value of the last $TTL before
// it, or 3600 when there was none (RFC 2308 §4 style; the RFC 1035 "last
// explicitly stated TTL" rule is not applied). ldns turns a default of 0 into
// 3600, so "$TTL 0" gives TTL-less records 3600. One TTL per RRset: the last
// record of an RRset sets it (NodeBuilder::Add, RFC 2181 §5.2).
//
// $INCLUDE FILE [ORIGIN]: FILE relative to the including file's directory;
// ORIGIN (relative to the current origin) applies inside FILE only, and the
// origin, owner and $TTL revert after it (RFC 1035 §5.1). At most 10 levels.
//
// The source digest is SHA-256 over every byte read, main file and includes
// in the order they were read, so changing an included file counts too.
//
// Source stamps let a start with unchanged files skip even reading them: the
// meta table holds, per zone, "zone_sources/" + u32 zone id ->
//   u8 version, u8 digest size, digest (a copy of the zone record's, which
//   binds the row to the import that wrote it: an older binary importing
//   without updating the row leaves a mismatch, and the row is ignored),
//   u32 file count, then per file: u8 flags (1 = settled), u64 device,
//   u64 inode, u64 size, u64 mtime ns, u64 ctime ns, u32 path size, path.
// Not in the zone record: that is read by every dynamic update and every
// zone-index load, and would carry paths they never need. ctime is kept
// besides mtime because nothing can set it back: a same-size rewrite that
// restores the mtime (cp -p, rsync -t, touch -d) still changes it. Sizes per
// file make the unframed digest unambiguous: bytes moved from the end of one
// file to the start of the next would hash the same.
#include "zone/zone_file.h"

#include <fcntl.h>
#include <ldns/ldns.h>
#if defined(__GLIBC__)
#include <malloc.h>
#endif
#include <openssl/evp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <vector>

#include "storage/accounts.h"
#include "storage/node.h"
#include "storage/schema.h"
#include "zone/name.h"
#include "zone/rdata.h"
#include "zone/wire.h"
#include "zone/zone_edit.h"

namespace updns::zone {
namespace {

constexpr uint32_t kDefaultTtl = 3600;
constexpr int kMaxIncludeDepth = 10;

struct RrFree {
  void operator()(ldns_rr* p) const noexcept { ldns_rr_free(p); }
};
struct RdfFree {
  void operator()(ldns_rdf* p) const noexcept { ldns_rdf_deep_free(p); }
};
struct BufferFree {
  void operator()(ldns_buffer* p) const noexcept { ldns_buffer_free(p); }
};
struct MallocFree {
  void operator()(void* p) const noexcept { std::free(p); }
};
struct FileClose {
  void operator()(FILE* f) const noexcept { std::fclose(f); }
};
struct DigestFree {
  void operator()(EVP_MD_CTX* p) const noexcept { EVP_MD_CTX_free(p); }
};
using RrPtr = std::unique_ptr<ldns_rr, RrFree>;
using RdfPtr = std::unique_ptr<ldns_rdf, RdfFree>;
using BufferPtr = std::unique_ptr<ldns_buffer, BufferFree>;
using CharPtr = std::unique_ptr<char, MallocFree>;
using FilePtr = std::unique_ptr<FILE, FileClose>;

// Names in messages read like the config and the CLI: no trailing dot.
std::string ShowName(std::string_view wire) {
  std::string text = TextFromWireName(wire);
  if (text.size() > 1 && text.back() == '.') text.pop_back();
  return text;
}

std::string_view RdfBytes(const ldns_rdf* rdf) {
  return {reinterpret_cast<const char*>(ldns_rdf_data(rdf)), ldns_rdf_size(rdf)};
}

RdfPtr RdfFromWireName(std::string_view wire) {
  return RdfPtr(ldns_rdf_new_frm_data(LDNS_RDF_TYPE_DNAME, wire.size(), wire.data()));
}

// The RR in `wire` (owner, type, class, TTL, rdlength and rdata, as in an
// answer) as ldns reads it, or null when ldns cannot read all of it into at
// least the fields its type has. Such an RR would print as text that does
// not read back as the same bytes; only RFC 3597's generic form keeps it.
RrPtr RrFromWire(std::string_view wire) {
  ldns_rr* raw = nullptr;
  size_t read = 0;
  ldns_status st = ldns_wire2rr(&raw, reinterpret_cast<const uint8_t*>(wire.data()), wire.size(),
                                &read, LDNS_SECTION_ANSWER);
  RrPtr rr(st == LDNS_STATUS_OK ? raw : nullptr);
  if (!rr || read != wire.size()) return nullptr;
  const ldns_rr_descriptor* descriptor = ldns_rr_descript(ldns_rr_get_type(rr.get()));
  if (descriptor != nullptr && ldns_rr_rd_count(rr.get()) < ldns_rr_descriptor_minimum(descriptor))
    return nullptr;
  return rr;
}

class Sha256 {
 public:
  Sha256() : ctx_(EVP_MD_CTX_new()) {
    ok_ = ctx_ && EVP_DigestInit_ex(ctx_.get(), EVP_sha256(), nullptr) == 1;
  }
  void Update(std::string_view bytes) {
    ok_ = ok_ && EVP_DigestUpdate(ctx_.get(), bytes.data(), bytes.size()) == 1;
  }
  // Empty when OpenSSL failed somewhere along the way.
  std::string Final() {
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int size = 0;
    if (!ok_ || EVP_DigestFinal_ex(ctx_.get(), md, &size) != 1) return {};
    return std::string(reinterpret_cast<char*>(md), size);
  }

 private:
  std::unique_ptr<EVP_MD_CTX, DigestFree> ctx_;
  bool ok_ = false;
};

// ---- Source files and their stamps ----

constexpr std::string_view kSourcesKeyPrefix = "zone_sources/";
constexpr uint8_t kSourcesVersion = 1;
constexpr uint8_t kSourceSettled = 1;
constexpr size_t kHashChunk = size_t{1} << 18;

std::string SourcesKey(uint32_t zone_id) {
  return std::string(kSourcesKeyPrefix) + storage::EncodeU32(zone_id);
}

int64_t Nanos(const struct timespec& ts) { return int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec; }

void SetIdentity(const struct stat& st, SourceFile& file) {
  file.device = st.st_dev;
  file.inode = st.st_ino;
  file.size = static_cast<uint64_t>(st.st_size);
  file.mtime_ns = Nanos(st.st_mtim);
  file.ctime_ns = Nanos(st.st_ctim);
}

bool SameIdentity(const SourceFile& a, const SourceFile& b) {
  return a.device == b.device && a.inode == b.inode && a.size == b.size &&
         a.mtime_ns == b.mtime_ns && a.ctime_ns == b.ctime_ns;
}

struct FdClose {
  int fd = -1;
  ~FdClose() {
    if (fd >= 0) ::close(fd);
  }
};

// Reads one file through a descriptor, so that the stamp is of the file
// read even if the path is replaced meanwhile, and stamps it from fstat
// before and after: a file that changed while read, is not a regular file or
// changed within kSourceSettleTime of being read is not settled. The stamp's
// size is the bytes read.
class SourceReader {
 public:
  Status Open(const std::string& path) {
    path_ = &path;
    fd_.fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd_.fd < 0 || ::fstat(fd_.fd, &before_) != 0)
      return Status::IoError("cannot read " + path + ": " + std::strerror(errno));
    return Status::Ok();
  }
  // The size fstat saw at open: a hint, the file may still grow or shrink.
  size_t size_hint() const { return before_.st_size > 0 ? size_t(before_.st_size) : 0; }
  // Reads up to `capacity` bytes into `to`; 0 at the end of the file.
  Result<size_t> Read(char* to, size_t capacity) {
    while (true) {
      ssize_t n = ::read(fd_.fd, to, capacity);
      if (n >= 0) {
        read_ += static_cast<uint64_t>(n);
        return static_cast<size_t>(n);
      }
      if (errno != EINTR)
        return Status::IoError("error reading " + *path_ + ": " + std::strerror(errno));
    }
  }
  // The stamp, once everything was read.
  SourceFile Finish() const {
    SourceFile file;
    file.path = *path_;
    SetIdentity(before_, file);
    struct stat after {};
    SourceFile later;
    bool stable = ::fstat(fd_.fd, &after) == 0 && S_ISREG(before_.st_mode);
    if (stable) {
      SetIdentity(after, later);
      stable = SameIdentity(file, later) && file.size == read_;
    }
    // Racy-clean files (as git calls them): a write just after our read
    // can fall in the tick the stamp's times are in and leave them as they
    // are. A file whose times are older than kSourceSettleTime when its
    // reading ends has no such tick left (ticks are at most 2 s, FAT's).
    struct timespec now {};
    ::clock_gettime(CLOCK_REALTIME, &now);
    const int64_t settle = std::chrono::nanoseconds(kSourceSettleTime).count();
    int64_t newest = std::max(file.mtime_ns, file.ctime_ns);
    file.settled = stable && Nanos(now) - newest >= settle;
    file.size = read_;
    return file;
  }

 private:
  const std::string* path_ = nullptr;
  FdClose fd_;
  struct stat before_ {};
  uint64_t read_ = 0;
};

// The whole file in memory, for the parser.
Result<std::string> ReadWholeFile(const std::string& path, std::vector<SourceFile>& sources) {
  SourceReader reader;
  if (Status s = reader.Open(path); !s.ok()) return s;
  // One allocation of the right size in the common case; the loop still
  // follows a file that grows meanwhile.
  std::string bytes(reader.size_hint() + 1, '\0');
  size_t used = 0;
  while (true) {
    if (used == bytes.size()) bytes.resize(bytes.size() * 2 + 4096);
    auto n = reader.Read(bytes.data() + used, bytes.size() - used);
    if (!n.ok()) return n.status();
    if (*n == 0) break;
    used += *n;
  }
  bytes.resize(used);
  sources.push_back(reader.Finish());
  return bytes;
}

// Hashes the file in chunks, without keeping it.
Result<SourceFile> HashFile(const std::string& path, Sha256& digest, std::vector<char>& buffer) {
  SourceReader reader;
  if (Status s = reader.Open(path); !s.ok()) return s;
  while (true) {
    auto n = reader.Read(buffer.data(), buffer.size());
    if (!n.ok()) return n.status();
    if (*n == 0) break;
    digest.Update({buffer.data(), *n});
  }
  return reader.Finish();
}

struct RecordedSources {
  std::string digest;
  std::vector<SourceFile> files;
};

std::string EncodeSources(std::string_view digest, const std::vector<SourceFile>& files) {
  std::string out(1, static_cast<char>(kSourcesVersion));
  out.push_back(static_cast<char>(digest.size()));
  out += digest;
  out += storage::EncodeU32(static_cast<uint32_t>(files.size()));
  for (const SourceFile& file : files) {
    out.push_back(static_cast<char>(file.settled ? kSourceSettled : 0));
    out += storage::EncodeU64(file.device);
    out += storage::EncodeU64(file.inode);
    out += storage::EncodeU64(file.size);
    out += storage::EncodeU64(static_cast<uint64_t>(file.mtime_ns));
    out += storage::EncodeU64(static_cast<uint64_t>(file.ctime_ns));
    out += storage::EncodeU32(static_cast<uint32_t>(file.path.size()));
    out += file.path;
  }
  return out;
}

Result<RecordedSources> DecodeSources(std::string_view v) {
  const Status corrupt = Status::Corrupt("zone sources: unknown version or truncated");
  if (v.size() < 2 || static_cast<uint8_t>(v[0]) != kSourcesVersion) return corrupt;
  RecordedSources out;
  size_t digest_size = static_cast<uint8_t>(v[1]);
  if (v.size() < 2 + digest_size + 4) return corrupt;
  out.digest = std::string(v.substr(2, digest_size));
  v.remove_prefix(2 + digest_size);
  uint32_t count = storage::DecodeU32(v);
  v.remove_prefix(4);
  constexpr size_t kFixed = 1 + 5 * 8 + 4;
  // Checked against what is left before reserving: the count is not trusted.
  if (count > v.size() / kFixed) return corrupt;
  out.files.reserve(count);
  for (uint32_t i = 0; i < count; ++i) {
    if (v.size() < kFixed) return corrupt;
    SourceFile file;
    file.settled = (static_cast<uint8_t>(v[0]) & kSourceSettled) != 0;
    file.device = storage::DecodeU64(v.substr(1));
    file.inode = storage::DecodeU64(v.substr(9));
    file.size = storage::DecodeU64(v.substr(17));
    file.mtime_ns = static_cast<int64_t>(storage::DecodeU64(v.substr(25)));
    file.ctime_ns = static_cast<int64_t>(storage::DecodeU64(v.substr(33)));
    uint32_t path_size = storage::DecodeU32(v.substr(41));
    v.remove_prefix(kFixed);
    if (v.size() < path_size) return corrupt;
    file.path = std::string(v.substr(0, path_size));
    v.remove_prefix(path_size);
    out.files.push_back(std::move(file));
  }
  if (!v.empty()) return corrupt;
  return out;
}

// Skips blanks, line ends and comments from `pos`: where ldns will find the
// next record, so that errors name the line a record starts on.
size_t SkipBlank(std::string_view data, size_t pos) {
  while (pos < data.size()) {
    char c = data[pos];
    if (c == ';') {
      pos = data.find('\n', pos);
      if (pos == std::string_view::npos) return data.size();
    } else if (c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\f' || c == '\v') {
      ++pos;
    } else {
      break;
    }
  }
  return pos;
}

// Splits a directive line into words: quotes group (and are dropped),
// backslash escapes are kept for ldns to decode, ';' starts a comment.
std::vector<std::string> SplitDirective(std::string_view line) {
  std::vector<std::string> words;
  std::string word;
  bool quoted = false, in_word = false;
  for (size_t i = 0; i < line.size(); ++i) {
    char c = line[i];
    if (c == '\\' && i + 1 < line.size()) {
      word += c;
      word += line[++i];
      in_word = true;
    } else if (c == '"') {
      quoted = !quoted;
      in_word = true;
    } else if (!quoted && c == ';') {
      break;
    } else if (!quoted && (c == ' ' || c == '\t' || c == '\r')) {
      if (in_word) words.push_back(std::move(word));
      word.clear();
      in_word = false;
    } else {
      word += c;
      in_word = true;
    }
  }
  if (in_word) words.push_back(std::move(word));
  return words;
}

// A name in a directive: "@", absolute, or relative to `origin`.
RdfPtr ParseDirectiveName(const std::string& text, const ldns_rdf* origin) {
  if (text == "@") return RdfPtr(ldns_rdf_clone(origin));
  RdfPtr name(ldns_dname_new_frm_str(text.c_str()));
  if (!name) return nullptr;
  if (!ldns_dname_str_absolute(text.c_str()) &&
      ldns_dname_cat(name.get(), origin) != LDNS_STATUS_OK)
    return nullptr;
  return name;
}

std::filesystem::path Canonical(const std::filesystem::path& path) {
  std::error_code ec;
  std::filesystem::path canonical = std::filesystem::weakly_canonical(path, ec);
  return ec ? path : canonical;
}

std::string TypeName(uint16_t type) {
  CharPtr text(ldns_rr_type2str(static_cast<ldns_rr_type>(type)));
  return text ? std::string(text.get()) : "TYPE" + std::to_string(type);
}

// Everything one owner name will hold, collected before anything is written.
struct PendingNode {
  std::string owner;  // wire format, lowercased
  storage::NodeBuilder builder;
  std::string where;  // "FILE:LINE" of its first record, for errors found later
  std::string cname;  // rdata of its CNAME, if any
  bool has_cname = false;
  bool has_other = false;  // data besides CNAME, RRSIG and NSEC
};

// Reads a master file and its includes into PendingNodes, checking as it goes.
class Loader {
 public:
  explicit Loader(std::string apex) : apex_(std::move(apex)) {}

  Status LoadFile(const std::string& path, const ldns_rdf* origin, uint32_t default_ttl, int depth);
  // Whole-zone checks once every file was read; `path` is the main file.
  Status Finish(const std::string& path);

  const std::map<std::string, PendingNode>& nodes() const { return nodes_; }
  std::string digest() { return digest_.Final(); }
  // Every file read, in order.
  const std::vector<SourceFile>& sources() const { return sources_; }

 private:
  Status Directive(std::string_view line, const std::string& where, const std::string& path,
                   RdfPtr& origin, uint32_t& ttl, int depth);
  Status AddRecord(const ldns_rr* rr, const std::string& where);

  std::string apex_;
  std::map<std::string, PendingNode> nodes_;  // by canonical name = key order
  // The files being read, outermost first: an include of one of them is a loop.
  std::vector<std::filesystem::path> open_files_;
  std::string soa_where_;
  Sha256 digest_;
  std::vector<SourceFile> sources_;
};

Status Loader::LoadFile(const std::string& path, const ldns_rdf* origin_in, uint32_t default_ttl,
                        int depth) {
  auto data = ReadWholeFile(path, sources_);
  if (!data.ok()) return data.status();
  digest_.Update(*data);
  if (data->empty()) return Status::Ok();  // fmemopen refuses size 0

  open_files_.push_back(Canonical(path));
  FilePtr fp(fmemopen(data->data(), data->size(), "r"));
  if (!fp) return Status::IoError("cannot read " + path + ": " + std::strerror(errno));
  RdfPtr origin(ldns_rdf_clone(origin_in));
  RdfPtr prev;  // owner of the previous record, for lines that start blank
  uint32_t ttl = default_ttl;
  std::string_view text(*data);
  size_t line = 1, counted = 0;  // `line` is the line number at offset `counted`
  int ldns_line = 1;
  while (true) {
    long at = std::ftell(fp.get());
    if (at < 0) return Status::IoError("cannot read " + path + ": " + std::strerror(errno));
    size_t start = SkipBlank(text, static_cast<size_t>(at));
    line += std::count(text.begin() + counted, text.begin() + start, '\n');
    counted = start;
    if (start >= text.size()) break;
    std::string where = path + ":" + std::to_string(line);

    if (text[start] == '$' && (start == 0 || text[start - 1] == '\n')) {
      size_t end = std::min(text.find('\n', start), text.size());
      Status s = Directive(text.substr(start, end - start), where, path, origin, ttl, depth);
      if (!s.ok()) return s;
      std::fseek(fp.get(), static_cast<long>(end), SEEK_SET);
      continue;
    }

    ldns_rr* raw = nullptr;
    ldns_rdf* origin_raw = origin.release();
    ldns_rdf* prev_raw = prev.release();
    ldns_status st = ldns_rr_new_frm_fp_l(&raw, fp.get(), &ttl, &origin_raw, &prev_raw, &ldns_line);
    origin.reset(origin_raw);
    prev.reset(prev_raw);
    RrPtr rr(st == LDNS_STATUS_OK ? raw : nullptr);
    if (st == LDNS_STATUS_SYNTAX_EMPTY) {
      if (std::ftell(fp.get()) <= at) return Status::Invalid(where + ": cannot parse this line");
      continue;
    }
    if (st != LDNS_STATUS_OK) {
      const char* why = ldns_get_errorstr_by_id(st);
      return Status::Invalid(where + ": " + (why ? why : "syntax error"));
    }
    if (Status s = AddRecord(rr.get(), where); !s.ok()) return s;
  }
  open_files_.pop_back();
  return Status::Ok();
}

Status Loader::Directive(std::string_view line, const std::string& where, const std::string& path,
                         RdfPtr& origin, uint32_t& ttl, int depth) {
  std::vector<std::string> words = SplitDirective(line);
  const std::string name = words.empty() ? std::string(line) : words[0];
  if (name == "$ORIGIN") {
    if (words.size() != 2) return Status::Invalid(where + ": $ORIGIN takes one domain name");
    RdfPtr next = ParseDirectiveName(words[1], origin.get());
    if (!next) return Status::Invalid(where + ": bad $ORIGIN name '" + words[1] + "'");
    origin = std::move(next);
    return Status::Ok();
  }
  if (name == "$TTL") {
    if (words.size() != 2) return Status::Invalid(where + ": $TTL takes one value");
    const char* end = nullptr;
    uint32_t value = ldns_str2period(words[1].c_str(), &end);
    if (!std::isdigit(static_cast<unsigned char>(words[1][0])) || *end != '\0')
      return Status::Invalid(where + ": bad $TTL value '" + words[1] + "'");
    ttl = value;
    return Status::Ok();
  }
  if (name == "$INCLUDE") {
    if (words.size() < 2 || words.size() > 3)
      return Status::Invalid(where + ": $INCLUDE takes a file name and an optional origin");
    if (depth >= kMaxIncludeDepth)
      return Status::Invalid(where + ": $INCLUDE nested deeper than " +
                             std::to_string(kMaxIncludeDepth) + " levels");
    std::filesystem::path file(words[1]);
    if (file.is_relative()) file = std::filesystem::path(path).parent_path() / file;
    if (std::find(open_files_.begin(), open_files_.end(), Canonical(file)) != open_files_.end())
      return Status::Invalid(where + ": $INCLUDE loop: " + file.string() +
                             " is already being read");
    RdfPtr include_origin(words.size() == 3 ? ParseDirectiveName(words[2], origin.get())
                                            : RdfPtr(ldns_rdf_clone(origin.get())));
    if (!include_origin) return Status::Invalid(where + ": bad $INCLUDE origin '" + words[2] + "'");
    Status s = LoadFile(file.string(), include_origin.get(), ttl, depth + 1);
    // Errors inside the included file already name it; add where it came from
    // only when the file itself could not be opened.
    if (s.code() == Status::Code::kIoError) return s.WithContext(where + ": $INCLUDE: ");
    return s;
  }
  return Status::Invalid(where + ": unsupported directive " + name);
}

Status Loader::AddRecord(const ldns_rr* rr, const std::string& where) {
  auto rclass = static_cast<uint16_t>(ldns_rr_get_class(rr));
  auto type = static_cast<uint16_t>(ldns_rr_get_type(rr));
  std::string owner(RdfBytes(ldns_rr_owner(rr)));
  LowercaseWireName(owner);
  if (rclass != kClassIN) {
    CharPtr text(ldns_rr_class2str(static_cast<ldns_rr_class>(rclass)));
    return Status::Invalid(where + ": class " + (text ? text.get() : "?") +
                           " is not supported; zones hold class IN only");
  }
  if (IsMetaType(type))
    return Status::Invalid(where + ": type " + TypeName(type) + " cannot appear in a zone");
  if (!IsSubdomain(owner, apex_))
    return Status::Invalid(where + ": record for " + ShowName(owner) + " is outside zone " +
                           ShowName(apex_));

  // The rdata exactly as parsed: ldns_rdf2buffer_wire neither compresses
  // nor lowercases names.
  BufferPtr buffer(ldns_buffer_new(256));
  if (!buffer || ldns_rr_rdata2buffer_wire(buffer.get(), rr) != LDNS_STATUS_OK)
    return Status::Invalid(where + ": cannot encode the record's rdata");
  std::string_view rdata(reinterpret_cast<const char*>(ldns_buffer_begin(buffer.get())),
                         ldns_buffer_position(buffer.get()));
  if (rdata.size() > 65535) return Status::Invalid(where + ": rdata longer than 65535 bytes");
  // ldns takes RFC 3597's \# in the middle of the rdata too and then leaves
  // fields out; what is stored must be whole for every reader of its type.
  std::string as_answer(RdfBytes(ldns_rr_owner(rr)));
  const uint16_t rdlength = static_cast<uint16_t>(rdata.size());
  const uint32_t ttl = ldns_rr_ttl(rr);
  for (uint32_t field : {uint32_t{type} << 16 | rclass, ttl})
    for (int shift = 24; shift >= 0; shift -= 8) as_answer += static_cast<char>(field >> shift);
  as_answer += static_cast<char>(rdlength >> 8);
  as_answer += static_cast<char>(rdlength & 0xff);
  as_answer += rdata;
  if (!RdataHasLayout(type, rdata) || !RrFromWire(as_answer))
    return Status::Invalid(where + ": the " + std::to_string(rdata.size()) +
                           " bytes of rdata do not form a " + TypeName(type) + " record");

  std::string key = storage::CanonicalName(owner);
  if (key.empty() && owner.size() != 1) return Status::Invalid(where + ": malformed owner name");
  auto [it, inserted] = nodes_.try_emplace(key);
  PendingNode& node = it->second;
  if (inserted) {
    node.owner = owner;
    node.where = where;
  }

  if (type == type::kSOA) {
    if (owner != apex_)
      return Status::Invalid(where + ": SOA record for " + ShowName(owner) +
                             " is not at the zone apex " + ShowName(apex_));
    if (!soa_where_.empty())
      return Status::Invalid(where + ": second SOA record (the first is at " + soa_where_ + ")");
    soa_where_ = where;
  }
  // RFC 1034 §3.6.2 and RFC 2181 §10.1: a CNAME owner holds nothing else
  // (RFC 4035 §2.5 allows its RRSIG and NSEC), and a single CNAME.
  const std::string conflict =
      where + ": CNAME and other data at " + ShowName(owner) + " (RFC 1034 section 3.6.2)";
  if (type == type::kCNAME) {
    if (node.has_other) return Status::Invalid(conflict);
    if (node.has_cname && node.cname != rdata)
      return Status::Invalid(where + ": more than one CNAME at " + ShowName(owner));
    node.has_cname = true;
    node.cname = std::string(rdata);
  } else if (type != type::kRRSIG && type != type::kNSEC) {
    if (node.has_cname) return Status::Invalid(conflict);
    node.has_other = true;
  }
  node.builder.Add(type, rclass, ldns_rr_ttl(rr), rdata);
  return Status::Ok();
}

Status Loader::Finish(const std::string& path) {
  if (nodes_.empty()) return Status::Invalid(path + ": no records");
  auto apex = nodes_.find(storage::CanonicalName(apex_));
  if (apex == nodes_.end() || !apex->second.builder.Has(type::kSOA))
    return Status::Invalid(path + ": zone " + ShowName(apex_) + " has no SOA record at its apex");
  if (!apex->second.builder.Has(type::kNS))
    return Status::Invalid(path + ": zone " + ShowName(apex_) + " has no NS records at its apex");
  return Status::Ok();
}

// One RR in presentation form, for the RRs ldns cannot represent:
// RFC 3597 generic syntax, which every master-file reader accepts.
std::string GenericRR(std::string_view owner, const storage::RRsetView& set,
                      std::string_view rdata) {
  std::string line =
      TextFromWireName(owner) + "\t" + std::to_string(set.ttl) + "\t" +
      (set.rclass == kClassIN ? std::string("IN") : "CLASS" + std::to_string(set.rclass)) +
      "\tTYPE" + std::to_string(set.type) + "\t\\# " + std::to_string(rdata.size());
  if (!rdata.empty()) line += ' ';
  static constexpr char kHex[] = "0123456789abcdef";
  for (unsigned char c : rdata) {
    line += kHex[c >> 4];
    line += kHex[c & 15];
  }
  return line + "\n";
}

// Has ldns print the signature times of RRSIG and SIG as seconds since
// 1970 (RFC 4034 3.2's other form) instead of YYYYMMDDHHmmSS: it picks the
// date within 68 years of now, so the same store would export differently
// from year to year, and a time more than 68 years ahead comes out before
// 1970, which its own reader refuses.
void PrintTimesAsSeconds(ldns_rr* rr) {
  for (size_t i = 0; i < ldns_rr_rd_count(rr); ++i) {
    ldns_rdf* field = ldns_rr_rdf(rr, i);
    if (ldns_rdf_get_type(field) == LDNS_RDF_TYPE_TIME)
      ldns_rdf_set_type(field, LDNS_RDF_TYPE_INT32);
  }
}

// Writes every RR of `set` as ldns prints it (unknown types come out in
// RFC 3597 form), one per line.
void WriteRRset(std::ostream& out, std::string_view owner, const storage::RRsetView& set) {
  std::string wire;
  for (size_t pos = 0; pos + 2 <= set.body.size();) {
    size_t len = storage::LoadU16(set.body.data() + pos);
    std::string_view rdlength_and_rdata = set.body.substr(pos, 2 + len);
    std::string_view rdata = rdlength_and_rdata.substr(2);
    pos += 2 + len;

    // owner + type/class/TTL + rdlength + rdata: one RR as in an answer.
    wire.assign(owner);
    wire += set.type_class_ttl;
    wire += rdlength_and_rdata;
    RrPtr rr = RrFromWire(wire);
    if (rr) PrintTimesAsSeconds(rr.get());
    CharPtr text(rr ? ldns_rr2str_fmt(ldns_output_format_nocomments, rr.get()) : nullptr);
    if (text) {
      // The owner in our own escaping: ldns leaves '@', '$' and '"' bare,
      // which a reader takes for the origin, a directive or a quote when a
      // label starts with them. ldns escapes tabs, so the first ends it.
      std::string_view line(text.get());
      out << TextFromWireName(owner) << line.substr(std::min(line.find('\t'), line.size()));
    } else {
      out << GenericRR(owner, set, rdata);
    }
  }
}

// Writes the addresses of every host of the zone at `apex` into its nodes.
Status ReapplyHosts(storage::WriteTxn& txn, std::string_view apex, uint32_t host_ttl) {
  std::string zone_text = TextFromWireName(apex);
  if (zone_text.size() > 1) zone_text.pop_back();
  auto cursor = txn.OpenCursor(storage::Table::kHosts);
  if (!cursor.ok()) return cursor.status();
  // Collect first: writing nodes while iterating another table is fine in
  // LMDB, but decoding into owned records keeps the cursor's views simple.
  std::vector<storage::HostRecord> hosts;
  for (bool more = cursor->First(); more; more = cursor->Next()) {
    auto host = storage::HostRecord::Decode(cursor->value());
    if (host.ok() && host->zone == zone_text) hosts.push_back(std::move(host).value());
  }
  for (const storage::HostRecord& host : hosts) {
    auto wire = LowercaseWireNameFromText(host.name);
    if (!wire.ok()) continue;
    if (Status s = WriteHostAddresses(txn, apex, *wire, host.ipv4, host.ipv6, host_ttl); !s.ok())
      return s;
  }
  return Status::Ok();
}

// Stages, for the zone's journal, the difference between the stored nodes
// of the zone and `values` (the file's, in key order): one merge over both,
// reading the stored side from the map. Hosts' addresses are in the stored
// nodes but not yet in `values`; ReapplyHosts stages them back afterwards and
// the two cancel out.
Status StageImportDifference(storage::WriteTxn& txn, uint32_t zone_id,
                             const std::vector<std::pair<const PendingNode*, std::string>>& values) {
  auto cursor = txn.OpenCursor(storage::Table::kNodes);
  if (!cursor.ok()) return cursor.status();
  const std::string prefix = storage::EncodeU32(zone_id);
  storage::NodeKey key;
  std::string old_value;
  auto next_new = values.begin();
  bool more = cursor->Seek(prefix) && cursor->key().starts_with(prefix);
  while (more || next_new != values.end()) {
    std::string_view old_name = more ? cursor->key().substr(prefix.size()) : std::string_view();
    int order = 0;  // < 0: only stored, > 0: only in the file, 0: both
    if (!more) {
      order = 1;
    } else if (next_new == values.end()) {
      order = -1;
    } else {
      if (!key.Assign(zone_id, next_new->first->owner)) return Status::Invalid("malformed owner");
      order = old_name.compare(key.name_part());
    }
    Status s;
    if (order < 0) {
      std::string owner = storage::WireNameFromCanonical(old_name);
      if (owner.empty()) return Status::Corrupt("a malformed node key in the store");
      old_value.assign(cursor->value());
      s = StageNodeChange(txn, zone_id, owner, old_value, {});
    } else if (order > 0) {
      s = StageNodeChange(txn, zone_id, next_new->first->owner, {}, next_new->second);
    } else if (cursor->value() != next_new->second) {
      // A copy: staging writes to the journal table while the view points
      // into the nodes table's page.
      old_value.assign(cursor->value());
      s = StageNodeChange(txn, zone_id, next_new->first->owner, old_value, next_new->second);
    }
    if (!s.ok()) return s.WithContext("journal: ");
    if (order <= 0) more = cursor->Next() && cursor->key().starts_with(prefix);
    if (order >= 0) ++next_new;
  }
  return Status::Ok();
}

// What only_if_changed learns before parsing anything.
enum class SourceCheck {
  kNoStamps,   // nothing usable recorded: parse, then compare digests
  kChanged,    // parse and import
  kUnchanged,  // every file's stat matched a settled stamp: nothing read
  kSameBytes,  // the same bytes read again: stamps refreshed, nothing parsed
};

Result<SourceCheck> CheckSources(storage::Store& store, std::string_view apex,
                                 const std::string& path) {
  RecordedSources recorded;
  {
    auto txn = store.BeginRead();
    if (!txn.ok()) return txn.status();
    auto zone = storage::ReadZoneRecord(*txn, apex);
    // Errors reading the zone are the full import's to report.
    if (!zone.ok()) return SourceCheck::kNoStamps;
    auto value = txn->Get(storage::Table::kMeta, SourcesKey(zone->zone_id));
    if (!value) return SourceCheck::kNoStamps;
    auto decoded = DecodeSources(*value);
    // A damaged row only costs a parse; the import then writes a good one.
    if (!decoded.ok()) return SourceCheck::kNoStamps;
    recorded = std::move(decoded).value();
    // The main file named differently now resolves its includes elsewhere.
    if (recorded.digest != zone->source_digest || recorded.digest.empty() ||
        recorded.files.empty() || recorded.files[0].path != path)
      return SourceCheck::kNoStamps;
  }

  // The files the loader would read are a function of the path strings and
  // the bytes: as long as every file is the same, so is the list.
  bool all_same = true;
  for (const SourceFile& file : recorded.files) {
    struct stat st {};
    // Gone, or not a regular file (a FIFO must not be drained by hashing):
    // the import proper reports or reads it.
    if (::stat(file.path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) return SourceCheck::kChanged;
    if (static_cast<uint64_t>(st.st_size) != file.size) return SourceCheck::kChanged;
    SourceFile now;
    SetIdentity(st, now);
    all_same = all_same && file.settled && SameIdentity(file, now);
  }
  if (all_same) return SourceCheck::kUnchanged;

  // Touched, copied over, or too young to trust: compare the bytes.
  Sha256 digest;
  std::vector<char> buffer(kHashChunk);
  std::vector<SourceFile> fresh;
  fresh.reserve(recorded.files.size());
  for (const SourceFile& file : recorded.files) {
    auto stamp = HashFile(file.path, digest, buffer);
    if (!stamp.ok() || stamp->size != file.size) return SourceCheck::kChanged;
    fresh.push_back(std::move(stamp).value());
  }
  if (digest.Final() != recorded.digest) return SourceCheck::kChanged;

  auto txn = store.BeginWrite();
  if (!txn.ok()) return txn.status();
  // Another import may have run since the read above.
  auto zone = storage::ReadZoneRecord(*txn, apex);
  if (!zone.ok() || zone->source_digest != recorded.digest) return SourceCheck::kChanged;
  if (Status s = txn->Put(storage::Table::kMeta, SourcesKey(zone->zone_id),
                          EncodeSources(recorded.digest, fresh));
      !s.ok())
    return s;
  if (Status s = txn->Commit(); !s.ok()) return s;
  return SourceCheck::kSameBytes;
}

// Parses the files and replaces the zone with them; with skip_same_digest,
// a digest equal to the stored one skips instead.
Result<ImportResult> ParseAndImport(storage::Store& store, const std::string& apex,
                                    const std::string& path, bool skip_same_digest,
                                    uint32_t host_ttl, const JournalLimits& journal_limits) {
  Loader loader(apex);
  RdfPtr origin = RdfFromWireName(apex);
  if (!origin) return Status::IoError("ldns: out of memory");
  if (Status s = loader.LoadFile(path, origin.get(), kDefaultTtl, 0); !s.ok()) return s;
  if (Status s = loader.Finish(path); !s.ok()) return s;
  std::string digest = loader.digest();
  if (digest.empty()) return Status::IoError(path + ": SHA-256 of the file failed (OpenSSL)");

  // Encode before the transaction: the writer lock is held only for writing.
  ImportResult result;
  result.read = result.parsed = true;
  std::vector<std::pair<const PendingNode*, std::string>> values;
  uint32_t delegations = 0;
  for (const auto& [key, node] : loader.nodes()) {
    auto value = node.builder.Encode();
    if (!value.ok())
      return Status::Invalid(node.where + ": " + ShowName(node.owner) + ": " +
                             std::string(value.status().message()));
    storage::NodeView view(*value);
    view.ForEach([&](const storage::RRsetView& set) {
      result.records += set.rr_count;
      return true;
    });
    if (node.owner != apex && node.builder.Has(type::kNS)) ++delegations;
    values.emplace_back(&node, std::move(value).value());
  }
  result.nodes = values.size();

  auto txn = store.BeginWrite();
  if (!txn.ok()) return txn.status();
  auto existing = storage::ReadZoneRecord(*txn, apex);
  if (!existing.ok() && !existing.status().IsNotFound()) return existing.status();
  storage::ZoneRecord zone;
  const std::string sources = EncodeSources(digest, loader.sources());
  if (existing.ok()) {
    if (skip_same_digest && existing->source_digest == digest) {
      // Unchanged, but stamped by an older version or not at all: stamp it
      // now so that the next start reads nothing.
      if (Status s = txn->Put(storage::Table::kMeta, SourcesKey(existing->zone_id), sources);
          !s.ok())
        return s;
      if (Status s = txn->Commit(); !s.ok()) return s;
      return ImportResult{.skipped = true, .read = true, .parsed = true};
    }
    zone = *existing;
  } else {
    auto id = storage::AllocateZoneId(*txn);
    if (!id.ok()) return id.status();
    zone.zone_id = *id;
  }

  // Secondaries only follow a serial that grows: remember the old one.
  std::optional<uint32_t> old_serial;
  if (existing.ok()) {
    auto serial = ReadSerial(*txn, apex);
    if (serial.ok()) old_serial = *serial;
  }
  if (old_serial) {
    if (Status s = StageImportDifference(*txn, zone.zone_id, values); !s.ok()) return s;
  }
  auto deleted = txn->DeleteRange(storage::Table::kNodes, storage::EncodeU32(zone.zone_id),
                                  storage::EncodeU32(zone.zone_id + 1));
  if (!deleted.ok()) return deleted.status();
  storage::NodeKey key;
  for (const auto& [node, value] : values) {
    if (!key.Assign(zone.zone_id, node->owner))
      return Status::Invalid(node->where + ": malformed owner name");
    if (Status s = txn->Put(storage::Table::kNodes, key.view(), value); !s.ok()) return s;
  }
  zone.delegation_count = delegations;
  zone.source_digest = std::move(digest);
  if (Status s = txn->Put(storage::Table::kZones, storage::CanonicalName(apex), zone.Encode());
      !s.ok())
    return s;
  if (Status s = txn->Put(storage::Table::kMeta, SourcesKey(zone.zone_id), sources); !s.ok())
    return s;
  // Hosts are the dynamic layer over the file: their addresses survive.
  if (Status s = ReapplyHosts(*txn, apex, host_ttl); !s.ok()) return s;
  if (old_serial) {
    if (Status s = EnsureSerialAfter(*txn, apex, *old_serial, journal_limits); !s.ok()) return s;
  } else {
    // A new zone (or one without a usable SOA before): nothing older to
    // follow from, and the hosts reapplied above staged nothing worth keeping.
    if (Status s = ClearJournal(*txn, zone.zone_id); !s.ok()) return s;
  }
  if (Status s = storage::BumpGeneration(*txn); !s.ok()) return s;
  if (Status s = txn->Commit(); !s.ok()) return s;
  return result;
}

// ldns mallocs and frees a few 64 KB token buffers for every record. On
// top of a heap that grows with the parsed zone they sit at its top, and
// with glibc's default trim threshold (128 KB; raised only as a side effect
// of freeing large mmapped blocks, which the old iostream read of the file
// happened to do) every record gives them back to the kernel and asks again:
// a 1M-name import took 100 s instead of 14. ReleaseFreedMemory trims
// whatever the parse leaves, so a fixed threshold of a few MB costs nothing
// lasting.
void KeepHeapTopForParse() {
#if defined(__GLIBC__)
  mallopt(M_TRIM_THRESHOLD, 4 << 20);
#endif
}

// A parse frees hundreds of thousands of small blocks at once (hundreds of
// MB for a million names). glibc keeps them in its free lists unless asked,
// so the daemon would carry them for its lifetime, and the next larger
// allocation would pay for coalescing them.
void ReleaseFreedMemory() {
#if defined(__GLIBC__)
  malloc_trim(0);
#endif
}

}  // namespace

Result<ImportResult> ImportZoneFile(storage::Store& store, std::string_view zone_name,
                                    const std::string& path, bool only_if_changed,
                                    uint32_t host_ttl, const JournalLimits& journal_limits) {
  auto apex = LowercaseWireNameFromText(zone_name);
  if (!apex.ok()) return apex.status().WithContext("zone name: ");

  bool skip_same_digest = false;
  if (only_if_changed) {
    auto check = CheckSources(store, *apex, path);
    if (!check.ok()) return check.status();
    if (*check == SourceCheck::kUnchanged) return ImportResult{.skipped = true};
    if (*check == SourceCheck::kSameBytes) return ImportResult{.skipped = true, .read = true};
    // Stamps that saw a change are not overruled by the digest alone: it is
    // over the files back to back, and bytes moved from one file to the
    // next hash the same (the sizes told them apart).
    skip_same_digest = *check == SourceCheck::kNoStamps;
  }

  KeepHeapTopForParse();
  auto result = ParseAndImport(store, *apex, path, skip_same_digest, host_ttl, journal_limits);
  ReleaseFreedMemory();
  return result;
}

Result<std::vector<SourceFile>> ReadZoneSources(const storage::Store& store,
                                                std::string_view zone_name) {
  auto apex = LowercaseWireNameFromText(zone_name);
  if (!apex.ok()) return apex.status().WithContext("zone name: ");
  auto txn = store.BeginRead();
  if (!txn.ok()) return txn.status();
  auto zone = storage::ReadZoneRecord(*txn, *apex);
  if (!zone.ok()) return zone.status().WithContext("zone " + ShowName(*apex) + ": ");
  auto value = txn->Get(storage::Table::kMeta, SourcesKey(zone->zone_id));
  if (!value) return Status::NotFound("zone " + ShowName(*apex) + ": no source files recorded");
  auto recorded = DecodeSources(*value);
  if (!recorded.ok()) return recorded.status().WithContext("zone " + ShowName(*apex) + ": ");
  return std::move(recorded->files);
}

Status ExportZone(const storage::Store& store, std::string_view zone_name, std::ostream& out) {
  auto apex = LowercaseWireNameFromText(zone_name);
  if (!apex.ok()) return apex.status().WithContext("zone name: ");

  auto txn = store.BeginRead();
  if (!txn.ok()) return txn.status();
  auto zone = storage::ReadZoneRecord(*txn, *apex);
  if (!zone.ok()) {
    if (zone.status().IsNotFound())
      return Status::NotFound("zone " + ShowName(*apex) + " is not in the store");
    return zone.status().WithContext("zone " + ShowName(*apex) + ": ");
  }
  auto cursor = txn->OpenCursor(storage::Table::kNodes);
  if (!cursor.ok()) return cursor.status();

  out << "$ORIGIN " << TextFromWireName(*apex) << "\n";
  const std::string prefix = storage::EncodeU32(zone->zone_id);
  for (bool more = cursor->Seek(prefix); more && cursor->key().starts_with(prefix);
       more = cursor->Next()) {
    std::string owner =
        storage::WireNameFromCanonical(cursor->key().substr(storage::NodeKey::kZoneIdSize));
    storage::NodeView node(cursor->value());
    if (owner.empty() || !node.Valid())
      return Status::Corrupt("zone " + ShowName(*apex) + ": a malformed node in the store" +
                             (owner.empty() ? std::string() : " at " + ShowName(owner)));
    // The SOA leads the file, as readers like BIND and NSD expect.
    storage::RRsetView soa;
    bool at_apex = owner == *apex && node.Find(type::kSOA, soa);
    if (at_apex) WriteRRset(out, owner, soa);
    node.ForEach([&](const storage::RRsetView& set) {
      if (!(at_apex && set.type == type::kSOA)) WriteRRset(out, owner, set);
      return true;
    });
  }
  out.flush();
  if (!out) return Status::IoError("zone " + ShowName(*apex) + ": writing the export failed");
  return Status::Ok();
}

}  // namespace updns::zone
