//! What a validator orders: the size limits and the payload rule every validator applies to
//! every proposed block, and the id a client waits on for a payload.

use shoji_primitives::governance::{GovernanceTx, MAX_GOVERNANCE_BYTES};
use shoji_primitives::tx::{Transaction, TxId, MAX_TX_BYTES};

/// Largest opaque payload an ordering-only node accepts.
pub const MAX_OPAQUE_BYTES: usize = 1024;

/// Largest payload a validator orders: the largest transaction kind (a governance transaction
/// with every approval), nothing larger.
pub const MAX_PAYLOAD_BYTES: usize = if MAX_TX_BYTES > MAX_GOVERNANCE_BYTES {
    MAX_TX_BYTES
} else {
    MAX_GOVERNANCE_BYTES
};

/// Most transaction bytes in one block: a quarter of the transport's 4 MiB frame, so a
/// pre-prepare, and a NEW-VIEW that re-proposes it, always travel.
pub const MAX_BLOCK_BYTES: usize = 1 << 20;

/// The payload rule of a validator ([`Config::payload_check`](shoji_consensus::Config::payload_check)): the exact shape of a shielded
/// transaction kind ([`Transaction::check_layout`]), or a governance transaction that decodes.
/// Every validator applies it to every proposed block alike; a block carrying anything else
/// is refused.
pub fn transaction_shape(bytes: &[u8]) -> Result<(), &'static str> {
    if GovernanceTx::is_governance(bytes) {
        GovernanceTx::from_bytes(bytes)
            .map(|_| ())
            .map_err(|_| "malformed governance transaction")
    } else {
        Transaction::check_layout(bytes)
            .map(|_| ())
            .map_err(|_| "not a transaction of a known kind and length")
    }
}

/// The payload rule in ordering-only mode ([`NodeCore::set_ordering_only`](crate::NodeCore::set_ordering_only)): a transaction,
/// or an opaque payload of at most [`MAX_OPAQUE_BYTES`].
pub fn transaction_or_opaque_shape(bytes: &[u8]) -> Result<(), &'static str> {
    match bytes.len() <= MAX_OPAQUE_BYTES {
        true => Ok(()),
        false => transaction_shape(bytes),
    }
}

/// The id a client waits on for `bytes`: the [`Transaction::auth_id`] of a shielded
/// transaction (its exact bytes: a rerandomized twin is another request), the id of a governance
/// transaction, blake3 of the bytes for an opaque payload (ordering-only mode), `None` if
/// the bytes are not a transaction.
pub fn request_id(bytes: &[u8], ordering_only: bool) -> Option<TxId> {
    if GovernanceTx::is_governance(bytes) {
        GovernanceTx::from_bytes(bytes).ok().map(|g| g.id())
    } else if let Ok(tx) = Transaction::from_bytes(bytes) {
        Some(tx.auth_id())
    } else if ordering_only && bytes.len() <= MAX_OPAQUE_BYTES {
        Some(TxId(*blake3::hash(bytes).as_bytes()))
    } else {
        None
    }
}
