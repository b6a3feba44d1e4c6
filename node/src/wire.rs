//! The envelope of every message between validators.
//!
//! One byte of tag, then the body:
//!
//! | tag | message | body |
//! |---|---|---|
//! | `0` | consensus | a [`shoji_consensus::SignedMessage`] as its `encode` writes it |
//! | `1` | state-transfer request | the first height wanted, `u64` little-endian (exactly 8 bytes) |
//! | `2` | state-transfer answer | postcard [`StateTransferAnswer`] (no trailing bytes) |
//!
//! Anything else — an unknown tag, an empty message, a body of the wrong length, trailing
//! bytes, a message over [`MAX_PEER_MESSAGE_BYTES`] — is refused with a [`WireError`];
//! decoding never panics.

use serde::{Deserialize, Serialize};
use shoji_consensus::{Block, CheckpointCertificate, CommitCertificate};

/// Largest peer message decoded (the transport's default frame limit).
pub const MAX_PEER_MESSAGE_BYTES: usize = 4 << 20;

/// Most blocks in one state-transfer answer.
pub const MAX_TRANSFER_BLOCKS: usize = 64;

/// Encoded size of the blocks of one state-transfer answer, at most (a single larger block is
/// still sent alone, up to the frame limit): half the frame limit, so an answer always fits.
pub const TRANSFER_BYTE_BUDGET: usize = 2 << 20;

const TAG_CONSENSUS: u8 = 0;
const TAG_TRANSFER_REQUEST: u8 = 1;
const TAG_TRANSFER_ANSWER: u8 = 2;

/// Committed blocks, with their commit certificates, sent to a validator that is behind.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateTransferAnswer {
    /// The answering validator's last committed height (so the requester knows whether to ask
    /// for more).
    pub tip: u64,
    /// Consecutive committed blocks from the requested height, each with its certificate.
    pub blocks: Vec<(Block, CommitCertificate)>,
    /// The answering validator's stable checkpoint (none at genesis). A validator that catches
    /// up past a checkpoint whose CHECKPOINT votes it missed learns it here, and moves its
    /// window: without it, it would refuse proposals above its old window until the next
    /// checkpoint.
    pub stable: Option<CheckpointCertificate>,
}

/// A decoded peer message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PeerMessage<'a> {
    /// A consensus message, still encoded (the replica decodes and checks it).
    Consensus(&'a [u8]),
    /// "Send me committed blocks from this height."
    TransferRequest {
        /// First height wanted.
        from_height: u64,
    },
    /// Committed blocks.
    TransferAnswer(StateTransferAnswer),
}

/// Why bytes from a peer are not a peer message.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WireError {
    /// Nothing was sent.
    #[error("empty peer message")]
    Empty,
    /// Over [`MAX_PEER_MESSAGE_BYTES`].
    #[error("peer message of {0} bytes exceeds the limit")]
    TooLarge(usize),
    /// The first byte names no message.
    #[error("unknown peer message tag {0}")]
    UnknownTag(u8),
    /// The body does not decode.
    #[error("malformed {what}: {reason}")]
    Malformed {
        /// Which message.
        what: &'static str,
        /// Why.
        reason: String,
    },
}

/// Wraps an encoded consensus message.
pub fn consensus(encoded: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(encoded.len() + 1);
    out.push(TAG_CONSENSUS);
    out.extend_from_slice(encoded);
    out
}

/// A state-transfer request for the blocks from `from_height`.
pub fn transfer_request(from_height: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(9);
    out.push(TAG_TRANSFER_REQUEST);
    out.extend_from_slice(&from_height.to_le_bytes());
    out
}

/// Whether `bytes` is a state-transfer request (its tag; the body is not checked).
pub fn is_transfer_request(bytes: &[u8]) -> bool {
    bytes.first() == Some(&TAG_TRANSFER_REQUEST)
}

/// A state-transfer answer.
pub fn transfer_answer(answer: &StateTransferAnswer) -> Vec<u8> {
    let mut out = vec![TAG_TRANSFER_ANSWER];
    // Serializing plain data into a vector cannot fail; an empty body would be refused.
    out.extend(postcard::to_allocvec(answer).unwrap_or_default());
    out
}

/// Decodes one peer message.
pub fn decode(bytes: &[u8]) -> Result<PeerMessage<'_>, WireError> {
    if bytes.len() > MAX_PEER_MESSAGE_BYTES {
        return Err(WireError::TooLarge(bytes.len()));
    }
    let (&tag, body) = bytes.split_first().ok_or(WireError::Empty)?;
    match tag {
        TAG_CONSENSUS => Ok(PeerMessage::Consensus(body)),
        TAG_TRANSFER_REQUEST => {
            let height: [u8; 8] = body.try_into().map_err(|_| WireError::Malformed {
                what: "state-transfer request",
                reason: format!("{} bytes, expected 8", body.len()),
            })?;
            Ok(PeerMessage::TransferRequest {
                from_height: u64::from_le_bytes(height),
            })
        }
        TAG_TRANSFER_ANSWER => {
            let malformed = |reason: String| WireError::Malformed {
                what: "state-transfer answer",
                reason,
            };
            let (answer, rest): (StateTransferAnswer, _) =
                postcard::take_from_bytes(body).map_err(|e| malformed(e.to_string()))?;
            if !rest.is_empty() {
                return Err(malformed(format!("{} trailing bytes", rest.len())));
            }
            if answer.blocks.len() > MAX_TRANSFER_BLOCKS {
                return Err(malformed(format!("{} blocks", answer.blocks.len())));
            }
            Ok(PeerMessage::TransferAnswer(answer))
        }
        other => Err(WireError::UnknownTag(other)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shoji_consensus::{BlockHash, ReplicaId};

    fn block(height: u64) -> (Block, CommitCertificate) {
        let mut b = Block::null(height, BlockHash([height as u8; 32]), 0, ReplicaId(0));
        b.transactions.push(vec![1, 2, 3]);
        let cert = CommitCertificate {
            view: 0,
            signatures: Vec::new(),
        };
        (b, cert)
    }

    #[test]
    fn round_trips() {
        assert_eq!(
            decode(&consensus(&[9, 8, 7])),
            Ok(PeerMessage::Consensus(&[9, 8, 7][..]))
        );
        assert_eq!(
            decode(&transfer_request(77)),
            Ok(PeerMessage::TransferRequest { from_height: 77 })
        );
        let answer = StateTransferAnswer {
            tip: 9,
            blocks: vec![block(1), block(2)],
            stable: Some(CheckpointCertificate {
                height: 8,
                block_hash: shoji_consensus::BlockHash([8; 32]),
                state_root: [9; 32],
                signatures: Vec::new(),
            }),
        };
        assert_eq!(
            decode(&transfer_answer(&answer)),
            Ok(PeerMessage::TransferAnswer(answer))
        );
    }

    #[test]
    fn garbage_is_refused() {
        assert_eq!(decode(&[]), Err(WireError::Empty));
        assert_eq!(decode(&[7, 1, 2]), Err(WireError::UnknownTag(7)));
        assert!(matches!(
            decode(&[1, 0, 0]),
            Err(WireError::Malformed { .. })
        ));
        let mut long = transfer_request(5);
        long.push(0);
        assert!(matches!(decode(&long), Err(WireError::Malformed { .. })));
        let mut answer = transfer_answer(&StateTransferAnswer {
            tip: 1,
            blocks: vec![block(1)],
            stable: None,
        });
        answer.push(0);
        assert!(matches!(decode(&answer), Err(WireError::Malformed { .. })));
        let too_many = StateTransferAnswer {
            tip: 100,
            blocks: (1..=MAX_TRANSFER_BLOCKS as u64 + 1).map(block).collect(),
            stable: None,
        };
        assert!(matches!(
            decode(&transfer_answer(&too_many)),
            Err(WireError::Malformed { .. })
        ));
        // A length prefix claiming far more blocks than the bytes hold.
        assert!(matches!(
            decode(&[2, 1, 0xff, 0xff, 0xff, 0xff, 0x0f]),
            Err(WireError::Malformed { .. })
        ));
        assert!(matches!(
            decode(&vec![0; MAX_PEER_MESSAGE_BYTES + 1]),
            Err(WireError::TooLarge(_))
        ));
    }
}
