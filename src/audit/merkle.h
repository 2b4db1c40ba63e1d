// RFC 6962 (Certificate Transparency) Merkle tree over the audit log's leaf
// hashes: tree heads, inclusion proofs, consistency proofs, and their
// verification (RFC 9162 §2.1.3.2 and §2.1.4.2).
//
// Written here rather than taken from a library: Debian packages no C or C++
// implementation of RFC 6962 proofs, and the construction is small and fully
// specified (and checked against the RFC's own algorithm in the tests).
#ifndef KURA_AUDIT_MERKLE_H_
#define KURA_AUDIT_MERKLE_H_

#include <cstdint>
#include <mutex>
#include <vector>

#include "core/bytes.h"
#include "core/status.h"

namespace kura::audit {

// SHA-256(0x01 || left || right).
Bytes NodeHash(ByteView left, ByteView right);
// The root of the empty tree: SHA-256 of nothing.
Bytes EmptyTreeRoot();

// Where a TreeReader gets leaf hashes from (the store, in production).
class LeafHashSource {
 public:
  virtual ~LeafHashSource() = default;
  // Leaf hashes [begin, end), in order.
  virtual Result<std::vector<Bytes>> LeafHashes(std::int64_t begin, std::int64_t end) = 0;
};

// Computes roots and proofs over an append-only log. Caches the hashes of
// complete aligned subtrees of kTileLeaves leaves (those never change), so a
// root or proof over n leaves reads at most about 2 * kTileLeaves leaves plus
// n / kTileLeaves cached hashes. Thread-safe.
class TreeReader {
 public:
  static constexpr std::int64_t kTileLeaves = 256;
  // `source` must outlive the reader.
  explicit TreeReader(LeafHashSource* source) : source_(source) {}

  // MTH of the first `size` leaves.
  Result<Bytes> Root(std::int64_t size);
  // PATH(index, D[size]). InvalidArgument unless 0 <= index < size.
  Result<std::vector<Bytes>> InclusionProof(std::int64_t index, std::int64_t size);
  // PROOF(old_size, D[new_size]). InvalidArgument unless 0 < old_size <= new_size.
  Result<std::vector<Bytes>> ConsistencyProof(std::int64_t old_size, std::int64_t new_size);

 private:
  Result<Bytes> SubtreeHash(std::int64_t begin, std::int64_t end);
  LeafHashSource* source_;
  std::mutex mu_;
  std::vector<Bytes> tiles_;  // tiles_[i]: root of leaves [i*256, (i+1)*256)
};

// Client-side checks; never throw, false for any malformed input.
bool VerifyInclusion(ByteView leaf_hash, std::int64_t index, std::int64_t size, const std::vector<Bytes>& proof,
                     ByteView root);
bool VerifyConsistency(std::int64_t old_size, std::int64_t new_size, ByteView old_root, ByteView new_root,
                       const std::vector<Bytes>& proof);

// The root of a growing tree in O(log n) memory: the right edge of perfect
// subtrees. Used by verifiers that stream the whole log.
class CompactTree {
 public:
  void Append(ByteView leaf_hash);
  std::int64_t size() const { return size_; }
  Bytes Root() const;

 private:
  std::int64_t size_ = 0;
  std::vector<Bytes> stack_;  // roots of perfect subtrees, largest first
};

}  // namespace kura::audit

#endif  // KURA_AUDIT_MERKLE_H_
