// libFuzzer target: what `kura audit proof` checks on the client, against a
// server it does not trust — inclusion and consistency proofs (RFC 6962) and
// checkpoint notes.
//
// A tree of up to 16 leaves is built from the input; the proof under test is
// assembled from the hashes of any of the tree's ranges (every node a real
// proof can hold, so the fuzzer can reach valid proofs and every near miss:
// elements missing, extra, swapped, from another tree size). What the client
// trusts is a signed checkpoint, i.e. a tree size together with its root,
// and the sequence number it asked about; the server supplies the proof. So
// the sizes and roots here are the tree's own, and the index and the proof
// are the fuzzer's (the index also out of range). Checked against RFC 6962
// §2.1 written out again here, independently of kura's code:
// - soundness: a proof that verifies is exactly the one the RFC defines for
//   the tree that was built, for the leaf at that index (anything else would
//   take a SHA-256 collision);
// - completeness: the RFC's own proofs verify, and kura's TreeReader produces
//   them, and its roots (TreeReader, CompactTree) are the RFC's MTH;
// - a checkpoint note that parses prints back to the same bytes.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "audit/checkpoint.h"
#include "audit/merkle.h"
#include "crypto/hash.h"
#include "require.h"

namespace {

using kura::Bytes;
using kura::Result;
using namespace kura::audit;

// RFC 6962 §2.1, as written there.
std::int64_t LargestPowerOfTwoBelow(std::int64_t n) {
  std::int64_t k = 1;
  while (k * 2 < n) k *= 2;
  return k;
}

class Tree {
 public:
  explicit Tree(std::int64_t size) {
    for (std::int64_t i = 0; i < size; ++i) {
      Bytes leaf = {0x00, static_cast<std::uint8_t>(i), static_cast<std::uint8_t>(size)};
      leaves_.push_back(kura::crypto::Sha256(leaf));
    }
  }
  std::int64_t size() const { return static_cast<std::int64_t>(leaves_.size()); }
  const std::vector<Bytes>& leaves() const { return leaves_; }

  // MTH(D[begin:end]).
  Bytes Hash(std::int64_t begin, std::int64_t end) const {
    if (end - begin == 1) return leaves_[static_cast<std::size_t>(begin)];
    const std::int64_t k = LargestPowerOfTwoBelow(end - begin);
    return NodeHash(Hash(begin, begin + k), Hash(begin + k, end));
  }
  // PATH(m, D[begin:end]).
  std::vector<Bytes> Path(std::int64_t m, std::int64_t begin, std::int64_t end) const {
    if (end - begin == 1) return {};
    const std::int64_t k = LargestPowerOfTwoBelow(end - begin);
    std::vector<Bytes> path;
    if (m < k) {
      path = Path(m, begin, begin + k);
      path.push_back(Hash(begin + k, end));
    } else {
      path = Path(m - k, begin + k, end);
      path.push_back(Hash(begin, begin + k));
    }
    return path;
  }
  // SUBPROOF(m, D[begin:end], b).
  std::vector<Bytes> Subproof(std::int64_t m, std::int64_t begin, std::int64_t end, bool b) const {
    const std::int64_t n = end - begin;
    if (m == n) return b ? std::vector<Bytes>{} : std::vector<Bytes>{Hash(begin, end)};
    const std::int64_t k = LargestPowerOfTwoBelow(n);
    std::vector<Bytes> proof;
    if (m <= k) {
      proof = Subproof(m, begin, begin + k, b);
      proof.push_back(Hash(begin + k, end));
    } else {
      proof = Subproof(m - k, begin + k, end, false);
      proof.push_back(Hash(begin, begin + k));
    }
    return proof;
  }

 private:
  std::vector<Bytes> leaves_;
};

class InMemoryLeaves final : public LeafHashSource {
 public:
  explicit InMemoryLeaves(const Tree& tree) : tree_(tree) {}
  Result<std::vector<Bytes>> LeafHashes(std::int64_t begin, std::int64_t end) override {
    return std::vector<Bytes>(tree_.leaves().begin() + begin, tree_.leaves().begin() + end);
  }

 private:
  const Tree& tree_;
};

// Reads the input byte by byte; zeros once it is used up.
class Input {
 public:
  Input(const std::uint8_t* data, std::size_t size) : data_(data), size_(size) {}
  std::uint8_t Next() { return pos_ < size_ ? data_[pos_++] : 0; }
  std::string_view Rest() {
    std::string_view rest(reinterpret_cast<const char*>(data_) + pos_, size_ - pos_);
    pos_ = size_;
    return rest;
  }

 private:
  const std::uint8_t* data_;
  std::size_t size_;
  std::size_t pos_ = 0;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  Input in(data, size);
  const Tree tree(1 + in.Next() % 16);
  const std::int64_t n = tree.size();
  const Bytes root = tree.Hash(0, n);

  // kura's roots and proofs agree with the RFC's.
  InMemoryLeaves source(tree);
  TreeReader reader(&source);
  CompactTree compact;
  for (const Bytes& leaf : tree.leaves()) compact.Append(leaf);
  FUZZ_REQUIRE(compact.Root() == root);
  FUZZ_REQUIRE(*reader.Root(n) == root);

  // Every node a proof of this tree can hold: MTH of each range.
  std::vector<Bytes> pool;
  for (std::int64_t begin = 0; begin < n; ++begin) {
    for (std::int64_t end = begin + 1; end <= n; ++end) pool.push_back(tree.Hash(begin, end));
  }
  const auto take_proof = [&] {
    std::vector<Bytes> proof(in.Next() % 8);
    for (Bytes& node : proof) node = pool[in.Next() % pool.size()];
    return proof;
  };
  // Inclusion of leaf `leaf` at a claimed `index` (mostly in range, now and
  // then at the size or negative).
  const std::int64_t leaf = in.Next() % n;
  const std::uint8_t index_byte = in.Next();
  const std::int64_t index = index_byte == 255 ? -1 : index_byte % (n + 1);
  const std::vector<Bytes> inclusion = take_proof();
  const std::vector<Bytes> true_path = tree.Path(leaf, 0, n);
  if (VerifyInclusion(tree.leaves()[static_cast<std::size_t>(leaf)], index, n, inclusion, root)) {
    FUZZ_REQUIRE(index == leaf && inclusion == true_path);
  }
  FUZZ_REQUIRE(VerifyInclusion(tree.leaves()[static_cast<std::size_t>(leaf)], leaf, n, true_path, root));
  FUZZ_REQUIRE(*reader.InclusionProof(leaf, n) == true_path);

  // Consistency of the tree's first `old_size` leaves with the whole.
  const std::int64_t old_size = 1 + in.Next() % n;
  const std::vector<Bytes> consistency = take_proof();
  const Bytes old_root = tree.Hash(0, old_size);
  const std::vector<Bytes> true_proof = tree.Subproof(old_size, 0, n, true);
  if (VerifyConsistency(old_size, n, old_root, root, consistency)) FUZZ_REQUIRE(consistency == true_proof);
  // The old root under a size it is not the root of never verifies: 0 (the
  // empty tree's root is another) or beyond the new tree.
  FUZZ_REQUIRE(!VerifyConsistency(0, n, old_root, root, consistency));
  FUZZ_REQUIRE(!VerifyConsistency(n + 1, n, old_root, root, consistency));
  FUZZ_REQUIRE(VerifyConsistency(old_size, n, old_root, root, true_proof));
  FUZZ_REQUIRE(*reader.ConsistencyProof(old_size, n) == true_proof);

  // Whatever is left: a checkpoint note.
  const std::string_view note = in.Rest();
  const Result<Checkpoint> checkpoint = ParseCheckpointNote(note);
  if (checkpoint.ok()) FUZZ_REQUIRE(CheckpointNote(*checkpoint) == note);
  return 0;
}
