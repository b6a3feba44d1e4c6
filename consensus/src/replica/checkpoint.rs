//! Checkpoints and garbage collection (§4.3): votes on the state root every `K` heights,
//! stable checkpoints, and moving the log window.

use super::*;

impl Replica {
    pub(super) fn handle_executed(
        &mut self,
        height: Height,
        state_root: StateRoot,
        next_validators: Option<ValidatorSet>,
    ) -> Result<(), Error> {
        if height > self.last_delivered {
            return Err(Error::Invariant(format!(
                "host executed height {height} beyond the last commit {}",
                self.last_delivered
            )));
        }
        if let Some(next) = next_validators {
            if next.epoch <= self.cfg.validators.epoch {
                return Err(Error::InvalidConfig("next epoch must be higher".into()));
            }
            if self.scheduled_epoch.is_none() {
                let k = self.cfg.checkpoint_interval;
                let activation = height.div_ceil(k) * k + self.cfg.window_size;
                self.scheduled_epoch = Some((activation, next));
            }
        }
        if !height.is_multiple_of(self.cfg.checkpoint_interval) || height <= self.stable.height {
            return Ok(());
        }
        if self.learner {
            // It has no vote; its checkpoints become stable by the members' votes.
            return Ok(());
        }
        let Some(hash) = self.delivered_hashes.get(&height).copied() else {
            return Ok(());
        };
        let sm = self.sign(Message::Checkpoint(CheckpointVote {
            height,
            block_hash: hash,
            state_root,
        }));
        self.checkpoint_votes
            .entry(height)
            .or_default()
            .insert(self.id, (hash, state_root, sm.signature));
        self.own_checkpoints.insert(height, sm.clone());
        self.out
            .push(Action::Persist(PersistDelta::Vote(sm.clone())));
        self.out.push(Action::Broadcast { msg: sm });
        self.check_checkpoint(height);
        Ok(())
    }

    /// §4.3 checkpoints: 2f+1 matching CHECKPOINTs make a checkpoint stable.
    pub(super) fn on_checkpoint(&mut self, sm: SignedMessage) -> Result<(), Error> {
        let Message::Checkpoint(cv) = &sm.message else {
            return Err(Error::Malformed("not a checkpoint".into()));
        };
        let cv = *cv;
        if cv.height <= self.stable.height {
            return Err(Error::Stale("checkpoint at or below the stable one"));
        }
        if !cv.height.is_multiple_of(self.cfg.checkpoint_interval) {
            return Err(Error::Malformed(
                "checkpoint height not a multiple of K".into(),
            ));
        }
        if let Some((h, r, _)) = self
            .checkpoint_votes
            .get(&cv.height)
            .and_then(|m| m.get(&sm.from))
        {
            return if *h == cv.block_hash && *r == cv.state_root {
                Err(Error::Duplicate)
            } else {
                sm.verify(&self.cfg.validators)
                    .and(Err(Error::Equivocation(sm.from, "CHECKPOINT")))
            };
        }
        sm.verify(&self.cfg.validators)?;
        // Bound the votes kept per sender: drop its lowest when over the cap.
        let cap = (self.cfg.window_size / self.cfg.checkpoint_interval) as usize + 2;
        let mine: Vec<Height> = self
            .checkpoint_votes
            .iter()
            .filter(|(_, m)| m.contains_key(&sm.from))
            .map(|(h, _)| *h)
            .collect();
        if mine.len() >= cap {
            if let Some(lowest) = mine.first() {
                if *lowest > cv.height {
                    return Err(Error::Limit("too many checkpoint votes from sender".into()));
                }
                if let Some(m) = self.checkpoint_votes.get_mut(lowest) {
                    m.remove(&sm.from);
                }
            }
        }
        self.checkpoint_votes
            .entry(cv.height)
            .or_default()
            .insert(sm.from, (cv.block_hash, cv.state_root, sm.signature));
        self.check_checkpoint(cv.height);
        Ok(())
    }

    pub(super) fn check_checkpoint(&mut self, h: Height) {
        if h <= self.stable.height {
            return;
        }
        let Some(votes) = self.checkpoint_votes.get(&h) else {
            return;
        };
        let mut groups: BTreeMap<(BlockHash, StateRoot), Vec<(ReplicaId, Signature)>> =
            BTreeMap::new();
        for (r, (hash, root, sig)) in votes {
            groups.entry((*hash, *root)).or_default().push((*r, *sig));
        }
        let quorum = self.quorum();
        let weak = self.cfg.validators.weak_quorum();
        for ((hash, root), sigs) in groups {
            if sigs.len() >= quorum {
                let cert = CheckpointCertificate {
                    height: h,
                    block_hash: hash,
                    state_root: root,
                    signatures: sigs.into_iter().take(quorum).collect(),
                };
                self.adopt_stable(cert);
                return;
            }
            if sigs.len() >= weak && h > self.last_delivered {
                // At least one honest replica executed up to h: we are behind.
                self.note_behind(h, sigs.iter().map(|(r, _)| *r).collect());
            }
        }
    }

    /// Makes `cert` the stable checkpoint and garbage-collects the log below it.
    pub(super) fn adopt_stable(&mut self, cert: CheckpointCertificate) {
        let h = cert.height;
        if h <= self.stable.height {
            return;
        }
        if let Some(known) = self.committed_hash(h) {
            if known != cert.block_hash {
                self.reject(Error::Invariant(format!(
                    "stable checkpoint {h} conflicts with our committed block"
                )));
                return;
            }
        }
        self.out
            .push(Action::Persist(PersistDelta::StableCheckpoint(
                cert.clone(),
            )));
        let signers: Vec<ReplicaId> = cert.signatures.iter().map(|(r, _)| *r).collect();
        self.stable = cert;
        self.slots.retain(|k, _| *k > h);
        self.checkpoint_votes.retain(|k, _| *k > h);
        self.own_checkpoints.retain(|k, _| *k > h);
        self.delivered_hashes.retain(|k, _| *k >= h);
        self.delivered_hashes.insert(h, self.stable.block_hash);
        if self.next_propose <= h {
            self.next_propose = h + 1;
        }
        if h > self.last_delivered {
            self.note_behind(h, signers);
        }
        // Slots waiting on their parent may now be able to commit.
        self.try_send_commit(h + 1);
    }

    pub(super) fn check_epoch_change(&mut self) {
        if self.epoch_change_announced {
            return;
        }
        let Some((activation, next)) = &self.scheduled_epoch else {
            return;
        };
        if self.stable.height >= *activation && self.last_delivered >= *activation {
            self.epoch_change_announced = true;
            self.out.push(Action::EpochChange {
                activation_height: *activation,
                checkpoint: self.stable.clone(),
                next_validators: next.clone(),
            });
        }
    }
}
