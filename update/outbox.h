// The outbox: mail queued in the store, in the same transaction as the
// change that caused it, and drained by the mailer (server/mailer.h).
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "common/status.h"
#include "storage/accounts.h"
#include "storage/store.h"

namespace updns::update {

// Queues `mail` (due at once) and returns its id.
Result<uint64_t> EnqueueMail(storage::WriteTxn& txn, storage::MailRecord mail);

// Every queued mail in id order.
Result<std::vector<std::pair<uint64_t, storage::MailRecord>>> ListMail(const storage::Txn& txn);

// Removes a delivered mail. NotFound when it is gone already.
Status RemoveMail(storage::WriteTxn& txn, uint64_t id);

// Records a failed attempt: attempts + 1, the error, and when to retry.
Status DeferMail(storage::WriteTxn& txn, uint64_t id, std::string error, uint64_t retry_at);

}  // namespace updns::update
