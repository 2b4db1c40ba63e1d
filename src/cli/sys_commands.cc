// kura status, kura operator init|unseal|seal.
#include <memory>

#include "cli/app.h"
#include "cli/input.h"
#include "cli/output.h"

namespace kura::cli {
namespace {

std::string Bool(const nlohmann::json& body, const char* key) {
  auto it = body.find(key);
  if (it == body.end() || !it->is_boolean()) return "-";
  return it->get<bool>() ? "true" : "false";
}

void PrintSealStatus(const nlohmann::json& s, std::ostream& out) {
  bool sealed = s.value("sealed", true);
  out << "initialized: " << Bool(s, "initialized") << "\n";
  out << "sealed: " << Bool(s, "sealed") << "\n";
  if (s.contains("type")) out << "seal type: " << ScalarText(s["type"]) << "\n";
  int threshold = s.value("threshold", 0);
  if (sealed && threshold > 0) out << "unseal progress: " << s.value("progress", 0) << "/" << threshold << "\n";
}

// The `storage` object of the health body (PostgreSQL replication, leases).
void PrintStorage(const nlohmann::json& st, std::ostream& out) {
  if (!st.is_object()) return;
  out << "storage: " << ScalarText(st.value("engine", nlohmann::json("-")));
  if (st.value("reachable", false)) {
    if (st.contains("primary")) out << (st.value("primary", false) ? ", primary" : ", standby (read-only)");
  } else {
    out << ", unreachable";
    if (st.contains("error")) out << " (" << ScalarText(st["error"]) << ")";
  }
  out << "\n";
  if (auto repl = st.find("replication"); repl != st.end() && repl->is_object()) {
    std::string names = repl->value("synchronous_standby_names", "");
    out << "synchronous standbys: " << (names.empty() ? "(none configured)" : names) << "\n";
    const nlohmann::json standbys = repl->value("standbys", nlohmann::json::array());
    if (standbys.empty()) out << "standbys: none connected\n";
    for (const auto& sb : standbys) {
      out << "standby: " << sb.value("application_name", "?") << " " << sb.value("state", "?") << " "
          << sb.value("sync_state", "?") << ", replay lag ";
      auto lag = sb.find("replay_lag_ms");
      if (lag != sb.end() && lag->is_number()) {
        out << lag->get<long long>() << " ms\n";
      } else {
        out << "-\n";
      }
    }
    if (!repl->value("visible", true)) {
      out << "note: grant pg_monitor to kura's database role to see the standbys' state\n";
    }
  }
  if (auto node = st.find("node"); node != st.end() && node->is_object()) {
    out << "node: " << node->value("id", "?") << (node->value("holds_lease", false) ? " (runs background jobs)" : "")
        << "\n";
  }
  for (const auto& l : st.value("leases", nlohmann::json::array())) {
    out << "lease: " << l.value("name", "?") << " held by " << l.value("holder", "?");
    if (l.value("expires_in_ms", 0LL) <= 0) out << " (expired)";
    out << "\n";
  }
}

}  // namespace

void AddStatusCommand(CLI::App* app, Context* ctx) {
  CLI::App* cmd = app->add_subcommand("status", "Show whether the server is initialised, sealed and ready");
  AddClientFlags(cmd, ctx);
  SetAction(cmd, ctx, [ctx]() -> int {
    int code = kExitOk;
    auto health = Send(ctx, {"GET", "/v1/sys/health", std::nullopt, {}}, &code);
    if (!health) return code;
    int health_code = ExitCodeForHttpStatus(health->status);
    // 503 is a valid answer here (sealed or not initialised): print it, then
    // exit 7 so scripts can wait for readiness.
    if (health_code != kExitOk && health->status != 503) return ReportHttpError(ctx, *health);
    if (ctx->format() == Format::kJson) {
      PrintRawBody(*ctx->out, health->body);
      return health_code;
    }
    auto body = nlohmann::json::parse(health->body, nullptr, false);
    std::ostream& out = *ctx->out;
    out << "address: " << ctx->flags.addr << "\n";
    int seal_code = kExitOk;
    auto seal = Send(ctx, {"GET", "/v1/sys/seal-status", std::nullopt, {}}, &seal_code);
    auto seal_body = seal && seal->status == 200 ? nlohmann::json::parse(seal->body, nullptr, false)
                                                 : nlohmann::json();
    if (seal_body.is_object()) {
      PrintSealStatus(seal_body, out);
    } else if (body.is_object()) {
      out << "initialized: " << Bool(body, "initialized") << "\nsealed: " << Bool(body, "sealed") << "\n";
    }
    if (body.is_object()) out << "ready: " << Bool(body, "ready") << "\n";
    if (body.is_object() && body.contains("storage")) PrintStorage(body["storage"], out);
    return health_code;
  });
}

CLI::App* AddOperatorCommands(CLI::App* app, Context* ctx) {
  CLI::App* op = app->add_subcommand("operator", "Initialise, unseal and seal the server; create TLS files");
  op->require_subcommand(1);

  // --- init
  {
    struct Args {
      int shares = 0;
      int threshold = 0;
      std::string seal;  // empty: the server's configured seal
    };
    auto args = std::make_shared<Args>();
    CLI::App* cmd = op->add_subcommand("init", "Initialise a new vault; prints the root token (and Shamir shares) once");
    auto* shares = cmd->add_option("--shares", args->shares, "Number of Shamir shares to create (shamir seal)")
                       ->check(CLI::Range(1, 255));
    auto* threshold = cmd->add_option("--threshold", args->threshold, "Shares needed to unseal (shamir seal)")
                          ->check(CLI::Range(1, 255));
    shares->needs(threshold);
    threshold->needs(shares);
    cmd->add_option("--seal", args->seal,
                    "Seal the server is configured with (keyfile|shamir|passphrase|pkcs11); checked by the server. "
                    "pkcs11 creates the key on the token when it does not exist")
        ->check(CLI::IsMember({"keyfile", "shamir", "passphrase", "pkcs11"}));
    AddClientFlags(cmd, ctx);
    SetAction(cmd, ctx, [ctx, args]() -> int {
      nlohmann::json body = nlohmann::json::object();
      if (args->shares > 0 && !args->seal.empty() && args->seal != "shamir") {
        return UsageError(ctx, InvalidArgumentError("--shares and --threshold are only for --seal shamir"));
      }
      if (!args->seal.empty()) body["seal"] = args->seal;
      if (args->shares > 0) {
        if (args->threshold > args->shares) {
          return UsageError(ctx, InvalidArgumentError("--threshold must not exceed --shares"));
        }
        body = {{"seal", "shamir"}, {"shares", args->shares}, {"threshold", args->threshold}};
      }
      return CallAndPrint(ctx, {"POST", "/v1/sys/init", body, {}}, [](const nlohmann::json& b, std::ostream& out) {
        if (b.contains("shares") && b["shares"].is_array()) {
          int i = 1;
          for (const auto& share : b["shares"]) out << "Unseal share " << i++ << ": " << ScalarText(share) << "\n";
        }
        if (b.contains("root_token")) out << "Root token: " << ScalarText(b["root_token"]) << "\n";
        const bool shares = b.contains("shares") && b["shares"].is_array() && !b["shares"].empty();
        if (shares) {
          out << "\nThese are shown only once. Keep each share with a different person and the root\n"
                 "token in a safe place; kura cannot show them again.\n";
        } else {
          out << "\nThe root token is shown only once. Keep it in a safe place; kura cannot show it again.\n";
        }
      });
    });
  }

  // --- unseal
  {
    auto share = std::make_shared<std::string>();
    CLI::App* cmd = op->add_subcommand(
        "unseal",
        "Submit one unseal share (or the passphrase of the passphrase seal); without SHARE it is read from the "
        "terminal (no echo) or stdin");
    cmd->add_option("SHARE", *share, "The share (visible in the process list; better typed at the prompt)");
    AddClientFlags(cmd, ctx);
    SetAction(cmd, ctx, [ctx, share]() -> int {
      std::string value = *share;
      if (value.empty()) {
        auto read = ReadSecretLine("Unseal share or passphrase: ", *ctx->in, *ctx->err);
        if (!read.ok()) return UsageError(ctx, read.status());
        value = std::move(read).value();
      }
      nlohmann::json body = {{"share", value}};
      std::fill(value.begin(), value.end(), '\0');
      return CallAndPrint(ctx, {"POST", "/v1/sys/unseal", body, {}}, [](const nlohmann::json& b, std::ostream& out) {
        if (!b.value("sealed", true)) {
          out << "Unsealed.\n";
        } else {
          out << "Still sealed: " << b.value("progress", 0) << " of " << b.value("threshold", 0)
              << " shares given.\n";
        }
      });
    });
  }

  // --- seal
  {
    CLI::App* cmd = op->add_subcommand("seal", "Seal the server now: every key is wiped from memory (root token)");
    AddClientFlags(cmd, ctx);
    SetAction(cmd, ctx, [ctx]() -> int {
      return CallAndPrint(ctx, {"POST", "/v1/sys/seal", nlohmann::json::object(), {}},
                          [](const nlohmann::json&, std::ostream& out) { out << "Sealed.\n"; });
    });
  }

  // --- rotate (KEK)
  {
    CLI::App* cmd = op->add_subcommand(
        "rotate", "Make a new KEK version: every key is rewrapped at once and older KEK versions are destroyed");
    AddClientFlags(cmd, ctx);
    SetAction(cmd, ctx, [ctx]() -> int {
      return CallAndPrint(ctx, {"POST", "/v1/sys/rotate", nlohmann::json::object(), {}},
                          [](const nlohmann::json& b, std::ostream& out) {
                            out << "KEK version " << b.value("kek_version", 0) << " is current; "
                                << b.value("rewrapped", 0) << " keys rewrapped, older KEK versions destroyed.\n";
                          });
    });
  }

  // --- keys (versions and ages, for the compliance report)
  {
    CLI::App* cmd = op->add_subcommand("keys", "List KEK and data key versions with their ages (no key material)");
    AddClientFlags(cmd, ctx);
    SetAction(cmd, ctx, [ctx]() -> int {
      return CallAndPrint(ctx, {"GET", "/v1/sys/keys", {}, {}}, [](const nlohmann::json& b, std::ostream& out) {
        nlohmann::json rows = nlohmann::json::array();
        auto add = [&rows](const std::string& owner, const std::string& key, const nlohmann::json& k) {
          nlohmann::json row = {{"owner", owner},
                                {"key", key},
                                {"version", k.value("version", 0)},
                                {"current", k.value("current", true) ? "yes" : "no"},
                                {"created_at", k.value("created_at", "")},
                                {"age_days", k.value("age_days", 0)}};
          rows.push_back(std::move(row));
        };
        for (const auto& k : b.value("kek_versions", nlohmann::json::array())) add("vault", "kek", k);
        for (const auto& k : b.value("vault_keys", nlohmann::json::array())) {
          add("vault", k.value("purpose", ""), k);
        }
        for (const auto& t : b.value("tenants", nlohmann::json::array())) {
          std::string owner = t.value("tenant", "");
          for (const auto& k : t.value("data_keys", nlohmann::json::array())) add(owner, "data_key", k);
          if (t.contains("index_key") && t["index_key"].is_object()) add(owner, "index_key", t["index_key"]);
        }
        PrintTable(out, rows,
                   {{"owner", "owner"},
                    {"key", "key"},
                    {"version", "version"},
                    {"current", "current"},
                    {"created", "created_at"},
                    {"age (days)", "age_days"}});
      });
    });
  }
  return op;
}

}  // namespace kura::cli
