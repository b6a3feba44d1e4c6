//! What a submitted transaction became, decided from the certified blocks and never from one
//! validator's word alone, and what that means for the notes it reserved.
//!
//! A validator answers a submission with "applied in block h", "rejected in block h" or a
//! refusal before ordering. Each answer may be false (a faulty validator may lie), and a
//! refusal does not mean the payment did not happen: anyone can rerandomize a proof, and a copy
//! with other proof bytes, ordered first, has the same id. So after the wallet has synced,
//! [`Wallet::settle`] decides from what it scanned: a transaction the certified blocks applied
//! is committed; notes are freed only when the certified block says these bytes were rejected
//! there, or when the transaction was refused before ordering; otherwise they stay reserved
//! until the transaction commits or expires.

use crate::Wallet;
use shoji_ledger::RejectionCode;
use shoji_primitives::tx::TxId;

/// What the validator answered to a submission.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Answer {
    /// Applied in block `height` (with a checked commit certificate for the block).
    Applied(u64),
    /// Rejected in block `height`.
    Rejected(u64),
    /// Refused before ordering (malformed, invalid, a known double spend, a full queue).
    Refused,
}

/// What the wallet concludes, with the pending transaction kept or freed accordingly.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Settlement {
    /// The certified blocks applied the transaction at `height`. `copy`: the validator said
    /// otherwise, and the network ordered a copy with other proof bytes (same id).
    Committed {
        /// The block.
        height: u64,
        /// The bytes submitted were not the bytes ordered.
        copy: bool,
    },
    /// The validator says applied in block `height`, which no stable checkpoint covers yet:
    /// the notes stay reserved, and a later sync confirms it.
    Uncertified {
        /// The block.
        height: u64,
    },
    /// The validator's answer about block `height` is contradicted by the certified block
    /// (neither applied, nor, where the answer was a rejection, rejected there), or the block
    /// is not certified yet: the notes stay reserved until the transaction commits or expires.
    Unsettled {
        /// The block the answer named.
        height: u64,
        /// The certified block is there and contradicts the answer (else it is not yet
        /// certified).
        contradicted: bool,
    },
    /// The certified block `height` rejected these bytes with `code`: nothing was spent, and
    /// the notes are free again.
    Rejected {
        /// The block.
        height: u64,
        /// Why, as the certified block says.
        code: RejectionCode,
    },
    /// Refused before ordering: nothing was spent, and the notes are free again.
    Refused,
}

impl Settlement {
    /// Whether the transaction's notes were freed (nothing was spent).
    pub fn freed(&self) -> bool {
        matches!(self, Settlement::Rejected { .. } | Settlement::Refused)
    }
}

impl Wallet {
    /// Settles the pending transaction `txid` after the validator's `answer`, from the blocks
    /// this wallet has scanned (sync first). `rejection_at(h)` reads the certified block `h`
    /// (at or below the scanned height): the code with which it rejected the submitted bytes,
    /// or `None` when it lists no rejection of them. Frees the pending transaction when the
    /// settlement says so ([`Settlement::freed`]); the caller saves the wallet.
    pub fn settle<E>(
        &mut self,
        txid: &TxId,
        answer: Answer,
        mut rejection_at: impl FnMut(u64) -> Result<Option<RejectionCode>, E>,
    ) -> Result<Settlement, E> {
        let reported = match answer {
            Answer::Applied(h) | Answer::Rejected(h) => Some(h),
            Answer::Refused => None,
        };
        let committed = self.committed_height(txid);
        // What the certified block the answer names says of these bytes, if it is scanned (not
        // asked when the answer "applied" is borne out already).
        let certified = match reported {
            _ if committed.is_some() && matches!(answer, Answer::Applied(_)) => None,
            Some(h) if self.height() >= h => Some(rejection_at(h)?),
            _ => None,
        };
        let settlement = match (committed, answer, certified) {
            (Some(height), Answer::Applied(_), _) => Settlement::Committed {
                height,
                copy: false,
            },
            // A false rejection report, and the transaction applied all the same.
            (Some(height), Answer::Rejected(_), Some(None)) => Settlement::Committed {
                height,
                copy: false,
            },
            (Some(height), _, _) => Settlement::Committed { height, copy: true },
            (None, Answer::Applied(height), None) => Settlement::Uncertified { height },
            (None, Answer::Rejected(height), None) => Settlement::Unsettled {
                height,
                contradicted: false,
            },
            (None, Answer::Applied(height) | Answer::Rejected(height), Some(Some(code))) => {
                Settlement::Rejected { height, code }
            }
            (None, Answer::Applied(height) | Answer::Rejected(height), Some(None)) => {
                Settlement::Unsettled {
                    height,
                    contradicted: true,
                }
            }
            (None, Answer::Refused, _) => Settlement::Refused,
        };
        if settlement.freed() {
            self.drop_pending(txid);
        }
        Ok(settlement)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Pending;
    use shoji_primitives::keys::WalletSeed;
    use shoji_primitives::note::{Amount, AssetId};
    use shoji_primitives::Fr;
    use std::convert::Infallible;

    const TX: TxId = TxId([7; 32]);

    /// A wallet scanned to `height` with `TX` pending, committed at `committed` if given.
    fn wallet(height: u64, committed: Option<u64>) -> Wallet {
        let mut w = Wallet::new(&WalletSeed([5; 32]));
        w.height = height;
        w.add_pending(Pending {
            txid: TX,
            nullifiers: [Fr::from(1u64), Fr::from(2u64)],
            expiry_height: 100,
            asset: AssetId(840),
            amount: Amount(10),
            to: None,
        });
        if let Some(h) = committed {
            w.confirmed.push((TX, h));
        }
        w
    }

    /// Settles `answer` for a wallet at `height` (committed at `committed`) against a certified
    /// block that rejects with `code` at height 5 only; returns the settlement, whether `TX`
    /// is still pending, and the heights read.
    fn settle(
        height: u64,
        committed: Option<u64>,
        answer: Answer,
        code: Option<RejectionCode>,
    ) -> (Settlement, bool, Vec<u64>) {
        let mut w = wallet(height, committed);
        let mut read = Vec::new();
        let s = w
            .settle(&TX, answer, |h| {
                read.push(h);
                Ok::<_, Infallible>(if h == 5 { code } else { None })
            })
            .unwrap_or_else(|e| match e {});
        (s, w.pending().iter().any(|p| p.txid == TX), read)
    }

    #[test]
    fn applied_and_certified_is_committed() {
        let (s, pending, read) = settle(9, Some(5), Answer::Applied(5), None);
        assert_eq!(
            s,
            Settlement::Committed {
                height: 5,
                copy: false
            }
        );
        assert!(read.is_empty(), "the scan bore the answer out already");
        // The scan that found it commits it; settling does not free notes.
        assert!(pending);
    }

    #[test]
    fn applied_in_a_block_not_yet_certified_keeps_the_notes() {
        let (s, pending, read) = settle(4, None, Answer::Applied(5), None);
        assert_eq!(s, Settlement::Uncertified { height: 5 });
        assert!(pending);
        assert!(read.is_empty(), "nothing certified at 5 to read");
    }

    /// "Applied", but the certified block rejected these bytes: nothing was spent.
    #[test]
    fn applied_but_certified_rejected_frees_the_notes() {
        let code = RejectionCode::DoubleSpend;
        let (s, pending, read) = settle(9, None, Answer::Applied(5), Some(code));
        assert_eq!(s, Settlement::Rejected { height: 5, code });
        assert!(!pending);
        assert_eq!(read, [5]);
    }

    /// "Applied", but the certified block neither applies nor rejects it: the lie frees
    /// nothing (the transaction may still be ordered before it expires).
    #[test]
    fn applied_but_unaccounted_for_keeps_the_notes() {
        let (s, pending, _) = settle(9, None, Answer::Applied(5), None);
        assert_eq!(
            s,
            Settlement::Unsettled {
                height: 5,
                contradicted: true
            }
        );
        assert!(pending);
    }

    #[test]
    fn certified_rejection_frees_the_notes() {
        let code = RejectionCode::UnknownAnchor;
        let (s, pending, _) = settle(9, None, Answer::Rejected(5), Some(code));
        assert_eq!(s, Settlement::Rejected { height: 5, code });
        assert!(!pending);
    }

    /// A rejection report the certified blocks do not bear out frees nothing.
    #[test]
    fn false_or_uncertified_rejection_keeps_the_notes() {
        let (s, pending, _) = settle(9, None, Answer::Rejected(5), None);
        assert_eq!(
            s,
            Settlement::Unsettled {
                height: 5,
                contradicted: true
            }
        );
        assert!(pending);
        let (s, pending, _) = settle(4, None, Answer::Rejected(5), None);
        assert_eq!(
            s,
            Settlement::Unsettled {
                height: 5,
                contradicted: false
            }
        );
        assert!(pending);
    }

    /// Refused or rejected, a copy with other proof bytes may have been ordered: committed.
    #[test]
    fn a_committed_copy_wins_over_a_refusal_or_rejection() {
        let (s, pending, _) = settle(9, Some(3), Answer::Refused, None);
        assert_eq!(
            s,
            Settlement::Committed {
                height: 3,
                copy: true
            }
        );
        assert!(pending);
        let code = RejectionCode::DoubleSpend;
        let (s, _, _) = settle(9, Some(3), Answer::Rejected(5), Some(code));
        assert_eq!(
            s,
            Settlement::Committed {
                height: 3,
                copy: true
            }
        );
        // "Rejected at 5" was false: the certified block 5 does not reject these bytes.
        let (s, _, _) = settle(9, Some(5), Answer::Rejected(5), None);
        assert_eq!(
            s,
            Settlement::Committed {
                height: 5,
                copy: false
            }
        );
    }

    #[test]
    fn refused_before_ordering_frees_the_notes() {
        let (s, pending, read) = settle(9, None, Answer::Refused, None);
        assert_eq!(s, Settlement::Refused);
        assert!(!pending);
        assert!(read.is_empty());
    }
}
