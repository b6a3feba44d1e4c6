//! What a validator orders: the size limits and the payload rule every validator applies to
//! every proposed block, the policy of which payloads a validator orders, and the payload
//! decoded once by kind.

use shoji_consensus::PayloadCheck;
use shoji_primitives::account::{AccountTx, MAX_ACCOUNT_TX_BYTES};
use shoji_primitives::encoding::EncodingError;
use shoji_primitives::governance::{GovernanceTx, MAX_GOVERNANCE_BYTES};
use shoji_primitives::tx::{Transaction, TxId, MAX_TX_BYTES};

/// Largest opaque payload an ordering-only node accepts.
pub const MAX_OPAQUE_BYTES: usize = 1024;

/// Largest payload a validator orders: the largest transaction kind (a governance transaction
/// with every approval), nothing larger.
pub const MAX_PAYLOAD_BYTES: usize = max(
    max(MAX_TX_BYTES, MAX_GOVERNANCE_BYTES),
    MAX_ACCOUNT_TX_BYTES,
);

const fn max(a: usize, b: usize) -> usize {
    if a > b {
        a
    } else {
        b
    }
}

/// Most transaction bytes in one block: a quarter of the transport's 4 MiB frame, so a
/// pre-prepare, and a NEW-VIEW that re-proposes it, always travel.
pub const MAX_BLOCK_BYTES: usize = 1 << 20;

/// The payload rule of a validator ([`Config::payload_check`](shoji_consensus::Config::payload_check)): the exact shape of a shielded
/// transaction kind ([`Transaction::check_layout`]) or an account transaction kind
/// ([`AccountTx::check_layout`]), or a governance transaction that decodes.
/// Every validator applies it to every proposed block alike; a block carrying anything else
/// is refused.
pub fn transaction_shape(bytes: &[u8]) -> Result<(), &'static str> {
    if GovernanceTx::is_governance(bytes) {
        GovernanceTx::from_bytes(bytes)
            .map(|_| ())
            .map_err(|_| "malformed governance transaction")
    } else if AccountTx::is_account(bytes) {
        AccountTx::check_layout(bytes)
            .map(|_| ())
            .map_err(|_| "not an account transaction of a known kind and length")
    } else {
        Transaction::check_layout(bytes)
            .map(|_| ())
            .map_err(|_| "not a transaction of a known kind and length")
    }
}

/// Which payloads a validator orders, chosen when the node is built
/// ([`NodeCore::with_payloads`](crate::NodeCore::with_payloads)).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum PayloadPolicy {
    /// Shielded and governance transactions: every network.
    #[default]
    Transactions,
    /// Also opaque payloads of at most [`MAX_OPAQUE_BYTES`], ordered and never executed: how
    /// `shoji-bench cluster --ordering-only` measures consensus alone. Never for a network
    /// that carries value: any client can fill its blocks.
    OrderingOnly,
}

impl PayloadPolicy {
    /// The shape rule every validator of the network applies to every proposed block.
    pub fn shape_check(self) -> PayloadCheck {
        match self {
            PayloadPolicy::Transactions => PayloadCheck(transaction_shape),
            PayloadPolicy::OrderingOnly => PayloadCheck(transaction_or_opaque_shape),
        }
    }
}

/// The payload rule of [`PayloadPolicy::OrderingOnly`]: a transaction, or an opaque payload
/// of at most [`MAX_OPAQUE_BYTES`].
pub fn transaction_or_opaque_shape(bytes: &[u8]) -> Result<(), &'static str> {
    match bytes.len() <= MAX_OPAQUE_BYTES {
        true => Ok(()),
        false => transaction_shape(bytes),
    }
}

/// A payload decoded once, by kind: what admission, execution and the reports of dropped
/// requests all start from.
#[derive(Clone, Debug)]
pub enum Payload {
    /// A shielded transaction, decoded with its audit key's subgroup check left to its proof
    /// (docs/decisions/0021): it is applied only if the proof verifies.
    Shielded(Box<Transaction>),
    /// A governance transaction.
    Governance(Box<GovernanceTx>),
    /// A confidential-account transaction.
    Account(Box<AccountTx>),
    /// An opaque payload ([`PayloadPolicy::OrderingOnly`]), by the blake3 of its bytes.
    Opaque(TxId),
}

impl Payload {
    /// Decodes `bytes` as `policy` allows.
    pub fn decode(bytes: &[u8], policy: PayloadPolicy) -> Result<Payload, EncodingError> {
        if GovernanceTx::is_governance(bytes) {
            return GovernanceTx::from_bytes(bytes).map(|g| Payload::Governance(Box::new(g)));
        }
        if AccountTx::is_account(bytes) {
            return AccountTx::from_bytes(bytes).map(|a| Payload::Account(Box::new(a)));
        }
        match Transaction::from_bytes_proof_bound(bytes) {
            Ok(tx) => Ok(Payload::Shielded(Box::new(tx))),
            Err(_) if policy == PayloadPolicy::OrderingOnly && bytes.len() <= MAX_OPAQUE_BYTES => {
                Ok(Payload::Opaque(TxId(*blake3::hash(bytes).as_bytes())))
            }
            Err(e) => Err(e),
        }
    }

    /// The id a client waits on: the [`Transaction::auth_id`] of a shielded transaction (its
    /// exact bytes: a rerandomized twin is another request) or of an account transaction, the
    /// id of a governance
    /// transaction, blake3 of the bytes of an opaque payload.
    pub fn id(&self) -> TxId {
        match self {
            Payload::Shielded(tx) => tx.auth_id(),
            Payload::Governance(g) => g.id(),
            Payload::Account(a) => a.auth_id(),
            Payload::Opaque(id) => *id,
        }
    }
}

/// The id a client waits on for `bytes` ([`Payload::id`]), `None` if `policy` does not order
/// them.
pub fn request_id(bytes: &[u8], policy: PayloadPolicy) -> Option<TxId> {
    Payload::decode(bytes, policy).ok().map(|p| p.id())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Bytes that are no transaction are an opaque payload only under the ordering-only
    /// policy, and only up to its size limit; the shape rules agree with the decoder.
    #[test]
    fn opaque_payloads_only_under_the_ordering_only_policy() {
        let small = vec![7u8; 40];
        let large = vec![7u8; MAX_OPAQUE_BYTES + 1];
        assert!(Payload::decode(&small, PayloadPolicy::Transactions).is_err());
        let opaque = Payload::decode(&small, PayloadPolicy::OrderingOnly).expect("opaque");
        assert!(matches!(opaque, Payload::Opaque(_)));
        assert_eq!(opaque.id(), TxId(*blake3::hash(&small).as_bytes()));
        assert_eq!(
            request_id(&small, PayloadPolicy::OrderingOnly),
            Some(opaque.id())
        );
        assert_eq!(request_id(&small, PayloadPolicy::Transactions), None);
        assert!(Payload::decode(&large, PayloadPolicy::OrderingOnly).is_err());
        let check = |p: PayloadPolicy, b: &[u8]| (p.shape_check().0)(b).is_ok();
        assert!(!check(PayloadPolicy::Transactions, &small));
        assert!(check(PayloadPolicy::OrderingOnly, &small));
        assert!(!check(PayloadPolicy::OrderingOnly, &large));
    }
}
