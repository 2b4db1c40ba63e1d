#include "store/lockbox_internal.h"

#include <nlohmann/json.hpp>

namespace kura::store {
namespace {

bool IsStoredStatus(const std::string& status) {
  // "expired" is never stored: it follows from the row's times and the
  // reader's clock.
  return status == "pending" || status == "approved" || status == "denied" || status == "revoked";
}

Status CheckRow(const AccessRequestRow& request) {
  if (request.id.empty()) return InvalidArgumentError("access request: the id is empty");
  if (request.tenant_id.empty()) return InvalidArgumentError("access request: the tenant is empty");
  if (request.requester.empty()) return InvalidArgumentError("access request: the requester is empty");
  if (!IsStoredStatus(request.status)) {
    return InvalidArgumentError("access request: the status must be pending, approved, denied or revoked");
  }
  return Status::Ok();
}

}  // namespace

Status CheckNewAccessRequest(const AccessRequestRow& request, const std::vector<OutboxRow>& notify) {
  KURA_RETURN_IF_ERROR(CheckRow(request));
  if (request.version < 1) return InvalidArgumentError("access request: a new request starts at version 1 or above");
  for (const OutboxRow& n : notify) {
    if (n.url.empty()) return InvalidArgumentError("notification: the URL is empty");
  }
  return Status::Ok();
}

Status CheckAccessRequestUpdate(const AccessRequestRow& request, std::int64_t expected_version) {
  KURA_RETURN_IF_ERROR(CheckRow(request));
  if (request.version != expected_version + 1) {
    return InvalidArgumentError("access request: the new version must be the expected version plus one");
  }
  return Status::Ok();
}

Result<std::string> EncodeApprovals(const std::vector<ApprovalRow>& approvals) {
  nlohmann::json out = nlohmann::json::array();
  for (const ApprovalRow& a : approvals) out.push_back({{"approver", a.approver}, {"at", a.at}});
  try {
    return out.dump();
  } catch (const nlohmann::json::exception&) {
    // dump() refuses invalid UTF-8; the value itself stays out of the message.
    return InvalidArgumentError("access request: an approver is not valid UTF-8");
  }
}

Result<std::vector<ApprovalRow>> DecodeApprovals(std::string_view json) {
  const nlohmann::json parsed = nlohmann::json::parse(json, nullptr, /*allow_exceptions=*/false);
  if (!parsed.is_array()) return DataLossError("access request: the stored approvals are not a JSON array");
  std::vector<ApprovalRow> out;
  out.reserve(parsed.size());
  for (const nlohmann::json& item : parsed) {
    if (!item.is_object()) return DataLossError("access request: a stored approval is not a JSON object");
    auto approver = item.find("approver");
    auto at = item.find("at");
    if (approver == item.end() || !approver->is_string() || at == item.end() || !at->is_number_integer()) {
      return DataLossError("access request: a stored approval lacks its approver or time");
    }
    out.push_back({approver->get<std::string>(), at->get<std::int64_t>()});
  }
  return out;
}

}  // namespace kura::store
