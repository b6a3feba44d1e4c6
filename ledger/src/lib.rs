//! The ledger state and its transition function (docs/protocol/transactions.md, "Stateful
//! validation").
//!
//! [`Ledger::apply_block`] takes a committed block's proposed time and its transactions in order,
//! with the results of their stateless checks, and applies the valid ones: anchor is a recent root, nullifiers are
//! unseen (including earlier in the same block), the auditor key is the one in force, the issuer
//! of a mint or redeem is registered for the asset, the transaction has not expired. An invalid
//! transaction is marked invalid with its reason — deterministically, so every validator reaches
//! the same state — and does not stall the block.
//!
//! Block time: the block's proposer chooses a time (Unix milliseconds); the ledger's time after
//! the block is the larger of that and its time before, so block times never go backwards, even
//! if a proposer's clock does. It is part of the head and of the state root.
//!
//! Governance: a block's governance transactions ([`GovernanceTx`]) are enacted after its
//! shielded transactions, in block order, so a policy change applies from the next block on. Each
//! must carry the next sequence number and the approvals of a threshold of the administrators
//! named in genesis. The policy in force (auditor key, issuers and their assets) is part of the
//! head; the state root commits to it through the chain of enacted governance transactions.
//!
//! No I/O: the node persists what this returns.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod accounts;
mod compact;
mod outcome;
mod policy;
pub mod snapshot;
mod state;
mod supply;

pub use accounts::*;
pub use compact::*;
pub use outcome::*;
pub use policy::*;
pub use state::*;
pub use supply::*;

use shoji_confidential::{Ciphertext, PublicKey};
use shoji_primitives::account::AccountTx;
use shoji_primitives::audit::AuditPublicKey;
use shoji_primitives::encoding::fr_to_bytes;
use shoji_primitives::governance::{
    GovernanceAction, GovernanceRules, GovernanceTx, IssuerRegistry,
};
use shoji_primitives::note::AssetId;
use shoji_primitives::recovery::{Escrow, Recovery};
use shoji_primitives::tree::{Frontier, TreeError};
use shoji_primitives::tx::{Transaction, TxId, TxKind};
use shoji_primitives::Fr;
use shoji_verifier::accounts::AccountTxError;
use shoji_verifier::TxError;
use std::collections::{BTreeMap, BTreeSet, VecDeque};

/// The result of applying one block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockOutcome {
    /// Height of the block.
    pub height: u64,
    /// Block time, Unix milliseconds: `max(proposed time, previous block time)`.
    pub time_ms: u64,
    /// One outcome per transaction, in block order.
    pub outcomes: Vec<TxOutcome>,
    /// Commitment-tree root after the block (a new valid anchor).
    pub tree_root: Fr,
    /// Digest of the whole ledger state after the block.
    pub state_root: [u8; 32],
    /// The block as wallets and auditors scan it.
    pub compact: CompactBlock,
    /// What happened to each governance transaction of the block, in order.
    pub governance: Vec<(TxId, TxOutcome)>,
    /// A validator-set change enacted by this block: the height after which it takes effect
    /// and the next epoch's members.
    pub validators_decided: Option<(u64, Validators)>,
    /// Set when this block is the last of its epoch: the new epoch number and its members,
    /// who order every block above this one.
    pub epoch_started: Option<(u64, Validators)>,
    /// What happened to each account transaction of the block, in order.
    pub accounts: Vec<(TxId, TxOutcome)>,
    /// The accounts the block changed, with their new state encoded
    /// ([`AccountState::to_bytes`]): what storage writes.
    pub accounts_changed: Vec<(AccountId, Vec<u8>)>,
}

/// A validator set: replica id → Ed25519 public key.
pub type Validators = BTreeMap<u16, [u8; 32]>;

/// Ledger parameters fixed at genesis.
#[derive(Clone, Debug)]
pub struct LedgerConfig {
    /// How many recent block roots are accepted as anchors.
    pub anchor_window_blocks: usize,
    /// The auditor key at genesis (governance may designate another).
    pub auditor: AuditPublicKey,
    /// Issuers (Ed25519 public keys) registered at genesis and the assets each may mint and
    /// redeem (governance may change them).
    pub issuers: IssuerRegistry,
    /// Who approves governance transactions.
    pub governance: GovernanceRules,
    /// The network's identifier (its genesis hash), which governance approvals sign.
    pub network_id: [u8; 32],
    /// The genesis validators (governance may replace them).
    pub validators: Validators,
    /// Consensus's checkpoint interval `K` and log window `L`: a validator-set change enacted
    /// at height `h` takes effect after height `round_up(h, K) + L`, the checkpoint boundary
    /// the consensus core stops the old epoch at.
    pub checkpoint_interval: u64,
    /// See `checkpoint_interval`.
    pub window_size: u64,
    /// The auditor's account-tier key every account transfer encrypts its amount to, at
    /// genesis (governance may designate another, or open accounts on a network without);
    /// `None`: the network has no confidential accounts.
    pub account_auditor: Option<PublicKey>,
}

/// Fewest validators a set may have (`n = 3f + 1` with `f = 1`).
pub const MIN_VALIDATORS: usize = 4;

/// The ledger state: commitment tree, spent nullifiers, recent roots.
#[derive(Clone, Debug)]
pub struct Ledger {
    config: LedgerConfig,
    height: u64,
    /// Time of the last applied block (Unix ms), never decreasing.
    time_ms: u64,
    frontier: Frontier,
    nullifiers: BTreeSet<[u8; 32]>,
    /// Roots of the last blocks, oldest first, with a count of each for O(log n) lookup.
    recent_roots: VecDeque<Fr>,
    root_counts: BTreeMap<[u8; 32], usize>,
    /// Running hash of every nullifier in order of revelation.
    nullifier_chain: [u8; 32],
    /// Running hash of every block's compact form.
    scan_chain: [u8; 32],
    /// The policy in force.
    policy: Policy,
    /// `frontier.root()`, kept (a root is sixteen hashes).
    tree_root: Fr,
    /// Confidential accounts.
    accounts: BTreeMap<AccountId, AccountState>,
    /// Each account's [`AccountState::to_bytes`], re-encoded when the account changes: what
    /// the lattice removes when the account changes again.
    account_bytes: BTreeMap<AccountId, Vec<u8>>,
    /// The lattice of `accounts`, updated with the accounts each block changes.
    lattice: AccountsLattice,
    /// [`accounts_root`] of `accounts`: the lattice's root.
    accounts_root: [u8; 32],
}

impl Ledger {
    /// The state at genesis (height 0, empty tree; its root is the first anchor).
    pub fn genesis(config: LedgerConfig) -> Self {
        let mut l = Self {
            policy: Policy::genesis(&config),
            config,
            height: 0,
            time_ms: 0,
            frontier: Frontier::new(),
            nullifiers: BTreeSet::new(),
            recent_roots: VecDeque::new(),
            root_counts: BTreeMap::new(),
            nullifier_chain: [0; 32],
            scan_chain: [0; 32],
            tree_root: Frontier::new().root(),
            accounts: BTreeMap::new(),
            account_bytes: BTreeMap::new(),
            lattice: AccountsLattice::new(),
            accounts_root: [0; 32],
        };
        l.remember_root(l.tree_root);
        l
    }

    /// The commitment tree's current root.
    pub fn tree_root(&self) -> Fr {
        self.tree_root
    }

    /// Height of the last applied block (0 at genesis).
    pub fn height(&self) -> u64 {
        self.height
    }

    /// Time of the last applied block, Unix milliseconds (0 at genesis).
    pub fn time_ms(&self) -> u64 {
        self.time_ms
    }

    /// The commitment tree's frontier.
    pub fn frontier(&self) -> &Frontier {
        &self.frontier
    }

    /// The genesis configuration.
    pub fn config(&self) -> &LedgerConfig {
        &self.config
    }

    /// The policy in force (auditor, issuers, governance sequence).
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// The state of account `id`, if it was opened.
    pub fn account(&self, id: &AccountId) -> Option<&AccountState> {
        self.accounts.get(id)
    }

    /// Whether `nf` has been revealed.
    pub fn is_spent(&self, nf: &Fr) -> bool {
        self.nullifiers.contains(&fr_to_bytes(nf))
    }

    /// Whether `root` is an acceptable anchor now.
    pub fn is_recent_root(&self, root: &Fr) -> bool {
        self.root_counts.contains_key(&fr_to_bytes(root))
    }

    fn remember_root(&mut self, root: Fr) {
        self.recent_roots.push_back(root);
        *self.root_counts.entry(fr_to_bytes(&root)).or_default() += 1;
        while self.recent_roots.len() > self.config.anchor_window_blocks.max(1) {
            if let Some(old) = self.recent_roots.pop_front() {
                let key = fr_to_bytes(&old);
                if let Some(c) = self.root_counts.get_mut(&key) {
                    *c -= 1;
                    if *c == 0 {
                        self.root_counts.remove(&key);
                    }
                }
            }
        }
    }

    /// The stateful checks of one transaction against the current state (and the nullifiers of
    /// earlier transactions of the same block, already inserted).
    /// The stateful checks a block would apply to `tx` if it were the next block's only
    /// transaction: what admission to the mempool refuses early.
    pub fn admissible(&self, tx: &Transaction) -> Result<(), Rejection> {
        self.check(tx, self.height + 1)
    }

    fn check(&self, tx: &Transaction, height: u64) -> Result<(), Rejection> {
        let b = tx.bundle();
        if b.network != self.config.network_id {
            return Err(Rejection::WrongNetwork);
        }
        if b.expiry_height < height {
            return Err(Rejection::Expired(b.expiry_height));
        }
        if !self.is_recent_root(&b.anchor) {
            return Err(Rejection::UnknownAnchor);
        }
        if b.nullifiers.iter().any(|nf| self.is_spent(nf)) {
            return Err(Rejection::DoubleSpend);
        }
        if b.auditor != self.policy.auditor {
            return Err(Rejection::WrongAuditor);
        }
        match tx {
            Transaction::Shield { bundle, debit, .. } => self.check_spend(
                &debit.account,
                bundle.asset,
                debit.sequence,
                debit.credits,
                &debit.spendable,
            )?,
            Transaction::Unshield { bundle, account } => {
                self.existing_account(account, bundle.asset)?;
            }
            _ => {}
        }
        if matches!(tx.kind(), TxKind::Mint | TxKind::Redeem) {
            let allowed = tx
                .issuer()
                .and_then(|i| self.policy.issuers.get(i))
                .is_some_and(|assets| assets.contains(&b.asset));
            if !allowed {
                return Err(Rejection::UnauthorizedIssuer(b.asset.0));
            }
        }
        Ok(())
    }

    /// The checks enacting `g` next would apply: what admission refuses early.
    pub fn admissible_governance(&self, g: &GovernanceTx) -> Result<(), Rejection> {
        if g.seq != self.policy.seq {
            return Err(Rejection::GovernanceSequence {
                expected: self.policy.seq,
                got: g.seq,
            });
        }
        self.check_authority(g)?;
        match &g.action {
            GovernanceAction::SetValidators { validators } => {
                self.check_validator_change(validators)?
            }
            GovernanceAction::AddValidator { id, key, address } => {
                self.check_addition(*id, key, address)?
            }
            GovernanceAction::RevokeParticipant { name } => match self.policy.registry.get(name) {
                None => {
                    return Err(Rejection::Registry(format!(
                        "no participant is registered as {name:?}"
                    )))
                }
                Some(e) if e.revoked => {
                    return Err(Rejection::Registry(format!("{name:?} is already revoked")))
                }
                Some(_) => {}
            },
            GovernanceAction::EscrowSeed { name, escrow } => self.check_escrow(name, escrow)?,
            GovernanceAction::OpenRecovery { name, .. } => self.check_open_recovery(name)?,
            GovernanceAction::CancelRecovery { name } => {
                self.open_recovery(name)?;
            }
            GovernanceAction::ReleaseShare { name, agent, .. } => {
                let r = self.open_recovery(name)?;
                let from = r.opened_at.saturating_add(self.recovery_window());
                if self.height() + 1 < from {
                    return Err(Rejection::Registry(format!(
                        "the recovery of {name:?} releases nothing before height {from} (its challenge window)"
                    )));
                }
                if r.releases.contains_key(agent) {
                    return Err(Rejection::Registry(format!(
                        "agent {agent} already released its share of {name:?}"
                    )));
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// Checks that `g` is signed by whom its action needs ([`GovernanceAction::authority`]).
    fn check_authority(&self, g: &GovernanceTx) -> Result<(), Rejection> {
        use shoji_primitives::governance::Authority;
        let unapproved =
            |e: shoji_primitives::governance::ApprovalError| Rejection::Unapproved(e.to_string());
        let network = &self.config.network_id;
        let agents = || {
            self.policy
                .recovery_agents
                .as_ref()
                .ok_or_else(|| Rejection::Registry("this network has no recovery agents".into()))
        };
        match g.action.authority() {
            Authority::Admins => g
                .check_approvals(&self.config.governance, network)
                .map_err(unapproved),
            Authority::Participant(name) => {
                let entry = self.registered(name)?;
                g.check_signed_by(&entry.participant.identity, network)
                    .map_err(unapproved)
            }
            Authority::AnyAgent => {
                let signer = g.approvals.first().map(|a| a.admin).unwrap_or_default();
                let agent = agents()?
                    .agents
                    .iter()
                    .find(|a| a.signing == signer)
                    .ok_or_else(|| {
                        Rejection::Unapproved("not signed by a recovery agent".into())
                    })?;
                g.check_signed_by(&agent.signing, network)
                    .map_err(unapproved)
            }
            Authority::Agent(i) => {
                let agent = agents()?.agents.get(i as usize).ok_or_else(|| {
                    Rejection::Registry(format!("there is no recovery agent {i}"))
                })?;
                g.check_signed_by(&agent.signing, network)
                    .map_err(unapproved)
            }
        }
    }

    /// The entry of the participant registered as `name`, not revoked.
    fn registered(&self, name: &str) -> Result<&RegistryEntry, Rejection> {
        match self.policy.registry.get(name) {
            None => Err(Rejection::Registry(format!(
                "no participant is registered as {name:?}"
            ))),
            Some(e) if e.revoked => Err(Rejection::Registry(format!("{name:?} is revoked"))),
            Some(e) => Ok(e),
        }
    }

    /// Blocks a recovery waits before releases ([`RecoveryAgents::window_blocks`]).
    fn recovery_window(&self) -> u64 {
        self.policy
            .recovery_agents
            .as_ref()
            .map_or(u64::MAX, |a| a.window_blocks)
    }

    /// An escrow the current agents can act on: made for them, one share for each, as many
    /// commitments as their threshold, while no recovery of the participant is open.
    fn check_escrow(&self, name: &str, escrow: &Escrow) -> Result<(), Rejection> {
        let entry = self.registered(name)?;
        let bad = |m: String| Err(Rejection::Registry(m));
        let Some(agents) = &self.policy.recovery_agents else {
            return bad("this network has no recovery agents".into());
        };
        if escrow.agents != agents.id() {
            return bad("the escrow is made for other recovery agents than the policy's".into());
        }
        if escrow.shares.len() != agents.agents.len()
            || escrow.commitments.len() != agents.threshold as usize
        {
            return bad(format!(
                "the escrow must hold {} shares with {} commitments",
                agents.agents.len(),
                agents.threshold
            ));
        }
        if entry.recovery.as_ref().is_some_and(|r| !r.cancelled) {
            return bad(format!(
                "a recovery of {name:?} is open: it is cancelled or completed before a new escrow"
            ));
        }
        Ok(())
    }

    /// A recovery can open: the participant has an escrow for the current agents and none is
    /// open already.
    fn check_open_recovery(&self, name: &str) -> Result<(), Rejection> {
        let entry = self.registered(name)?;
        let bad = |m: String| Err(Rejection::Registry(m));
        let current = self.policy.recovery_agents.as_ref().map(|a| a.id());
        match &entry.escrow {
            None => return bad(format!("{name:?} has escrowed no seed")),
            Some(e) if Some(e.agents) != current => {
                return bad(format!(
                "{name:?} escrowed its seed with earlier recovery agents: it escrows again first"
            ))
            }
            Some(_) => {}
        }
        if entry.recovery.as_ref().is_some_and(|r| !r.cancelled) {
            return bad(format!("a recovery of {name:?} is already open"));
        }
        Ok(())
    }

    /// The participant's open (not cancelled) recovery.
    fn open_recovery(&self, name: &str) -> Result<&Recovery, Rejection> {
        match self.registered(name)?.recovery.as_ref() {
            Some(r) if !r.cancelled => Ok(r),
            Some(_) => Err(Rejection::Registry(format!(
                "the recovery of {name:?} was cancelled"
            ))),
            None => Err(Rejection::Registry(format!(
                "no recovery of {name:?} is open"
            ))),
        }
    }

    /// Whether validator `id` with `key` at `address` can join now: no change is pending, the
    /// id and the key are new, the address is canonical, and the set stays within
    /// [`shoji_primitives::governance::MAX_VALIDATORS`]. One joiner at a time keeps the members
    /// already caught up a quorum of the next set by themselves (n ≥ 4, so f ≥ 1 there).
    fn check_addition(&self, id: u16, key: &[u8; 32], address: &str) -> Result<(), Rejection> {
        let bad = |m: &str| Err(Rejection::ValidatorSet(m.into()));
        if self.policy.next_validators.is_some() {
            return bad("a change is already pending");
        }
        if self.policy.validators.contains_key(&id) {
            return bad("the id is already a validator's");
        }
        if self.policy.validators.values().any(|k| k == key) {
            return bad("the key is already a validator's");
        }
        match ed25519_dalek::VerifyingKey::from_bytes(key) {
            Err(_) => return bad("the key is not an Ed25519 public key"),
            Ok(k) if k.is_weak() => return bad("the key is of small order (weak)"),
            Ok(_) => {}
        }
        if !shoji_primitives::governance::canonical_address(address) {
            return bad("the address is not IP:port");
        }
        if self.policy.validators.len() >= shoji_primitives::governance::MAX_VALIDATORS {
            return bad("the set is full");
        }
        Ok(())
    }

    /// Whether a change to `next` can be made now: none is pending, and `next` keeps at least
    /// [`MIN_VALIDATORS`] of the current validators with their keys and adds none (additions
    /// go one at a time through `AddValidator`, which carries the joiner's address).
    fn check_validator_change(&self, next: &Validators) -> Result<(), Rejection> {
        let bad = |m: &str| Err(Rejection::ValidatorSet(m.into()));
        if self.policy.next_validators.is_some() {
            return bad("a change is already pending");
        }
        if next.len() < MIN_VALIDATORS {
            return bad("fewer than 4 validators (n = 3f + 1 with f >= 1)");
        }
        if next
            .iter()
            .any(|(id, key)| self.policy.validators.get(id) != Some(key))
        {
            return bad(
                "this action only removes validators: add one with AddValidator, re-keying is refused",
            );
        }
        if *next == self.policy.validators {
            return bad("the set is unchanged");
        }
        Ok(())
    }

    fn enact(&mut self, g: &GovernanceTx, height: u64) -> Result<(), Rejection> {
        self.admissible_governance(g)?;
        let next = match &g.action {
            GovernanceAction::SetValidators { validators } => {
                self.check_validator_change(validators)?;
                Some(validators.clone())
            }
            GovernanceAction::AddValidator { id, key, address } => {
                self.check_addition(*id, key, address)?;
                self.policy.addresses.insert(*id, address.clone());
                let mut next = self.policy.validators.clone();
                next.insert(*id, *key);
                Some(next)
            }
            _ => None,
        };
        if let Some(next) = next {
            let k = self.config.checkpoint_interval.max(1);
            let last = height.div_ceil(k) * k + self.config.window_size;
            self.policy.next_validators = Some((last, next));
        }
        match &g.action {
            GovernanceAction::SetIssuer { issuer, assets } => {
                if assets.is_empty() {
                    self.policy.issuers.remove(issuer);
                } else {
                    self.policy.issuers.insert(*issuer, assets.clone());
                }
            }
            GovernanceAction::SetAuditor { auditor } => self.policy.auditor = *auditor,
            GovernanceAction::SetAccountAuditor { auditor } => {
                self.policy.account_auditor = Some(*auditor)
            }
            GovernanceAction::RegisterParticipant { name, participant } => {
                // The escrow and the recovery stay with the same identity; a new identity key
                // (a recovered participant's, say) starts without them: it escrows anew.
                let kept = self
                    .policy
                    .registry
                    .remove(name)
                    .filter(|e| e.participant.identity == participant.identity);
                let (escrow, recovery) = kept.map_or((None, None), |e| (e.escrow, e.recovery));
                self.policy.registry.insert(
                    name.clone(),
                    RegistryEntry {
                        participant: participant.clone(),
                        revoked: false,
                        escrow,
                        recovery,
                    },
                );
            }
            GovernanceAction::RevokeParticipant { name } => {
                if let Some(e) = self.policy.registry.get_mut(name) {
                    e.revoked = true;
                }
            }
            GovernanceAction::SetRecoveryAgents { agents } => {
                self.policy.recovery_agents = Some(agents.clone())
            }
            GovernanceAction::EscrowSeed { name, escrow } => {
                if let Some(e) = self.policy.registry.get_mut(name) {
                    e.escrow = Some(escrow.clone());
                    e.recovery = None;
                }
            }
            GovernanceAction::OpenRecovery { name, request_key } => {
                let signer = g.approvals.first().map(|a| a.admin);
                let opened_by = self
                    .policy
                    .recovery_agents
                    .as_ref()
                    .and_then(|a| a.agents.iter().position(|a| Some(a.signing) == signer))
                    .unwrap_or_default() as u8;
                if let Some(e) = self.policy.registry.get_mut(name) {
                    e.recovery = Some(Recovery {
                        request_key: *request_key,
                        opened_at: height,
                        opened_by,
                        cancelled: false,
                        releases: Default::default(),
                    });
                }
            }
            GovernanceAction::CancelRecovery { name } => {
                if let Some(r) = self
                    .policy
                    .registry
                    .get_mut(name)
                    .and_then(|e| e.recovery.as_mut())
                {
                    r.cancelled = true;
                }
            }
            GovernanceAction::ReleaseShare { name, agent, share } => {
                if let Some(r) = self
                    .policy
                    .registry
                    .get_mut(name)
                    .and_then(|e| e.recovery.as_mut())
                {
                    r.releases.insert(*agent, *share);
                }
            }
            GovernanceAction::SetValidators { .. } | GovernanceAction::AddValidator { .. } => {}
        }
        self.policy.seq += 1;
        self.policy.chain = chain_governance(&self.policy.chain, &g.id());
        Ok(())
    }

    /// Applies a committed block without governance transactions (see
    /// [`Ledger::apply_block_with_governance`]).
    pub fn apply_block(
        &mut self,
        time_ms: u64,
        txs: &[Transaction],
        stateless: &[Result<(), TxError>],
    ) -> BlockOutcome {
        self.apply_block_with_governance(time_ms, txs, stateless, &[])
    }

    /// Applies a committed block. `time_ms` is the time its proposer gave it (Unix ms; 0 for a
    /// block without one); the block's time is `max(time_ms, time of the previous block)`, so
    /// block times never decrease whatever proposers claim. `stateless[i]` is the result of
    /// stateless validation of `txs[i]` (from [`shoji_verifier::Verifier::verify_transactions`]);
    /// lengths must match. The block's governance transactions `governance` are enacted after
    /// its shielded transactions, in order; a policy change therefore applies from the next
    /// block.
    pub fn apply_block_with_governance(
        &mut self,
        time_ms: u64,
        txs: &[Transaction],
        stateless: &[Result<(), TxError>],
        governance: &[GovernanceTx],
    ) -> BlockOutcome {
        self.apply_block_full(time_ms, txs, stateless, &[], &[], governance)
    }

    /// Applies a committed block with account transactions: its shielded transactions, then
    /// its account transactions (`accounts`, with `accounts_stateless[i]` the result of
    /// [`shoji_verifier::accounts::verify_account_txs`] for `accounts[i]`), then its
    /// governance transactions, each in block order.
    pub fn apply_block_full(
        &mut self,
        time_ms: u64,
        txs: &[Transaction],
        stateless: &[Result<(), TxError>],
        accounts: &[AccountTx],
        accounts_stateless: &[Result<(), AccountTxError>],
        governance: &[GovernanceTx],
    ) -> BlockOutcome {
        let height = self.height + 1;
        let time_ms = time_ms.max(self.time_ms);
        let mut outcomes = Vec::with_capacity(txs.len());
        let mut compact = Vec::new();
        let mut rejected = Vec::new();
        let mut changed = BTreeSet::new();
        for (i, tx) in txs.iter().enumerate() {
            let outcome = match stateless.get(i) {
                Some(Err(e)) => TxOutcome::Rejected(Rejection::Stateless(e.to_string())),
                None => TxOutcome::Rejected(Rejection::Stateless("not verified".into())),
                Some(Ok(())) => match self.check(tx, height).and_then(|()| self.apply(tx)) {
                    Ok(first_leaf) => {
                        let c = CompactTx::of(tx);
                        if let Some(id) = AccountState::bridged(&c) {
                            if let Some(a) = self.accounts.get_mut(&id) {
                                a.follow_bridge(&id, &c);
                                changed.insert(id);
                            }
                        }
                        compact.push(c);
                        TxOutcome::Applied { first_leaf }
                    }
                    Err(r) => TxOutcome::Rejected(r),
                },
            };
            if let TxOutcome::Rejected(why) = &outcome {
                rejected.push(CompactRejection::of(tx, why));
            }
            outcomes.push(outcome);
        }
        let mut account_outcomes = Vec::with_capacity(accounts.len());
        let mut compact_accounts = Vec::new();
        for (i, tx) in accounts.iter().enumerate() {
            let outcome = match accounts_stateless.get(i) {
                Some(Err(e)) => Err(Rejection::Stateless(e.to_string())),
                None => Err(Rejection::Stateless("not verified".into())),
                Some(Ok(())) => self.apply_account(tx, height, &mut changed),
            };
            let outcome = match outcome {
                Ok(()) => {
                    compact_accounts.push(tx.clone());
                    TxOutcome::Applied { first_leaf: 0 }
                }
                Err(why) => {
                    rejected.push(CompactRejection {
                        auth_id: tx.auth_id(),
                        code: why.code(),
                    });
                    TxOutcome::Rejected(why)
                }
            };
            account_outcomes.push((tx.id(), outcome));
        }
        let accounts_changed: Vec<(AccountId, Vec<u8>)> = changed
            .into_iter()
            .filter_map(|id| self.accounts.get(&id).map(|a| (id, a.to_bytes())))
            .collect();
        if !accounts_changed.is_empty() {
            for (id, bytes) in &accounts_changed {
                let key = id.to_bytes();
                if let Some(old) = self.account_bytes.insert(*id, bytes.clone()) {
                    self.lattice.remove(&key, &old);
                }
                self.lattice.insert(&key, bytes);
            }
            self.accounts_root = self.lattice.root();
        }
        let pending_before = self.policy.next_validators.is_some();
        let governance: Vec<(TxId, TxOutcome)> = governance
            .iter()
            .map(|g| {
                let outcome = match self.enact(g, height) {
                    Ok(()) => TxOutcome::Enacted,
                    Err(r) => TxOutcome::Rejected(r),
                };
                (g.id(), outcome)
            })
            .collect();
        let validators_decided = match pending_before {
            false => self.policy.next_validators.clone(),
            true => None,
        };
        let epoch_started = match self.policy.next_validators.take() {
            Some((last, next)) if last == height => {
                self.policy.validators = next;
                self.policy.epoch += 1;
                self.policy.epoch_start = height;
                Some((self.policy.epoch, self.policy.validators.clone()))
            }
            other => {
                self.policy.next_validators = other;
                None
            }
        };
        self.height = height;
        self.time_ms = time_ms;
        let tree_root = self.frontier.root();
        self.tree_root = tree_root;
        self.remember_root(tree_root);
        let compact = CompactBlock {
            height,
            time_ms,
            txs: compact,
            tree_root,
            rejected,
            accounts: compact_accounts,
        };
        self.scan_chain = chain_compact(&self.scan_chain, &compact.to_bytes());
        BlockOutcome {
            height,
            time_ms,
            outcomes,
            tree_root,
            state_root: self.state_root(),
            compact,
            governance,
            validators_decided,
            epoch_started,
            accounts: account_outcomes,
            accounts_changed,
        }
    }

    /// The stateful checks of an account transaction against the current state: what
    /// admission refuses early.
    pub fn admissible_account(&self, tx: &AccountTx) -> Result<(), Rejection> {
        self.check_account(tx, self.height + 1).map(|_| ())
    }

    /// Checks `tx` against the state; for a mint, returns the nullifier that applying it
    /// records.
    fn check_account(&self, tx: &AccountTx, height: u64) -> Result<Option<[u8; 32]>, Rejection> {
        let auditor = self
            .policy
            .account_auditor
            .ok_or(Rejection::AccountsDisabled)?;
        let existing = |key: &PublicKey| self.existing_account(key, tx.asset());
        let spend =
            |key: &PublicKey, sequence: u64, credits: u64, spendable: &Ciphertext, expiry: u64| {
                if expiry < height {
                    return Err(Rejection::Expired(expiry));
                }
                self.check_spend(key, tx.asset(), sequence, credits, spendable)
            };
        let issuer_may = |issuer: &[u8; 32]| match self
            .policy
            .issuers
            .get(issuer)
            .is_some_and(|assets| assets.contains(&tx.asset()))
        {
            true => Ok(()),
            false => Err(Rejection::UnauthorizedIssuer(tx.asset().0)),
        };
        match tx {
            AccountTx::Open(o) => {
                match self.accounts.contains_key(&AccountId::new(&o.key, o.asset)) {
                    true => Err(Rejection::AccountExists),
                    false => Ok(None),
                }
            }
            AccountTx::Transfer(t) => {
                let h = &t.header;
                if h.auditor != auditor {
                    return Err(Rejection::WrongAuditor);
                }
                spend(
                    &h.sender,
                    h.sequence,
                    h.credits,
                    &h.spendable,
                    h.expiry_height,
                )?;
                existing(&h.receiver)?;
                Ok(None)
            }
            AccountTx::Mint(m) => {
                issuer_may(&m.issuer)?;
                existing(&m.account)?;
                let nf = mint_nullifier(&tx.id());
                if self.nullifiers.contains(&nf) {
                    return Err(Rejection::DoubleSpend);
                }
                Ok(Some(nf))
            }
            AccountTx::Redeem(r) => {
                let h = &r.header;
                issuer_may(&h.issuer)?;
                spend(
                    &h.account,
                    h.sequence,
                    h.credits,
                    &h.spendable,
                    h.expiry_height,
                )?;
                Ok(None)
            }
        }
    }

    fn existing_account(
        &self,
        key: &PublicKey,
        asset: AssetId,
    ) -> Result<&AccountState, Rejection> {
        self.accounts
            .get(&AccountId::new(key, asset))
            .ok_or(Rejection::UnknownAccount)
    }

    /// The checks of a debit of the account `(key, asset)`: it exists, `sequence` is its next
    /// number, and `spendable` is its balance with `credits` credits.
    fn check_spend(
        &self,
        key: &PublicKey,
        asset: AssetId,
        sequence: u64,
        credits: u64,
        spendable: &Ciphertext,
    ) -> Result<(), Rejection> {
        let a = self.existing_account(key, asset)?;
        if sequence != a.sequence {
            return Err(Rejection::AccountSequence {
                expected: a.sequence,
                got: sequence,
            });
        }
        if a.spendable(credits).as_ref() != Some(spendable) {
            return Err(Rejection::StaleBalance(credits));
        }
        Ok(())
    }

    fn apply_account(
        &mut self,
        tx: &AccountTx,
        height: u64,
        changed: &mut BTreeSet<AccountId>,
    ) -> Result<(), Rejection> {
        let nullifier = self.check_account(tx, height)?;
        if let AccountTx::Open(o) = tx {
            let id = AccountId::new(&o.key, o.asset);
            self.accounts.insert(id, AccountState::new());
            changed.insert(id);
        }
        let mut touched = AccountState::touched(tx);
        touched.dedup();
        for id in touched {
            if let Some(a) = self.accounts.get_mut(&id) {
                a.follow(&id, tx);
                changed.insert(id);
            }
        }
        if let Some(nf) = nullifier {
            self.nullifiers.insert(nf);
            self.nullifier_chain = chain_nullifier(&self.nullifier_chain, &nf);
        }
        Ok(())
    }

    fn apply(&mut self, tx: &Transaction) -> Result<u64, Rejection> {
        let b = tx.bundle();
        if self.frontier.size() + 2 > shoji_primitives::tree::CAPACITY {
            return Err(Rejection::TreeFull);
        }
        for nf in &b.nullifiers {
            let bytes = fr_to_bytes(nf);
            self.nullifiers.insert(bytes);
            self.nullifier_chain = chain_nullifier(&self.nullifier_chain, &bytes);
        }
        let first_leaf = self.frontier.size();
        for cm in &b.commitments {
            self.frontier
                .append(*cm)
                .map_err(|_: TreeError| Rejection::TreeFull)?;
        }
        Ok(first_leaf)
    }

    /// Digest of the state ([`StateOpening::root`]): height, block time, tree size and root,
    /// the chains of revealed nullifiers, governance transactions and compact blocks, the
    /// validator sets, the anchors, the policy and the accounts.
    pub fn state_root(&self) -> [u8; 32] {
        let policy = (self.policy.seq > 0).then_some(&self.policy);
        StateOpening {
            height: self.height,
            time_ms: self.time_ms,
            tree_size: self.frontier.size(),
            tree_root: self.tree_root,
            nullifier_chain: self.nullifier_chain,
            governance_chain: self.policy.chain,
            scan_chain: self.scan_chain,
            validators: validators_commitment(policy),
            recent_roots: recent_roots_hash(self.recent_roots.iter()),
            policy: policy_hash(policy),
            accounts: self.accounts_root,
        }
        .root()
    }

    /// The head: everything but the nullifier set and the accounts.
    pub fn head(&self) -> LedgerHead {
        LedgerHead {
            height: self.height,
            time_ms: self.time_ms,
            frontier: self.frontier.clone(),
            recent_roots: self.recent_roots.iter().copied().collect(),
            nullifier_chain: self.nullifier_chain,
            scan_chain: self.scan_chain,
            policy: (self.policy.seq > 0).then(|| self.policy.clone()),
            accounts_root: self.accounts_root,
        }
    }

    /// Every confidential account, in id order.
    pub fn accounts(&self) -> &BTreeMap<AccountId, AccountState> {
        &self.accounts
    }

    /// Rebuilds a ledger from its configuration and a snapshot.
    pub fn restore(config: LedgerConfig, snapshot: LedgerSnapshot) -> Result<Self, RestoreError> {
        let LedgerSnapshot {
            head,
            nullifiers,
            accounts,
        } = snapshot;
        let window = config.anchor_window_blocks.max(1);
        if head.recent_roots.is_empty() {
            return Err(RestoreError::NoRoots);
        }
        if head.recent_roots.len() > window {
            return Err(RestoreError::TooManyRoots {
                got: head.recent_roots.len(),
                window,
            });
        }
        let tree_root = head.frontier.root();
        if head.recent_roots.last() != Some(&tree_root) {
            return Err(RestoreError::RootMismatch);
        }
        let account_bytes: BTreeMap<AccountId, Vec<u8>> =
            accounts.iter().map(|(id, a)| (*id, a.to_bytes())).collect();
        let mut lattice = AccountsLattice::new();
        for (id, bytes) in &account_bytes {
            lattice.insert(&id.to_bytes(), bytes);
        }
        if lattice.root() != head.accounts_root {
            return Err(RestoreError::AccountsMismatch);
        }
        let mut l = Self {
            tree_root,
            policy: head.policy.unwrap_or_else(|| Policy::genesis(&config)),
            config,
            height: head.height,
            time_ms: head.time_ms,
            frontier: head.frontier,
            nullifiers,
            recent_roots: VecDeque::new(),
            root_counts: BTreeMap::new(),
            nullifier_chain: head.nullifier_chain,
            scan_chain: head.scan_chain,
            accounts,
            account_bytes,
            lattice,
            accounts_root: head.accounts_root,
        };
        for r in head.recent_roots {
            l.remember_root(r);
        }
        Ok(l)
    }
}

/// The value a mint into an account leaves in the nullifier set, so that the same mint is
/// applied once: a hash of its id, in a domain of its own.
pub fn mint_nullifier(id: &TxId) -> [u8; 32] {
    blake3::derive_key("shoji 2026 account mint nullifier v1", &id.0)
}

#[cfg(test)]
mod account_tests;
#[cfg(test)]
mod tests;
