//! Protocol messages, their signatures and their canonical (postcard) encoding.
//!
//! Every message is signed by its sender over
//! `postcard((DOMAIN, network, epoch, from, message))`, where `network` is the genesis hash of
//! the network the validator set orders for ([`ValidatorSet::network`]). Messages embedded in other messages
//! (pre-prepares inside a NEW-VIEW or a prepared certificate, VIEW-CHANGEs inside a
//! NEW-VIEW, votes inside certificates) keep their original signature, computed over the
//! same bytes as if they had been sent alone. The message types are deliberately not
//! recursive, so decoding arbitrary bytes cannot recurse without bound.

use ed25519_dalek::{Signature, Signer, SigningKey};
use serde::{Deserialize, Serialize};

use crate::certificate::{CheckpointCertificate, PreparedCertificate};
use crate::error::Error;
use crate::types::{Block, BlockHash, Height, ReplicaId, StateRoot, ValidatorSet, View};

/// Domain separation tag included in every signed payload.
pub const SIGNING_DOMAIN: &str = "shoji.pbft.v2";

/// PRE-PREPARE: the leader of `view` assigns `block` to height `block.height`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PrePrepare {
    /// View in which this pre-prepare is issued (may differ from `block.view` after a
    /// view change, when an older block is re-proposed).
    pub view: View,
    /// The proposed block.
    pub block: Block,
}

/// A pre-prepare with the signature of the leader of `pre_prepare.view`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedPrePrepare {
    /// The pre-prepare.
    pub pre_prepare: PrePrepare,
    /// Signature of `leader(pre_prepare.view)` over `Message::PrePrepare(pre_prepare)`.
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
    /// The O-set: pre-prepares for every height between the highest checkpoint and the
    /// highest prepared height in `view_changes`, ascending by height.
    pub pre_prepares: Vec<SignedPrePrepare>,
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

/// Borrowed mirror of [`Message`]; serializes to identical bytes (same variant order).
#[derive(Serialize)]
pub(crate) enum MessageRef<'a> {
    #[allow(dead_code)]
    Request(#[serde(with = "serde_bytes")] &'a Vec<u8>),
    PrePrepare(&'a PrePrepare),
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
            Message::PrePrepare(m) => MessageRef::PrePrepare(m),
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

impl SignedPrePrepare {
    /// Signs a pre-prepare for the network and epoch of `validators` (the caller must be the
    /// leader of `pre_prepare.view`).
    pub fn sign(
        validators: &ValidatorSet,
        leader: ReplicaId,
        pre_prepare: PrePrepare,
        key: &SigningKey,
    ) -> SignedPrePrepare {
        let signature = sign_ref(
            validators,
            leader,
            MessageRef::PrePrepare(&pre_prepare),
            key,
        );
        SignedPrePrepare {
            pre_prepare,
            signature,
        }
    }

    /// Verifies the signature of the leader of `pre_prepare.view`.
    pub fn verify(&self, validators: &ValidatorSet) -> Result<(), Error> {
        let leader = validators.leader(self.pre_prepare.view);
        verify_ref(
            validators,
            leader,
            MessageRef::PrePrepare(&self.pre_prepare),
            &self.signature,
        )
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
