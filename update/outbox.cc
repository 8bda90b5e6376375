#include "update/outbox.h"

#include "storage/schema.h"

namespace updns::update {

namespace {
constexpr std::string_view kNextMailIdKey = "next_mail_id";
}  // namespace

Result<uint64_t> EnqueueMail(storage::WriteTxn& txn, storage::MailRecord mail) {
  auto next = txn.Get(storage::Table::kMeta, kNextMailIdKey);
  uint64_t id = next && next->size() == 8 ? storage::DecodeU64(*next) : 1;
  if (Status s = txn.Put(storage::Table::kMeta, kNextMailIdKey, storage::EncodeU64(id + 1)); !s.ok())
    return s;
  mail.next_attempt_at = mail.created_at;
  if (Status s = txn.Put(storage::Table::kOutbox, storage::EncodeU64(id), mail.Encode()); !s.ok())
    return s;
  return id;
}

Result<std::vector<std::pair<uint64_t, storage::MailRecord>>> ListMail(const storage::Txn& txn) {
  auto cursor = txn.OpenCursor(storage::Table::kOutbox);
  if (!cursor.ok()) return cursor.status();
  std::vector<std::pair<uint64_t, storage::MailRecord>> mails;
  for (bool more = cursor->First(); more; more = cursor->Next()) {
    if (cursor->key().size() != 8) continue;
    auto mail = storage::MailRecord::Decode(cursor->value());
    if (!mail.ok()) return mail.status();
    mails.emplace_back(storage::DecodeU64(cursor->key()), std::move(mail).value());
  }
  return mails;
}

Status RemoveMail(storage::WriteTxn& txn, uint64_t id) {
  return txn.Delete(storage::Table::kOutbox, storage::EncodeU64(id));
}

Status DeferMail(storage::WriteTxn& txn, uint64_t id, std::string error, uint64_t retry_at) {
  std::string key = storage::EncodeU64(id);
  auto value = txn.Get(storage::Table::kOutbox, key);
  if (!value) return Status::NotFound("mail " + std::to_string(id) + " is not in the outbox");
  auto mail = storage::MailRecord::Decode(*value);
  if (!mail.ok()) return mail.status();
  ++mail->attempts;
  mail->last_error = std::move(error);
  mail->next_attempt_at = retry_at;
  return txn.Put(storage::Table::kOutbox, key, mail->Encode());
}

}  // namespace updns::update
