//! State transfer (§4.5 in spirit): fetching committed blocks with their commit
//! certificates from peers when this replica falls behind its checkpoint or its peers.

use super::*;

impl Replica {
    pub(super) fn note_ahead(&mut self, sm: &SignedMessage, n: Height) -> Result<(), Error> {
        if self.ahead.get(&sm.from).is_some_and(|h| *h >= n) {
            return Ok(());
        }
        sm.verify(&self.cfg.validators)?;
        self.ahead.insert(sm.from, n);
        let high = self.high_watermark();
        let mut far: Vec<(Height, ReplicaId)> = self
            .ahead
            .iter()
            .filter(|(_, h)| **h > high)
            .map(|(r, h)| (*h, *r))
            .collect();
        let weak = self.cfg.validators.weak_quorum();
        if far.len() >= weak {
            far.sort_unstable_by(|a, b| b.cmp(a));
            // The f+1-th highest: at least one honest replica committed up to it.
            let target = far[weak - 1].0 - 1;
            self.note_behind(target, far.iter().map(|(_, r)| *r).collect());
        }
        Ok(())
    }

    pub(super) fn note_behind(&mut self, target: Height, peers: Vec<ReplicaId>) {
        if target > self.transfer_target {
            self.transfer_target = target;
            self.transfer_peers.clear();
        }
        if target == self.transfer_target {
            self.transfer_peers
                .extend(peers.into_iter().filter(|p| *p != self.id));
        }
    }

    pub(super) fn behind(&self) -> bool {
        self.transfer_target > self.last_delivered
            && !self.deliverable.contains_key(&(self.last_delivered + 1))
    }

    pub(super) fn maybe_request_transfer(&mut self) {
        if !self.behind() {
            if self.transfer != Transfer::Idle {
                self.transfer = Transfer::Idle;
                self.out.push(Action::CancelTimer {
                    kind: TimerKind::StateTransfer,
                });
            }
            return;
        }
        if self.transfer == Transfer::Idle {
            // Debounce: the missing block may still arrive through normal operation.
            self.transfer = Transfer::Waiting;
            self.out.push(Action::SetTimer {
                kind: TimerKind::StateTransfer,
                after_ms: self.cfg.retransmit_ms,
            });
        }
    }

    pub(super) fn request_transfer(&mut self, peer: Option<ReplicaId>) {
        let peer = match peer {
            Some(p) => p,
            None => {
                let mut candidates: Vec<ReplicaId> = self.transfer_peers.iter().copied().collect();
                if candidates.is_empty() {
                    candidates = self
                        .cfg
                        .validators
                        .members
                        .keys()
                        .copied()
                        .filter(|r| *r != self.id)
                        .collect();
                }
                if candidates.is_empty() {
                    return;
                }
                let idx = (self.transfer_attempt % candidates.len() as u64) as usize;
                self.transfer_attempt += 1;
                candidates[idx]
            }
        };
        self.transfer = Transfer::InFlight(peer);
        self.out.push(Action::RequestStateTransfer {
            from: peer,
            from_height: self.last_delivered + 1,
        });
        self.out.push(Action::SetTimer {
            kind: TimerKind::StateTransfer,
            after_ms: self.cfg.state_transfer_timeout_ms,
        });
    }

    pub(super) fn on_transfer_timer(&mut self) {
        if !self.behind() {
            self.transfer = Transfer::Idle;
            return;
        }
        self.request_transfer(None);
    }

    pub(super) fn handle_state_transfer(
        &mut self,
        from: ReplicaId,
        blocks: Vec<(Block, CommitCertificate)>,
    ) -> Result<(), Error> {
        if !self.cfg.validators.contains(from) {
            return Err(Error::UnknownSender(from));
        }
        if blocks.len() > self.cfg.max_state_transfer_blocks {
            return Err(Error::Limit("state transfer batch too large".into()));
        }
        let mut progress = false;
        let mut result = Ok(());
        for (block, cert) in blocks {
            let h = block.height;
            if h <= self.last_delivered {
                continue;
            }
            if h != self.last_delivered + 1 {
                result = Err(Error::Malformed("gap in state transfer".into()));
                break;
            }
            if block.prev_hash != self.last_delivered_hash {
                result = Err(Error::BadChain(h));
                break;
            }
            if let Err(e) = verify_commit_certificate(&self.cfg.validators, &block, &cert) {
                result = Err(e);
                break;
            }
            if let Some(known) = self.committed_hash(h) {
                if known != block.hash() {
                    result = Err(Error::Invariant(format!(
                        "transferred block {h} conflicts with a committed one"
                    )));
                    break;
                }
            }
            self.deliverable.remove(&h);
            self.deliver(block, cert);
            progress = true;
            self.try_deliver();
        }
        if progress {
            let peer = match self.transfer {
                Transfer::InFlight(p) => Some(p),
                _ => Some(from),
            };
            self.transfer = Transfer::Idle;
            self.out.push(Action::CancelTimer {
                kind: TimerKind::StateTransfer,
            });
            if self.behind() {
                self.request_transfer(peer);
            }
        }
        result
    }
}
