// SIEM export: follows the durable audit log and copies every entry, once and
// in order, to a sink — JSON lines in a file (with size-based rotation) or
// syslog (RFC 5424 over UDP, TCP or a Unix socket).
//
// The export never blocks requests and never loses an entry of the durable
// log: it reads committed entries from the store (never from the request
// path), remembers the next seq to send in a small state file written
// atomically after each delivered batch, and resumes from it after a
// restart. Delivery is at least once across a crash between sending and
// saving the position; the entry's seq lets a receiver drop the duplicate.
// When a sink fails (receiver down, disk full) the exporter retries with
// backoff; entries wait in the log, never in memory.
//
// Thread safety: an Exporter owns one thread; Start/Stop from one thread.
#ifndef KURA_AUDIT_EXPORT_H_
#define KURA_AUDIT_EXPORT_H_

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "core/config.h"
#include "core/status.h"
#include "store/store.h"

namespace kura::audit {

struct SinkConfig {
  std::string name;              // unique per deployment; names the state file
  std::string type;              // "file" | "syslog"
  // file:
  std::string path;              // JSON lines; rotated to path.1, path.2, …
  std::uint64_t max_bytes = 64u << 20;
  int keep_files = 5;
  // syslog: "udp://host:port", "tcp://host:port" (octet-counted framing,
  // RFC 6587) or "unix:///dev/log" (datagram).
  std::string address;
  std::string app_name = "kura";
  int facility = 13;             // log audit (RFC 5424 §6.2.1)
};

// The sink of one [[audit.sink]] table of the configuration (the serve
// wiring's conversion; core cannot depend on audit, so it mirrors the fields).
SinkConfig SinkConfigFrom(const Config::Audit::SinkSettings& settings);

// The JSON line (and syslog MSG) of one entry: the entry's canonical JSON
// with "hash" (hex leaf hash) added as the last key.
std::string ExportLine(const store::AuditRow& row);

class Exporter {
 public:
  // Entries read from the store, delivered and acknowledged per step; the
  // position file is written once per batch.
  static constexpr int kBatchSize = 256;

  // `store` must outlive the exporter. `state_dir` holds <name>.pos.
  // InvalidArgument for a bad sink configuration.
  static Result<std::unique_ptr<Exporter>> Create(store::Store* store, SinkConfig sink, std::string state_dir);
  ~Exporter();  // stops

  void Start();
  // Wakes the exporter early (new entries were committed); cheap, never blocks.
  void Notify();
  // Delivers what is committed, saves the position and stops the thread.
  void Stop();
  // The next seq the exporter will send (for status and tests).
  std::int64_t position() const { return position_.load(); }

 private:
  class Sink;
  Exporter(store::Store* store, SinkConfig sink, std::string state_path, std::unique_ptr<Sink> out);
  void Run();
  // Sends every committed entry from position_ on, batch by batch, saving
  // the position after each. Unavailable/DataLoss on the first failure.
  Status Drain();

  store::Store* store_;
  SinkConfig config_;
  std::string state_path_;
  std::unique_ptr<Sink> sink_;
  std::atomic<std::int64_t> position_{0};
  std::int64_t saved_position_ = -1;  // what the state file holds; only the thread touches it
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  bool notified_ = false;
  std::thread thread_;
};

}  // namespace kura::audit

#endif  // KURA_AUDIT_EXPORT_H_
