//! Quorum certificates: commit certificates (proof a block is final), prepared
//! certificates (carried in VIEW-CHANGE) and checkpoint certificates (stable checkpoints).
//!
//! Signature lists are canonical: strictly ascending by signer, which also rules out
//! duplicate signers.

use ed25519_dalek::Signature;
use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::message::{verify_ref, CheckpointVote, MessageRef, SignedProposal, Vote};
use crate::types::{
    Block, BlockHash, BlockHeader, Height, ReplicaId, StateRoot, ValidatorSet, View,
};

/// Proof that a block is committed: a quorum (`2f + 1`) of COMMIT signatures on
/// (`view`, block height, block hash) by distinct validators.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommitCertificate {
    /// View in which the COMMIT votes were cast.
    pub view: View,
    /// (signer, signature) pairs, strictly ascending by signer.
    pub signatures: Vec<(ReplicaId, Signature)>,
}

/// Proof that a block was prepared at (`view`, height): the leader's PRE-PREPARE plus
/// `2f` matching PREPAREs from distinct other validators. It names the block by its header,
/// so its size does not depend on the block's.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PreparedCertificate {
    /// The leader's signed proposal (the view and the block's header).
    pub proposal: SignedProposal,
    /// (signer, signature) of PREPARE votes, strictly ascending by signer, leader excluded.
    pub prepares: Vec<(ReplicaId, Signature)>,
}

/// Proof of a stable checkpoint: a quorum of CHECKPOINT signatures on the same
/// (height, block hash, state root). Height 0 is the genesis checkpoint and needs none.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckpointCertificate {
    /// Checkpoint height.
    pub height: Height,
    /// Hash of the block at `height`.
    pub block_hash: BlockHash,
    /// State root after executing the block at `height`.
    pub state_root: StateRoot,
    /// (signer, signature) pairs, strictly ascending by signer.
    pub signatures: Vec<(ReplicaId, Signature)>,
}

fn check_signers(
    validators: &ValidatorSet,
    signers: &[(ReplicaId, Signature)],
    min: usize,
    what: &str,
) -> Result<(), Error> {
    if signers.len() < min {
        return Err(Error::InvalidCertificate(format!(
            "{what}: {} signatures, need {min}",
            signers.len()
        )));
    }
    if signers.len() > validators.n() {
        return Err(Error::InvalidCertificate(format!(
            "{what}: too many signatures"
        )));
    }
    for w in signers.windows(2) {
        if w[0].0 >= w[1].0 {
            return Err(Error::InvalidCertificate(format!(
                "{what}: signers not strictly ascending (duplicate signer?)"
            )));
        }
    }
    for (id, _) in signers {
        if !validators.contains(*id) {
            return Err(Error::InvalidCertificate(format!(
                "{what}: {id} is not a validator"
            )));
        }
    }
    Ok(())
}

/// Verifies that `cert` proves `block` committed under `validators`.
///
/// Checks that there are at least `2f + 1` distinct member signers, in canonical order,
/// each with a valid COMMIT signature on (`cert.view`, `block.height`, `block.hash()`).
/// Usable by any client holding the validator set.
pub fn verify_commit_certificate(
    validators: &ValidatorSet,
    block: &Block,
    cert: &CommitCertificate,
) -> Result<(), Error> {
    verify_commit_certificate_for(validators, block.height, block.hash(), cert)
}

/// [`verify_commit_certificate`] for the block of `height` whose hash is `block_hash` (from a
/// [`crate::BlockSummary`], say).
pub fn verify_commit_certificate_for(
    validators: &ValidatorSet,
    height: Height,
    block_hash: BlockHash,
    cert: &CommitCertificate,
) -> Result<(), Error> {
    check_signers(validators, &cert.signatures, validators.quorum(), "commit")?;
    let vote = Vote {
        view: cert.view,
        height,
        block_hash,
    };
    for (id, sig) in &cert.signatures {
        verify_ref(validators, *id, MessageRef::Commit(&vote), sig)
            .map_err(|e| Error::InvalidCertificate(format!("commit: {e}")))?;
    }
    Ok(())
}

impl PreparedCertificate {
    /// View in which the block was prepared.
    pub fn view(&self) -> View {
        self.proposal.proposal.view
    }

    /// Height of the prepared block.
    pub fn height(&self) -> Height {
        self.proposal.height()
    }

    /// The prepared block's header.
    pub fn header(&self) -> &BlockHeader {
        &self.proposal.proposal.header
    }

    /// Verifies the leader's pre-prepare signature and `2f` PREPARE signatures from
    /// distinct non-leader validators on the same (view, height, hash).
    pub fn verify(&self, validators: &ValidatorSet) -> Result<(), Error> {
        let view = self.view();
        let leader = validators.leader(view);
        check_signers(
            validators,
            &self.prepares,
            validators.quorum().saturating_sub(1),
            "prepared",
        )?;
        if self.prepares.iter().any(|(id, _)| *id == leader) {
            return Err(Error::InvalidCertificate(
                "prepared: leader listed as preparer".into(),
            ));
        }
        self.proposal
            .verify(validators)
            .map_err(|e| Error::InvalidCertificate(format!("prepared: pre-prepare {e}")))?;
        let vote = Vote {
            view,
            height: self.height(),
            block_hash: self.header().hash(),
        };
        for (id, sig) in &self.prepares {
            verify_ref(validators, *id, MessageRef::Prepare(&vote), sig)
                .map_err(|e| Error::InvalidCertificate(format!("prepared: {e}")))?;
        }
        Ok(())
    }
}

impl CheckpointCertificate {
    /// The genesis checkpoint (height 0).
    pub fn genesis() -> CheckpointCertificate {
        CheckpointCertificate {
            height: 0,
            block_hash: BlockHash::GENESIS,
            state_root: [0u8; 32],
            signatures: Vec::new(),
        }
    }

    /// The vote every signer signed.
    pub fn vote(&self) -> CheckpointVote {
        CheckpointVote {
            height: self.height,
            block_hash: self.block_hash,
            state_root: self.state_root,
        }
    }

    /// Verifies a quorum of CHECKPOINT signatures. `start` is the trusted checkpoint the
    /// epoch starts from ([`CheckpointCertificate::genesis`] for the first epoch); it is
    /// accepted as is, and any other checkpoint must be above it.
    pub fn verify(
        &self,
        validators: &ValidatorSet,
        start: &CheckpointCertificate,
    ) -> Result<(), Error> {
        if self.height <= start.height {
            return if self == start {
                Ok(())
            } else {
                Err(Error::InvalidCertificate(
                    "checkpoint at or below the epoch start differs from it".into(),
                ))
            };
        }
        check_signers(
            validators,
            &self.signatures,
            validators.quorum(),
            "checkpoint",
        )?;
        let vote = self.vote();
        for (id, sig) in &self.signatures {
            verify_ref(validators, *id, MessageRef::Checkpoint(&vote), sig)
                .map_err(|e| Error::InvalidCertificate(format!("checkpoint: {e}")))?;
        }
        Ok(())
    }
}
