//! Validator-set epochs: the replica configuration of the ledger's current epoch, and the
//! switch to a new replica when governance's change takes effect.

use super::*;

/// The validator set of `epoch` (counted from genesis's) with these members.
pub(super) fn validator_set(
    genesis: &Genesis,
    epoch: u64,
    members: &shoji_ledger::Validators,
) -> Result<ValidatorSet, NodeError> {
    let members = members
        .iter()
        .map(|(id, key)| {
            shoji_consensus::ed25519_dalek::VerifyingKey::from_bytes(key)
                .map(|k| (ReplicaId(*id), k))
                .map_err(|e| NodeError::Restore(format!("validator {id} key: {e}")))
        })
        .collect::<Result<BTreeMap<_, _>, _>>()?;
    Ok(ValidatorSet::new(genesis.validators.epoch + epoch, members)?.on_network(genesis.hash()))
}

/// The replica configuration of the ledger's current epoch: genesis's, or the validators
/// governance installed, starting from the checkpoint at the last block of the previous
/// epoch. That checkpoint carries no signatures: every validator derives it alike from its
/// own executed chain (height, block hash, state root), and a replica only compares its
/// epoch's start with others', never verifies it.
pub(super) fn epoch_config(
    genesis: &Genesis,
    tuning: &Tuning,
    ledger: &Ledger,
    store: &Store,
) -> Result<Config, NodeError> {
    let mut config = genesis.consensus_config(tuning);
    let p = ledger.policy();
    if p.epoch == 0 {
        return Ok(config);
    }
    let h = p.epoch_start;
    config.validators = validator_set(genesis, p.epoch, &p.validators)?;
    // A store that started from a snapshot taken after the epoch began starts the epoch from
    // the snapshot's (signed) checkpoint.
    if let Some((base, _)) = store.base()? {
        if h < base {
            config.start_checkpoint = store.checkpoint(base)?.ok_or_else(|| {
                NodeError::Restore(format!(
                    "the checkpoint of the snapshot height {base} is missing"
                ))
            })?;
            return Ok(config);
        }
    }
    let (block, _) = store.block(h)?.ok_or_else(|| {
        NodeError::Restore(format!(
            "block {h}, where epoch {} began, is missing",
            p.epoch
        ))
    })?;
    let state_root = store
        .state_root(h)?
        .ok_or_else(|| NodeError::Restore(format!("the state root of block {h} is missing")))?;
    config.start_checkpoint = shoji_consensus::CheckpointCertificate {
        height: h,
        block_hash: block.hash(),
        state_root,
        signatures: Vec::new(),
    };
    Ok(config)
}

impl NodeCore {
    /// Addresses of the validators governance added (replica id → `IP:port`).
    pub fn added_validator_addresses(&self) -> BTreeMap<ReplicaId, String> {
        self.ledger
            .policy()
            .addresses
            .iter()
            .map(|(id, a)| (ReplicaId(*id), a.clone()))
            .collect()
    }

    /// The validators the transport should know: the current epoch's and, when a change is
    /// decided, the next one's (replica id → key).
    pub fn known_validators(&self) -> BTreeMap<ReplicaId, [u8; 32]> {
        let p = self.ledger.policy();
        let mut all: BTreeMap<ReplicaId, [u8; 32]> = p
            .validators
            .iter()
            .map(|(id, k)| (ReplicaId(*id), *k))
            .collect();
        if let Some((_, next)) = &p.next_validators {
            all.extend(next.iter().map(|(id, k)| (ReplicaId(*id), *k)));
        }
        all
    }

    /// Whether this validator is still catching up to the epoch that adds it (see
    /// [`NodeCore::open_joining`]).
    pub fn is_learner(&self) -> bool {
        self.replica.is_learner()
    }

    /// Whether this validator left the validator set (by governance) while running: it keeps
    /// serving reads and committed blocks but no longer orders.
    pub fn is_retired(&self) -> bool {
        self.retired
    }

    /// Starts the epoch the last executed block opened: a new replica for its validators
    /// from the checkpoint at that block, with the transactions still waiting to be ordered;
    /// or, if this validator is not among them, retires.
    pub(super) fn switch_epoch(&mut self) -> Result<(Vec<Output>, Vec<Action>), NodeError> {
        let mut config = epoch_config(&self.genesis, &self.tuning, &self.ledger, &self.store)?;
        config.payload_check = self.payloads.shape_check();
        let epoch = config.validators.epoch;
        let members: Vec<ReplicaId> = config.validators.members.keys().copied().collect();
        let start = config.start_checkpoint.clone();
        let fresh = PersistedState {
            stable_checkpoint: start.clone(),
            last_committed: start.height,
            last_committed_hash: start.block_hash,
            ..PersistedState::genesis()
        };
        self.store.store_consensus_state(&fresh)?;
        let announce = Output::EpochChanged {
            epoch,
            validators: members.clone(),
        };
        let member = config.validators.id_of(&self.key.verifying_key()).is_some();
        if !member && self.replica.is_learner() {
            // Still catching up to the epoch that adds it.
            let id = self.replica.id();
            let mut replica = Replica::new_learner(config, self.key.clone(), id, None)?;
            replica.inherit_committed(&self.replica);
            self.replica = replica;
            return Ok((vec![announce], self.replica.start()));
        }
        if !member {
            tracing::warn!(
                epoch,
                height = start.height,
                "this validator is not in the new validator set: it stops ordering"
            );
            self.retired = true;
            return Ok((vec![announce], Vec::new()));
        }
        if self.replica.is_learner() {
            tracing::info!(epoch, height = start.height, "joined the validator set");
        }
        let waiting = self.replica.pending_requests();
        let mut replica = Replica::new(config, self.key.clone(), None)?;
        // The old epoch's commits are still refused if replayed.
        replica.inherit_committed(&self.replica);
        self.replica = replica;
        self.seen_view = (self.replica.view(), self.replica.is_view_changing());
        tracing::info!(
            epoch,
            height = start.height,
            validators = ?members.iter().map(|r| r.0).collect::<Vec<_>>(),
            "new validator-set epoch"
        );
        let mut actions = self.replica.start();
        if !waiting.is_empty() {
            actions.extend(self.replica.on_client_requests(waiting));
        }
        Ok((vec![announce], actions))
    }
}
