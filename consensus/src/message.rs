//! Protocol messages, their signatures and their canonical (postcard) encoding.
//!
//! Every message is signed by its sender over
//! `postcard((DOMAIN, network, epoch, from, message))`, where `network` is the genesis hash of
//! the network the validator set orders for ([`ValidatorSet::network`]). Messages embedded in other messages
//! (pre-prepares inside a NEW-VIEW or a prepared certificate, VIEW-CHANGEs inside a
//! NEW-VIEW, votes inside certificates) keep their original signature, computed over the
//! same bytes as if they had been sent alone. The message types are deliberately not
//! recursive, so decoding arbitrary bytes cannot recurse without bound.
//!
//! A PRE-PREPARE carries its whole block, but its signature covers only the view and the
//! block's [`BlockHeader`] (a [`Proposal`]): prepared certificates and NEW-VIEWs carry the
//! signed proposal without the transactions, so their size does not grow with the load.

use ed25519_dalek::{Signature, Signer, SigningKey};
use serde::{Deserialize, Serialize};

use crate::certificate::{CheckpointCertificate, PreparedCertificate};
use crate::error::Error;
use crate::types::{
    Block, BlockHash, BlockHeader, Height, ReplicaId, StateRoot, ValidatorSet, View,
};

/// Domain separation tag included in every signed payload.
pub const SIGNING_DOMAIN: &str = "shoji.pbft.v3";

/// PRE-PREPARE: the leader of `view` assigns `block` to height `block.height`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PrePrepare {
    /// View in which this pre-prepare is issued (may differ from `block.view` after a
    /// view change, when an older block is re-proposed).
    pub view: View,
    /// The proposed block.
    pub block: Block,
}

impl PrePrepare {
    /// What the leader signs for this pre-prepare: the view and the block's header.
    pub fn proposal(&self) -> Proposal {
        Proposal {
            view: self.view,
            header: self.block.header(),
        }
    }
}

/// The signed part of a PRE-PREPARE: the leader of `view` assigns the block with `header` to
/// height `header.height`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Proposal {
    /// View in which the pre-prepare is issued.
    pub view: View,
    /// The proposed block's header.
    pub header: BlockHeader,
}

/// A [`Proposal`] with the signature of the leader of its view: the PRE-PREPARE as prepared
/// certificates and NEW-VIEWs carry it, without the block's transactions. The signature is the
/// one the PRE-PREPARE message carried.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedProposal {
    /// The proposal.
    pub proposal: Proposal,
    /// Signature of `leader(proposal.view)` over `Message::PrePrepare` of a block with this
    /// header, i.e. over the proposal.
    pub signature: Signature,
}

/// A PREPARE or COMMIT vote for `block_hash` at (`view`, `height`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Vote {
    /// View of the vote.
    pub view: View,
    /// Height (sequence number) voted on.
    pub height: Height,
    /// Hash of the block voted for.
    pub block_hash: BlockHash,
}

/// CHECKPOINT: the sender executed the chain up to `height` and obtained `state_root`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckpointVote {
    /// Checkpoint height (a multiple of the checkpoint interval).
    pub height: Height,
    /// Hash of the block at `height`.
    pub block_hash: BlockHash,
    /// Application state root after executing that block.
    pub state_root: StateRoot,
}

/// VIEW-CHANGE: the sender moves to `new_view`, reporting its stable checkpoint and its
/// prepared certificates above it (the P-set of Castro–Liskov).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ViewChange {
    /// The view the sender wants to move to.
    pub new_view: View,
    /// Proof of the sender's last stable checkpoint.
    pub checkpoint: CheckpointCertificate,
    /// One prepared certificate per height above the checkpoint, ascending by height.
    pub prepared: Vec<PreparedCertificate>,
}

/// A VIEW-CHANGE with its sender and signature, as embedded in a NEW-VIEW.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedViewChange {
    /// Sender.
    pub from: ReplicaId,
    /// The view change.
    pub view_change: ViewChange,
    /// Signature of `from` over `Message::ViewChange(view_change)`.
    pub signature: Signature,
}

/// NEW-VIEW: the leader of `view` proves a quorum of VIEW-CHANGEs and re-proposes the
/// O-set. Every replica recomputes the O-set from `view_changes` and rejects the message
/// unless `pre_prepares` matches it exactly.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewView {
    /// The new view.
    pub view: View,
    /// A quorum of VIEW-CHANGE messages for `view`, from distinct senders, ascending by sender.
    pub view_changes: Vec<SignedViewChange>,
    /// The O-set: proposals (headers, not blocks) for every height between the highest
    /// checkpoint and the highest prepared height in `view_changes`, ascending by height.
    /// Replicas take the transactions from the pre-prepares they accepted earlier, or from
    /// peers by state transfer once the block commits.
    pub proposals: Vec<SignedProposal>,
}

/// All protocol messages.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Message {
    /// A client transaction forwarded to the leader.
    Request(#[serde(with = "serde_bytes")] Vec<u8>),
    /// PRE-PREPARE from the leader.
    PrePrepare(PrePrepare),
    /// PREPARE vote.
    Prepare(Vote),
    /// COMMIT vote.
    Commit(Vote),
    /// CHECKPOINT vote.
    Checkpoint(CheckpointVote),
    /// VIEW-CHANGE.
    ViewChange(ViewChange),
    /// NEW-VIEW.
    NewView(NewView),
    /// Several client transactions forwarded at once under one signature (appended last, so
    /// the other variants keep their encoding).
    Requests(#[serde(with = "crate::types::byte_strings")] Vec<Vec<u8>>),
}

/// What a signature covers, by message: a borrowed mirror of [`Message`] (same variant
/// order), except that a PRE-PREPARE is signed as its [`Proposal`] (view and block header).
#[derive(Serialize)]
pub(crate) enum MessageRef<'a> {
    #[allow(dead_code)]
    Request(#[serde(with = "serde_bytes")] &'a Vec<u8>),
    PrePrepare(Proposal),
    Prepare(&'a Vote),
    Commit(&'a Vote),
    Checkpoint(&'a CheckpointVote),
    ViewChange(&'a ViewChange),
    NewView(&'a NewView),
    Requests(#[serde(with = "crate::types::byte_strings")] &'a Vec<Vec<u8>>),
}

impl Message {
    pub(crate) fn as_ref(&self) -> MessageRef<'_> {
        match self {
            Message::Request(r) => MessageRef::Request(r),
            Message::PrePrepare(m) => MessageRef::PrePrepare(m.proposal()),
            Message::Prepare(m) => MessageRef::Prepare(m),
            Message::Commit(m) => MessageRef::Commit(m),
            Message::Checkpoint(m) => MessageRef::Checkpoint(m),
            Message::ViewChange(m) => MessageRef::ViewChange(m),
            Message::NewView(m) => MessageRef::NewView(m),
            Message::Requests(r) => MessageRef::Requests(r),
        }
    }

    /// Short name of the message kind, for logs.
    pub fn kind(&self) -> &'static str {
        match self {
            Message::Request(_) => "REQUEST",
            Message::PrePrepare(_) => "PRE-PREPARE",
            Message::Prepare(_) => "PREPARE",
            Message::Commit(_) => "COMMIT",
            Message::Checkpoint(_) => "CHECKPOINT",
            Message::ViewChange(_) => "VIEW-CHANGE",
            Message::NewView(_) => "NEW-VIEW",
            Message::Requests(_) => "REQUESTS",
        }
    }
}

#[derive(Serialize)]
struct SigningPayload<'a> {
    domain: &'static str,
    network: [u8; 32],
    epoch: u64,
    from: ReplicaId,
    message: MessageRef<'a>,
}

/// The exact bytes signed by `from` for `message` in `epoch` of `network`.
pub(crate) fn signing_bytes(
    network: [u8; 32],
    epoch: u64,
    from: ReplicaId,
    message: MessageRef<'_>,
) -> Vec<u8> {
    let payload = SigningPayload {
        domain: SIGNING_DOMAIN,
        network,
        epoch,
        from,
        message,
    };
    // Serializing plain data into a Vec cannot fail.
    postcard::to_allocvec(&payload).unwrap_or_default()
}

pub(crate) fn sign_ref(
    validators: &ValidatorSet,
    from: ReplicaId,
    message: MessageRef<'_>,
    key: &SigningKey,
) -> Signature {
    key.sign(&signing_bytes(
        validators.network,
        validators.epoch,
        from,
        message,
    ))
}

/// Verifies `signature` of `signer` (a member of `validators`) over `message`.
pub(crate) fn verify_ref(
    validators: &ValidatorSet,
    signer: ReplicaId,
    message: MessageRef<'_>,
    signature: &Signature,
) -> Result<(), Error> {
    let key = validators.key(signer).ok_or(Error::UnknownSender(signer))?;
    // Strict: refuses small-order keys and `R`, and non-canonical `s` (RFC 8032 leaves them
    // open; a lax check accepts forgeries under a small-order key).
    let bytes = signing_bytes(validators.network, validators.epoch, signer, message);
    key.verify_strict(&bytes, signature)
        .map_err(|_| Error::BadSignature(signer))
}

impl SignedProposal {
    /// Signs `proposal` as `leader` for the network and epoch of `validators` (the caller must
    /// be the leader of `proposal.view`).
    pub fn sign(
        validators: &ValidatorSet,
        leader: ReplicaId,
        proposal: Proposal,
        key: &SigningKey,
    ) -> SignedProposal {
        let signature = sign_ref(validators, leader, MessageRef::PrePrepare(proposal), key);
        SignedProposal {
            proposal,
            signature,
        }
    }

    /// Verifies the signature of the leader of `proposal.view`.
    pub fn verify(&self, validators: &ValidatorSet) -> Result<(), Error> {
        let leader = validators.leader(self.proposal.view);
        verify_ref(
            validators,
            leader,
            MessageRef::PrePrepare(self.proposal),
            &self.signature,
        )
    }

    /// Height of the proposed block.
    pub fn height(&self) -> Height {
        self.proposal.header.height
    }

    /// The PRE-PREPARE message for this proposal and `block`, which must have the proposal's
    /// header (the signature covers the header only).
    pub fn message(&self, from: ReplicaId, block: Block) -> SignedMessage {
        SignedMessage {
            from,
            message: Message::PrePrepare(PrePrepare {
                view: self.proposal.view,
                block,
            }),
            signature: self.signature,
        }
    }
}

impl SignedViewChange {
    /// Verifies the sender's signature (not the embedded certificates).
    pub fn verify_signature(&self, validators: &ValidatorSet) -> Result<(), Error> {
        verify_ref(
            validators,
            self.from,
            MessageRef::ViewChange(&self.view_change),
            &self.signature,
        )
    }
}

/// A message together with its sender and the sender's Ed25519 signature.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedMessage {
    /// The signer.
    pub from: ReplicaId,
    /// The message.
    pub message: Message,
    /// Signature of `from` over `(SIGNING_DOMAIN, network, epoch, from, message)`.
    pub signature: Signature,
}

impl SignedMessage {
    /// Signs `message` as `from` for the network and epoch of `validators`.
    pub fn sign(
        validators: &ValidatorSet,
        from: ReplicaId,
        message: Message,
        key: &SigningKey,
    ) -> SignedMessage {
        let signature = sign_ref(validators, from, message.as_ref(), key);
        SignedMessage {
            from,
            message,
            signature,
        }
    }

    /// Verifies that `from` is a member and that the signature is valid.
    pub fn verify(&self, validators: &ValidatorSet) -> Result<(), Error> {
        verify_ref(
            validators,
            self.from,
            self.message.as_ref(),
            &self.signature,
        )
    }

    /// Canonical postcard encoding.
    pub fn encode(&self) -> Vec<u8> {
        postcard::to_allocvec(self).unwrap_or_default()
    }

    /// Decodes a message, rejecting inputs longer than `max_bytes` and trailing bytes.
    /// Never panics, whatever the input.
    pub fn decode(bytes: &[u8], max_bytes: usize) -> Result<SignedMessage, Error> {
        if bytes.len() > max_bytes {
            return Err(Error::TooLarge {
                size: bytes.len(),
                limit: max_bytes,
            });
        }
        let (msg, rest) = postcard::take_from_bytes::<SignedMessage>(bytes)
            .map_err(|e| Error::Decode(e.to_string()))?;
        if !rest.is_empty() {
            return Err(Error::Decode(format!("{} trailing bytes", rest.len())));
        }
        Ok(msg)
    }

    /// Converts an embedded view change into a stand-alone signed message.
    pub fn from_view_change(svc: SignedViewChange) -> SignedMessage {
        SignedMessage {
            from: svc.from,
            message: Message::ViewChange(svc.view_change),
            signature: svc.signature,
        }
    }
}

/// The encoded size of the largest VIEW-CHANGE and NEW-VIEW (as [`SignedMessage`]s) that
/// honest replicas of `n` validators with log window `window_size` can send: every field at
/// its widest encoding, a prepared certificate at every height of the window, a NEW-VIEW with
/// a quorum of VIEW-CHANGEs (each as large as validation lets it be) and a full O-set. Blocks appear only as headers, so the
/// sizes do not depend on what the blocks hold; [`crate::Config::validate`] refuses a
/// configuration whose worst case does not fit in `max_message_bytes`.
pub fn worst_case_view_change_bytes(n: usize, window_size: u64) -> (usize, usize) {
    let sig = Signature::from_bytes(&[0xff; 64]);
    let hash = BlockHash([0xff; 32]);
    let quorum = n - n.saturating_sub(1) / 3;
    let id = |i: usize| ReplicaId(u16::MAX - i as u16);
    let signers = |k: usize| (0..k).map(|i| (id(i), sig)).collect::<Vec<_>>();
    let header = BlockHeader {
        height: u64::MAX,
        prev_hash: hash,
        view: u64::MAX,
        proposer: id(0),
        time_ms: u64::MAX,
        tx_count: u64::MAX,
        txs_root: [0xff; 32],
    };
    let proposal = SignedProposal {
        proposal: Proposal {
            view: u64::MAX,
            header,
        },
        signature: sig,
    };
    let view_change = ViewChange {
        new_view: u64::MAX,
        checkpoint: CheckpointCertificate {
            height: u64::MAX,
            block_hash: hash,
            state_root: [0xff; 32],
            signatures: signers(n),
        },
        prepared: (0..window_size)
            .map(|_| PreparedCertificate {
                proposal,
                prepares: signers(n),
            })
            .collect(),
    };
    let wrap = |message| {
        SignedMessage {
            from: id(0),
            message,
            signature: sig,
        }
        .encode()
        .len()
    };
    let vc_bytes = wrap(Message::ViewChange(view_change.clone()));
    let nv_bytes = wrap(Message::NewView(NewView {
        view: u64::MAX,
        view_changes: (0..quorum)
            .map(|i| SignedViewChange {
                from: id(i),
                view_change: view_change.clone(),
                signature: sig,
            })
            .collect(),
        proposals: vec![proposal; window_size as usize],
    }));
    (vc_bytes, nv_bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_ref_encodes_like_message() {
        let m = Message::Prepare(Vote {
            view: 3,
            height: 9,
            block_hash: BlockHash([7; 32]),
        });
        let a = postcard::to_allocvec(&m).unwrap();
        let b = postcard::to_allocvec(&m.as_ref()).unwrap();
        assert_eq!(a, b);
        let r = Message::Request(vec![1, 2, 3]);
        assert_eq!(
            postcard::to_allocvec(&r).unwrap(),
            postcard::to_allocvec(&r.as_ref()).unwrap()
        );
    }
}
