//! Dispatch: every signed message a replica receives is checked here once (signature,
//! sender, view and height bounds) and handed to the handler family of its kind.

use super::*;

impl Replica {
    pub(super) fn handle_message(
        &mut self,
        peer: ReplicaId,
        sm: SignedMessage,
    ) -> Result<(), Error> {
        let vs = &self.cfg.validators;
        if !vs.contains(peer) {
            return Err(Error::UnknownSender(peer));
        }
        if !vs.contains(sm.from) {
            return Err(Error::UnknownSender(sm.from));
        }
        if sm.from == self.id {
            return Err(Error::Duplicate);
        }
        // A learner only learns which checkpoints are stable (to know how far behind it is).
        if self.learner && !matches!(sm.message, Message::Checkpoint(_)) {
            return Err(Error::NotAMember);
        }
        match &sm.message {
            Message::Request(tx) => {
                if tx.len() > self.cfg.max_tx_bytes {
                    return Err(Error::Limit("forwarded transaction too large".into()));
                }
                let th = TxHash::of(tx);
                if self.pending.contains_key(&th) || self.recent_txs.contains_key(&th) {
                    return Err(Error::Duplicate);
                }
                sm.verify(&self.cfg.validators)?;
                if let Message::Request(tx) = sm.message {
                    self.add_pending(tx, Some(sm.from), false)?;
                }
                Ok(())
            }
            Message::Requests(txs) => {
                if txs.is_empty() || txs.len() > MAX_RELAY_BATCH {
                    return Err(Error::Limit(format!(
                        "a relay of {} transactions (1 to {MAX_RELAY_BATCH})",
                        txs.len()
                    )));
                }
                if txs.iter().any(|tx| tx.len() > self.cfg.max_tx_bytes) {
                    return Err(Error::Limit("forwarded transaction too large".into()));
                }
                // An honest member relays only what its host admitted: one payload that is
                // not a transaction condemns the whole message.
                if let Some(e) = txs
                    .iter()
                    .find_map(|tx| self.cfg.payload_check.check(tx).err())
                {
                    return Err(Error::Malformed(format!("relayed payload: {e}")));
                }
                let known = |tx: &Vec<u8>| {
                    let th = TxHash::of(tx);
                    self.pending.contains_key(&th) || self.recent_txs.contains_key(&th)
                };
                if txs.iter().all(known) {
                    return Err(Error::Duplicate);
                }
                sm.verify(&self.cfg.validators)?;
                if let Message::Requests(txs) = sm.message {
                    for tx in txs {
                        self.add_pending(tx, Some(sm.from), false)?;
                    }
                }
                Ok(())
            }
            Message::PrePrepare(_) => self.on_pre_prepare(sm),
            Message::Prepare(_) | Message::Commit(_) => self.on_vote(sm),
            Message::Checkpoint(_) => self.on_checkpoint(sm),
            Message::ViewChange(_) => self.on_view_change(sm),
            Message::NewView(_) => self.on_new_view(sm),
        }
    }

    pub(super) fn check_view(&self, view: View) -> Result<(), Error> {
        if view < self.view {
            return Err(Error::StaleView {
                got: view,
                current: self.view,
            });
        }
        if view != self.view || self.view_changing {
            return Err(Error::WrongView {
                got: view,
                current: self.view,
            });
        }
        Ok(())
    }

    /// `tx_hashes` are the hashes of `block`'s transactions, in order.
    pub(super) fn validate_block_content(
        &self,
        block: &Block,
        tx_hashes: &[TxHash],
    ) -> Result<(), Error> {
        // A block from the future: the leader's clock (or the leader) is wrong. Times in the
        // past are not refused: a block may be accepted long after it was proposed, and the
        // application clamps block time to be monotonic.
        if self.now_ms > 0 && block.time_ms > self.now_ms.saturating_add(self.cfg.max_clock_skew_ms)
        {
            return Err(Error::FutureBlock {
                height: block.height,
                time_ms: block.time_ms,
                now_ms: self.now_ms,
            });
        }
        if block.transactions.len() > self.cfg.max_batch_txs {
            return Err(Error::Malformed("too many transactions in block".into()));
        }
        let bytes: usize = block.transactions.iter().map(Vec::len).sum();
        if bytes > self.cfg.max_block_bytes {
            return Err(Error::Malformed(format!(
                "block of {bytes} transaction bytes exceeds {}",
                self.cfg.max_block_bytes
            )));
        }
        let mut seen = BTreeSet::new();
        for (tx, th) in block.transactions.iter().zip(tx_hashes) {
            if tx.len() > self.cfg.max_tx_bytes {
                return Err(Error::Malformed("transaction too large".into()));
            }
            if let Err(e) = self.cfg.payload_check.check(tx) {
                return Err(Error::Malformed(format!("block payload: {e}")));
            }
            let th = *th;
            if !seen.insert(th) {
                return Err(Error::Malformed("duplicate transaction in block".into()));
            }
            if self.recent_txs.contains_key(&th) {
                return Err(Error::Malformed("transaction already committed".into()));
            }
        }
        // No transaction may already be in flight at another height of this view.
        for (h, slot) in self.slots.range(self.last_delivered + 1..) {
            if *h == block.height {
                continue;
            }
            if slot.accepted_in(self.view).is_some() {
                for th in &slot.pre_prepare_txs {
                    if seen.contains(th) {
                        return Err(Error::Malformed(
                            "transaction already proposed at another height".into(),
                        ));
                    }
                }
            }
        }
        Ok(())
    }
}
