//! The public events of a committed block ([`shoji_client::events`]), derived when the block is
//! executed and stored with it, and served to clients that ask for the events after a cursor
//! ([`answer`]): every validator derives the same events from the same block and outcomes.

use shoji_client::events::{Cursor, Event, EventBody, KindMask, PayloadKind};
use shoji_ledger::{BlockOutcome, TxOutcome};
use shoji_primitives::account::AccountTx;
use shoji_primitives::governance::GovernanceTx;
use shoji_primitives::tx::Transaction;

/// What a block's payload was, in block order: an index into the decoded shielded
/// transactions, the governance transactions or the opaque payloads.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Slot {
    Shielded(usize),
    Account(usize),
    Governance(usize),
    Opaque(usize),
}

fn reason(o: &TxOutcome) -> (bool, Option<u8>) {
    match o {
        TxOutcome::Applied { .. } | TxOutcome::Enacted => (true, None),
        TxOutcome::Rejected(r) => (false, Some(r.code() as u8)),
    }
}

/// The events of one executed block: the block (index 0), each payload's outcome in block
/// order, each enacted governance action, a decided validator set, a new epoch.
#[allow(clippy::too_many_arguments)]
pub(crate) fn of_block(
    block: &shoji_consensus::Block,
    certificate: &shoji_consensus::CommitCertificate,
    order: &[Slot],
    txs: &[Transaction],
    accounts: &[AccountTx],
    governance: &[GovernanceTx],
    opaque: &[(shoji_primitives::tx::TxId, TxOutcome)],
    outcome: &BlockOutcome,
    next_epoch: u64,
) -> Vec<EventBody> {
    let mut events = vec![EventBody::Block {
        hash: block.hash().0,
        prev_hash: block.prev_hash.0,
        time_ms: outcome.time_ms,
        view: certificate.view,
        transactions: u32::try_from(block.transactions.len()).unwrap_or(u32::MAX),
        signatures: u32::try_from(certificate.signatures.len()).unwrap_or(u32::MAX),
    }];
    for slot in order {
        let (txid, kind, o) = match *slot {
            Slot::Shielded(i) => match (txs.get(i), outcome.outcomes.get(i)) {
                (Some(tx), Some(o)) => (tx.id().0, PayloadKind::of(tx.kind()), o),
                _ => continue,
            },
            Slot::Account(i) => match (accounts.get(i), outcome.accounts.get(i)) {
                (Some(tx), Some((id, o))) => (id.0, PayloadKind::of_account(tx), o),
                _ => continue,
            },
            Slot::Governance(i) => match outcome.governance.get(i) {
                Some((id, o)) => (id.0, PayloadKind::Governance, o),
                None => continue,
            },
            Slot::Opaque(i) => match opaque.get(i) {
                Some((id, o)) => (id.0, PayloadKind::Opaque, o),
                None => continue,
            },
        };
        let (applied, reason) = reason(o);
        events.push(EventBody::Transaction {
            txid,
            kind,
            applied,
            reason,
        });
    }
    for (g, (_, o)) in governance.iter().zip(&outcome.governance) {
        if matches!(o, TxOutcome::Enacted) {
            events.push(EventBody::Governance {
                seq: g.seq,
                action: g.action.to_string(),
            });
        }
    }
    if let Some((last, validators)) = &outcome.validators_decided {
        events.push(EventBody::ValidatorSet {
            epoch: next_epoch,
            last: *last,
            validators: validators.keys().copied().collect(),
        });
    }
    if let Some((epoch, validators)) = &outcome.epoch_started {
        events.push(EventBody::Epoch {
            epoch: *epoch,
            validators: validators.keys().copied().collect(),
        });
    }
    events
}

/// The events after `after` whose kinds are in `kinds`, at most `max`, from the stored heights
/// `heights` (height, encoded events; in height order, from `after.height` on), and the cursor
/// to resume from: the last event looked at, so that a filtered reader does not look at the
/// same events again.
pub(crate) fn select(
    heights: &[(u64, Vec<u8>)],
    after: Cursor,
    kinds: KindMask,
    max: usize,
) -> Result<(Vec<Event>, Cursor), String> {
    let mut out = Vec::new();
    let mut next = after;
    for (height, bytes) in heights {
        let bodies = shoji_client::events::decode_height(bytes)
            .map_err(|e| format!("stored events of height {height}: {e}"))?;
        for (index, body) in bodies.into_iter().enumerate() {
            let cursor = Cursor {
                height: *height,
                index: u32::try_from(index).unwrap_or(u32::MAX),
            };
            if cursor <= after {
                continue;
            }
            if out.len() == max {
                return Ok((out, next));
            }
            next = cursor;
            if kinds & body.kind().bit() != 0 {
                out.push(Event { cursor, body });
            }
        }
    }
    Ok((out, next))
}

#[cfg(test)]
mod tests {
    use super::*;
    use shoji_client::events::{EventKind, ALL_KINDS};

    fn block(n: u32) -> EventBody {
        EventBody::Block {
            hash: [0; 32],
            prev_hash: [0; 32],
            time_ms: 0,
            view: 0,
            transactions: n,
            signatures: 3,
        }
    }

    fn tx(b: u8) -> EventBody {
        EventBody::Transaction {
            txid: [b; 32],
            kind: PayloadKind::Mint,
            applied: true,
            reason: None,
        }
    }

    fn heights() -> Vec<(u64, Vec<u8>)> {
        vec![
            (1, shoji_client::events::encode_height(&[block(1), tx(1)])),
            (2, shoji_client::events::encode_height(&[block(0)])),
            (
                3,
                shoji_client::events::encode_height(&[block(2), tx(2), tx(3)]),
            ),
        ]
    }

    fn at(height: u64, index: u32) -> Cursor {
        Cursor { height, index }
    }

    #[test]
    fn select_pages_in_order_and_resumes_after_what_it_looked_at() {
        let h = heights();
        let (all, next) = select(&h, Cursor::START, ALL_KINDS, 100).unwrap();
        let cursors: Vec<Cursor> = all.iter().map(|e| e.cursor).collect();
        assert_eq!(
            cursors,
            [at(1, 0), at(1, 1), at(2, 0), at(3, 0), at(3, 1), at(3, 2)]
        );
        assert_eq!(next, at(3, 2));
        // Pages of two: the same events, none twice.
        let mut paged = Vec::new();
        let mut after = Cursor::START;
        loop {
            let (page, next) = select(&h, after, ALL_KINDS, 2).unwrap();
            if page.is_empty() {
                assert_eq!(next, after);
                break;
            }
            assert!(page.len() <= 2);
            paged.extend(page);
            after = next;
        }
        assert_eq!(paged, all);
        // A filter leaves the blocks out, and its resume cursor passes them.
        let (txs, next) = select(&h, at(1, 1), EventKind::Transaction.bit(), 1).unwrap();
        assert_eq!(txs.iter().map(|e| e.cursor).collect::<Vec<_>>(), [at(3, 1)]);
        assert_eq!(next, at(3, 1));
        let (none, next) = select(&h, at(3, 2), ALL_KINDS, 10).unwrap();
        assert!(none.is_empty());
        assert_eq!(next, at(3, 2));
    }

    #[test]
    fn select_refuses_stored_bytes_that_do_not_decode() {
        let bad = vec![(1, vec![0xff, 0xff, 0xff])];
        assert!(select(&bad, Cursor::START, ALL_KINDS, 10)
            .unwrap_err()
            .contains("height 1"));
    }
}
