#include "audit/merkle.h"

#include <algorithm>
#include <bit>
#include <cstring>
#include <string>

#include "crypto/hash.h"

namespace kura::audit {
namespace {

constexpr std::size_t kHash = crypto::kSha256Size;
// Leaves read per call to the source while filling the tile cache.
constexpr std::int64_t kTilesPerRead = 16;

bool IsPowerOfTwo(std::int64_t n) { return n > 0 && (n & (n - 1)) == 0; }

// The k of RFC 6962 §2.1: the largest power of two smaller than n (n > 1).
std::int64_t SplitPoint(std::int64_t n) {
  return static_cast<std::int64_t>(std::bit_floor(static_cast<std::uint64_t>(n - 1)));
}

// MTH of hashes[begin, end) held in memory (end > begin).
Bytes MthInMemory(const std::vector<Bytes>& hashes, std::size_t begin, std::size_t end) {
  const std::size_t n = end - begin;
  if (n == 1) return hashes[begin];
  const auto k = static_cast<std::size_t>(SplitPoint(static_cast<std::int64_t>(n)));
  return NodeHash(MthInMemory(hashes, begin, begin + k), MthInMemory(hashes, begin + k, end));
}

// The root of a perfect tree over hashes (size a power of two).
Bytes PerfectRoot(std::vector<Bytes> level) {
  while (level.size() > 1) {
    for (std::size_t i = 0; i < level.size() / 2; ++i) level[i] = NodeHash(level[2 * i], level[2 * i + 1]);
    level.resize(level.size() / 2);
  }
  return std::move(level.front());
}

Result<std::vector<Bytes>> ReadLeaves(LeafHashSource* source, std::int64_t begin, std::int64_t end) {
  KURA_ASSIGN_OR_RETURN(std::vector<Bytes> leaves, source->LeafHashes(begin, end));
  if (static_cast<std::int64_t>(leaves.size()) != end - begin) {
    return InternalError("audit leaf hashes [" + std::to_string(begin) + ", " + std::to_string(end) + "): got " +
                         std::to_string(leaves.size()));
  }
  for (std::size_t i = 0; i < leaves.size(); ++i) {
    if (leaves[i].size() != kHash) {
      return DataLossError("audit entry " + std::to_string(begin + static_cast<std::int64_t>(i)) +
                           ": stored hash is not 32 bytes");
    }
  }
  return leaves;
}

bool AllHashes(const std::vector<Bytes>& proof) {
  return std::all_of(proof.begin(), proof.end(), [](const Bytes& h) { return h.size() == kHash; });
}

bool Equal(ByteView a, ByteView b) { return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin()); }

}  // namespace

Bytes NodeHash(ByteView left, ByteView right) {
  std::uint8_t buf[1 + 2 * kHash];
  std::size_t n = 0;
  buf[n++] = 0x01;  // RFC 6962 node prefix: a node can never pass for a leaf
  if (left.size() == kHash && right.size() == kHash) {
    std::memcpy(buf + n, left.data(), kHash);
    std::memcpy(buf + n + kHash, right.data(), kHash);
    return crypto::Sha256(ByteView(buf, sizeof(buf)));
  }
  Bytes any;  // not reached by this module's callers; kept total for safety
  any.push_back(0x01);
  any.insert(any.end(), left.begin(), left.end());
  any.insert(any.end(), right.begin(), right.end());
  return crypto::Sha256(any);
}

Bytes EmptyTreeRoot() { return crypto::Sha256({}); }

// Precondition: mu_ is held, 0 <= begin < end, and [begin, end) is a node of
// the RFC 6962 tree over at least `end` leaves. A node of 256 leaves or more
// starts on a tile boundary: it is either perfect (then made of complete
// tiles, which are cached) or splits into smaller nodes; a node smaller than a
// tile is read from the source and never cached, since it may still grow.
Result<Bytes> TreeReader::SubtreeHash(std::int64_t begin, std::int64_t end) {
  const std::int64_t n = end - begin;
  if (n >= kTileLeaves && begin % kTileLeaves == 0 && IsPowerOfTwo(n)) {
    const std::int64_t first_tile = begin / kTileLeaves;
    const std::int64_t last_tile = end / kTileLeaves;  // exclusive; every tile in range is complete
    while (static_cast<std::int64_t>(tiles_.size()) < last_tile) {
      const std::int64_t tile = static_cast<std::int64_t>(tiles_.size());
      const std::int64_t tiles = std::min(kTilesPerRead, last_tile - tile);
      KURA_ASSIGN_OR_RETURN(std::vector<Bytes> leaves,
                            ReadLeaves(source_, tile * kTileLeaves, (tile + tiles) * kTileLeaves));
      for (std::int64_t t = 0; t < tiles; ++t) {
        const auto from = static_cast<std::size_t>(t * kTileLeaves);
        tiles_.push_back(PerfectRoot(std::vector<Bytes>(leaves.begin() + static_cast<std::ptrdiff_t>(from),
                                                        leaves.begin() + static_cast<std::ptrdiff_t>(from) +
                                                            kTileLeaves)));
      }
    }
    return PerfectRoot(std::vector<Bytes>(tiles_.begin() + first_tile, tiles_.begin() + last_tile));
  }
  if (n <= kTileLeaves) {
    KURA_ASSIGN_OR_RETURN(std::vector<Bytes> leaves, ReadLeaves(source_, begin, end));
    return MthInMemory(leaves, 0, leaves.size());
  }
  const std::int64_t k = SplitPoint(n);
  KURA_ASSIGN_OR_RETURN(Bytes left, SubtreeHash(begin, begin + k));
  KURA_ASSIGN_OR_RETURN(Bytes right, SubtreeHash(begin + k, end));
  return NodeHash(left, right);
}

Result<Bytes> TreeReader::Root(std::int64_t size) {
  if (size < 0) return InvalidArgumentError("tree size must not be negative");
  if (size == 0) return EmptyTreeRoot();
  std::lock_guard<std::mutex> lock(mu_);
  return SubtreeHash(0, size);
}

namespace {

// RFC 6962 §2.1.1 PATH(m, D[begin:end]), m relative to begin; appends the
// path bottom-up. `hash` computes the hash of a node [b, e).
template <typename HashFn>
Status Path(std::int64_t m, std::int64_t begin, std::int64_t end, HashFn& hash, std::vector<Bytes>* out) {
  const std::int64_t n = end - begin;
  if (n == 1) return Status::Ok();
  const std::int64_t k = SplitPoint(n);
  Result<Bytes> sibling = InternalError("unset");
  if (m < k) {
    KURA_RETURN_IF_ERROR(Path(m, begin, begin + k, hash, out));
    sibling = hash(begin + k, end);
  } else {
    KURA_RETURN_IF_ERROR(Path(m - k, begin + k, end, hash, out));
    sibling = hash(begin, begin + k);
  }
  if (!sibling.ok()) return sibling.status();
  out->push_back(std::move(sibling).value());
  return Status::Ok();
}

// RFC 6962 §2.1.2 SUBPROOF(m, D[begin:end], b).
template <typename HashFn>
Status SubProof(std::int64_t m, std::int64_t begin, std::int64_t end, bool complete, HashFn& hash,
                std::vector<Bytes>* out) {
  const std::int64_t n = end - begin;
  if (m == n) {
    if (complete) return Status::Ok();
    KURA_ASSIGN_OR_RETURN(Bytes node, hash(begin, end));
    out->push_back(std::move(node));
    return Status::Ok();
  }
  const std::int64_t k = SplitPoint(n);
  Result<Bytes> sibling = InternalError("unset");
  if (m <= k) {
    KURA_RETURN_IF_ERROR(SubProof(m, begin, begin + k, complete, hash, out));
    sibling = hash(begin + k, end);
  } else {
    KURA_RETURN_IF_ERROR(SubProof(m - k, begin + k, end, false, hash, out));
    sibling = hash(begin, begin + k);
  }
  if (!sibling.ok()) return sibling.status();
  out->push_back(std::move(sibling).value());
  return Status::Ok();
}

}  // namespace

Result<std::vector<Bytes>> TreeReader::InclusionProof(std::int64_t index, std::int64_t size) {
  if (index < 0 || index >= size) {
    return InvalidArgumentError("inclusion proof needs 0 <= index < tree size (index " + std::to_string(index) +
                                ", tree size " + std::to_string(size) + ")");
  }
  std::lock_guard<std::mutex> lock(mu_);
  auto hash = [this](std::int64_t b, std::int64_t e) { return SubtreeHash(b, e); };
  std::vector<Bytes> proof;
  KURA_RETURN_IF_ERROR(Path(index, 0, size, hash, &proof));
  return proof;
}

Result<std::vector<Bytes>> TreeReader::ConsistencyProof(std::int64_t old_size, std::int64_t new_size) {
  if (old_size <= 0 || old_size > new_size) {
    return InvalidArgumentError("consistency proof needs 0 < old size <= new size (old " + std::to_string(old_size) +
                                ", new " + std::to_string(new_size) + ")");
  }
  std::lock_guard<std::mutex> lock(mu_);
  auto hash = [this](std::int64_t b, std::int64_t e) { return SubtreeHash(b, e); };
  std::vector<Bytes> proof;
  KURA_RETURN_IF_ERROR(SubProof(old_size, 0, new_size, true, hash, &proof));
  return proof;
}

// RFC 9162 §2.1.3.2, step by step.
bool VerifyInclusion(ByteView leaf_hash, std::int64_t index, std::int64_t size, const std::vector<Bytes>& proof,
                     ByteView root) {
  if (index < 0 || size <= 0 || index >= size) return false;
  if (leaf_hash.size() != kHash || root.size() != kHash || !AllHashes(proof)) return false;
  auto fn = static_cast<std::uint64_t>(index);
  auto sn = static_cast<std::uint64_t>(size - 1);
  Bytes r(leaf_hash.begin(), leaf_hash.end());
  for (const Bytes& p : proof) {
    if (sn == 0) return false;
    if ((fn & 1) != 0 || fn == sn) {
      r = NodeHash(p, r);
      while ((fn & 1) == 0 && fn != 0) {
        fn >>= 1;
        sn >>= 1;
      }
    } else {
      r = NodeHash(r, p);
    }
    fn >>= 1;
    sn >>= 1;
  }
  return sn == 0 && Equal(r, root);
}

// RFC 9162 §2.1.4.2, step by step, plus the two trivial cases the RFC
// leaves to the caller: equal sizes (empty proof, equal roots) and the empty
// old tree (every tree extends it).
bool VerifyConsistency(std::int64_t old_size, std::int64_t new_size, ByteView old_root, ByteView new_root,
                       const std::vector<Bytes>& proof) {
  if (old_size < 0 || new_size < old_size) return false;
  if (old_root.size() != kHash || new_root.size() != kHash || !AllHashes(proof)) return false;
  if (old_size == new_size) return proof.empty() && Equal(old_root, new_root);
  if (old_size == 0) return proof.empty() && Equal(old_root, EmptyTreeRoot());
  if (proof.empty()) return false;

  std::vector<ByteView> path;
  path.reserve(proof.size() + 1);
  if (IsPowerOfTwo(old_size)) path.emplace_back(old_root);
  for (const Bytes& p : proof) path.emplace_back(p);

  auto fn = static_cast<std::uint64_t>(old_size - 1);
  auto sn = static_cast<std::uint64_t>(new_size - 1);
  while ((fn & 1) != 0) {
    fn >>= 1;
    sn >>= 1;
  }
  Bytes fr(path[0].begin(), path[0].end());
  Bytes sr = fr;
  for (std::size_t i = 1; i < path.size(); ++i) {
    const ByteView c = path[i];
    if (sn == 0) return false;
    if ((fn & 1) != 0 || fn == sn) {
      fr = NodeHash(c, fr);
      sr = NodeHash(c, sr);
      while ((fn & 1) == 0 && fn != 0) {
        fn >>= 1;
        sn >>= 1;
      }
    } else {
      sr = NodeHash(sr, c);
    }
    fn >>= 1;
    sn >>= 1;
  }
  return Equal(fr, old_root) && Equal(sr, new_root) && sn == 0;
}

void CompactTree::Append(ByteView leaf_hash) {
  Bytes h(leaf_hash.begin(), leaf_hash.end());
  // Each trailing 1 bit of the old size is a perfect subtree of the same
  // size as the one being completed: merge them, smallest first.
  for (std::int64_t s = size_; (s & 1) != 0; s >>= 1) {
    h = NodeHash(stack_.back(), h);
    stack_.pop_back();
  }
  stack_.push_back(std::move(h));
  ++size_;
}

Bytes CompactTree::Root() const {
  if (stack_.empty()) return EmptyTreeRoot();
  // MTH splits off the largest perfect subtree on the left first, so the
  // root folds the stack from the right.
  Bytes r = stack_.back();
  for (std::size_t i = stack_.size() - 1; i-- > 0;) r = NodeHash(stack_[i], r);
  return r;
}

}  // namespace kura::audit
