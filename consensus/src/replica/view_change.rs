//! View changes (§4.4): VIEW-CHANGE messages, the new leader's NEW-VIEW with its
//! re-proposals, and the timers that drive them.

use super::*;

impl Replica {
    pub(super) fn on_view_timer(&mut self) {
        self.vc_timer_armed = false;
        if !self.view_changing {
            // §4.4: the timer expired while waiting for requests to commit.
            self.start_view_change(self.view + 1);
        } else if self.view_change_count(self.view) >= self.quorum() {
            // The new leader failed to install the view in time: move on, waiting longer.
            self.view_timeout_cur_ms =
                (self.view_timeout_cur_ms * 2).min(self.cfg.view_timeout_ms_max);
            self.start_view_change(self.view + 1);
        }
    }

    pub(super) fn view_change_count(&self, view: View) -> usize {
        self.view_changes
            .range((view, ReplicaId(0))..=(view, ReplicaId(u16::MAX)))
            .count()
    }

    pub(super) fn update_view_timer(&mut self) {
        if self.view_changing {
            return;
        }
        // Requests wait, or the chain waits for its checkpoint to close: a leader that does
        // neither is replaced.
        let want = !self.pending.is_empty() || self.tail_open();
        if want && (!self.vc_timer_armed || self.progressed) {
            self.vc_timer_armed = true;
            self.out.push(Action::SetTimer {
                kind: TimerKind::ViewChange,
                after_ms: self.view_timeout_cur_ms,
            });
        } else if !want && self.vc_timer_armed {
            self.vc_timer_armed = false;
            self.out.push(Action::CancelTimer {
                kind: TimerKind::ViewChange,
            });
        }
    }

    pub(super) fn check_view_change_quorum(&mut self) {
        if self.view_changing
            && !self.vc_timer_armed
            && self.view_change_count(self.view) >= self.quorum()
        {
            self.vc_timer_armed = true;
            self.out.push(Action::SetTimer {
                kind: TimerKind::ViewChange,
                after_ms: self.view_timeout_cur_ms,
            });
        }
    }

    /// §4.4: move to `new_view`, multicasting VIEW-CHANGE with the checkpoint proof and
    /// the P-set.
    pub(super) fn start_view_change(&mut self, new_view: View) {
        if new_view <= self.view || new_view > VIEW_MAX {
            return;
        }
        self.view = new_view;
        self.view_changing = true;
        if self.vc_timer_armed {
            self.vc_timer_armed = false;
            self.out.push(Action::CancelTimer {
                kind: TimerKind::ViewChange,
            });
        }
        // Votes of older views are useless from now on.
        for slot in self.slots.values_mut() {
            slot.prepares.retain(|(v, _), _| *v >= new_view);
            slot.commits.retain(|(v, _), _| *v >= new_view);
        }
        self.out.push(Action::Persist(PersistDelta::View {
            view: new_view,
            view_changing: true,
        }));
        self.send_view_change();
        self.check_view_change_quorum();
        self.try_new_view();
    }

    pub(super) fn send_view_change(&mut self) {
        let prepared: Vec<PreparedCertificate> = self
            .slots
            .range(self.stable.height + 1..)
            .filter_map(|(_, s)| s.prepared.clone())
            .collect();
        let vc = ViewChange {
            new_view: self.view,
            checkpoint: self.stable.clone(),
            prepared,
        };
        let sm = self.sign(Message::ViewChange(vc.clone()));
        self.view_changes.insert(
            (self.view, self.id),
            SignedViewChange {
                from: self.id,
                view_change: vc,
                signature: sm.signature,
            },
        );
        self.own_view_changes.insert(self.view, sm.clone());
        while self.own_view_changes.len() > PersistedState::OWN_VIEW_CHANGES_KEPT {
            self.own_view_changes.pop_first();
        }
        self.out
            .push(Action::Persist(PersistDelta::ViewChange(sm.clone())));
        self.out.push(Action::Broadcast { msg: sm });
    }

    /// Checks a VIEW-CHANGE's content (§4.4): valid checkpoint proof, and prepared
    /// certificates for distinct ascending heights inside the sender's window, from
    /// earlier views.
    pub(super) fn validate_view_change(&self, vc: &ViewChange) -> Result<(), Error> {
        let vs = &self.cfg.validators;
        if vc.new_view > VIEW_MAX {
            return Err(Error::Malformed("view number too large".into()));
        }
        if !vc
            .checkpoint
            .height
            .is_multiple_of(self.cfg.checkpoint_interval)
        {
            return Err(Error::Malformed(
                "checkpoint height not a multiple of K".into(),
            ));
        }
        if vc.prepared.len() as u64 > self.cfg.window_size {
            return Err(Error::Malformed("too many prepared certificates".into()));
        }
        // The checkpoint is not verified yet: its height is the sender's word.
        let low = vc.checkpoint.height;
        let high = low
            .checked_add(self.cfg.window_size)
            .ok_or_else(|| Error::Malformed("checkpoint height too large".into()))?;
        let mut last = low;
        for pc in &vc.prepared {
            let h = pc.height();
            if h <= last || h > high {
                return Err(Error::Malformed(
                    "prepared certificates not ascending inside the window".into(),
                ));
            }
            last = h;
            if pc.view() >= vc.new_view {
                return Err(Error::Malformed(
                    "prepared in a view not below the new one".into(),
                ));
            }
            if pc.header().tx_count > self.cfg.max_batch_txs as u64 {
                return Err(Error::Malformed("prepared block too large".into()));
            }
        }
        vc.checkpoint.verify(vs, &self.cfg.start_checkpoint)?;
        for pc in &vc.prepared {
            pc.verify(vs)?;
        }
        Ok(())
    }

    pub(super) fn on_view_change(&mut self, sm: SignedMessage) -> Result<(), Error> {
        let Message::ViewChange(vc) = &sm.message else {
            return Err(Error::Malformed("not a view change".into()));
        };
        let from = sm.from;
        let target = vc.new_view;
        if target < self.view || (target == self.view && !self.view_changing) {
            // The sender is behind. Help it catch up (rate-limited per peer, so that two
            // replicas can never keep answering each other): our VIEW-CHANGE for the view
            // it is collecting, our current one, or the NEW-VIEW that installed our view.
            if self.may_help(from) {
                if self.view_changing {
                    for v in [target, self.view] {
                        if let Some(own) = self.own_view_changes.get(&v).cloned() {
                            self.out.push(Action::Send { to: from, msg: own });
                        }
                    }
                } else if let Some(nv) = self.new_view_msg.clone() {
                    if matches!(&nv.message, Message::NewView(n) if n.view == self.view) {
                        self.out.push(Action::Send { to: from, msg: nv });
                    }
                }
            }
            return Err(Error::StaleView {
                got: target,
                current: self.view,
            });
        }
        if target > VIEW_MAX {
            return Err(Error::Malformed("view number too large".into()));
        }
        if let Some(existing) = self.view_changes.get(&(target, from)) {
            return if existing.signature == sm.signature && existing.view_change == *vc {
                Err(Error::Duplicate)
            } else {
                sm.verify(&self.cfg.validators)
                    .and(Err(Error::Equivocation(from, "VIEW-CHANGE")))
            };
        }
        // Keep a few views per sender: drop its lowest when over the cap.
        let held: Vec<View> = self
            .view_changes
            .keys()
            .filter(|(_, r)| *r == from)
            .map(|(v, _)| *v)
            .collect();
        if held.len() >= PersistedState::OWN_VIEW_CHANGES_KEPT
            && held.first().is_some_and(|lowest| *lowest > target)
        {
            return Err(Error::Stale(
                "older than every view change held from sender",
            ));
        }
        sm.verify(&self.cfg.validators)?;
        self.validate_view_change(vc)?;
        let Message::ViewChange(vc) = sm.message else {
            return Err(Error::Malformed("not a view change".into()));
        };
        if held.len() >= PersistedState::OWN_VIEW_CHANGES_KEPT {
            if let Some(lowest) = held.first() {
                self.view_changes.remove(&(*lowest, from));
            }
        }
        self.view_changes.insert(
            (target, from),
            SignedViewChange {
                from,
                view_change: vc,
                signature: sm.signature,
            },
        );
        // §4.5.2 liveness: join once f+1 replicas want a higher view, moving to the
        // smallest such view.
        let mut lowest_higher: BTreeMap<ReplicaId, View> = BTreeMap::new();
        for (v, r) in self.view_changes.keys() {
            if *r != self.id && *v > self.view {
                let e = lowest_higher.entry(*r).or_insert(*v);
                *e = (*e).min(*v);
            }
        }
        if lowest_higher.len() >= self.cfg.validators.weak_quorum() {
            if let Some(min) = lowest_higher.values().min().copied() {
                self.start_view_change(min);
            }
        }
        self.check_view_change_quorum();
        self.try_new_view();
        Ok(())
    }

    /// Computes the checkpoint and O-set of a NEW-VIEW from its VIEW-CHANGEs (§4.4):
    /// `min-s` is the highest checkpoint, `max-s` the highest prepared height; each height
    /// between gets the block prepared in the highest view, or a null block. A block that
    /// does not link to the block chosen below it cannot have committed (a COMMIT is only
    /// sent once the parent is committed) and is replaced by a null block too.
    pub(super) fn compute_o_set(
        &self,
        view: View,
        vcs: &[SignedViewChange],
    ) -> Result<(CheckpointCertificate, Vec<BlockHeader>), Error> {
        let cp = vcs
            .iter()
            .map(|v| &v.view_change.checkpoint)
            .fold(None::<&CheckpointCertificate>, |best, c| match best {
                Some(b) if b.height >= c.height => Some(b),
                _ => Some(c),
            })
            .ok_or_else(|| Error::Malformed("no view changes".into()))?
            .clone();
        let mut best: BTreeMap<Height, &PreparedCertificate> = BTreeMap::new();
        for v in vcs {
            for pc in &v.view_change.prepared {
                if pc.height() <= cp.height {
                    continue;
                }
                match best.get(&pc.height()) {
                    Some(b) if b.view() >= pc.view() => {}
                    _ => {
                        best.insert(pc.height(), pc);
                    }
                }
            }
        }
        let max_s = best.keys().next_back().copied().unwrap_or(cp.height);
        if max_s > cp.height.saturating_add(self.cfg.window_size) {
            return Err(Error::Malformed("O-set larger than the window".into()));
        }
        let leader = self.cfg.validators.leader(view);
        let mut prev = cp.block_hash;
        let mut headers = Vec::new();
        for n in cp.height + 1..=max_s {
            let header = match best.get(&n) {
                Some(pc) if pc.header().prev_hash == prev => *pc.header(),
                _ => Block::null(n, prev, view, leader).header(),
            };
            prev = header.hash();
            headers.push(header);
        }
        Ok((cp, headers))
    }

    /// New leader: once a quorum of VIEW-CHANGEs for the current view is held, multicast
    /// NEW-VIEW and install it.
    pub(super) fn try_new_view(&mut self) {
        if !self.view_changing || self.leader() != self.id {
            return;
        }
        let view = self.view;
        let vcs: Vec<SignedViewChange> = self
            .view_changes
            .range((view, ReplicaId(0))..=(view, ReplicaId(u16::MAX)))
            .map(|(_, v)| v)
            .take(self.quorum())
            .cloned()
            .collect();
        if vcs.len() < self.quorum() {
            return;
        }
        let (cp, headers) = match self.compute_o_set(view, &vcs) {
            Ok(x) => x,
            Err(e) => {
                self.reject(e);
                return;
            }
        };
        let vs = &self.cfg.validators;
        let proposals: Vec<SignedProposal> = headers
            .into_iter()
            .map(|header| SignedProposal::sign(vs, self.id, Proposal { view, header }, &self.key))
            .collect();
        let nv = NewView {
            view,
            view_changes: vcs,
            proposals: proposals.clone(),
        };
        let sm = self.sign(Message::NewView(nv));
        self.install_new_view(cp, proposals, sm, true);
    }

    pub(super) fn on_new_view(&mut self, sm: SignedMessage) -> Result<(), Error> {
        let Message::NewView(nv) = &sm.message else {
            return Err(Error::Malformed("not a new view".into()));
        };
        let view = nv.view;
        if view > VIEW_MAX {
            return Err(Error::Malformed("view number too large".into()));
        }
        if view < self.view || (view == self.view && !self.view_changing) {
            return Err(Error::StaleView {
                got: view,
                current: self.view,
            });
        }
        let vs = &self.cfg.validators;
        if sm.from != vs.leader(view) {
            return Err(Error::NotEntitled(sm.from));
        }
        if nv.view_changes.len() < self.quorum() || nv.view_changes.len() > vs.n() {
            return Err(Error::Malformed(
                "NEW-VIEW needs a quorum of view changes".into(),
            ));
        }
        for w in nv.view_changes.windows(2) {
            if w[0].from >= w[1].from {
                return Err(Error::Malformed(
                    "view changes not ascending by sender".into(),
                ));
            }
        }
        if nv.proposals.len() as u64 > self.cfg.window_size {
            return Err(Error::Malformed("O-set larger than the window".into()));
        }
        sm.verify(vs)?;
        for svc in &nv.view_changes {
            if svc.view_change.new_view != view {
                return Err(Error::Malformed("view change for another view".into()));
            }
            if self.view_changes.get(&(view, svc.from)) == Some(svc) {
                continue; // already verified
            }
            svc.verify_signature(vs)?;
            self.validate_view_change(&svc.view_change)?;
        }
        let (cp, headers) = self.compute_o_set(view, &nv.view_changes)?;
        if headers.len() != nv.proposals.len() {
            return Err(Error::Malformed(
                "O-set does not match the view changes".into(),
            ));
        }
        for (h, pp) in headers.iter().zip(&nv.proposals) {
            if pp.proposal.view != view || pp.proposal.header != *h {
                return Err(Error::Malformed(
                    "O-set does not match the view changes".into(),
                ));
            }
            pp.verify(vs)?;
        }
        let proposals = nv.proposals.clone();
        self.install_new_view(cp, proposals, sm, false);
        Ok(())
    }

    /// Enters the view of `nv` (§4.4): adopt its checkpoint, accept the O-set
    /// proposals (sending PREPAREs as a backup) and resume normal operation. The O-set names
    /// blocks by header: each one's transactions come from the blocks this replica holds for
    /// the height, or, once the block commits, from state transfer.
    pub(super) fn install_new_view(
        &mut self,
        cp: CheckpointCertificate,
        proposals: Vec<SignedProposal>,
        nv: SignedMessage,
        broadcast: bool,
    ) {
        let view = match &nv.message {
            Message::NewView(n) => n.view,
            _ => return,
        };
        self.out
            .push(Action::Persist(PersistDelta::NewView(nv.clone())));
        self.out.push(Action::Persist(PersistDelta::View {
            view,
            view_changing: false,
        }));
        if broadcast {
            self.out.push(Action::Broadcast { msg: nv.clone() });
        }
        self.view = view;
        self.view_changing = false;
        self.new_view_msg = Some(nv);
        self.view_changes
            .retain(|_, v| v.view_change.new_view > view);
        if self.vc_timer_armed {
            self.vc_timer_armed = false;
            self.out.push(Action::CancelTimer {
                kind: TimerKind::ViewChange,
            });
        }
        if cp.height > self.stable.height {
            self.adopt_stable(cp.clone());
        }
        for slot in self.slots.values_mut() {
            if slot
                .pre_prepare
                .as_ref()
                .is_some_and(|pp| pp.proposal.view < view)
            {
                slot.clear_pre_prepare();
            }
            slot.prepares.retain(|(v, _), _| *v >= view);
            slot.commits.retain(|(v, _), _| *v >= view);
        }
        let mut last = cp.height.max(self.stable.height);
        for spp in proposals {
            let n = spp.height();
            last = last.max(n);
            if n <= self.stable.height {
                continue;
            }
            let hash = spp.proposal.header.hash();
            if let Some(h) = self.delivered_hashes.get(&n) {
                if *h != hash {
                    self.reject(Error::Invariant(format!(
                        "new view re-proposes a different block at committed height {n}"
                    )));
                }
            }
            let held = self
                .slots
                .get(&n)
                .and_then(|s| s.block_with_hash(&hash))
                .or_else(|| {
                    self.deliverable
                        .get(&n)
                        .map(|(b, _)| b)
                        .filter(|b| b.hash() == hash)
                })
                .cloned();
            let body = held.map(|b| {
                let txs = b.tx_hashes();
                (b, txs)
            });
            self.accept_pre_prepare(spp, hash, body);
        }
        self.next_propose = last + 1;
        let heights: Vec<Height> = self.slots.keys().copied().collect();
        for n in heights {
            self.check_prepared(n);
            self.check_committed(n);
        }
        if self.leader() != self.id {
            self.relay_held_requests();
        }
    }
}
