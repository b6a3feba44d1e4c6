//! State transfer between validators: probing peers for blocks this validator lacks,
//! serving them (rate-limited per peer), and feeding the answers to the replica.

use super::*;

impl NodeCore {
    /// Asks the next validator in rotation for the committed blocks above our height. The host
    /// calls it at start and periodically: it is how a validator that restarts after missing
    /// blocks, while the others are idle or have garbage-collected the consensus log that would
    /// tell it so, learns of them. An answer with blocks leads to further requests until the
    /// answering validator's height is reached.
    pub fn sync_probe(&mut self) -> Vec<Output> {
        if self.retired {
            return Vec::new();
        }
        let me = self.id();
        let others: Vec<ReplicaId> = self
            .replica
            .config()
            .validators
            .members
            .keys()
            .copied()
            .filter(|r| *r != me)
            .collect();
        if others.is_empty() {
            return Vec::new();
        }
        let to = others[self.probe_next % others.len()];
        self.probe_next = self.probe_next.wrapping_add(1);
        vec![Output::Send {
            to,
            bytes: wire::transfer_request(self.ledger.height() + 1),
        }]
    }

    /// Answers a state-transfer request with committed blocks from the store: at most
    /// [`wire::MAX_TRANSFER_BLOCKS`] and [`wire::TRANSFER_BYTE_BUDGET`] bytes of them, and at
    /// most [`TRANSFER_ANSWERS_PER_SECOND`] answers per peer.
    pub(super) fn serve_transfer(&mut self, to: ReplicaId, from_height: u64) -> Vec<Output> {
        if to == self.id() || !self.replica.config().validators.contains(to) {
            return Vec::new();
        }
        let now = self.replica.now_ms();
        let (start, count) = self.served.entry(to).or_insert((now, 0));
        if now.saturating_sub(*start) >= 1_000 || now < *start {
            *start = now;
            *count = 0;
        }
        if *count >= TRANSFER_ANSWERS_PER_SECOND {
            tracing::debug!(to = to.0, "state-transfer request over the rate limit");
            return Vec::new();
        }
        *count += 1;
        let tip = self.ledger.height();
        let max = wire::MAX_TRANSFER_BLOCKS.min(self.replica.config().max_state_transfer_blocks);
        let mut blocks = Vec::new();
        let mut size = 0usize;
        let mut h = from_height.max(1);
        while h <= tip && blocks.len() < max {
            match self.store.block(h) {
                Ok(Some(entry)) => {
                    let len = postcard::to_allocvec(&entry).map_or(usize::MAX, |b| b.len());
                    if !blocks.is_empty() && size.saturating_add(len) > wire::TRANSFER_BYTE_BUDGET {
                        break;
                    }
                    size = size.saturating_add(len);
                    blocks.push(entry);
                }
                Ok(None) => break,
                Err(e) => {
                    tracing::warn!(height = h, error = %e, "cannot read a block to serve");
                    break;
                }
            }
            h += 1;
        }
        if !blocks.is_empty() {
            tracing::debug!(
                to = to.0,
                from_height,
                blocks = blocks.len(),
                "serving state transfer"
            );
        }
        let stable = self.replica.stable_checkpoint();
        let stable = (stable.height > 0 && !stable.signatures.is_empty()).then(|| stable.clone());
        vec![Output::Send {
            to,
            bytes: wire::transfer_answer(&StateTransferAnswer {
                tip,
                blocks,
                stable,
            }),
        }]
    }

    /// Blocks from a state-transfer answer: the replica checks each (chain, certificate) and
    /// commits it, and they are executed like any committed block. While the answer made
    /// progress and the sender is further ahead, ask it for more.
    pub(super) fn on_transfer_answer(
        &mut self,
        from: ReplicaId,
        answer: StateTransferAnswer,
    ) -> Result<Vec<Output>, NodeError> {
        let before = self.ledger.height();
        let count = answer.blocks.len();
        let actions = self.replica.on_state_transfer(from, answer.blocks);
        let mut out = self.process(actions)?;
        // The sender's stable checkpoint, as the CHECKPOINT votes it is made of: the replica
        // checks each signature and adopts it like any quorum of votes.
        if let Some(cert) = answer.stable {
            let vote = shoji_consensus::CheckpointVote {
                height: cert.height,
                block_hash: cert.block_hash,
                state_root: cert.state_root,
            };
            for (signer, signature) in cert.signatures {
                let sm = shoji_consensus::SignedMessage {
                    from: signer,
                    message: shoji_consensus::Message::Checkpoint(vote),
                    signature,
                };
                let actions = self.replica.on_message(from, sm);
                out.extend(self.process(actions)?);
            }
        }
        let after = self.ledger.height();
        self.metrics
            .state_transfer_blocks
            .inc_by(after.saturating_sub(before));
        let tip = i64::try_from(answer.tip).unwrap_or(i64::MAX);
        if tip > self.metrics.network_height.get() {
            self.metrics.network_height.set(tip);
        }
        if after > before {
            tracing::info!(
                from = from.0,
                blocks = after - before,
                height = after,
                tip = answer.tip,
                "caught up by state transfer"
            );
        } else if count > 0 {
            tracing::debug!(
                from = from.0,
                count,
                "state-transfer answer made no progress"
            );
        }
        let asking = out.iter().any(|o| match o {
            Output::Send { bytes, .. } => wire::is_transfer_request(bytes),
            _ => false,
        });
        if after > before && after < answer.tip && !asking {
            out.push(Output::Send {
                to: from,
                bytes: wire::transfer_request(after + 1),
            });
        }
        Ok(out)
    }
}
