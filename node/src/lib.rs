//! The validator's core: a PBFT [`Replica`], the [`Ledger`] state transition, the stateless
//! [`Verifier`] and the redb [`Store`], glued without I/O of its own beyond the store.
//!
//! The host (network and clock adapters) feeds [`NodeCore`] peer messages, timer expiries and
//! client transactions, tells it the wall-clock time before each ([`NodeCore::set_now_ms`]), and
//! carries out the returned [`Output`]s. Inside, every consensus action is handled in the order
//! the replica emitted it: persistence is written to the store before any message that follows
//! it is returned for sending (the replica emits `Persist` before the vote it covers), and each
//! committed block is verified, applied and stored in one store write transaction before the
//! replica is told its state root.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub use shoji_client::api;
pub mod devnet;
pub mod host;

use shoji_consensus::{Action, Config, Replica, ReplicaId, TimerKind, ValidatorSet};
use shoji_ledger::{Ledger, LedgerConfig, Rejection, TxOutcome};
use shoji_primitives::encoding::EncodingError;
use shoji_primitives::tx::{Transaction, TxId};
use shoji_store::{CommittedBlock, Store, StoreError};
use shoji_verifier::{TxError, Verifier};
use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

/// What every validator agrees on before the first block.
#[derive(Clone, Debug)]
pub struct Genesis {
    /// The first epoch's validators.
    pub validators: ValidatorSet,
    /// Auditor, issuers and anchor window.
    pub ledger: LedgerConfig,
}

/// Something the host must do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Output {
    /// Send these bytes to one validator.
    Send {
        /// Recipient.
        to: ReplicaId,
        /// An encoded consensus message.
        bytes: Vec<u8>,
    },
    /// Send these bytes to every other validator.
    Broadcast {
        /// An encoded consensus message.
        bytes: Vec<u8>,
    },
    /// Call [`NodeCore::on_timer`] with `kind` after `after_ms` (replacing a running one).
    SetTimer {
        /// Which timer.
        kind: TimerKind,
        /// Delay.
        after_ms: u64,
    },
    /// Stop the timer `kind`.
    CancelTimer {
        /// Which timer.
        kind: TimerKind,
    },
    /// A block was committed, applied and stored.
    Committed {
        /// Its height.
        height: u64,
        /// The ledger's state root after it.
        state_root: [u8; 32],
        /// What happened to each decodable transaction, in block order.
        outcomes: Vec<(TxId, TxOutcome)>,
    },
    /// Ask validator `from` for committed blocks from `from_height` (state transfer).
    RequestStateTransfer {
        /// The peer.
        from: ReplicaId,
        /// First height wanted.
        from_height: u64,
    },
}

/// Failures of the node itself (not of the input it was given).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NodeError {
    /// Storage failed; the node must stop rather than vote without persisting.
    #[error("storage: {0}")]
    Store(#[from] StoreError),
    /// The consensus configuration or key is invalid.
    #[error("consensus: {0}")]
    Consensus(#[from] shoji_consensus::Error),
    /// The stored ledger could not be restored.
    #[error("restoring the ledger: {0}")]
    Restore(String),
}

/// Why a submitted transaction was refused before ordering.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum SubmitError {
    /// The bytes are not a transaction.
    #[error("malformed transaction: {0}")]
    Malformed(#[from] EncodingError),
    /// Stateless validation failed.
    #[error("invalid transaction: {0}")]
    Invalid(#[from] TxError),
    /// A nullifier is already spent.
    #[error("double spend: a nullifier of this transaction is already spent")]
    DoubleSpend,
    /// The anchor is not a recent root.
    #[error("unknown or expired anchor: sync and rebuild the transaction")]
    UnknownAnchor,
    /// Another stateful check of block execution would fail (issuer, auditor, expiry).
    #[error("{0}")]
    Stateful(Rejection),
}

/// Bound on the cache of stateless results.
const VERIFIED_CACHE_MAX: usize = 100_000;

/// One validator's state machine with its storage.
pub struct NodeCore {
    replica: Replica,
    ledger: Ledger,
    verifier: Arc<Verifier>,
    store: Store,
    /// Stateless results by transaction id, so a transaction verified at admission is not
    /// verified again when its block commits.
    verified: BTreeMap<TxId, Result<(), TxError>>,
}

impl NodeCore {
    /// Opens the node on `store` (fresh or after a restart) and returns the actions of
    /// [`Replica::start`].
    pub fn open(
        store: Store,
        genesis: &Genesis,
        key: ed25519_dalek_key::SigningKey,
        verifier: Arc<Verifier>,
    ) -> Result<(Self, Vec<Output>), NodeError> {
        let (ledger, persisted) = match store.load()? {
            Some(rec) => (
                Ledger::restore(genesis.ledger.clone(), rec.ledger)
                    .map_err(|e| NodeError::Restore(e.to_string()))?,
                Some(rec.consensus),
            ),
            None => (Ledger::genesis(genesis.ledger.clone()), None),
        };
        let replica = Replica::new(Config::new(genesis.validators.clone()), key, persisted)?;
        let mut node = Self {
            replica,
            ledger,
            verifier,
            store,
            verified: BTreeMap::new(),
        };
        let actions = node.replica.start();
        let out = node.process(actions)?;
        Ok((node, out))
    }

    /// This validator's id.
    pub fn id(&self) -> ReplicaId {
        self.replica.id()
    }

    /// The ledger.
    pub fn ledger(&self) -> &Ledger {
        &self.ledger
    }

    /// The store (for serving reads).
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The current wall-clock time in Unix milliseconds; the host calls it before each input.
    /// The replica stamps it on the blocks it proposes and refuses proposed blocks too far
    /// ahead of it (see [`Replica::set_now_ms`]).
    pub fn set_now_ms(&mut self, now_ms: u64) {
        self.replica.set_now_ms(now_ms);
    }

    /// A message from validator `from`. Malformed or invalid messages are counted by the replica
    /// and otherwise ignored.
    pub fn on_peer_bytes(
        &mut self,
        from: ReplicaId,
        bytes: &[u8],
    ) -> Result<Vec<Output>, NodeError> {
        let actions = self.replica.on_message_bytes(from, bytes);
        self.process(actions)
    }

    /// A timer fired.
    pub fn on_timer(&mut self, kind: TimerKind) -> Result<Vec<Output>, NodeError> {
        let actions = self.replica.on_timer(kind);
        self.process(actions)
    }

    /// A client's transaction: decoded, checked statelessly and against the current state, then
    /// handed to consensus.
    pub fn submit(
        &mut self,
        bytes: Vec<u8>,
    ) -> Result<Result<Vec<Output>, SubmitError>, NodeError> {
        let tx = match Transaction::from_bytes(&bytes) {
            Ok(tx) => tx,
            Err(e) => return Ok(Err(e.into())),
        };
        let id = tx.id();
        let result = match self.verified.get(&id) {
            Some(r) => r.clone(),
            None => {
                let r = self.verifier.verify_transaction(&tx);
                self.remember(id, r.clone());
                r
            }
        };
        if let Err(e) = result {
            return Ok(Err(e.into()));
        }
        match self.ledger.admissible(&tx) {
            Ok(()) => {}
            Err(Rejection::DoubleSpend) => return Ok(Err(SubmitError::DoubleSpend)),
            Err(Rejection::UnknownAnchor) => return Ok(Err(SubmitError::UnknownAnchor)),
            Err(r) => return Ok(Err(SubmitError::Stateful(r))),
        }
        let actions = self.replica.on_client_request(bytes);
        Ok(Ok(self.process(actions)?))
    }

    fn remember(&mut self, id: TxId, r: Result<(), TxError>) {
        if self.verified.len() >= VERIFIED_CACHE_MAX {
            self.verified.clear();
        }
        self.verified.insert(id, r);
    }

    fn process(&mut self, actions: Vec<Action>) -> Result<Vec<Output>, NodeError> {
        let mut queue: VecDeque<Action> = actions.into();
        let mut out = Vec::new();
        while let Some(action) = queue.pop_front() {
            match action {
                // Durable before anything after it leaves (MUST rule of DESIGN §5).
                Action::Persist(delta) => {
                    self.store.persist_consensus(&[delta])?;
                }
                Action::Send { to, msg } => out.push(Output::Send {
                    to,
                    bytes: msg.encode(),
                }),
                Action::Broadcast { msg } => out.push(Output::Broadcast {
                    bytes: msg.encode(),
                }),
                Action::SetTimer { kind, after_ms } => {
                    out.push(Output::SetTimer { kind, after_ms })
                }
                Action::CancelTimer { kind } => out.push(Output::CancelTimer { kind }),
                Action::RequestStateTransfer { from, from_height } => {
                    out.push(Output::RequestStateTransfer { from, from_height })
                }
                Action::Commit { block, certificate } => {
                    let (committed, more) = self.execute(&block, &certificate)?;
                    out.push(committed);
                    queue.extend(more);
                }
                // Validator-set changes: the host restarts the replica for the next epoch; not
                // wired yet (see the issue notes).
                Action::EpochChange { .. } => {}
            }
        }
        Ok(out)
    }

    /// Verifies (stateless, batched, cached), applies and stores one committed block.
    fn execute(
        &mut self,
        block: &shoji_consensus::Block,
        certificate: &shoji_consensus::CommitCertificate,
    ) -> Result<(Output, Vec<Action>), NodeError> {
        let txs: Vec<Transaction> = block
            .transactions
            .iter()
            .filter_map(|b| Transaction::from_bytes(b).ok())
            .collect();
        let ids: Vec<TxId> = txs.iter().map(Transaction::id).collect();
        let cached: Vec<Option<Result<(), TxError>>> = ids
            .iter()
            .map(|id| self.verified.get(id).cloned())
            .collect();
        let missing: Vec<Transaction> = txs
            .iter()
            .zip(&cached)
            .filter(|(_, c)| c.is_none())
            .map(|(t, _)| *t)
            .collect();
        let mut fresh = self.verifier.verify_transactions(&missing).into_iter();
        let mut stateless = Vec::with_capacity(txs.len());
        for (id, c) in ids.iter().zip(cached) {
            let r = match c {
                Some(r) => r,
                None => {
                    let r = fresh.next().unwrap_or(Err(TxError::Proof(
                        shoji_verifier::VerificationError::InvalidProof,
                    )));
                    self.remember(*id, r.clone());
                    r
                }
            };
            stateless.push(r);
        }
        let outcome = self.ledger.apply_block(block.time_ms, &txs, &stateless);
        let head = self.ledger.head();
        self.store.commit_block(&CommittedBlock {
            block,
            certificate,
            transactions: &txs,
            outcome: &outcome,
            ledger: &head,
        })?;
        let committed = Output::Committed {
            height: outcome.height,
            state_root: outcome.state_root,
            outcomes: ids
                .into_iter()
                .zip(outcome.outcomes.iter().cloned())
                .collect(),
        };
        let more = self
            .replica
            .on_block_executed(block.height, outcome.state_root, None);
        Ok((committed, more))
    }
}

/// The signing-key type validators use (re-exported from the consensus crate).
pub mod ed25519_dalek_key {
    pub use shoji_consensus::ed25519_dalek::SigningKey;
}
