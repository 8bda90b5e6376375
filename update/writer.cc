#include "update/writer.h"

#include <chrono>
#include <ctime>
#include <vector>

#include "common/log.h"
#include "zone/zone_edit.h"

namespace updns::update {

Writer::Writer(storage::Store& store, zone::JournalLimits journal_limits)
    : store_(store), journal_limits_(journal_limits) {}

Writer::~Writer() { Stop(); }

void Writer::Start() { thread_ = std::thread([this] { Run(); }); }

void Writer::Stop() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void Writer::Submit(std::unique_ptr<WriteRequest> request) {
  {
    std::lock_guard lock(mutex_);
    if (!stopping_) {
      queue_.push_back(std::move(request));
      wake_.notify_one();
      return;
    }
  }
  request->Done(Status::Unsupported("the server is shutting down"));
}

Writer::Stats Writer::stats() const {
  std::lock_guard lock(mutex_);
  return stats_;
}

void Writer::SetJournalLimits(zone::JournalLimits limits) {
  std::lock_guard lock(mutex_);
  journal_limits_ = limits;
}

void Writer::Run() {
  std::deque<std::unique_ptr<WriteRequest>> group;
  zone::JournalLimits journal_limits;
  while (true) {
    {
      std::unique_lock lock(mutex_);
      wake_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stopping, and nothing left to apply
      // Everything that queued up while the last commit was syncing goes
      // into this one: that is the group commit.
      group.swap(queue_);
      journal_limits = journal_limits_;
    }
    ApplyGroup(group, journal_limits);
    group.clear();
  }
}

void Writer::ApplyGroup(std::deque<std::unique_ptr<WriteRequest>>& group,
                        const zone::JournalLimits& journal_limits) {
  std::vector<Status> outcomes(group.size());
  WriteContext context(static_cast<uint64_t>(std::time(nullptr)));
  Status commit_status;
  auto started = std::chrono::steady_clock::now();
  auto txn = store_.BeginWrite();
  if (!txn.ok()) {
    commit_status = txn.status();
  } else {
    for (size_t i = 0; i < group.size(); ++i) {
      auto child = txn->BeginNested();
      if (!child.ok()) {
        outcomes[i] = child.status();
        continue;
      }
      WriteContext request_context(context.now());
      outcomes[i] = group[i]->Apply(*child, request_context);
      if (outcomes[i].ok()) outcomes[i] = child->Commit();
      if (outcomes[i].ok()) {
        for (const std::string& apex : request_context.changed_zones()) context.ZoneChanged(apex);
      }
      // A failed child is aborted by its destructor: only its writes vanish.
    }
    commit_status = zone::FinishZoneChanges(*txn, context.changed_zones(), journal_limits);
    if (commit_status.ok()) commit_status = txn->Commit();
  }
  std::chrono::duration<double> took = std::chrono::steady_clock::now() - started;
  if (!commit_status.ok()) {
    Log(LogLevel::kError, "writer_commit_failed",
        {{"requests", group.size()}, {"error", commit_status}});
  }
  {
    std::lock_guard lock(mutex_);
    ++(commit_status.ok() ? stats_.commits : stats_.failed_commits);
    stats_.requests += group.size();
    stats_.batch_size.Observe(static_cast<double>(group.size()));
    stats_.commit_seconds.Observe(took.count());
  }
  for (size_t i = 0; i < group.size(); ++i) {
    group[i]->Done(commit_status.ok() ? outcomes[i] : commit_status);
  }
}

}  // namespace updns::update
