//! What happened to each transaction of a block: applied, enacted or rejected, with the
//! reason, and the rejection code that compact blocks certify.

use shoji_primitives::encoding::EncodingError;
use shoji_primitives::tx::{Transaction, TxId};

/// Why a transaction in a block was not applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Rejection {
    /// Stateless validation failed.
    #[error("{0}")]
    Stateless(String),
    /// The anchor is not one of the recent roots.
    #[error("unknown or expired anchor")]
    UnknownAnchor,
    /// A nullifier was already spent (possibly earlier in this block).
    #[error("double spend: nullifier already revealed")]
    DoubleSpend,
    /// The audit record is for another key than the one in force.
    #[error("audit record is not encrypted to the auditor key in force")]
    WrongAuditor,
    /// The issuer is not registered for the asset.
    #[error("issuer is not registered for asset {0}")]
    UnauthorizedIssuer(u64),
    /// The transaction expired before this block.
    #[error("transaction expired at height {0}")]
    Expired(u64),
    /// The commitment tree has no room.
    #[error("commitment tree is full")]
    TreeFull,
    /// A governance transaction out of sequence (a replay, or one prepared against an older
    /// policy).
    #[error("governance sequence number {got}, expected {expected}")]
    GovernanceSequence {
        /// The next sequence number.
        expected: u64,
        /// The transaction's.
        got: u64,
    },
    /// A governance transaction without the approvals it needs.
    #[error("governance approvals: {0}")]
    Unapproved(String),
    /// A validator-set change that cannot be made.
    #[error("validator set: {0}")]
    ValidatorSet(String),
    /// A registry change that cannot be made (revoking a name that is not registered).
    #[error("participant registry: {0}")]
    Registry(String),
    /// The transaction names another network (another genesis): it was built for, or
    /// replayed from, a network that shares keys with this one.
    #[error("transaction is for another network")]
    WrongNetwork,
    /// An account transaction on a network without an account-tier auditor key.
    #[error("this network has no confidential accounts (no account auditor key)")]
    AccountsDisabled,
    /// An opening of an account that exists.
    #[error("the account is already open")]
    AccountExists,
    /// A transaction naming an account that was never opened.
    #[error("no such account")]
    UnknownAccount,
    /// An account transaction out of sequence (a replay, or one made against an older state).
    #[error("account sequence number {got}, expected {expected}")]
    AccountSequence {
        /// The account's next sequence number.
        expected: u64,
        /// The transaction's.
        got: u64,
    },
    /// The balance a transaction spends from is not the account's for the credits it names,
    /// or names credits outside the window.
    #[error("the spendable balance is not the account's (credits {0})")]
    StaleBalance(u64),
}

impl Rejection {
    /// The class of this rejection, as a block's compact form certifies it.
    pub fn code(&self) -> RejectionCode {
        match self {
            Rejection::Stateless(_) => RejectionCode::Invalid,
            Rejection::UnknownAnchor => RejectionCode::UnknownAnchor,
            Rejection::DoubleSpend => RejectionCode::DoubleSpend,
            Rejection::WrongAuditor => RejectionCode::WrongAuditor,
            Rejection::UnauthorizedIssuer(_) => RejectionCode::UnauthorizedIssuer,
            Rejection::Expired(_) => RejectionCode::Expired,
            Rejection::TreeFull => RejectionCode::TreeFull,
            Rejection::WrongNetwork => RejectionCode::WrongNetwork,
            Rejection::AccountsDisabled
            | Rejection::AccountExists
            | Rejection::UnknownAccount
            | Rejection::AccountSequence { .. }
            | Rejection::StaleBalance(_) => RejectionCode::Account,
            Rejection::GovernanceSequence { .. }
            | Rejection::Unapproved(_)
            | Rejection::ValidatorSet(_)
            | Rejection::Registry(_) => RejectionCode::Governance,
        }
    }
}

/// Why a transaction was not applied, without the details a [`Rejection`] carries: what a
/// block's compact form records, so that the reason is certified with the block.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum RejectionCode {
    /// Stateless validation failed (layout, signature or proof).
    Invalid = 1,
    /// [`Rejection::UnknownAnchor`].
    UnknownAnchor = 2,
    /// [`Rejection::DoubleSpend`].
    DoubleSpend = 3,
    /// [`Rejection::WrongAuditor`].
    WrongAuditor = 4,
    /// [`Rejection::UnauthorizedIssuer`].
    UnauthorizedIssuer = 5,
    /// [`Rejection::Expired`].
    Expired = 6,
    /// [`Rejection::TreeFull`].
    TreeFull = 7,
    /// [`Rejection::WrongNetwork`].
    WrongNetwork = 8,
    /// A governance rule (sequence, approvals, validator set).
    Governance = 9,
    /// An account rule: unknown or existing account, sequence, stale balance, accounts off.
    Account = 10,
}

impl RejectionCode {
    /// The code of byte `b`.
    pub fn from_u8(b: u8) -> Result<Self, EncodingError> {
        Ok(match b {
            1 => Self::Invalid,
            2 => Self::UnknownAnchor,
            3 => Self::DoubleSpend,
            4 => Self::WrongAuditor,
            5 => Self::UnauthorizedIssuer,
            6 => Self::Expired,
            7 => Self::TreeFull,
            8 => Self::WrongNetwork,
            9 => Self::Governance,
            10 => Self::Account,
            _ => return Err(EncodingError::Invalid("unknown rejection code")),
        })
    }
}

impl RejectionCode {
    /// A short machine name (`double_spend`), for metric labels and logs.
    pub fn name(self) -> &'static str {
        match self {
            Self::Invalid => "invalid",
            Self::UnknownAnchor => "unknown_anchor",
            Self::DoubleSpend => "double_spend",
            Self::WrongAuditor => "wrong_auditor",
            Self::UnauthorizedIssuer => "unauthorized_issuer",
            Self::Expired => "expired",
            Self::TreeFull => "tree_full",
            Self::WrongNetwork => "wrong_network",
            Self::Governance => "governance",
            Self::Account => "account",
        }
    }
}

impl std::fmt::Display for RejectionCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Invalid => "invalid transaction (layout, signature or proof)",
            Self::UnknownAnchor => "unknown or expired anchor",
            Self::DoubleSpend => "double spend: nullifier already revealed",
            Self::WrongAuditor => "audit record is not encrypted to the auditor key in force",
            Self::UnauthorizedIssuer => "issuer is not registered for the asset",
            Self::Expired => "transaction expired",
            Self::TreeFull => "commitment tree is full",
            Self::WrongNetwork => "transaction is for another network",
            Self::Governance => "governance rule",
            Self::Account => "account rule (unknown or existing account, sequence, stale balance)",
        })
    }
}

/// A transaction of a block that was not applied, as the block's compact form certifies it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CompactRejection {
    /// The hash of the exact bytes ordered ([`Transaction::auth_id`]): what its submitter
    /// holds, whichever copy of the transaction other validators ordered.
    pub auth_id: TxId,
    /// Why it was not applied.
    pub code: RejectionCode,
}

impl CompactRejection {
    /// Encoded length: `auth_id ‖ code`.
    pub const BYTES: usize = 32 + 1;

    /// The record of `tx` rejected for `why`.
    pub fn of(tx: &Transaction, why: &Rejection) -> Self {
        Self {
            auth_id: tx.auth_id(),
            code: why.code(),
        }
    }
}

/// What happened to one transaction of a block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TxOutcome {
    /// Applied; its two commitments are leaves `first_leaf` and `first_leaf + 1`.
    Applied {
        /// Position of the first output commitment.
        first_leaf: u64,
    },
    /// A governance transaction, enacted.
    Enacted,
    /// Not applied.
    Rejected(Rejection),
}
