// Module-internal: what both backends share for the lockbox methods (access
// requests, the notification outbox): the argument checks they make before
// touching the database, so they refuse the same calls with the same Status,
// and the encoding of a request's approvals in its approvals_json column.
//
// Only the store module includes this header.
#ifndef KURA_STORE_LOCKBOX_INTERNAL_H_
#define KURA_STORE_LOCKBOX_INTERNAL_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"
#include "store/store.h"

namespace kura::store {

// What a write on access_requests names in its errors.
inline constexpr char kAccessRequestWhat[] = "access request";

// CreateAccessRequest: InvalidArgument for an empty id, tenant or requester,
// a status that is not stored ("pending", "approved", "denied", "revoked"),
// a version below 1, or a notification without a URL.
Status CheckNewAccessRequest(const AccessRequestRow& request, const std::vector<OutboxRow>& notify);

// UpdateAccessRequest: the same checks on the row, and the new version is
// expected_version + 1 (like UpdateUser and UpdateRecord).
Status CheckAccessRequestUpdate(const AccessRequestRow& request, std::int64_t expected_version);

// The approvals as a JSON array of {"approver": "...", "at": <unix seconds>},
// in the order given. InvalidArgument when an approver is not valid UTF-8.
Result<std::string> EncodeApprovals(const std::vector<ApprovalRow>& approvals);
// The inverse. DataLoss when the stored text is not such an array (the
// store wrote it, so anything else is damage, not a caller's mistake).
Result<std::vector<ApprovalRow>> DecodeApprovals(std::string_view json);

}  // namespace kura::store

#endif  // KURA_STORE_LOCKBOX_INTERNAL_H_
