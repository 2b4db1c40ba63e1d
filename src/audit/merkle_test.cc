#include "audit/merkle.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "audit/entry.h"
#include "core/bytes.h"
#include "crypto/hash.h"

namespace kura::audit {
namespace {

Bytes Hex(std::string_view hex) { return HexDecode(hex).value(); }

// Leaf hashes held in memory, counting what the reader asks for.
class FakeSource : public LeafHashSource {
 public:
  explicit FakeSource(std::vector<Bytes> leaves) : leaves_(std::move(leaves)) {}
  Result<std::vector<Bytes>> LeafHashes(std::int64_t begin, std::int64_t end) override {
    ++calls;
    if (fail) return UnavailableError("disk on fire");
    if (begin < 0 || begin > end || end > static_cast<std::int64_t>(leaves_.size())) {
      return InvalidArgumentError("range outside the log");
    }
    leaves_read += end - begin;
    return std::vector<Bytes>(leaves_.begin() + begin, leaves_.begin() + end);
  }
  std::vector<Bytes>& leaves() { return leaves_; }

  std::int64_t calls = 0;
  std::int64_t leaves_read = 0;
  bool fail = false;

 private:
  std::vector<Bytes> leaves_;
};

std::vector<Bytes> MakeLeaves(std::int64_t n) {
  std::vector<Bytes> out;
  out.reserve(static_cast<std::size_t>(n));
  for (std::int64_t i = 0; i < n; ++i) out.push_back(LeafHash(AsBytes("entry " + std::to_string(i))));
  return out;
}

// --- The reference: RFC 6962 §2.1 written as literally as possible, over
// ranges D[b:e] of an in-memory vector, sharing nothing with merkle.cc but
// NodeHash.
using Leaves = std::vector<Bytes>;
Leaves Slice(const Leaves& d, std::size_t b, std::size_t e) { return Leaves(d.begin() + b, d.begin() + e); }
std::size_t RefK(std::size_t n) {
  std::size_t k = 1;
  while (k * 2 < n) k *= 2;
  return k;
}
Bytes RefMth(const Leaves& d, std::size_t b, std::size_t e) {
  const std::size_t n = e - b;
  if (n == 0) return crypto::Sha256({});
  if (n == 1) return d[b];
  const std::size_t k = RefK(n);
  return NodeHash(RefMth(d, b, b + k), RefMth(d, b + k, e));
}
Bytes RefMth(const Leaves& d) { return RefMth(d, 0, d.size()); }
Leaves Concat(Leaves a, const Bytes& b) {
  a.push_back(b);
  return a;
}
Leaves RefPath(std::size_t m, const Leaves& d, std::size_t b, std::size_t e) {
  const std::size_t n = e - b;
  if (n <= 1) return {};
  const std::size_t k = RefK(n);
  if (m < k) return Concat(RefPath(m, d, b, b + k), RefMth(d, b + k, e));
  return Concat(RefPath(m - k, d, b + k, e), RefMth(d, b, b + k));
}
Leaves RefPath(std::size_t m, const Leaves& d) { return RefPath(m, d, 0, d.size()); }
Leaves RefSubProof(std::size_t m, const Leaves& d, std::size_t b, std::size_t e, bool complete) {
  const std::size_t n = e - b;
  if (m == n) return complete ? Leaves{} : Leaves{RefMth(d, b, e)};
  const std::size_t k = RefK(n);
  if (m <= k) return Concat(RefSubProof(m, d, b, b + k, complete), RefMth(d, b + k, e));
  return Concat(RefSubProof(m - k, d, b + k, e, false), RefMth(d, b, b + k));
}
Leaves RefProof(std::size_t m, const Leaves& d) { return RefSubProof(m, d, 0, d.size(), true); }

// The reference root of every prefix, computed once.
std::vector<Bytes> RefRoots(const Leaves& leaves, std::size_t max) {
  std::vector<Bytes> roots{crypto::Sha256({})};
  for (std::size_t n = 1; n <= max; ++n) roots.push_back(RefMth(Slice(leaves, 0, n)));
  return roots;
}

TEST(MerkleTest, EmptyTreeRoot) {
  EXPECT_EQ(HexEncode(EmptyTreeRoot()), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  FakeSource source({});
  TreeReader reader(&source);
  EXPECT_EQ(reader.Root(0).value(), EmptyTreeRoot());
  EXPECT_EQ(CompactTree().Root(), EmptyTreeRoot());
}

TEST(MerkleTest, NodeHashPrefix) {
  const Bytes a(32, 0xaa), b(32, 0xbb);
  Bytes buf{0x01};
  buf.insert(buf.end(), a.begin(), a.end());
  buf.insert(buf.end(), b.begin(), b.end());
  EXPECT_EQ(NodeHash(a, b), crypto::Sha256(buf));
  EXPECT_NE(NodeHash(a, b), NodeHash(b, a));
}

// The eight-leaf tree of the Certificate Transparency reference tests
// (leaf data "", 00, 10, 2021, 3031, 40414243, 5051…57, 6061…6f).
class CtVectorsTest : public ::testing::Test {
 protected:
  CtVectorsTest() : source_(Leaves()), reader_(&source_) {
    for (const char* data : {"", "00", "10", "2021", "3031", "40414243", "5051525354555657",
                             "606162636465666768696a6b6c6d6e6f"}) {
      source_.leaves().push_back(LeafHash(Hex(data)));
    }
  }
  FakeSource source_;
  TreeReader reader_;
};

TEST_F(CtVectorsTest, Roots) {
  const char* roots[] = {
      "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
      "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
      "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
      "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
      "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
      "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
      "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
      "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
  };
  CompactTree compact;
  for (int n = 1; n <= 8; ++n) {
    EXPECT_EQ(HexEncode(reader_.Root(n).value()), roots[n - 1]) << n;
    EXPECT_EQ(HexEncode(RefMth(Slice(source_.leaves(), 0, n))), roots[n - 1]) << n;
    compact.Append(source_.leaves()[n - 1]);
    EXPECT_EQ(HexEncode(compact.Root()), roots[n - 1]) << n;
  }
}

std::vector<std::string> HexAll(const std::vector<Bytes>& hashes) {
  std::vector<std::string> out;
  for (const Bytes& h : hashes) out.push_back(HexEncode(h));
  return out;
}

TEST_F(CtVectorsTest, InclusionProofs) {
  EXPECT_EQ(HexAll(reader_.InclusionProof(0, 8).value()),
            (std::vector<std::string>{"96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
                                      "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                                      "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"}));
  EXPECT_EQ(HexAll(reader_.InclusionProof(5, 8).value()),
            (std::vector<std::string>{"bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
                                      "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
                                      "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"}));
  EXPECT_EQ(HexAll(reader_.InclusionProof(2, 3).value()),
            (std::vector<std::string>{"fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"}));
  EXPECT_TRUE(reader_.InclusionProof(0, 1).value().empty());
}

TEST_F(CtVectorsTest, ConsistencyProofs) {
  EXPECT_EQ(HexAll(reader_.ConsistencyProof(1, 8).value()),
            (std::vector<std::string>{"96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
                                      "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                                      "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"}));
  EXPECT_EQ(HexAll(reader_.ConsistencyProof(6, 8).value()),
            (std::vector<std::string>{"0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
                                      "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
                                      "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"}));
  EXPECT_EQ(HexAll(reader_.ConsistencyProof(2, 5).value()),
            (std::vector<std::string>{"5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                                      "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"}));
  EXPECT_TRUE(reader_.ConsistencyProof(8, 8).value().empty());
}

// Every way to spoil a valid inclusion proof must be refused.
void ExpectInclusionTamperFails(const Bytes& leaf, std::int64_t index, std::int64_t size,
                                const std::vector<Bytes>& proof, const Bytes& root) {
  ASSERT_TRUE(VerifyInclusion(leaf, index, size, proof, root)) << index << "/" << size;
  for (std::size_t i = 0; i < proof.size(); ++i) {
    std::vector<Bytes> bad = proof;
    bad[i][i % 32] ^= 0x40;
    EXPECT_FALSE(VerifyInclusion(leaf, index, size, bad, root)) << index << "/" << size << " elem " << i;
  }
  if (!proof.empty()) {
    std::vector<Bytes> shorter(proof.begin(), proof.end() - 1);
    EXPECT_FALSE(VerifyInclusion(leaf, index, size, shorter, root));
  }
  std::vector<Bytes> longer = proof;
  longer.push_back(root);
  EXPECT_FALSE(VerifyInclusion(leaf, index, size, longer, root));
  Bytes bad_leaf = leaf;
  bad_leaf[0] ^= 1;
  EXPECT_FALSE(VerifyInclusion(bad_leaf, index, size, proof, root));
  Bytes bad_root = root;
  bad_root[31] ^= 1;
  EXPECT_FALSE(VerifyInclusion(leaf, index, size, proof, bad_root));
  if (size > 1) {
    // Another index can only verify with the same path if the leaf is the same.
    const std::int64_t other = (index + 1) % size;
    EXPECT_FALSE(VerifyInclusion(leaf, other, size, proof, root)) << index << "->" << other << "/" << size;
  }
  EXPECT_FALSE(VerifyInclusion(leaf, index, index, proof, root));
  EXPECT_FALSE(VerifyInclusion(leaf, -1, size, proof, root));
  EXPECT_FALSE(VerifyInclusion(ByteView(leaf).first(31), index, size, proof, root));
}

void ExpectConsistencyTamperFails(std::int64_t m, std::int64_t n, const Bytes& old_root, const Bytes& new_root,
                                  const std::vector<Bytes>& proof) {
  ASSERT_TRUE(VerifyConsistency(m, n, old_root, new_root, proof)) << m << "->" << n;
  for (std::size_t i = 0; i < proof.size(); ++i) {
    std::vector<Bytes> bad = proof;
    bad[i][(i * 7) % 32] ^= 0x02;
    EXPECT_FALSE(VerifyConsistency(m, n, old_root, new_root, bad)) << m << "->" << n << " elem " << i;
  }
  if (!proof.empty()) {
    EXPECT_FALSE(VerifyConsistency(m, n, old_root, new_root, std::vector<Bytes>(proof.begin(), proof.end() - 1)));
  }
  std::vector<Bytes> longer = proof;
  longer.push_back(new_root);
  EXPECT_FALSE(VerifyConsistency(m, n, old_root, new_root, longer));
  Bytes bad_old = old_root;
  bad_old[0] ^= 1;
  Bytes bad_new = new_root;
  bad_new[0] ^= 1;
  EXPECT_FALSE(VerifyConsistency(m, n, bad_old, new_root, proof));
  EXPECT_FALSE(VerifyConsistency(m, n, old_root, bad_new, proof));
  if (m != n) {
    EXPECT_FALSE(VerifyConsistency(m, n, new_root, old_root, proof));
    EXPECT_FALSE(VerifyConsistency(n, m, old_root, new_root, proof));
  }
  EXPECT_FALSE(VerifyConsistency(-1, n, old_root, new_root, proof));
}

// TreeReader against the reference for every tree size 1..300 (one tile and
// a bit: every shape of the tile boundary), all inclusion and consistency
// proofs for sizes up to 70, and every proof verified and tampered with.
TEST(TreeReaderTest, MatchesReferenceForSmallTrees) {
  FakeSource source(MakeLeaves(300));
  const Leaves& leaves = source.leaves();
  const std::vector<Bytes> roots = RefRoots(leaves, 300);
  TreeReader reader(&source);
  for (std::int64_t n = 1; n <= 300; ++n) {
    ASSERT_EQ(reader.Root(n).value(), roots[static_cast<std::size_t>(n)]) << n;
  }
  // And again downwards, from a warm cache.
  for (std::int64_t n = 300; n >= 1; --n) {
    ASSERT_EQ(reader.Root(n).value(), roots[static_cast<std::size_t>(n)]) << n;
  }
  for (std::int64_t n = 1; n <= 70; ++n) {
    const Leaves prefix = Slice(leaves, 0, static_cast<std::size_t>(n));
    for (std::int64_t i = 0; i < n; ++i) {
      auto proof = reader.InclusionProof(i, n);
      ASSERT_TRUE(proof.ok());
      ASSERT_EQ(*proof, RefPath(static_cast<std::size_t>(i), prefix)) << i << "/" << n;
      ExpectInclusionTamperFails(leaves[static_cast<std::size_t>(i)], i, n, *proof,
                                 roots[static_cast<std::size_t>(n)]);
      // The same proof against a neighbouring tree size and its real root.
      const Bytes& leaf = leaves[static_cast<std::size_t>(i)];
      EXPECT_FALSE(VerifyInclusion(leaf, i, n + 1, *proof, roots[static_cast<std::size_t>(n + 1)]));
      if (i < n - 1) {
        EXPECT_FALSE(VerifyInclusion(leaf, i, n - 1, *proof, roots[static_cast<std::size_t>(n - 1)]));
      }
    }
    for (std::int64_t m = 1; m <= n; ++m) {
      auto proof = reader.ConsistencyProof(m, n);
      ASSERT_TRUE(proof.ok());
      ASSERT_EQ(*proof, RefProof(static_cast<std::size_t>(m), prefix)) << m << "->" << n;
      ExpectConsistencyTamperFails(m, n, roots[static_cast<std::size_t>(m)], roots[static_cast<std::size_t>(n)],
                                   *proof);
      EXPECT_FALSE(VerifyConsistency(m, n + 1, roots[static_cast<std::size_t>(m)],
                                     roots[static_cast<std::size_t>(n + 1)], *proof));
      if (m > 1) {
        EXPECT_FALSE(VerifyConsistency(m - 1, n, roots[static_cast<std::size_t>(m - 1)],
                                       roots[static_cast<std::size_t>(n)], *proof));
      }
    }
  }
  // Sizes around the tile: a sample of indices and old sizes.
  for (std::int64_t n : {127, 128, 129, 255, 256, 257, 258, 300}) {
    const Leaves prefix = Slice(leaves, 0, static_cast<std::size_t>(n));
    for (std::int64_t i : {std::int64_t{0}, std::int64_t{1}, n / 2, std::int64_t{127}, std::int64_t{128},
                           std::int64_t{255}, std::int64_t{256}, n - 2, n - 1}) {
      if (i < 0 || i >= n) continue;
      auto proof = reader.InclusionProof(i, n).value();
      ASSERT_EQ(proof, RefPath(static_cast<std::size_t>(i), prefix)) << i << "/" << n;
      ExpectInclusionTamperFails(leaves[static_cast<std::size_t>(i)], i, n, proof,
                                 roots[static_cast<std::size_t>(n)]);
    }
    for (std::int64_t m : {std::int64_t{1}, std::int64_t{2}, std::int64_t{3}, std::int64_t{64}, std::int64_t{127},
                           std::int64_t{128}, std::int64_t{129}, std::int64_t{255}, std::int64_t{256},
                           std::int64_t{257}, n - 1, n}) {
      if (m < 1 || m > n) continue;
      auto proof = reader.ConsistencyProof(m, n).value();
      ASSERT_EQ(proof, RefProof(static_cast<std::size_t>(m), prefix)) << m << "->" << n;
      ExpectConsistencyTamperFails(m, n, roots[static_cast<std::size_t>(m)], roots[static_cast<std::size_t>(n)],
                                   proof);
    }
  }
}

// Larger trees (many tiles, several levels above them): a sample of sizes up
// to 5000, proofs at the edges and at random places.
TEST(TreeReaderTest, MatchesReferenceForLargerTrees) {
  constexpr std::int64_t kMax = 5000;
  FakeSource source(MakeLeaves(kMax));
  const Leaves& leaves = source.leaves();
  TreeReader reader(&source);
  std::mt19937 rng(42);
  std::vector<std::int64_t> sizes = {511, 512, 513, 767, 768, 1023, 1024, 1025, 2047, 2048, 2049, 4095, 4096, 4097,
                                     4999, 5000};
  for (int i = 0; i < 12; ++i) sizes.push_back(1 + static_cast<std::int64_t>(rng() % kMax));
  std::shuffle(sizes.begin(), sizes.end(), rng);
  for (std::int64_t n : sizes) {
    const Leaves prefix = Slice(leaves, 0, static_cast<std::size_t>(n));
    const Bytes root = RefMth(prefix);
    ASSERT_EQ(reader.Root(n).value(), root) << n;
    for (std::int64_t i : {std::int64_t{0}, n - 1, static_cast<std::int64_t>(rng() % n),
                           static_cast<std::int64_t>(rng() % n)}) {
      auto proof = reader.InclusionProof(i, n).value();
      ASSERT_EQ(proof, RefPath(static_cast<std::size_t>(i), prefix)) << i << "/" << n;
      ExpectInclusionTamperFails(leaves[static_cast<std::size_t>(i)], i, n, proof, root);
    }
    for (std::int64_t m : {std::int64_t{1}, n, static_cast<std::int64_t>(1 + rng() % n),
                           static_cast<std::int64_t>(1 + rng() % n)}) {
      auto proof = reader.ConsistencyProof(m, n).value();
      ASSERT_EQ(proof, RefProof(static_cast<std::size_t>(m), prefix)) << m << "->" << n;
      ExpectConsistencyTamperFails(m, n, RefMth(Slice(leaves, 0, static_cast<std::size_t>(m))), root, proof);
    }
  }
}

TEST(TreeReaderTest, CachesCompleteTilesOnly) {
  FakeSource source(MakeLeaves(300));
  TreeReader reader(&source);
  const Bytes root300 = reader.Root(300).value();
  const Bytes root200 = reader.Root(200).value();

  // The tail beyond the last complete tile is read each time: a changed leaf
  // there changes the root (nothing about it was cached).
  source.leaves()[299] = LeafHash(AsBytes("other"));
  const Bytes changed = reader.Root(300).value();
  EXPECT_NE(changed, root300);
  EXPECT_EQ(changed, RefMth(source.leaves()));
  // A size inside the first tile was never cached either.
  source.leaves()[100] = LeafHash(AsBytes("other"));
  EXPECT_NE(reader.Root(200).value(), root200);
  EXPECT_EQ(reader.Root(200).value(), RefMth(Slice(source.leaves(), 0, 200)));

  // The complete tile [0, 256) is cached: reading it again costs nothing,
  // and a root over it reads only the tail.
  source.calls = 0;
  source.leaves_read = 0;
  reader.Root(256).value();
  EXPECT_EQ(source.leaves_read, 0);
  reader.Root(300).value();
  EXPECT_EQ(source.leaves_read, 300 - 256);
}

TEST(TreeReaderTest, GrowingLogNeverSeesAStaleTile) {
  FakeSource source(MakeLeaves(100));
  TreeReader reader(&source);
  CompactTree compact;
  for (const Bytes& leaf : source.leaves()) compact.Append(leaf);
  ASSERT_EQ(reader.Root(100).value(), compact.Root());
  // The log grows past a tile boundary in several steps.
  for (int step = 0; step < 5; ++step) {
    for (int i = 0; i < 97; ++i) {
      Bytes leaf = LeafHash(AsBytes("more " + std::to_string(step) + "/" + std::to_string(i)));
      compact.Append(leaf);
      source.leaves().push_back(std::move(leaf));
    }
    const auto n = static_cast<std::int64_t>(source.leaves().size());
    ASSERT_EQ(reader.Root(n).value(), compact.Root()) << n;
    ASSERT_EQ(compact.Root(), RefMth(source.leaves()));
  }
}

TEST(TreeReaderTest, ReadsLittleOnceWarm) {
  constexpr std::int64_t kN = 100000;
  FakeSource source(MakeLeaves(kN));
  TreeReader reader(&source);
  CompactTree compact;
  for (const Bytes& leaf : source.leaves()) compact.Append(leaf);
  ASSERT_EQ(reader.Root(kN).value(), compact.Root());
  source.leaves_read = 0;
  ASSERT_EQ(reader.Root(kN).value(), compact.Root());
  EXPECT_LE(source.leaves_read, TreeReader::kTileLeaves);
  for (std::int64_t index : {std::int64_t{0}, std::int64_t{12345}, kN - 1}) {
    source.leaves_read = 0;
    auto proof = reader.InclusionProof(index, kN).value();
    EXPECT_LE(source.leaves_read, 2 * TreeReader::kTileLeaves) << index;
    EXPECT_TRUE(VerifyInclusion(source.leaves()[index], index, kN, proof, compact.Root()));
  }
  source.leaves_read = 0;
  auto proof = reader.ConsistencyProof(54321, kN).value();
  EXPECT_LE(source.leaves_read, 2 * TreeReader::kTileLeaves);
  EXPECT_TRUE(VerifyConsistency(54321, kN, reader.Root(54321).value(), compact.Root(), proof));
}

TEST(TreeReaderTest, RejectsBadArgumentsAndPropagatesErrors) {
  FakeSource source(MakeLeaves(10));
  TreeReader reader(&source);
  EXPECT_EQ(reader.Root(-1).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(reader.InclusionProof(10, 10).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(reader.InclusionProof(-1, 10).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(reader.InclusionProof(0, 0).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(reader.ConsistencyProof(0, 10).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(reader.ConsistencyProof(11, 10).status().code(), StatusCode::kInvalidArgument);
  // Beyond the log: the source's answer.
  EXPECT_EQ(reader.Root(11).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(reader.ConsistencyProof(5, 11).status().code(), StatusCode::kInvalidArgument);
  source.fail = true;
  EXPECT_EQ(reader.Root(5).status().code(), StatusCode::kUnavailable);
  EXPECT_EQ(reader.InclusionProof(1, 5).status().code(), StatusCode::kUnavailable);
  source.fail = false;
  EXPECT_TRUE(reader.Root(5).ok());
  // A stored hash of the wrong size is corruption, not a tree.
  source.leaves()[3].pop_back();
  EXPECT_EQ(reader.Root(5).status().code(), StatusCode::kDataLoss);
}

TEST(VerifyTest, MalformedInputIsFalse) {
  const Bytes h(32, 1);
  EXPECT_FALSE(VerifyInclusion(h, 0, 0, {}, h));
  EXPECT_TRUE(VerifyInclusion(h, 0, 1, {}, h));  // a one-leaf tree's root is its leaf
  EXPECT_FALSE(VerifyInclusion(h, 0, 1, {h}, h));
  EXPECT_FALSE(VerifyInclusion(h, 0, 2, {Bytes(31, 1)}, NodeHash(h, Bytes(31, 1))));
  EXPECT_FALSE(VerifyInclusion(h, 0, 1, {}, Bytes(33, 1)));
  EXPECT_FALSE(VerifyInclusion(h, 0, 2, {}, h));
  EXPECT_TRUE(VerifyConsistency(3, 3, h, h, {}));
  EXPECT_FALSE(VerifyConsistency(3, 3, h, h, {h}));
  EXPECT_FALSE(VerifyConsistency(3, 3, h, Bytes(32, 2), {}));
  EXPECT_FALSE(VerifyConsistency(3, 4, h, Bytes(32, 2), {}));
  EXPECT_TRUE(VerifyConsistency(0, 4, EmptyTreeRoot(), Bytes(32, 2), {}));
  EXPECT_FALSE(VerifyConsistency(0, 4, h, Bytes(32, 2), {}));
  EXPECT_FALSE(VerifyConsistency(0, 4, EmptyTreeRoot(), Bytes(32, 2), {h}));
  EXPECT_FALSE(VerifyConsistency(2, 4, h, Bytes(32, 2), {Bytes(5, 0)}));
}

TEST(CompactTreeTest, MatchesReferenceForEverySize) {
  const Leaves leaves = MakeLeaves(1100);
  CompactTree tree;
  EXPECT_EQ(tree.size(), 0);
  for (std::size_t n = 1; n <= leaves.size(); ++n) {
    tree.Append(leaves[n - 1]);
    ASSERT_EQ(tree.size(), static_cast<std::int64_t>(n));
    if (n <= 300 || n % 97 == 0 || n == leaves.size()) {
      ASSERT_EQ(tree.Root(), RefMth(Slice(leaves, 0, n))) << n;
    }
  }
}

TEST(TreeReaderTest, ConcurrentUse) {
  constexpr std::int64_t kN = 3000;
  FakeSource source(MakeLeaves(kN));
  TreeReader reader(&source);
  CompactTree compact;
  std::vector<Bytes> roots{EmptyTreeRoot()};
  for (const Bytes& leaf : source.leaves()) {
    compact.Append(leaf);
    roots.push_back(compact.Root());
  }
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      std::mt19937 rng(static_cast<unsigned>(t));
      for (int i = 0; i < 100; ++i) {
        const std::int64_t n = 1 + static_cast<std::int64_t>(rng() % kN);
        const std::int64_t index = static_cast<std::int64_t>(rng() % n);
        auto proof = reader.InclusionProof(index, n);
        if (!proof.ok() || !VerifyInclusion(source.leaves()[index], index, n, *proof, roots[n])) ++failures;
        auto root = reader.Root(n);
        if (!root.ok() || *root != roots[n]) ++failures;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0);
}

}  // namespace
}  // namespace kura::audit
