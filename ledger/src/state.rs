//! The ledger's state as storage keeps it ([`LedgerHead`]), its state root and the running
//! hashes it commits to, and openings that prove a part of it to a client.

use crate::*;
use shoji_primitives::encoding::{fr_to_bytes, EncodingError, Reader};
use shoji_primitives::tree::Frontier;
use shoji_primitives::tx::TxId;
use shoji_primitives::Fr;
use std::collections::BTreeSet;

/// The ledger state without the nullifier set: what storage rewrites after every block.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LedgerHead {
    /// Height of the last applied block (0 at genesis).
    pub height: u64,
    /// Time of the last applied block, Unix milliseconds (0 at genesis).
    pub time_ms: u64,
    /// The commitment tree's frontier.
    pub frontier: Frontier,
    /// Roots of the last blocks, oldest first (the genesis root counts as height 0); the last
    /// one is `frontier.root()`.
    pub recent_roots: Vec<Fr>,
    /// Running hash of every revealed nullifier, in order of revelation.
    pub nullifier_chain: [u8; 32],
    /// Running hash of every block's [`CompactBlock`] (see [`chain_compact`]): what wallets and
    /// auditors scan, certified through the state root.
    pub scan_chain: [u8; 32],
    /// The policy in force, once governance has changed it (`None`: genesis's).
    pub policy: Option<Policy>,
    /// [`accounts_root`] of the confidential accounts (zero while there are none).
    pub accounts_root: [u8; 32],
}

impl LedgerHead {
    /// The head of [`Ledger::genesis`].
    pub fn genesis() -> Self {
        let frontier = Frontier::new();
        LedgerHead {
            height: 0,
            time_ms: 0,
            recent_roots: vec![frontier.root()],
            frontier,
            nullifier_chain: [0; 32],
            scan_chain: [0; 32],
            policy: None,
            accounts_root: [0; 32],
        }
    }

    /// The state root of a ledger with this head.
    pub fn state_root(&self) -> [u8; 32] {
        self.state_root_with(&self.frontier.root())
    }

    /// [`LedgerHead::state_root`] given the frontier's root (which costs sixteen hashes to
    /// compute), for callers that already hold it.
    pub fn state_root_with(&self, tree_root: &Fr) -> [u8; 32] {
        self.opening_with(tree_root).root()
    }

    /// The state root's preimage ([`StateOpening`]) given the frontier's root.
    pub fn opening_with(&self, tree_root: &Fr) -> StateOpening {
        StateOpening {
            height: self.height,
            time_ms: self.time_ms,
            tree_size: self.frontier.size(),
            tree_root: *tree_root,
            nullifier_chain: self.nullifier_chain,
            governance_chain: self.policy.as_ref().map_or([0; 32], |p| p.chain),
            scan_chain: self.scan_chain,
            validators: validators_commitment(self.policy.as_ref()),
            recent_roots: recent_roots_hash(self.recent_roots.iter()),
            policy: policy_hash(self.policy.as_ref()),
            accounts: self.accounts_root,
        }
    }
}

/// Everything the state root hashes: given a certified state root (a stable checkpoint's), a
/// client checks an opening against it and then trusts each field, in particular the tree root
/// and the scan chain over every compact block up to `height`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StateOpening {
    /// Height.
    pub height: u64,
    /// Block time, Unix milliseconds.
    pub time_ms: u64,
    /// Commitments in the tree.
    pub tree_size: u64,
    /// The tree's root.
    pub tree_root: Fr,
    /// Running hash of the revealed nullifiers ([`chain_nullifier`]).
    pub nullifier_chain: [u8; 32],
    /// Running hash of the enacted governance transactions ([`chain_governance`]).
    pub governance_chain: [u8; 32],
    /// Running hash of the compact blocks ([`chain_compact`]).
    pub scan_chain: [u8; 32],
    /// The validator sets in force and decided ([`validators_commitment`]).
    pub validators: [u8; 32],
    /// The tree roots a transaction may anchor to ([`recent_roots_hash`]).
    pub recent_roots: [u8; 32],
    /// The policy in force ([`policy_hash`]; zero while it is genesis's).
    pub policy: [u8; 32],
    /// The confidential accounts ([`accounts_root`]; zero while there are none).
    pub accounts: [u8; 32],
}

impl StateOpening {
    /// Encoded length.
    pub const BYTES: usize = 8 + 8 + 8 + 32 * 8;

    /// The state root these fields hash to: blake3 (derived key "shoji 2026 state root v6")
    /// over [`StateOpening::to_bytes`].
    pub fn root(&self) -> [u8; 32] {
        let mut h = blake3::Hasher::new_derive_key("shoji 2026 state root v6");
        h.update(&self.to_bytes());
        *h.finalize().as_bytes()
    }

    /// `height ‖ time_ms ‖ tree_size ‖ tree_root ‖ nullifier_chain ‖ governance_chain ‖
    /// scan_chain ‖ validators ‖ recent_roots ‖ policy ‖ accounts` (integers little-endian).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(Self::BYTES);
        out.extend_from_slice(&self.height.to_le_bytes());
        out.extend_from_slice(&self.time_ms.to_le_bytes());
        out.extend_from_slice(&self.tree_size.to_le_bytes());
        out.extend_from_slice(&fr_to_bytes(&self.tree_root));
        out.extend_from_slice(&self.nullifier_chain);
        out.extend_from_slice(&self.governance_chain);
        out.extend_from_slice(&self.scan_chain);
        out.extend_from_slice(&self.validators);
        out.extend_from_slice(&self.recent_roots);
        out.extend_from_slice(&self.policy);
        out.extend_from_slice(&self.accounts);
        out
    }

    /// Strict decoding of [`StateOpening::to_bytes`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, EncodingError> {
        let mut r = Reader::new("state opening", bytes);
        let opening = StateOpening {
            height: r.u64()?,
            time_ms: r.u64()?,
            tree_size: r.u64()?,
            tree_root: r.fr("tree root")?,
            nullifier_chain: r.array()?,
            governance_chain: r.array()?,
            scan_chain: r.array()?,
            validators: r.array()?,
            recent_roots: r.array()?,
            policy: r.array()?,
            accounts: r.array()?,
        };
        r.finish()?;
        Ok(opening)
    }
}

/// Everything needed to rebuild a ledger, given its configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LedgerSnapshot {
    /// The per-block part.
    pub head: LedgerHead,
    /// Every revealed nullifier (canonical 32-byte encodings).
    pub nullifiers: BTreeSet<[u8; 32]>,
    /// Every confidential account.
    pub accounts: std::collections::BTreeMap<AccountId, AccountState>,
}

/// Why a snapshot cannot be restored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RestoreError {
    /// No recent roots.
    #[error("snapshot has no recent roots")]
    NoRoots,
    /// More recent roots than the window keeps.
    #[error("snapshot has {got} recent roots, the window keeps {window}")]
    TooManyRoots {
        /// Given.
        got: usize,
        /// The configured window.
        window: usize,
    },
    /// The last recent root is not the frontier's root.
    #[error("the last recent root is not the tree's root")]
    RootMismatch,
    /// The accounts do not hash to the head's accounts root.
    #[error("the accounts do not hash to the head's accounts root")]
    AccountsMismatch,
}

/// What a state root says of the anchors: blake3 (derived key "shoji 2026 recent roots v1")
/// over `count:u32 ‖ root*` (oldest first), so a validator that starts from a snapshot accepts
/// exactly the anchors the others accept.
pub fn recent_roots_hash<'a>(roots: impl ExactSizeIterator<Item = &'a Fr>) -> [u8; 32] {
    let mut h = blake3::Hasher::new_derive_key("shoji 2026 recent roots v1");
    h.update(&(roots.len() as u32).to_le_bytes());
    for r in roots {
        h.update(&fr_to_bytes(r));
    }
    *h.finalize().as_bytes()
}

/// What a state root says of the policy: zero while governance has changed nothing (the
/// genesis policy is pinned by the genesis), otherwise blake3 (derived key "shoji 2026 policy
/// v1") over [`Policy::to_bytes`]. A client holding a certified opening checks a policy it was
/// sent against this.
pub fn policy_hash(policy: Option<&Policy>) -> [u8; 32] {
    match policy {
        None => [0; 32],
        Some(p) => blake3::derive_key("shoji 2026 policy v1", &p.to_bytes()),
    }
}

/// What a state root says of the confidential accounts: zero while there are none, otherwise
/// [`AccountsLattice::root`] of the lattice holding every account. The lattice is a sum, so a
/// block that changes `k` accounts updates it with `2k` elements however many accounts exist,
/// and the order accounts are added in does not matter.
pub fn accounts_root<'a>(
    accounts: impl IntoIterator<Item = (&'a AccountId, &'a AccountState)>,
) -> [u8; 32] {
    let mut lattice = AccountsLattice::new();
    for (id, state) in accounts {
        lattice.insert(&id.to_bytes(), &state.to_bytes());
    }
    lattice.root()
}

/// Lanes of an [`AccountsLattice`] (16 bits each).
pub const ACCOUNT_LANES: usize = 1024;

/// Encoded length of an [`AccountsLattice`]: count (u64 LE) ‖ lanes (u16 LE each).
pub const ACCOUNTS_LATTICE_BYTES: usize = 8 + 2 * ACCOUNT_LANES;

/// A lattice hash (LtHash) of a multiset of accounts: the lane-wise sum, modulo 2¹⁶, of one
/// element per account, and the number of accounts. An account's element is the 2,048-byte
/// blake3 XOF output (derived key "shoji 2026 account lattice v1") of `id(40) ‖ len:u32 ‖
/// state`, read as 1,024 little-endian u16 lanes. Adding and removing elements is what makes
/// the root incremental; finding two multisets with the same sum is the short-integer-solution
/// problem, hard for 1,024 lanes of 16 bits (the parameters Solana's accounts lattice hash
/// uses, after Bellare and Micciancio's and Lewi et al.'s analyses).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccountsLattice {
    lanes: Box<[u16; ACCOUNT_LANES]>,
    count: u64,
}

impl Default for AccountsLattice {
    fn default() -> Self {
        Self::new()
    }
}

impl AccountsLattice {
    /// The lattice of no accounts.
    pub fn new() -> Self {
        Self {
            lanes: Box::new([0; ACCOUNT_LANES]),
            count: 0,
        }
    }

    fn element(id: &[u8], state: &[u8]) -> [u8; 2 * ACCOUNT_LANES] {
        let mut h = blake3::Hasher::new_derive_key("shoji 2026 account lattice v1");
        h.update(id);
        h.update(&(state.len() as u32).to_le_bytes());
        h.update(state);
        let mut out = [0u8; 2 * ACCOUNT_LANES];
        h.finalize_xof().fill(&mut out);
        out
    }

    /// Adds the account whose id encodes as `id` ([`AccountId::to_bytes`]) and whose state
    /// encodes as `state` ([`AccountState::to_bytes`]).
    pub fn insert(&mut self, id: &[u8], state: &[u8]) {
        let e = Self::element(id, state);
        for (lane, pair) in self.lanes.iter_mut().zip(e.chunks_exact(2)) {
            *lane = lane.wrapping_add(u16::from_le_bytes([pair[0], pair[1]]));
        }
        self.count = self.count.wrapping_add(1);
    }

    /// Removes an account added before with the same encodings (its state before a change).
    pub fn remove(&mut self, id: &[u8], state: &[u8]) {
        let e = Self::element(id, state);
        for (lane, pair) in self.lanes.iter_mut().zip(e.chunks_exact(2)) {
            *lane = lane.wrapping_sub(u16::from_le_bytes([pair[0], pair[1]]));
        }
        self.count = self.count.wrapping_sub(1);
    }

    /// Accounts held.
    pub fn len(&self) -> u64 {
        self.count
    }

    /// Whether no account is held.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The accounts root: zero while no account is held, otherwise blake3 (derived key
    /// "shoji 2026 accounts v2") of [`AccountsLattice::to_bytes`].
    pub fn root(&self) -> [u8; 32] {
        if self.count == 0 {
            return [0; 32];
        }
        blake3::derive_key("shoji 2026 accounts v2", &self.to_bytes())
    }

    /// `count (u64 LE) ‖ lanes (u16 LE each)`: [`ACCOUNTS_LATTICE_BYTES`] bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(ACCOUNTS_LATTICE_BYTES);
        out.extend_from_slice(&self.count.to_le_bytes());
        for lane in self.lanes.iter() {
            out.extend_from_slice(&lane.to_le_bytes());
        }
        out
    }

    /// Decodes [`AccountsLattice::to_bytes`]; `None` unless exactly that long.
    pub fn from_bytes(bytes: &[u8]) -> Option<Self> {
        if bytes.len() != ACCOUNTS_LATTICE_BYTES {
            return None;
        }
        let (count, lanes) = bytes.split_at(8);
        let mut out = Self::new();
        out.count = u64::from_le_bytes(count.try_into().ok()?);
        for (lane, pair) in out.lanes.iter_mut().zip(lanes.chunks_exact(2)) {
            *lane = u16::from_le_bytes([pair[0], pair[1]]);
        }
        Some(out)
    }
}

/// What a state root says of the validator sets: zero while governance has changed nothing,
/// otherwise [`validator_sets_hash`] of the current members and the decided change.
pub fn validators_commitment(policy: Option<&Policy>) -> [u8; 32] {
    match policy {
        None => [0; 32],
        Some(p) => validator_sets_hash(
            &p.validators,
            p.next_validators.as_ref().map(|(last, next)| (*last, next)),
        ),
    }
}

/// blake3 (derived key "shoji 2026 validator sets v1") over the current members and the
/// decided change if any (`0`, or `1 ‖ last height of the epoch (u64 LE) ‖ members`), members
/// as `count:u32 ‖ (id:u16 ‖ key:32)*` in id order (integers little-endian). A client that
/// trusts an epoch's set checks a checkpoint of that set whose state has a change decided, and
/// learns from its opening the next set and the last height the current one signs for.
pub fn validator_sets_hash(validators: &Validators, next: Option<(u64, &Validators)>) -> [u8; 32] {
    fn members(h: &mut blake3::Hasher, v: &Validators) {
        h.update(&(v.len() as u32).to_le_bytes());
        for (id, key) in v {
            h.update(&id.to_le_bytes());
            h.update(key);
        }
    }
    let mut h = blake3::Hasher::new_derive_key("shoji 2026 validator sets v1");
    members(&mut h, validators);
    match next {
        None => {
            h.update(&[0]);
        }
        Some((last, next)) => {
            h.update(&[1]);
            h.update(&last.to_le_bytes());
            members(&mut h, next);
        }
    }
    *h.finalize().as_bytes()
}

/// One step of the scan chain: the chain after the block whose compact form encodes to
/// `compact` ([`CompactBlock::to_bytes`]). A client that holds the chain at one certified height
/// checks every compact block it receives up to the next.
pub fn chain_compact(chain: &[u8; 32], compact: &[u8]) -> [u8; 32] {
    let mut h = blake3::Hasher::new_derive_key("shoji 2026 scan chain v3");
    h.update(chain);
    h.update(compact);
    *h.finalize().as_bytes()
}

/// One step of the governance chain: the chain after enacting the transaction `id`.
pub fn chain_governance(chain: &[u8; 32], id: &TxId) -> [u8; 32] {
    let mut h = blake3::Hasher::new_derive_key("shoji 2026 governance chain v1");
    h.update(chain);
    h.update(&id.0);
    *h.finalize().as_bytes()
}

/// One step of the nullifier chain: the chain after revealing `nf`.
pub fn chain_nullifier(chain: &[u8; 32], nf: &[u8; 32]) -> [u8; 32] {
    let mut h = blake3::Hasher::new_derive_key("shoji 2026 nullifier chain v1");
    h.update(chain);
    h.update(nf);
    *h.finalize().as_bytes()
}

#[cfg(test)]
mod lattice_tests {
    use super::*;

    fn account(i: u8) -> ([u8; 40], Vec<u8>) {
        ([i; 40], vec![i; 81 + i as usize])
    }

    /// The definition in docs/protocol/clients.md, computed here without the lattice type.
    fn by_definition(accounts: &[([u8; 40], Vec<u8>)]) -> [u8; 32] {
        if accounts.is_empty() {
            return [0; 32];
        }
        let mut lanes = [0u16; ACCOUNT_LANES];
        for (id, state) in accounts {
            let mut h = blake3::Hasher::new_derive_key("shoji 2026 account lattice v1");
            h.update(id);
            h.update(&(state.len() as u32).to_le_bytes());
            h.update(state);
            let mut e = [0u8; 2 * ACCOUNT_LANES];
            h.finalize_xof().fill(&mut e);
            for (k, lane) in lanes.iter_mut().enumerate() {
                *lane = lane.wrapping_add(u16::from_le_bytes([e[2 * k], e[2 * k + 1]]));
            }
        }
        let mut pre = (accounts.len() as u64).to_le_bytes().to_vec();
        for lane in lanes {
            pre.extend_from_slice(&lane.to_le_bytes());
        }
        blake3::derive_key("shoji 2026 accounts v2", &pre)
    }

    #[test]
    fn the_root_is_the_documented_sum_in_any_order() {
        let (a, b, c) = (account(1), account(2), account(3));
        let mut l = AccountsLattice::new();
        assert_eq!(l.root(), [0; 32]);
        for (id, st) in [&c, &a, &b] {
            l.insert(id, st);
        }
        assert_eq!(l.len(), 3);
        assert_eq!(l.root(), by_definition(&[a.clone(), b.clone(), c.clone()]));
        let mut m = AccountsLattice::new();
        for (id, st) in [&a, &b, &c] {
            m.insert(id, st);
        }
        assert_eq!(m, l);
        // Another label gives another root.
        assert_ne!(
            l.root(),
            blake3::derive_key("shoji 2026 accounts v1", &l.to_bytes())
        );
    }

    #[test]
    fn an_update_in_place_equals_the_lattice_built_afresh() {
        let (a, b) = (account(1), account(2));
        let changed = (a.0, vec![9; 100]);
        let mut l = AccountsLattice::new();
        l.insert(&a.0, &a.1);
        l.insert(&b.0, &b.1);
        let before = l.root();
        l.remove(&a.0, &a.1);
        l.insert(&changed.0, &changed.1);
        assert_ne!(l.root(), before);
        assert_eq!(l.root(), by_definition(&[changed.clone(), b.clone()]));
        // Removing what was added leaves nothing.
        l.remove(&changed.0, &changed.1);
        l.remove(&b.0, &b.1);
        assert_eq!(l, AccountsLattice::new());
        assert_eq!(l.root(), [0; 32]);
    }

    #[test]
    fn every_byte_of_an_account_and_the_count_matter() {
        let a = account(1);
        let root = by_definition(std::slice::from_ref(&a));
        let mut id = a.0;
        id[39] ^= 1;
        let mut state = a.1.clone();
        state[80] ^= 1;
        for (i, s) in [(id, a.1.clone()), (a.0, state), (a.0, a.1[..80].to_vec())] {
            let mut l = AccountsLattice::new();
            l.insert(&i, &s);
            assert_ne!(l.root(), root);
        }
        let mut twice = AccountsLattice::new();
        twice.insert(&a.0, &a.1);
        twice.insert(&a.0, &a.1);
        assert_ne!(twice.root(), root);
    }

    #[test]
    fn the_encoding_round_trips_and_refuses_other_lengths() {
        let mut l = AccountsLattice::new();
        let a = account(4);
        l.insert(&a.0, &a.1);
        let bytes = l.to_bytes();
        assert_eq!(bytes.len(), ACCOUNTS_LATTICE_BYTES);
        assert_eq!(AccountsLattice::from_bytes(&bytes), Some(l));
        assert_eq!(AccountsLattice::from_bytes(&bytes[1..]), None);
        assert_eq!(
            AccountsLattice::from_bytes(&[bytes.clone(), vec![0]].concat()),
            None
        );
    }
}
