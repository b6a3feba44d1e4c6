//! The genesis: what every validator agrees on before the first block, and its hash (the
//! network's identifier). The consensus parameters it holds and a validator's local tuning
//! are defined once, in the consensus crate.

use crate::payload::{transaction_shape, MAX_BLOCK_BYTES, MAX_PAYLOAD_BYTES};
use crate::wire;
use shoji_consensus::{Config, PayloadCheck, ValidatorSet};
pub use shoji_consensus::{ConsensusParams, Tuning};
use shoji_ledger::LedgerConfig;

/// What every validator agrees on before the first block.
#[derive(Clone, Debug)]
pub struct Genesis {
    /// The first epoch's validators.
    pub validators: ValidatorSet,
    /// Auditor, issuers, governance administrators and anchor window (its `network_id`,
    /// `validators`, `checkpoint_interval` and `window_size` are ignored:
    /// [`Genesis::ledger_config`] sets them from the rest of the genesis).
    pub ledger: LedgerConfig,
    /// Consensus parameters every validator must share.
    pub consensus: ConsensusParams,
    /// The transfer circuit's verifying key, pinned: blake3 of its compressed encoding
    /// ([`shoji_params::verifying_key_hash`]). Validators load no other.
    pub verifying_key_hash: [u8; 32],
    /// Marked insecure (development keys or parameters): the only kind of network that may
    /// pin the development verifying key, whose trapdoor is public.
    pub insecure: bool,
}

impl Genesis {
    /// A genesis with the default consensus parameters, on the development parameters and
    /// therefore marked insecure.
    pub fn new(validators: ValidatorSet, ledger: LedgerConfig) -> Genesis {
        Genesis {
            validators,
            ledger,
            consensus: ConsensusParams::default(),
            verifying_key_hash: shoji_params::dev_verifying_key_hash(),
            insecure: true,
        }
    }

    /// Refuses a genesis that pins the development verifying key without being marked
    /// insecure: anyone can forge proofs under that key.
    pub fn check_parameters(&self) -> Result<(), String> {
        if self.verifying_key_hash == shoji_params::dev_verifying_key_hash() && !self.insecure {
            return Err("this genesis pins the development verifying key, whose trapdoor anyone can recompute, and is not marked insecure: run a ceremony (shoji-ceremony) and create the network with `shoji-node init --params DIR`, or mark a test network `insecure`".into());
        }
        Ok(())
    }

    /// The ledger's configuration, identified by this genesis's hash (which governance
    /// approvals sign, so they are worthless on any other network).
    pub fn ledger_config(&self) -> LedgerConfig {
        LedgerConfig {
            network_id: self.hash(),
            validators: self
                .validators
                .members
                .iter()
                .map(|(id, key)| (id.0, key.to_bytes()))
                .collect(),
            checkpoint_interval: self.consensus.checkpoint_interval,
            window_size: self.consensus.window_size,
            ..self.ledger.clone()
        }
    }

    /// blake3 over a canonical encoding of everything validators must agree on (validator ids
    /// and keys, ledger configuration, governance administrators, consensus parameters; not
    /// the addresses, which may change). The store records it and refuses to open for another
    /// genesis; it is also the network's identifier.
    pub fn hash(&self) -> [u8; 32] {
        let mut h = blake3::Hasher::new();
        h.update(b"shoji.genesis.v3");
        h.update(&self.verifying_key_hash);
        h.update(&[u8::from(self.insecure)]);
        h.update(&self.validators.epoch.to_le_bytes());
        h.update(&(self.validators.members.len() as u64).to_le_bytes());
        for (id, key) in &self.validators.members {
            h.update(&id.0.to_le_bytes());
            h.update(key.as_bytes());
        }
        h.update(&(self.ledger.anchor_window_blocks as u64).to_le_bytes());
        h.update(&self.ledger.auditor.to_bytes());
        h.update(&(self.ledger.issuers.len() as u64).to_le_bytes());
        for (key, assets) in &self.ledger.issuers {
            h.update(key);
            h.update(&(assets.len() as u64).to_le_bytes());
            for a in assets {
                h.update(&a.0.to_le_bytes());
            }
        }
        // Only networks with accounts hash the key, so the others keep their identifiers.
        if let Some(a) = &self.ledger.account_auditor {
            h.update(b"account auditor");
            h.update(&a.to_bytes());
        }
        let g = &self.ledger.governance;
        h.update(&(g.threshold as u64).to_le_bytes());
        h.update(&(g.admins.len() as u64).to_le_bytes());
        for a in &g.admins {
            h.update(a);
        }
        let c = &self.consensus;
        for v in [
            c.checkpoint_interval,
            c.window_size,
            c.max_batch_txs as u64,
            c.max_clock_skew_ms,
        ] {
            h.update(&v.to_le_bytes());
        }
        *h.finalize().as_bytes()
    }

    /// The replica configuration for this genesis with a validator's local `tuning`.
    pub fn consensus_config(&self, tuning: &Tuning) -> Config {
        let mut c = Config::new(self.validators.clone().on_network(self.hash()))
            .with_params(&self.consensus)
            .with_tuning(tuning);
        c.max_state_transfer_blocks = c.max_state_transfer_blocks.min(wire::MAX_TRANSFER_BLOCKS);
        c.max_tx_bytes = MAX_PAYLOAD_BYTES;
        c.max_block_bytes = MAX_BLOCK_BYTES;
        // The consensus message travels in a peer frame behind a one-byte tag.
        c.max_message_bytes = wire::MAX_PEER_MESSAGE_BYTES - 1;
        c.payload_check = PayloadCheck(transaction_shape);
        c
    }
}
