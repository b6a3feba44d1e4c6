//! The ledger's public event stream: what happened at each committed height, in order, each
//! event at a [`Cursor`] `(height, index)`. A consumer asks for the events after the last cursor
//! it processed and receives every later event, in order, with none missed and none repeated,
//! whichever validator it asks and however often it reconnects: every validator derives the same
//! events from the same committed blocks.
//!
//! Nothing here is more than a privacy observer already reads from the blocks: heights, hashes,
//! times, transaction ids and kinds, outcomes, governance actions and validator sets. No amount,
//! party or note.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// Where an event stands in the stream: the height of its block and its index among that
/// height's events. Cursors are ordered as the stream is. `Cursor::START` comes before every
/// event.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct Cursor {
    /// The block's height.
    pub height: u64,
    /// The event's index among the block's events (0: the block itself).
    pub index: u32,
}

impl Cursor {
    /// Before the first event (heights start at 1).
    pub const START: Cursor = Cursor {
        height: 0,
        index: 0,
    };
}

impl fmt::Display for Cursor {
    /// `height.index`, or `0` for [`Cursor::START`].
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self == Cursor::START {
            true => f.write_str("0"),
            false => write!(f, "{}.{}", self.height, self.index),
        }
    }
}

/// Why a cursor did not parse.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("a cursor is HEIGHT.INDEX (or 0 for the start), not {0:?}")]
pub struct CursorError(pub String);

impl FromStr for Cursor {
    type Err = CursorError;

    fn from_str(s: &str) -> Result<Cursor, CursorError> {
        let bad = || CursorError(s.chars().take(40).collect());
        if s == "0" {
            return Ok(Cursor::START);
        }
        let (h, i) = s.split_once('.').ok_or_else(bad)?;
        Ok(Cursor {
            height: h.parse().map_err(|_| bad())?,
            index: i.parse().map_err(|_| bad())?,
        })
    }
}

/// A kind of event, for filtering.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum EventKind {
    /// [`EventBody::Block`].
    Block,
    /// [`EventBody::Transaction`].
    Transaction,
    /// [`EventBody::Governance`].
    Governance,
    /// [`EventBody::ValidatorSet`] and [`EventBody::Epoch`].
    ValidatorSet,
}

impl EventKind {
    /// Every kind.
    pub const ALL: [EventKind; 4] = [
        EventKind::Block,
        EventKind::Transaction,
        EventKind::Governance,
        EventKind::ValidatorSet,
    ];

    /// The kind's name in filters: `block`, `transaction`, `governance`, `validator_set`.
    pub fn name(self) -> &'static str {
        match self {
            EventKind::Block => "block",
            EventKind::Transaction => "transaction",
            EventKind::Governance => "governance",
            EventKind::ValidatorSet => "validator_set",
        }
    }

    /// The kind named `name`.
    pub fn parse(name: &str) -> Option<EventKind> {
        EventKind::ALL.into_iter().find(|k| k.name() == name)
    }

    /// The kind's bit in a filter mask.
    pub fn bit(self) -> u8 {
        1 << (self as u8)
    }
}

/// A set of [`EventKind`]s, as a bit mask (`ALL_KINDS`: every kind).
pub type KindMask = u8;

/// Every kind.
pub const ALL_KINDS: KindMask = 0b1111;

/// What a block's payload is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum PayloadKind {
    /// A shielded transfer.
    Transfer,
    /// A mint (public value in, shielded notes out).
    Mint,
    /// A redeem (shielded notes in, public value out).
    Redeem,
    /// A governance transaction.
    Governance,
    /// An opaque payload (ordering-only benchmark networks).
    Opaque,
    /// A confidential account opened.
    AccountOpen,
    /// A confidential transfer between accounts (amount hidden).
    AccountTransfer,
    /// An issuer's mint into an account (public value).
    AccountMint,
    /// A redemption from an account to an issuer (public value).
    AccountRedeem,
    /// A shield: public value from an account into shielded notes.
    Shield,
    /// An unshield: public value from shielded notes into an account.
    Unshield,
}

impl PayloadKind {
    /// The kind of a shielded transaction of kind `k`.
    pub fn of(k: shoji_primitives::tx::TxKind) -> PayloadKind {
        use shoji_primitives::tx::TxKind;
        match k {
            TxKind::Transfer => PayloadKind::Transfer,
            TxKind::Mint => PayloadKind::Mint,
            TxKind::Redeem => PayloadKind::Redeem,
            TxKind::Shield => PayloadKind::Shield,
            TxKind::Unshield => PayloadKind::Unshield,
        }
    }

    /// The kind of the account transaction `tx`.
    pub fn of_account(tx: &shoji_primitives::account::AccountTx) -> PayloadKind {
        use shoji_primitives::account::AccountTx;
        match tx {
            AccountTx::Open(_) => PayloadKind::AccountOpen,
            AccountTx::Transfer(_) => PayloadKind::AccountTransfer,
            AccountTx::Mint(_) => PayloadKind::AccountMint,
            AccountTx::Redeem(_) => PayloadKind::AccountRedeem,
        }
    }

    /// `transfer`, `mint`, `redeem`, `governance`, `opaque`, `account_open`,
    /// `account_transfer`, `account_mint`, `account_redeem`, `shield` or `unshield`.
    pub fn name(self) -> &'static str {
        match self {
            PayloadKind::Transfer => "transfer",
            PayloadKind::Mint => "mint",
            PayloadKind::Redeem => "redeem",
            PayloadKind::Governance => "governance",
            PayloadKind::Opaque => "opaque",
            PayloadKind::AccountOpen => "account_open",
            PayloadKind::AccountTransfer => "account_transfer",
            PayloadKind::AccountMint => "account_mint",
            PayloadKind::AccountRedeem => "account_redeem",
            PayloadKind::Shield => "shield",
            PayloadKind::Unshield => "unshield",
        }
    }
}

/// One event of the stream.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// Where it stands.
    pub cursor: Cursor,
    /// What happened.
    pub body: EventBody,
}

/// What happened.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum EventBody {
    /// A block was committed (index 0 of its height). Block events chain by `prev_hash`, and
    /// a stable checkpoint ([`crate::api::Request::Certified`]) signs the hash of its block:
    /// a consumer that checks the chain up to a checkpoint knows the block events are the
    /// network's. The other events of a height are the serving validator's derivation of that
    /// block (the same at every validator): cross-check with a second validator, or with the
    /// certified compact blocks ([`crate::Client::certified_blocks`]), where that matters.
    Block {
        /// The block's hash ([`shoji_consensus::BlockSummary::hash`]).
        hash: [u8; 32],
        /// The previous block's hash (the genesis hash for block 1).
        prev_hash: [u8; 32],
        /// Block time (Unix ms).
        time_ms: u64,
        /// The view that committed it.
        view: u64,
        /// Payloads it orders.
        transactions: u32,
        /// Signatures in its commit certificate.
        signatures: u32,
    },
    /// A transaction's outcome, in block order.
    Transaction {
        /// Its id: [`shoji_primitives::tx::Transaction::id`] (what the wallet showed), a
        /// governance transaction's id, or blake3 of an opaque payload.
        txid: [u8; 32],
        /// What it is.
        kind: PayloadKind,
        /// Applied (or enacted).
        applied: bool,
        /// Why not: its rejection code, the byte the block's compact form certifies
        /// ([`shoji_ledger::RejectionCode`]; [`EventBody::reason_name`] names it).
        reason: Option<u8>,
    },
    /// A governance transaction was enacted.
    Governance {
        /// Its sequence number.
        seq: u64,
        /// The action, in words.
        action: String,
    },
    /// Governance decided the next validator set: it orders blocks from `last + 1`.
    ValidatorSet {
        /// The next epoch.
        epoch: u64,
        /// The last height the current set orders.
        last: u64,
        /// The next set's members.
        validators: Vec<u16>,
    },
    /// A validator-set epoch began with this block.
    Epoch {
        /// The epoch.
        epoch: u64,
        /// Its members.
        validators: Vec<u16>,
    },
}

impl EventBody {
    /// The name of a transaction event's rejection code (`double_spend`, ...), `unknown` for a
    /// code this build does not know; `None` when applied or not a transaction event.
    pub fn reason_name(&self) -> Option<&'static str> {
        match self {
            EventBody::Transaction {
                reason: Some(code), ..
            } => Some(shoji_ledger::RejectionCode::from_u8(*code).map_or("unknown", |c| c.name())),
            _ => None,
        }
    }

    /// The event's kind.
    pub fn kind(&self) -> EventKind {
        match self {
            EventBody::Block { .. } => EventKind::Block,
            EventBody::Transaction { .. } => EventKind::Transaction,
            EventBody::Governance { .. } => EventKind::Governance,
            EventBody::ValidatorSet { .. } | EventBody::Epoch { .. } => EventKind::ValidatorSet,
        }
    }
}

/// The events of one height, as stored: bodies in index order.
pub fn encode_height(bodies: &[EventBody]) -> Vec<u8> {
    postcard::to_allocvec(bodies).unwrap_or_default()
}

/// Decodes [`encode_height`]'s bytes.
pub fn decode_height(bytes: &[u8]) -> Result<Vec<EventBody>, String> {
    postcard::from_bytes(bytes).map_err(|e| format!("malformed events: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_print_parse_and_order_as_the_stream() {
        for c in [
            Cursor::START,
            Cursor {
                height: 7,
                index: 0,
            },
            Cursor {
                height: 7,
                index: 12,
            },
        ] {
            assert_eq!(c.to_string().parse::<Cursor>(), Ok(c));
        }
        assert_eq!("0".parse::<Cursor>(), Ok(Cursor::START));
        for bad in ["", "7", "7.", ".1", "x.1", "1.-1", "1.2.3"] {
            assert!(bad.parse::<Cursor>().is_err(), "{bad}");
        }
        assert!(
            Cursor {
                height: 7,
                index: 12
            } < Cursor {
                height: 8,
                index: 0
            }
        );
        assert!(
            Cursor::START
                < Cursor {
                    height: 1,
                    index: 0
                }
        );
    }

    #[test]
    fn a_rejection_is_named_by_its_certified_code() {
        let rejected = |reason| EventBody::Transaction {
            txid: [0; 32],
            kind: PayloadKind::Transfer,
            applied: false,
            reason,
        };
        let double_spend = shoji_ledger::RejectionCode::DoubleSpend as u8;
        assert_eq!(
            rejected(Some(double_spend)).reason_name(),
            Some("double_spend")
        );
        assert_eq!(rejected(Some(0)).reason_name(), Some("unknown"));
        assert_eq!(rejected(None).reason_name(), None);
    }

    #[test]
    fn kinds_have_names_and_bits() {
        let mut mask = 0;
        for k in EventKind::ALL {
            assert_eq!(EventKind::parse(k.name()), Some(k));
            assert_eq!(mask & k.bit(), 0);
            mask |= k.bit();
        }
        assert_eq!(mask, ALL_KINDS);
        assert_eq!(EventKind::parse("blocks"), None);
    }
}
