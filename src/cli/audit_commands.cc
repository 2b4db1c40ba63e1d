// kura audit verify|proof|tail|pubkey.
//
// verify and proof check the log with kura's audit library on this side of
// the wire: a server that rewrote history cannot vouch for itself. They live
// in the `kura` executable (not kura_cli) because they need that library and,
// for offline verification, the store.
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <memory>
#include <sstream>
#include <thread>

#include "audit/checkpoint.h"
#include "audit/entry.h"
#include "audit/merkle.h"
#include "audit/verifier.h"
#include "cli/serve_config.h"
#include "cli/serve_stores.h"
#include "cli/server_commands.h"
#include "crypto/signing.h"
#include "store/store.h"

namespace kura::cli {
namespace {

using nlohmann::json;

constexpr int kPageSize = 1000;
constexpr char kSigningKeyMeta[] = "audit.signing_key";

Result<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return InvalidArgumentError("cannot read " + path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// Writes `text` to `path` atomically (temp file, fsync, rename).
Status WriteFileAtomically(const std::string& path, const std::string& text) {
  std::filesystem::path target(path);
  std::error_code ec;
  if (target.has_parent_path()) std::filesystem::create_directories(target.parent_path(), ec);
  std::string tmp = path + ".tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return UnavailableError("cannot write " + tmp + ": " + std::strerror(errno));
  bool ok = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
  ok = ::fsync(fd) == 0 && ok;
  ok = ::close(fd) == 0 && ok;
  if (!ok || ::rename(tmp.c_str(), path.c_str()) != 0) {
    ::unlink(tmp.c_str());
    return UnavailableError("cannot write " + path + ": " + std::strerror(errno));
  }
  return Status::Ok();
}

Result<Bytes> HexField(const json& object, const char* key) {
  if (!object.is_object() || !object.contains(key) || !object[key].is_string()) {
    return InvalidArgumentError(std::string("answer without '") + key + "'");
  }
  auto bytes = HexDecode(object[key].get<std::string>());
  if (!bytes) return InvalidArgumentError(std::string("'") + key + "' is not hex");
  return *bytes;
}

Result<std::vector<Bytes>> HexListField(const json& object, const char* key) {
  if (!object.is_object() || !object.contains(key) || !object[key].is_array()) {
    return InvalidArgumentError(std::string("answer without '") + key + "'");
  }
  std::vector<Bytes> out;
  for (const json& item : object[key]) {
    if (!item.is_string()) return InvalidArgumentError(std::string("'") + key + "' holds a non-string");
    auto bytes = HexDecode(item.get<std::string>());
    if (!bytes) return InvalidArgumentError(std::string("'") + key + "' is not hex");
    out.push_back(std::move(*bytes));
  }
  return out;
}

Result<store::AuditCheckpointRow> CheckpointFromJson(const json& item) {
  store::AuditCheckpointRow row;
  if (!item.is_object() || !item.contains("tree_size") || !item["tree_size"].is_number_integer() ||
      !item.contains("note") || !item["note"].is_string()) {
    return InvalidArgumentError("malformed checkpoint");
  }
  row.tree_size = item["tree_size"].get<std::int64_t>();
  row.note = item["note"].get<std::string>();
  KURA_ASSIGN_OR_RETURN(row.root, HexField(item, "root"));
  KURA_ASSIGN_OR_RETURN(row.signature, HexField(item, "signature"));
  auto parsed = audit::ParseCheckpointNote(row.note);
  if (parsed.ok()) row.at_ms = parsed->at_ms;
  return row;
}

json CheckpointToJson(const store::AuditCheckpointRow& row) {
  return {{"tree_size", row.tree_size},
          {"root", HexEncode(row.root)},
          {"note", row.note},
          {"signature", HexEncode(row.signature)}};
}

// GET that must answer 200 with a JSON object; reports and sets *code otherwise.
std::optional<json> GetJson(Context* ctx, const std::string& path, int* code) {
  auto response = Call(ctx, {"GET", path, std::nullopt, {}}, code);
  if (!response) return std::nullopt;
  json body = json::parse(response->body, nullptr, false);
  if (!body.is_object()) {
    *ctx->err << "kura: unexpected answer from the server\n";
    *code = kExitError;
    return std::nullopt;
  }
  return body;
}

int ReportVerification(Context* ctx, const audit::VerifyReport& report) {
  if (ctx->format() == Format::kJson) {
    json out = {{"entries", report.entries},
                {"checkpoints", report.checkpoints},
                {"signed_entries", report.signed_entries},
                {"verified", !report.problem}};
    if (report.problem) {
      out["problem"] = {{"kind", audit::ProblemKindName(report.problem->kind)},
                        {"seq", report.problem->seq},
                        {"message", report.problem->message}};
    } else {
      out["root"] = HexEncode(report.root);
    }
    *ctx->out << out.dump() << "\n";
  } else if (report.problem) {
    *ctx->out << "FAILED: " << report.problem->message << "\n";
  } else {
    *ctx->out << "verified " << report.entries << " entries and " << report.checkpoints << " checkpoints\n";
    if (report.signed_entries < report.entries) {
      *ctx->out << "note: the last " << report.entries - report.signed_entries
                << " entries are chained but not yet under a signed checkpoint\n";
    }
    *ctx->out << "root " << HexEncode(report.root) << "\n";
  }
  if (report.problem) {
    *ctx->err << "kura: audit log verification failed (" << audit::ProblemKindName(report.problem->kind)
              << " at " << report.problem->seq << ")\n";
    return kExitTampered;
  }
  return kExitOk;
}

// --- verify --------------------------------------------------------------------

struct VerifyArgs {
  std::string data_dir;
  std::string config_file;
  std::string pubkey_file;
};

Result<std::unique_ptr<store::Store>> OpenStoreForVerify(const VerifyArgs& args) {
  std::string data_dir = args.data_dir;
  if (!args.config_file.empty()) {
    Config config;
    KURA_RETURN_IF_ERROR(LoadConfigFile(args.config_file, &config));
    if (data_dir.empty()) data_dir = config.storage.path;
    if (config.storage.engine == "postgres") {
      KURA_ASSIGN_OR_RETURN(store::PostgresOptions options, PostgresOptionsOf(config));
      options.pool_size = 2;
      options.read_only = true;
      return store::OpenPostgresStore(options);
    }
  }
  // The evidence is read, never changed: not even SQLite's checkpoint at
  // close may rewrite a copy that is being verified.
  store::SqliteOptions options;
  options.path = (std::filesystem::path(data_dir) / "kura.db").string();
  options.read_only = true;
  return store::OpenSqliteStore(options);
}

Result<Bytes> PublicKeyFromFile(const std::string& path) {
  KURA_ASSIGN_OR_RETURN(std::string pem, ReadFile(path));
  return crypto::PublicKeyFromPem(pem);
}

// The key given with --pubkey (trusted), or nullopt when none was given.
Result<std::optional<Bytes>> KeyFromFlag(const VerifyArgs& args) {
  if (args.pubkey_file.empty()) return std::optional<Bytes>();
  KURA_ASSIGN_OR_RETURN(Bytes key, PublicKeyFromFile(args.pubkey_file));
  return std::optional<Bytes>(std::move(key));
}

int RunVerification(Context* ctx, const audit::RowReader& read_rows,
                    const std::vector<store::AuditCheckpointRow>& checkpoints, ByteView public_key,
                    std::optional<audit::StoredExtent> stored = std::nullopt) {
  auto report = audit::VerifyLog(read_rows, checkpoints, public_key, stored);
  if (!report.ok()) {
    *ctx->err << "kura: cannot read the audit log: " << report.status().message() << "\n";
    return kExitError;
  }
  return ReportVerification(ctx, *report);
}

int VerifyOffline(Context* ctx, const VerifyArgs& args) {
  auto store_or = OpenStoreForVerify(args);
  if (!store_or.ok()) return UsageError(ctx, store_or.status());
  store::Store& store = **store_or;

  auto flag_key = KeyFromFlag(args);
  if (!flag_key.ok()) return UsageError(ctx, flag_key.status());
  Bytes public_key = flag_key->value_or(Bytes());
  if (!*flag_key) {
    auto meta = store.GetMeta(kSigningKeyMeta);
    json doc = meta.ok() ? json::parse(AsString(*meta), nullptr, false) : json();
    auto key = doc.is_object() && doc.contains("public_key") && doc["public_key"].is_string()
                   ? HexDecode(doc["public_key"].get<std::string>())
                   : std::nullopt;
    if (!key) return UsageError(ctx, InvalidArgumentError("no audit public key in the database; pass --pubkey"));
    *ctx->err << "kura: using the public key stored with the log; pass --pubkey with a key you saved earlier "
                 "to detect a replaced key\n";
    public_key = std::move(*key);
  }

  std::vector<store::AuditCheckpointRow> checkpoints;
  // From the lowest tree size, not 0: a row altered to a negative size is a
  // forged checkpoint to report, not one to pass over.
  for (std::int64_t after = std::numeric_limits<std::int64_t>::min();;) {
    auto page = store.ListAuditCheckpoints(after, kPageSize);
    if (!page.ok()) return UsageError(ctx, page.status());
    if (page->empty()) break;
    after = page->back().tree_size;
    for (auto& c : *page) checkpoints.push_back(std::move(c));
  }
  // Before the entries: rows appended meanwhile lie past these, never outside.
  auto rows = store.AuditSeqBounds();
  if (!rows.ok()) return UsageError(ctx, rows.status());
  auto head = store.ReadAuditHeadRow();
  if (!head.ok()) return UsageError(ctx, head.status());
  return RunVerification(
      ctx, [&store](std::int64_t from, int limit) { return store.ReadAudit(from, limit); }, checkpoints, public_key,
      audit::StoredExtent{*rows, *head});
}

int VerifyOnline(Context* ctx, const VerifyArgs& args) {
  int code = kExitOk;
  auto flag_key = KeyFromFlag(args);
  if (!flag_key.ok()) return UsageError(ctx, flag_key.status());
  Bytes public_key = flag_key->value_or(Bytes());
  if (!*flag_key) {
    auto body = GetJson(ctx, "/v1/sys/audit/pubkey", &code);
    if (!body) return code;
    auto key = crypto::PublicKeyFromPem(StringField(*body, "public_key_pem"));
    if (!key.ok()) return UsageError(ctx, key.status());
    public_key = std::move(*key);
  }
  std::vector<store::AuditCheckpointRow> checkpoints;
  for (std::int64_t after = 0;;) {
    auto body = GetJson(ctx, "/v1/sys/audit/checkpoints?after=" + std::to_string(after) + "&limit=1000", &code);
    if (!body) return code;
    const json& items = (*body)["items"];
    if (!items.is_array() || items.empty()) break;
    for (const json& item : items) {
      auto row = CheckpointFromJson(item);
      if (!row.ok()) return UsageError(ctx, row.status());
      if (row->tree_size <= after) {
        // A listing that does not advance would page for ever.
        *ctx->err << "kura: the server listed checkpoint " << row->tree_size << " after " << after
                  << ": its listing does not advance\n";
        return kExitError;
      }
      after = row->tree_size;
      checkpoints.push_back(std::move(*row));
    }
  }
  // Every read of the trail is itself audited, so the log grows while it is
  // read: verify what the latest checkpoint signed, no further.
  const std::int64_t signed_size = checkpoints.empty() ? 0 : checkpoints.back().tree_size;
  // Rows as the server lists them; the verifier checks each against its
  // own entry bytes and hash, so nothing here is taken on trust.
  audit::RowReader reader = [ctx, signed_size](std::int64_t from, int limit) -> Result<std::vector<store::AuditRow>> {
    if (from >= signed_size) return std::vector<store::AuditRow>();
    limit = static_cast<int>(std::min<std::int64_t>(limit, signed_size - from));
    std::string path = "/v1/sys/audit?limit=" + std::to_string(std::min(limit, kPageSize));
    if (from > 0) path += "&after=" + std::to_string(from - 1);
    int code = kExitOk;
    auto body = GetJson(ctx, path, &code);
    if (!body) return UnavailableError("cannot fetch audit entries");
    std::vector<store::AuditRow> rows;
    for (const json& item : (*body)["items"]) {
      store::AuditRow row;
      row.seq = IntegerField(item, "seq", -1);
      row.at_ms = IntegerField(item, "at_ms", 0);
      row.tenant_id = StringField(item, "tenant");
      row.principal = StringField(item, "principal");
      row.action = StringField(item, "action");
      row.resource = StringField(item, "resource");
      row.outcome = StringField(item, "outcome");
      row.entry = ToBytes(StringField(item, "entry"));
      auto hash = HexDecode(StringField(item, "hash"));
      if (hash) row.hash = std::move(*hash);
      rows.push_back(std::move(row));
    }
    return rows;
  };
  return RunVerification(ctx, reader, checkpoints, public_key);
}

// --- proof ---------------------------------------------------------------------

struct ProofArgs {
  std::optional<std::int64_t> seq;
  std::string tenant;
  std::string pubkey_file;
  std::string state_file;
};

std::string DefaultStateFile() {
  const char* state = std::getenv("XDG_STATE_HOME");
  const char* home = std::getenv("HOME");
  std::filesystem::path base = state && *state ? std::filesystem::path(state)
                               : home && *home ? std::filesystem::path(home) / ".local" / "state"
                                               : std::filesystem::path(".");
  return (base / "kura" / "audit-checkpoint.json").string();
}

int Fail(Context* ctx, const std::string& message) {
  *ctx->out << "FAILED: " << message << "\n";
  *ctx->err << "kura: " << message << "\n";
  return kExitTampered;
}

int Proof(Context* ctx, const ProofArgs& args) {
  auto key = PublicKeyFromFile(args.pubkey_file);
  if (!key.ok()) return UsageError(ctx, key.status());
  const std::string state_file = args.state_file.empty() ? DefaultStateFile() : args.state_file;

  int code = kExitOk;
  auto listing = GetJson(ctx, "/v1/sys/audit/checkpoints?limit=1", &code);
  if (!listing) return code;
  if (!(*listing)["latest"].is_object()) return UsageError(ctx, FailedPreconditionError("the server has no checkpoint yet"));
  auto latest = CheckpointFromJson((*listing)["latest"]);
  if (!latest.ok()) return UsageError(ctx, latest.status());
  if (Status s = audit::VerifyCheckpoint(*latest, *key); !s.ok()) return Fail(ctx, s.message());

  // What this client saw before, if anything: the new checkpoint must extend it.
  std::optional<store::AuditCheckpointRow> seen;
  if (std::filesystem::exists(state_file)) {
    auto text = ReadFile(state_file);
    if (!text.ok()) return UsageError(ctx, text.status());
    auto row = CheckpointFromJson(json::parse(*text, nullptr, false));
    if (!row.ok()) return UsageError(ctx, InvalidArgumentError("state file " + state_file + " is malformed"));
    if (Status s = audit::VerifyCheckpoint(*row, *key); !s.ok()) {
      return UsageError(ctx, InvalidArgumentError("state file " + state_file + " holds a checkpoint this key did not sign"));
    }
    seen = std::move(*row);
  }
  if (seen) {
    if (latest->tree_size < seen->tree_size) {
      return Fail(ctx, "the server's log has " + std::to_string(latest->tree_size) + " entries, fewer than the " +
                           std::to_string(seen->tree_size) + " of the checkpoint seen before: history was rewritten");
    }
    if (latest->tree_size == seen->tree_size) {
      if (latest->root != seen->root) {
        return Fail(ctx, "two different signed roots for tree size " + std::to_string(seen->tree_size) +
                             ": history was rewritten");
      }
    } else {
      auto body = GetJson(ctx,
                          "/v1/sys/audit/consistency?from=" + std::to_string(seen->tree_size) +
                              "&to=" + std::to_string(latest->tree_size),
                          &code);
      if (!body) return code;
      auto proof = HexListField(*body, "proof");
      if (!proof.ok()) return UsageError(ctx, proof.status());
      if (!audit::VerifyConsistency(seen->tree_size, latest->tree_size, seen->root, latest->root, *proof)) {
        return Fail(ctx, "checkpoint at tree size " + std::to_string(latest->tree_size) +
                             " is not consistent with the one seen before at tree size " +
                             std::to_string(seen->tree_size) + ": history was rewritten");
      }
    }
  }

  if (args.seq) {
    if (*args.seq >= latest->tree_size) {
      return UsageError(ctx, InvalidArgumentError("entry " + std::to_string(*args.seq) +
                                                  " is not covered by the latest checkpoint yet; retry later"));
    }
    // The entry as this client was shown it (a tenant's trail, or the
    // operator's), hashed here.
    std::string trail = args.tenant.empty() ? "/v1/sys/audit" : TenantPath(args.tenant) + "/audit";
    std::string path = trail + "?limit=1";
    if (*args.seq > 0) path += "&after=" + std::to_string(*args.seq - 1);
    auto entries = GetJson(ctx, path, &code);
    if (!entries) return code;
    const json& items = (*entries)["items"];
    if (!items.is_array() || items.empty() || IntegerField(items[0], "seq", -1) != *args.seq) {
      return UsageError(ctx, NotFoundError("entry " + std::to_string(*args.seq) + " is not in this trail"));
    }
    Bytes leaf = audit::LeafHash(AsBytes(StringField(items[0], "entry")));
    auto body = GetJson(ctx,
                        "/v1/sys/audit/proof/" + std::to_string(*args.seq) +
                            "?tree_size=" + std::to_string(latest->tree_size),
                        &code);
    if (!body) return code;
    auto proof = HexListField(*body, "proof");
    if (!proof.ok()) return UsageError(ctx, proof.status());
    if (!audit::VerifyInclusion(leaf, *args.seq, latest->tree_size, *proof, latest->root)) {
      return Fail(ctx, "entry " + std::to_string(*args.seq) + " is not included in the signed log of " +
                           std::to_string(latest->tree_size) + " entries");
    }
  }

  if (Status s = WriteFileAtomically(state_file, CheckpointToJson(*latest).dump() + "\n"); !s.ok()) {
    return UsageError(ctx, s);
  }
  if (ctx->format() == Format::kJson) {
    json out = {{"tree_size", latest->tree_size}, {"root", HexEncode(latest->root)}, {"consistent_with_seen", true}};
    if (args.seq) out["included"] = *args.seq;
    *ctx->out << out.dump() << "\n";
  } else {
    *ctx->out << "checkpoint at tree size " << latest->tree_size << " verified";
    if (seen) *ctx->out << ", consistent with tree size " << seen->tree_size;
    *ctx->out << "\n";
    if (args.seq) *ctx->out << "entry " << *args.seq << " is included\n";
  }
  return kExitOk;
}

// --- tail ----------------------------------------------------------------------

struct TailArgs {
  std::string tenant;
  std::string principal, action, outcome, resource;
  int limit = 20;
  bool follow = false;
  int interval_ms = 1000;
};

void PrintEntry(Context* ctx, const json& item) {
  if (ctx->format() == Format::kJson) {
    *ctx->out << item.dump() << "\n";
    return;
  }
  auto or_dash = [](std::string text) { return text.empty() ? std::string("-") : text; };
  *ctx->out << IntegerField(item, "seq", 0) << "  " << StringField(item, "at") << "  " << StringField(item, "principal")
            << "  " << StringField(item, "action") << "  " << or_dash(StringField(item, "tenant")) << "  "
            << or_dash(StringField(item, "resource")) << "  " << StringField(item, "outcome") << "\n";
}

int Tail(Context* ctx, const TailArgs& args) {
  std::string base = args.tenant.empty() ? "/v1/sys/audit" : TenantPath(args.tenant) + "/audit";
  std::string filters;
  for (const auto& [key, value] : {std::pair{"principal", &args.principal},
                                   std::pair{"action", &args.action},
                                   std::pair{"outcome", &args.outcome},
                                   std::pair{"resource", &args.resource}}) {
    if (!value->empty()) filters += std::string("&") + key + "=" + EscapeComponent(*value);
  }
  int code = kExitOk;
  // The newest `limit` entries in one request, then the ones after them.
  std::int64_t after = -1;
  {
    auto body = GetJson(ctx, base + "?last=" + std::to_string(args.limit) + filters, &code);
    if (!body) return code;
    const json& items = (*body)["items"];
    if (!items.is_array()) return kExitError;
    for (const json& item : items) {
      PrintEntry(ctx, item);
      after = IntegerField(item, "seq", after);
    }
  }
  ctx->out->flush();
  while (args.follow) {
    std::this_thread::sleep_for(std::chrono::milliseconds(args.interval_ms));
    std::string path = base + "?limit=1000" + filters;
    if (after >= 0) path += "&after=" + std::to_string(after);
    auto body = GetJson(ctx, path, &code);
    if (!body) return code;
    for (const json& item : (*body)["items"]) {
      PrintEntry(ctx, item);
      after = IntegerField(item, "seq", after);
    }
    ctx->out->flush();
  }
  return kExitOk;
}

}  // namespace

void AddAuditCommands(CLI::App* app, Context* ctx) {
  CLI::App* group = app->add_subcommand("audit", "Verify, prove, follow and export the audit log");
  group->require_subcommand(1);
  {
    auto args = std::make_shared<VerifyArgs>();
    CLI::App* cmd = group->add_subcommand(
        "verify",
        "Check every entry, the chain and every checkpoint: offline with --data/--config, else against the server");
    cmd->add_option("--data", args->data_dir, "Data directory (or backup) holding kura.db: verify offline");
    cmd->add_option("--config", args->config_file, "Server configuration naming the database: verify offline")
        ->check(CLI::ExistingFile);
    cmd->add_option("--pubkey", args->pubkey_file, "Trusted checkpoint public key (PEM, from `kura audit pubkey`)")
        ->check(CLI::ExistingFile);
    AddClientFlags(cmd, ctx);
    SetAction(cmd, ctx, [ctx, args] {
      if (!args->data_dir.empty() || !args->config_file.empty()) return VerifyOffline(ctx, *args);
      return VerifyOnline(ctx, *args);
    });
  }
  {
    auto args = std::make_shared<ProofArgs>();
    auto seq = std::make_shared<std::int64_t>(-1);
    CLI::App* cmd = group->add_subcommand(
        "proof",
        "Check the server's latest signed checkpoint against the one this client saw before (consistency), and "
        "optionally that entry SEQ is included");
    cmd->add_option("SEQ", *seq, "An entry to prove included (its seq)");
    cmd->add_option("--tenant", args->tenant, "Read the entry from this tenant's trail (tenant API keys)");
    cmd->add_option("--pubkey", args->pubkey_file, "Trusted checkpoint public key (PEM)")
        ->required()
        ->check(CLI::ExistingFile);
    cmd->add_option("--state", args->state_file,
                    "File keeping the last checkpoint seen (default $XDG_STATE_HOME/kura/audit-checkpoint.json)");
    AddClientFlags(cmd, ctx);
    SetAction(cmd, ctx, [ctx, args, seq] {
      ProofArgs a = *args;
      if (*seq >= 0) a.seq = *seq;
      return Proof(ctx, a);
    });
  }
  {
    auto args = std::make_shared<TailArgs>();
    CLI::App* cmd = group->add_subcommand("tail", "Show the newest audit entries; --follow keeps printing new ones");
    cmd->add_option("--tenant", args->tenant, "A tenant's trail (needs audit.read); default: every tenant (root)");
    cmd->add_option("--principal", args->principal, "Only entries of this principal");
    cmd->add_option("--action", args->action, "Only this action (record.read, …)");
    cmd->add_option("--outcome", args->outcome, "Only this outcome (success, permission_denied, …)");
    cmd->add_option("--resource", args->resource, "Only this resource");
    cmd->add_option("-n,--limit", args->limit, "How many of the newest entries to show first")
        ->check(CLI::Range(1, 1000));
    cmd->add_flag("-f,--follow", args->follow, "Keep printing new entries");
    AddClientFlags(cmd, ctx);
    SetAction(cmd, ctx, [ctx, args] { return Tail(ctx, *args); });
  }
  {
    auto out_file = std::make_shared<std::string>();
    CLI::App* cmd = group->add_subcommand("pubkey", "Print (or save) the public key that signs checkpoints");
    cmd->add_option("--out", *out_file, "Write the PEM to this file");
    AddClientFlags(cmd, ctx);
    SetAction(cmd, ctx, [ctx, out_file] {
      int code = kExitOk;
      auto body = GetJson(ctx, "/v1/sys/audit/pubkey", &code);
      if (!body) return code;
      std::string pem = StringField(*body, "public_key_pem");
      if (!crypto::PublicKeyFromPem(pem).ok()) {
        *ctx->err << "kura: the server sent no valid public key\n";
        return static_cast<int>(kExitError);
      }
      if (!out_file->empty()) {
        if (Status s = WriteFileAtomically(*out_file, pem); !s.ok()) return UsageError(ctx, s);
      }
      if (ctx->format() == Format::kJson) {
        *ctx->out << body->dump() << "\n";
      } else {
        *ctx->out << pem;
      }
      return static_cast<int>(kExitOk);
    });
  }
}

}  // namespace kura::cli
