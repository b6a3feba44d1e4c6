//! The note commitment tree: append-only, 4-ary, depth 16 (2^32 leaves), Poseidon nodes.
//!
//! - [`Frontier`] is all a validator keeps to append commitments and compute roots: per level, the
//!   completed nodes of the rightmost, still-open group (at most three per level).
//! - [`IncrementalWitness`] is what a wallet keeps for each of its notes: the siblings of the note's
//!   path known so far. It learns the siblings to its right from the nodes the frontier reports as
//!   completed while the wallet appends every commitment it scans, and fills the one partially
//!   filled sibling from the frontier itself when a path is needed. No one is asked anything.
//! - [`MerklePath`] is a leaf position and the three siblings at each level: what the circuit checks.
//!
//! Empty positions hold the empty leaf `H_EmptyLeaf()`; an empty subtree's root is the hash of four
//! empty subtrees one level down.

#[cfg(feature = "r1cs")]
pub mod constraints;

use crate::poseidon::{self, Domain};
use crate::Fr;
use std::sync::OnceLock;

/// Levels of the tree.
pub const DEPTH: usize = 16;
/// Children per node.
pub const ARITY: usize = 4;
/// Leaves the tree can hold.
pub const CAPACITY: u64 = 1 << (2 * DEPTH);

/// Tree errors.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum TreeError {
    /// All 2^32 leaves are used.
    #[error("the commitment tree is full")]
    Full,
    /// A witness was asked for a path at a tree size it was not updated to.
    #[error("witness for leaf {position} is missing the completed sibling at level {level}; it was not shown every commitment since it was created")]
    WitnessOutOfDate {
        /// The witnessed leaf.
        position: u64,
        /// The level whose sibling is missing.
        level: usize,
    },
    /// The frontier is older than the witness.
    #[error("frontier has {size} leaves but the witness is for leaf {position}")]
    FrontierBehind {
        /// Frontier size.
        size: u64,
        /// Witnessed position.
        position: u64,
    },
}

/// `H_MerkleNode(c0, c1, c2, c3)`.
pub fn node_hash(children: &[Fr; ARITY]) -> Fr {
    poseidon::hash(Domain::MerkleNode, children)
}

/// Roots of empty subtrees: `empty_roots()[l]` is the root of an empty subtree of height `l`
/// (`[0]` is the empty leaf, `[DEPTH]` the root of the empty tree).
pub fn empty_roots() -> &'static [Fr; DEPTH + 1] {
    static EMPTY: OnceLock<[Fr; DEPTH + 1]> = OnceLock::new();
    EMPTY.get_or_init(|| {
        let mut e = [Fr::from(0u64); DEPTH + 1];
        e[0] = poseidon::hash(Domain::EmptyLeaf, &[]);
        for l in 0..DEPTH {
            e[l + 1] = node_hash(&[e[l]; ARITY]);
        }
        e
    })
}

/// A node the frontier completed while appending: at `level` (0 = leaf), the `index`-th node of
/// that level.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CompletedNode {
    /// Height of the node (0 for leaves).
    pub level: usize,
    /// Index of the node among the nodes of its level.
    pub index: u64,
    /// Its value.
    pub value: Fr,
}

/// The right edge of the tree: enough to append and to compute the root.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Frontier {
    size: u64,
    /// `levels[l]`: completed nodes at level `l` in the open group, `(size >> 2l) & 3` of them;
    /// `levels[DEPTH]` holds the root once the tree is full.
    levels: Vec<Vec<Fr>>,
}

impl Frontier {
    /// The empty tree.
    pub fn new() -> Self {
        Self {
            size: 0,
            levels: vec![Vec::new(); DEPTH + 1],
        }
    }

    /// Number of leaves appended.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The completed nodes of the open group at each level (for serialization).
    pub fn levels(&self) -> &[Vec<Fr>] {
        &self.levels
    }

    /// Rebuilds a frontier from its size and levels, checking they agree.
    pub fn from_parts(size: u64, levels: Vec<Vec<Fr>>) -> Option<Self> {
        if size > CAPACITY || levels.len() != DEPTH + 1 {
            return None;
        }
        for (l, nodes) in levels.iter().enumerate() {
            let expected = if l == DEPTH {
                (size == CAPACITY) as u64
            } else {
                (size >> (2 * l)) & 3
            };
            if nodes.len() as u64 != expected {
                return None;
            }
        }
        Some(Self { size, levels })
    }

    /// Appends the frontier's canonical encoding to `out`: size (u64 LE), then the nodes of each
    /// level in order (their count follows from the size).
    pub fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.size.to_le_bytes());
        for node in self.levels.iter().flatten() {
            out.extend_from_slice(&crate::encoding::fr_to_bytes(node));
        }
    }

    /// Reads what [`Frontier::write`] wrote, refusing sizes beyond capacity and non-canonical
    /// elements.
    pub fn read(
        r: &mut crate::encoding::Reader<'_>,
    ) -> Result<Self, crate::encoding::EncodingError> {
        let size = r.u64()?;
        if size > CAPACITY {
            return Err(crate::encoding::EncodingError::Invalid(
                "frontier size beyond capacity",
            ));
        }
        let mut levels = Vec::with_capacity(DEPTH + 1);
        for l in 0..=DEPTH {
            let n = if l == DEPTH {
                (size == CAPACITY) as u64
            } else {
                (size >> (2 * l)) & 3
            };
            let mut nodes = Vec::with_capacity(n as usize);
            for _ in 0..n {
                nodes.push(r.fr("frontier node")?);
            }
            levels.push(nodes);
        }
        Self::from_parts(size, levels).ok_or(crate::encoding::EncodingError::Invalid(
            "inconsistent frontier",
        ))
    }

    /// Appends a commitment; returns the nodes this completed (the leaf itself first).
    pub fn append(&mut self, cm: Fr) -> Result<Vec<CompletedNode>, TreeError> {
        if self.size >= CAPACITY {
            return Err(TreeError::Full);
        }
        let position = self.size;
        let mut completed = vec![CompletedNode {
            level: 0,
            index: position,
            value: cm,
        }];
        let mut carry = cm;
        for level in 0..=DEPTH {
            self.levels[level].push(carry);
            if level == DEPTH || self.levels[level].len() < ARITY {
                break;
            }
            let children: [Fr; ARITY] = std::array::from_fn(|i| self.levels[level][i]);
            self.levels[level].clear();
            carry = node_hash(&children);
            completed.push(CompletedNode {
                level: level + 1,
                index: position >> (2 * (level + 1)),
                value: carry,
            });
        }
        self.size += 1;
        Ok(completed)
    }

    /// For each level, the node containing the last leaf if that node is only partly filled
    /// (`None` where it is complete or the tree is empty there).
    fn partial_nodes(&self) -> [Option<Fr>; DEPTH + 1] {
        let empty = empty_roots();
        let mut partial = [None; DEPTH + 1];
        let mut carry: Option<Fr> = None;
        for level in 0..DEPTH {
            partial[level] = carry;
            let nodes = &self.levels[level];
            if nodes.is_empty() && carry.is_none() {
                continue;
            }
            let mut children = [empty[level]; ARITY];
            children[..nodes.len()].copy_from_slice(nodes);
            if let Some(c) = carry {
                children[nodes.len()] = c;
            }
            carry = Some(node_hash(&children));
        }
        partial[DEPTH] = carry;
        partial
    }

    /// The current root.
    pub fn root(&self) -> Fr {
        if let Some(full) = self.levels[DEPTH].first() {
            return *full;
        }
        self.partial_nodes()[DEPTH].unwrap_or(empty_roots()[DEPTH])
    }
}

/// A leaf's authentication path: what the circuit checks against an anchor.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MerklePath {
    /// Leaf position (its base-4 digits select the child slot at each level).
    pub position: u64,
    /// At each level from the leaves up, the three other children of the node on the path, in
    /// child order.
    pub siblings: [[Fr; ARITY - 1]; DEPTH],
}

impl MerklePath {
    /// A path of all-empty siblings at position 0 (for dummy inputs, where it is not checked).
    pub fn dummy() -> Self {
        let e = empty_roots();
        Self {
            position: 0,
            siblings: std::array::from_fn(|l| [e[l]; ARITY - 1]),
        }
    }

    /// The child slot (0..4) of the path's node at `level`.
    pub fn slot(&self, level: usize) -> usize {
        ((self.position >> (2 * level)) & 3) as usize
    }

    /// The root this path leads to from `leaf`.
    pub fn root(&self, leaf: Fr) -> Fr {
        let mut cur = leaf;
        for level in 0..DEPTH {
            cur = node_hash(&insert(&self.siblings[level], self.slot(level), cur));
        }
        cur
    }
}

/// The four children of a node: `siblings` with `node` inserted at `slot`.
pub fn insert(siblings: &[Fr; ARITY - 1], slot: usize, node: Fr) -> [Fr; ARITY] {
    let mut out = [node; ARITY];
    let mut k = 0;
    for (i, o) in out.iter_mut().enumerate() {
        if i != slot {
            *o = siblings[k];
            k += 1;
        }
    }
    out
}

/// A wallet's witness for one of its notes, kept current as the wallet scans.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IncrementalWitness {
    position: u64,
    leaf: Fr,
    /// Known siblings at each level, in child order without the path's own slot.
    siblings: [[Option<Fr>; ARITY - 1]; DEPTH],
}

impl IncrementalWitness {
    /// Appends `cm` to `frontier` and starts a witness for it. Returns the witness and the nodes
    /// the append completed (show those to the wallet's other witnesses).
    pub fn append(
        frontier: &mut Frontier,
        cm: Fr,
    ) -> Result<(Self, Vec<CompletedNode>), TreeError> {
        let position = frontier.size();
        let mut siblings = [[None; ARITY - 1]; DEPTH];
        for (level, s) in siblings.iter_mut().enumerate() {
            // The completed nodes of the open group at this level are exactly our left siblings.
            for (k, v) in frontier.levels[level].iter().enumerate() {
                s[k] = Some(*v);
            }
        }
        let completed = frontier.append(cm)?;
        let mut w = Self {
            position,
            leaf: cm,
            siblings,
        };
        w.observe(&completed);
        Ok((w, completed))
    }

    /// Appends the witness's canonical encoding to `out`: position (u64 LE), leaf, then per level
    /// a presence bitmap byte and the known siblings.
    pub fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.position.to_le_bytes());
        out.extend_from_slice(&crate::encoding::fr_to_bytes(&self.leaf));
        for level in &self.siblings {
            let mask = level
                .iter()
                .enumerate()
                .fold(0u8, |m, (k, s)| m | ((s.is_some() as u8) << k));
            out.push(mask);
            for s in level.iter().flatten() {
                out.extend_from_slice(&crate::encoding::fr_to_bytes(s));
            }
        }
    }

    /// Reads what [`IncrementalWitness::write`] wrote.
    pub fn read(
        r: &mut crate::encoding::Reader<'_>,
    ) -> Result<Self, crate::encoding::EncodingError> {
        let position = r.u64()?;
        if position >= CAPACITY {
            return Err(crate::encoding::EncodingError::Invalid(
                "witness position beyond capacity",
            ));
        }
        let leaf = r.fr("witness leaf")?;
        let mut siblings = [[None; ARITY - 1]; DEPTH];
        for level in siblings.iter_mut() {
            let mask = r.u8()?;
            if mask >> (ARITY - 1) != 0 {
                return Err(crate::encoding::EncodingError::Invalid(
                    "witness sibling mask",
                ));
            }
            for (k, s) in level.iter_mut().enumerate() {
                if mask & (1 << k) != 0 {
                    *s = Some(r.fr("witness sibling")?);
                }
            }
        }
        Ok(Self {
            position,
            leaf,
            siblings,
        })
    }

    /// The witnessed leaf's position.
    pub fn position(&self) -> u64 {
        self.position
    }

    /// The witnessed commitment.
    pub fn leaf(&self) -> Fr {
        self.leaf
    }

    /// Records any of `completed` that is a sibling on this witness's path.
    pub fn observe(&mut self, completed: &[CompletedNode]) {
        for n in completed {
            if n.level >= DEPTH {
                continue;
            }
            let own = self.position >> (2 * n.level);
            if n.index >> 2 != own >> 2 || n.index == own {
                continue;
            }
            let (slot, own_slot) = ((n.index & 3) as usize, (own & 3) as usize);
            let k = if slot < own_slot { slot } else { slot - 1 };
            self.siblings[n.level][k] = Some(n.value);
        }
    }

    /// The path from the leaf to `frontier`'s current root. `frontier` must have seen the same
    /// commitments as this witness.
    pub fn path(&self, frontier: &Frontier) -> Result<MerklePath, TreeError> {
        let size = frontier.size();
        if size <= self.position {
            return Err(TreeError::FrontierBehind {
                size,
                position: self.position,
            });
        }
        let partial = frontier.partial_nodes();
        let empty = empty_roots();
        let mut siblings = [[Fr::from(0u64); ARITY - 1]; DEPTH];
        for level in 0..DEPTH {
            let own = self.position >> (2 * level);
            let group = own & !3;
            let mut k = 0;
            for index in group..group + 4 {
                if index == own {
                    continue;
                }
                siblings[level][k] = match self.siblings[level][k] {
                    Some(v) => v,
                    None => {
                        let first_leaf = index << (2 * level);
                        let complete_below = (index + 1) << (2 * level);
                        if complete_below <= size {
                            return Err(TreeError::WitnessOutOfDate {
                                position: self.position,
                                level,
                            });
                        } else if first_leaf < size {
                            partial[level].ok_or(TreeError::WitnessOutOfDate {
                                position: self.position,
                                level,
                            })?
                        } else {
                            empty[level]
                        }
                    }
                };
                k += 1;
            }
        }
        Ok(MerklePath {
            position: self.position,
            siblings,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Root of a tree holding `leaves`, computed level by level over the whole (sparse) tree.
    fn naive_root(leaves: &[Fr]) -> Fr {
        let e = empty_roots();
        let mut layer: Vec<Fr> = leaves.to_vec();
        for level in 0..DEPTH {
            let mut next = Vec::new();
            for chunk in layer.chunks(ARITY) {
                let mut c = [e[level]; ARITY];
                c[..chunk.len()].copy_from_slice(chunk);
                next.push(node_hash(&c));
            }
            if next.is_empty() {
                next.push(e[level + 1]);
            }
            layer = next;
        }
        layer[0]
    }

    #[test]
    fn frontier_and_witness_encodings_round_trip_and_stay_usable() {
        let mut f = Frontier::new();
        let mut witnesses = Vec::new();
        for i in 0..23u64 {
            let (w, completed) = IncrementalWitness::append(&mut f, Fr::from(i + 1)).unwrap();
            for w in witnesses.iter_mut() {
                IncrementalWitness::observe(w, &completed);
            }
            witnesses.push(w);
        }
        let mut bytes = Vec::new();
        f.write(&mut bytes);
        for w in &witnesses {
            w.write(&mut bytes);
        }
        let mut r = crate::encoding::Reader::new("test", &bytes);
        let f2 = Frontier::read(&mut r).unwrap();
        assert_eq!(f2, f);
        for w in &witnesses {
            let w2 = IncrementalWitness::read(&mut r).unwrap();
            assert_eq!(&w2, w);
            assert_eq!(w2.path(&f2).unwrap().root(w2.leaf()), f.root());
        }
        r.finish().unwrap();
        // A size that disagrees with the nodes that follow, truncation, or a bad mask is refused.
        let mut bad = Vec::new();
        f.write(&mut bad);
        bad[0] ^= 1;
        let mut r = crate::encoding::Reader::new("t", &bad);
        assert!(Frontier::read(&mut r).and_then(|_| r.finish()).is_err());
        assert!(Frontier::read(&mut crate::encoding::Reader::new("t", &bad[..40])).is_err());
        let mut bad = Vec::new();
        witnesses[0].write(&mut bad);
        bad[40] = 0xff;
        assert!(IncrementalWitness::read(&mut crate::encoding::Reader::new("t", &bad)).is_err());
    }

    #[test]
    fn empty_tree_root() {
        assert_eq!(Frontier::new().root(), empty_roots()[DEPTH]);
        assert_eq!(naive_root(&[]), empty_roots()[DEPTH]);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(12))]
        /// After every append, the frontier's root equals a full recomputation, and every witness
        /// (started at any time) yields a path to that root.
        #[test]
        fn frontier_and_witnesses_agree(n in 1usize..90, starts in proptest::collection::vec(0usize..90, 1..5)) {
            let mut f = Frontier::new();
            let mut leaves = Vec::new();
            let mut witnesses: Vec<IncrementalWitness> = Vec::new();
            for i in 0..n {
                let cm = Fr::from(1000 + i as u64);
                leaves.push(cm);
                let completed = if starts.contains(&i) {
                    let (w, c) = IncrementalWitness::append(&mut f, cm).unwrap();
                    witnesses.push(w);
                    c
                } else {
                    f.append(cm).unwrap()
                };
                for w in witnesses.iter_mut() {
                    w.observe(&completed);
                }
                let root = f.root();
                prop_assert_eq!(root, naive_root(&leaves));
                for w in &witnesses {
                    let path = w.path(&f).unwrap();
                    prop_assert_eq!(path.root(w.leaf()), root);
                }
            }
        }
    }

    #[test]
    fn wrong_leaf_or_sibling_changes_root() {
        let mut f = Frontier::new();
        let (mut w, _) = IncrementalWitness::append(&mut f, Fr::from(9u64)).unwrap();
        w.observe(&f.append(Fr::from(10u64)).unwrap());
        let path = w.path(&f).unwrap();
        assert_eq!(path.root(Fr::from(9u64)), f.root());
        assert_ne!(path.root(Fr::from(8u64)), f.root());
        let mut bad = path.clone();
        bad.siblings[3][1] += Fr::from(1u64);
        assert_ne!(bad.root(Fr::from(9u64)), f.root());
    }

    #[test]
    fn stale_witness_is_an_error() {
        let mut f = Frontier::new();
        let (w, _) = IncrementalWitness::append(&mut f, Fr::from(1u64)).unwrap();
        for i in 0..4 {
            f.append(Fr::from(i)).unwrap(); // the witness is not shown these
        }
        assert!(matches!(
            w.path(&f),
            Err(TreeError::WitnessOutOfDate { .. })
        ));
        assert!(Frontier::from_parts(5, vec![vec![]; DEPTH + 1]).is_none());
        assert_eq!(
            Frontier::from_parts(f.size(), f.levels().to_vec()),
            Some(f.clone())
        );
    }
}
