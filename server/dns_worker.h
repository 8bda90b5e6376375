// One query loop: a libuv loop on its own thread with its own UDP and TCP
// sockets (SO_REUSEPORT, so the kernel spreads packets over the loops) and
// its own zone::Responder. UDP is read and answered in batches with
// recvmmsg/sendmmsg from a uv_poll handle; one read transaction renewal per
// batch. TCP follows RFC 7766: 2-byte framing, pipelined queries answered in
// order, an idle timeout and a connection limit. Messages that are not plain
// queries (UPDATE, AXFR/IXFR, TSIG) go to the loop's DnsControl; zone
// transfers are streamed as the client reads them.
#pragma once

#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "common/status.h"
#include "config/config.h"
#include "server/dns_control.h"
#include "server/dns_counters.h"
#include "server/rrl.h"
#include "storage/store.h"
#include "update/writer.h"

namespace updns::server {

struct DnsWorkerOptions {
  std::vector<config::Endpoint> listen;
  std::vector<std::string> zones;  // lowercased wire names to serve
  unsigned tcp_idle_timeout_ms = 10000;
  unsigned tcp_max_connections = 256;
  uint16_t udp_payload = 1232;
  // Keys and access rules for UPDATE and transfers; none = both refused.
  DnsPolicyPtr policy;
  update::Writer* writer = nullptr;  // where UPDATEs go; null = refused
  int cpu = -1;                      // pin the loop's thread to this CPU; -1 = don't
  // Shared by every loop; null = no rate limiting.
  std::shared_ptr<ResponseRateLimiter> rrl;
};

class DnsWorker {
 public:
  // Binds every socket now, so that start-up fails early with the address
  // at fault. The store must outlive the worker.
  static Result<std::unique_ptr<DnsWorker>> Create(const storage::Store& store,
                                                   const DnsWorkerOptions& options, int index);
  ~DnsWorker();
  DnsWorker(const DnsWorker&) = delete;
  DnsWorker& operator=(const DnsWorker&) = delete;

  // Runs the loop on a new thread.
  void Start();
  // A reload: the loop serves options.zones with options.policy,
  // options.rrl and the TCP limits from then on; a started loop has taken
  // them when this returns. The sockets, the CPU, the writer and
  // udp_payload stay as created. Thread-safe; ignored after Stop().
  void Reconfigure(const DnsWorkerOptions& options);
  // Closes every handle, lets the loop finish and joins the thread.
  // Safe to call from any thread, more than once.
  void Stop();

  // The loop's counters: written by the loop, readable from any thread
  // (server/dns_counters.h). Valid as long as the worker.
  const DnsCounters& counters() const noexcept;

  struct Impl;

 private:
  explicit DnsWorker(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
  std::thread thread_;
  bool started_ = false;
};

}  // namespace updns::server
