//! The normal case (§4.2): proposals, PREPARE and COMMIT votes, commit certificates,
//! execution order and delivery of committed blocks to the host.

use super::*;

impl Replica {
    /// §4.2: a backup accepts a pre-prepare if it is in view `v`, the signature is the
    /// leader's, it has not accepted a different one for (v, n) and n is in the window.
    pub(super) fn on_pre_prepare(&mut self, sm: SignedMessage) -> Result<(), Error> {
        let Message::PrePrepare(pp) = &sm.message else {
            return Err(Error::Malformed("not a pre-prepare".into()));
        };
        self.check_view(pp.view)?;
        if sm.from != self.cfg.validators.leader(pp.view) {
            return Err(Error::NotEntitled(sm.from));
        }
        let n = pp.block.height;
        if n <= self.last_delivered && self.slots.get(&n).is_none_or(|s| s.committed.is_some()) {
            return Err(Error::Stale("pre-prepare for a delivered height"));
        }
        self.in_window(n)?;
        if pp.block.view != pp.view || pp.block.proposer != sm.from {
            return Err(Error::Malformed(
                "fresh block must carry the current view and its proposer".into(),
            ));
        }
        let (header, tx_hashes) = block_header(&pp.block);
        let hash = header.hash();
        let spp = SignedProposal {
            proposal: Proposal {
                view: pp.view,
                header,
            },
            signature: sm.signature,
        };
        if let Some(existing) = self.slots.get(&n).and_then(|s| s.accepted_hash_in(pp.view)) {
            return if existing == hash {
                Err(Error::Duplicate)
            } else {
                spp.verify(&self.cfg.validators)
                    .and(Err(Error::Equivocation(sm.from, "PRE-PREPARE")))
            };
        }
        if let Some(h) = self.delivered_hashes.get(&n) {
            if *h != hash {
                return Err(Error::BadChain(n));
            }
        }
        self.validate_block_content(&pp.block, &tx_hashes)?;
        spp.verify(&self.cfg.validators)?;
        let Message::PrePrepare(pp) = sm.message else {
            return Err(Error::Malformed("not a pre-prepare".into()));
        };
        self.accept_pre_prepare(spp, hash, Some((pp.block, tx_hashes)));
        Ok(())
    }

    /// Records an accepted pre-prepare (persisted first) and, as a backup, sends PREPARE.
    /// `hash` is its block's hash; `body` the block and its transactions' hashes when known
    /// (a NEW-VIEW re-proposes blocks by header only).
    pub(super) fn accept_pre_prepare(
        &mut self,
        spp: SignedProposal,
        hash: BlockHash,
        body: Option<(Block, Vec<TxHash>)>,
    ) {
        let view = spp.proposal.view;
        let n = spp.height();
        let slot = self.slots.entry(n).or_default();
        slot.set_pre_prepare(spp, hash, body);
        if let Some(record) = slot.accepted_record() {
            self.out
                .push(Action::Persist(PersistDelta::PrePrepare(record)));
        }
        if self.cfg.validators.leader(view) != self.id {
            let sm = self.sign(Message::Prepare(Vote {
                view,
                height: n,
                block_hash: hash,
            }));
            let slot = self.slots.entry(n).or_default();
            slot.prepares.insert((view, self.id), (hash, sm.signature));
            slot.own_prepare = Some(sm.clone());
            self.out
                .push(Action::Persist(PersistDelta::Vote(sm.clone())));
            self.out.push(Action::Broadcast { msg: sm });
        }
        self.check_prepared(n);
        self.check_committed(n);
    }

    /// §4.2: PREPARE and COMMIT votes are accepted in the current view, inside the window.
    pub(super) fn on_vote(&mut self, sm: SignedMessage) -> Result<(), Error> {
        let (vote, is_commit) = match &sm.message {
            Message::Prepare(v) => (*v, false),
            Message::Commit(v) => (*v, true),
            _ => return Err(Error::Malformed("not a vote".into())),
        };
        self.check_view(vote.view)?;
        let n = vote.height;
        let from = sm.from;
        if !is_commit && from == self.cfg.validators.leader(vote.view) {
            return Err(Error::NotEntitled(from));
        }
        if n <= self.stable.height {
            return Err(Error::Stale("vote below the stable checkpoint"));
        }
        if is_commit && n > self.high_watermark() {
            // A COMMIT beyond our window: its sender committed n - 1. If f+1 replicas
            // are that far ahead, we are behind and fetch the blocks.
            self.note_ahead(&sm, n)?;
        }
        self.in_window(n)?;
        let key = (vote.view, from);
        let existing = self.slots.get(&n).and_then(|s| {
            if is_commit {
                s.commits.get(&key).copied()
            } else {
                s.prepares.get(&key).copied()
            }
        });
        if let Some((h, sig)) = existing {
            if h != vote.block_hash {
                let kind = if is_commit { "COMMIT" } else { "PREPARE" };
                sm.verify(&self.cfg.validators)?;
                return Err(Error::Equivocation(from, kind));
            }
            if sig == sm.signature && !is_commit {
                // A retransmitted PREPARE: the sender has not seen this slot commit. If we
                // have committed it, help the sender by re-sending our COMMIT. (Only
                // PREPAREs trigger this, so two helpers never answer each other forever.)
                self.help_lagging(from, n);
            }
            return Err(Error::Duplicate);
        }
        if let Some(pp_hash) = self
            .slots
            .get(&n)
            .and_then(|s| s.accepted_hash_in(vote.view))
        {
            if pp_hash != vote.block_hash {
                // The sender voted for a block the leader did not propose to us; keep the
                // vote (it occupies the sender's slot) but count the anomaly.
                sm.verify(&self.cfg.validators)?;
                self.record_vote(n, key, vote.block_hash, sm.signature, is_commit);
                return Err(Error::UnknownBlock(n));
            }
        }
        sm.verify(&self.cfg.validators)?;
        self.record_vote(n, key, vote.block_hash, sm.signature, is_commit);
        if is_commit {
            self.check_committed(n);
        } else {
            self.check_prepared(n);
        }
        Ok(())
    }

    pub(super) fn record_vote(
        &mut self,
        n: Height,
        key: (View, ReplicaId),
        hash: BlockHash,
        sig: Signature,
        is_commit: bool,
    ) {
        let slot = self.slots.entry(n).or_default();
        if is_commit {
            slot.commits.insert(key, (hash, sig));
        } else {
            slot.prepares.insert(key, (hash, sig));
        }
    }

    /// Replies that help a lagging peer are limited to [`HELP_BUDGET`] per peer per
    /// retransmission period.
    pub(super) fn may_help(&mut self, peer: ReplicaId) -> bool {
        let used = self.help_used.entry(peer).or_insert(0);
        if *used >= HELP_BUDGET {
            return false;
        }
        *used += 1;
        true
    }

    pub(super) fn help_lagging(&mut self, to: ReplicaId, n: Height) {
        let settled = self
            .slots
            .get(&n)
            .is_some_and(|s| s.committed.is_some() || n <= self.last_delivered);
        if !settled || !self.may_help(to) {
            return;
        }
        let Some(slot) = self.slots.get(&n) else {
            return;
        };
        let view = self.view;
        if let Some(pp) = slot.accepted_in(view) {
            if self.cfg.validators.leader(view) == self.id {
                if let Some(block) = slot.block_with_hash(&slot.pre_prepare_hash) {
                    let msg = pp.message(self.id, block.clone());
                    self.out.push(Action::Send { to, msg });
                }
            }
        }
        if let Some(c) = &slot.own_commit {
            if matches!(&c.message, Message::Commit(v) if v.view == view) {
                self.out.push(Action::Send { to, msg: c.clone() });
            }
        }
    }

    /// §4.2 prepared(m, v, n, i): the pre-prepare plus 2f matching PREPAREs from backups.
    pub(super) fn check_prepared(&mut self, n: Height) {
        let view = self.view;
        if self.view_changing {
            return;
        }
        let leader = self.cfg.validators.leader(view);
        let need = self.quorum().saturating_sub(1);
        let Some(slot) = self.slots.get(&n) else {
            return;
        };
        let Some(pp) = slot.accepted_in(view) else {
            return;
        };
        if slot.prepared.as_ref().is_some_and(|c| c.view() == view) {
            return;
        }
        let hash = slot.pre_prepare_hash;
        let prepares: Vec<(ReplicaId, Signature)> = slot
            .prepares
            .range((view, ReplicaId(0))..=(view, ReplicaId(u16::MAX)))
            .filter(|((_, r), (h, _))| *r != leader && *h == hash)
            .map(|((_, r), (_, s))| (*r, *s))
            .take(need)
            .collect();
        if prepares.len() < need {
            return;
        }
        let cert = PreparedCertificate {
            proposal: *pp,
            prepares,
        };
        self.out
            .push(Action::Persist(PersistDelta::Prepared(cert.clone())));
        if let Some(slot) = self.slots.get_mut(&n) {
            slot.prepared = Some(cert);
        }
        self.try_send_commit(n);
    }

    /// Sends COMMIT once prepared — and, to keep the chain linked across view changes, only
    /// once the parent block is committed with the hash this block links to, or this replica
    /// has itself sent COMMIT for that parent in this view (docs/protocol/consensus.md, "The
    /// rule that keeps the chain linked"). Each COMMIT sent may let the next height's go.
    pub(super) fn try_send_commit(&mut self, n: Height) {
        let mut h = n;
        while self.send_commit(h) {
            h += 1;
        }
    }

    /// One height of [`Self::try_send_commit`]: whether it sent the COMMIT for `n` now.
    fn send_commit(&mut self, n: Height) -> bool {
        let view = self.view;
        if self.view_changing {
            return false;
        }
        let Some(slot) = self.slots.get(&n) else {
            return false;
        };
        let Some(pc) = slot.prepared.as_ref().filter(|c| c.view() == view) else {
            return false;
        };
        if self.sent_commit_in_view(n).is_some() {
            return false;
        }
        let prev = pc.header().prev_hash;
        let hash = pc.header().hash();
        match self.committed_hash(n - 1) {
            // The parent is not committed here yet: this replica's own COMMIT for it, for the
            // hash this block links to, is as good (every height below it is, inductively).
            None if self.sent_commit_in_view(n - 1) == Some(prev) => {}
            None => return false,
            Some(p) if p != prev => {
                self.reject(Error::BadChain(n));
                return false;
            }
            Some(_) => {}
        }
        let sm = self.sign(Message::Commit(Vote {
            view,
            height: n,
            block_hash: hash,
        }));
        if let Some(slot) = self.slots.get_mut(&n) {
            slot.commits.insert((view, self.id), (hash, sm.signature));
            slot.own_commit = Some(sm.clone());
        }
        self.out
            .push(Action::Persist(PersistDelta::Vote(sm.clone())));
        self.out.push(Action::Broadcast { msg: sm });
        self.check_committed(n);
        true
    }

    /// The block hash of the COMMIT this replica sent for height `n` in the current view.
    fn sent_commit_in_view(&self, n: Height) -> Option<BlockHash> {
        let view = self.view;
        match &self.slots.get(&n)?.own_commit.as_ref()?.message {
            Message::Commit(v) if v.view == view => Some(v.block_hash),
            _ => None,
        }
    }

    /// §4.2 committed-local: 2f+1 matching COMMITs in the current view for a known block.
    pub(super) fn check_committed(&mut self, n: Height) {
        let view = self.view;
        let quorum = self.quorum();
        let Some(slot) = self.slots.get(&n) else {
            return;
        };
        if slot.committed.is_some() {
            return;
        }
        let mut by_hash: BTreeMap<BlockHash, Vec<(ReplicaId, Signature)>> = BTreeMap::new();
        for ((_, r), (h, s)) in slot
            .commits
            .range((view, ReplicaId(0))..=(view, ReplicaId(u16::MAX)))
        {
            by_hash.entry(*h).or_default().push((*r, *s));
        }
        let Some((hash, sigs)) = by_hash.into_iter().find(|(_, s)| s.len() >= quorum) else {
            return;
        };
        let signers: Vec<ReplicaId> = sigs.iter().map(|(r, _)| *r).collect();
        let cert = CommitCertificate {
            view,
            signatures: sigs.into_iter().take(quorum).collect(),
        };
        let block = slot.block_with_hash(&hash).cloned();
        if let Some(slot) = self.slots.get_mut(&n) {
            slot.committed = Some((hash, cert.clone()));
        }
        if n > self.last_delivered {
            match block {
                Some(block) => {
                    self.deliverable.insert(n, (block, cert));
                    if n > self.last_delivered + 1 {
                        self.note_behind(n, signers);
                    }
                    self.try_deliver();
                }
                // Committed by a quorum, but we hold only its header (or nothing): fetch the
                // block from the signers. Its hash is known, so later heights can commit.
                None => self.note_behind(n, signers),
            }
        } else if self.delivered_hashes.get(&n).is_some_and(|h| *h != hash) {
            self.reject(Error::Invariant(format!(
                "height {n} committed twice with different blocks"
            )));
        }
        self.try_send_commit(n + 1);
    }

    pub(super) fn try_deliver(&mut self) {
        while let Some((block, cert)) = self.deliverable.remove(&(self.last_delivered + 1)) {
            if block.prev_hash != self.last_delivered_hash {
                self.reject(Error::Invariant(format!(
                    "committed block {} does not link to the delivered chain",
                    block.height
                )));
                return;
            }
            self.deliver(block, cert);
        }
    }

    pub(super) fn deliver(&mut self, block: Block, certificate: CommitCertificate) {
        let h = block.height;
        let hash = block.hash();
        let txs = block.tx_hashes();
        for th in &txs {
            self.remove_pending(th);
        }
        self.remember_txs(h, txs);
        self.last_delivered = h;
        self.forget_txs_before(*self.dedup_window().start());
        self.last_delivered_hash = hash;
        self.delivered_hashes.insert(h, hash);
        self.progressed = true;
        self.view_timeout_cur_ms = self.cfg.view_timeout_ms;
        self.out.push(Action::Commit { block, certificate });
        self.try_send_commit(h + 1);
    }

    /// Remembers the transactions committed at height `h`, so that a replay of one is
    /// refused for `dedup_window_blocks` heights.
    pub(super) fn remember_txs(&mut self, h: Height, txs: Vec<TxHash>) {
        for th in &txs {
            self.recent_txs.insert(*th, h);
        }
        self.recent_by_height.entry(h).or_default().extend(txs);
    }

    /// The heights whose transactions are remembered: the last `dedup_window_blocks` below
    /// the last delivered one, and that one.
    pub(super) fn dedup_window(&self) -> std::ops::RangeInclusive<Height> {
        let last = self.last_delivered;
        last.saturating_sub(self.cfg.dedup_window_blocks)..=last
    }

    /// Forgets the transactions committed below height `keep_from`.
    fn forget_txs_before(&mut self, keep_from: Height) {
        while let Some(entry) = self.recent_by_height.first_entry() {
            if *entry.key() >= keep_from {
                break;
            }
            for th in entry.remove() {
                self.recent_txs.remove(&th);
            }
        }
    }

    /// Whether the last delivered block is above the stable-checkpoint heights: until the
    /// next checkpoint height is reached and becomes stable, clients cannot check what they
    /// read of those blocks.
    pub(super) fn tail_open(&self) -> bool {
        !self.learner
            && !self
                .last_delivered
                .is_multiple_of(self.cfg.checkpoint_interval)
    }

    /// An idle leader closes the checkpoint: with nothing to order and nothing in flight, it
    /// proposes an empty block at the next height, one at a time, until the chain reaches a
    /// checkpoint height. Every committed block is thus soon under a stable checkpoint, whose
    /// certified state root is what clients check compact blocks against.
    pub(super) fn close_checkpoint(&mut self) {
        let n = self.next_propose;
        if !self.pending.is_empty()
            || !self.tail_open()
            || n != self.last_delivered + 1
            || n > self.high_watermark()
        {
            return;
        }
        self.propose(n, self.last_delivered_hash, Vec::new());
    }

    /// Leader: proposes a block of `transactions` at height `n` on `prev_hash`, stamped with
    /// its clock; accepts it (persisted first) and broadcasts the PRE-PREPARE.
    pub(super) fn propose(&mut self, n: Height, prev_hash: BlockHash, transactions: Vec<Vec<u8>>) {
        let block = Block {
            height: n,
            prev_hash,
            view: self.view,
            proposer: self.id,
            time_ms: self.now_ms,
            transactions,
        };
        let (header, tx_hashes) = block_header(&block);
        let spp = SignedProposal::sign(
            &self.cfg.validators,
            self.id,
            Proposal {
                view: self.view,
                header,
            },
            &self.key,
        );
        let msg = spp.message(self.id, block.clone());
        self.next_propose = n + 1;
        self.accept_pre_prepare(spp, header.hash(), Some((block, tx_hashes)));
        self.out.push(Action::Broadcast { msg });
    }

    /// Whether a request that arrived at `arrived_ms` has waited its
    /// [`Config::pipeline_max_wait_ms`] for the block in flight. If not, the pipeline timer is
    /// set for the rest of its wait, replacing one set earlier. Callers ask about the oldest
    /// request they look at; a deadline that comes early (the oldest pending request may be
    /// in the block in flight) only re-runs [`Self::try_propose`], which re-arms the timer.
    fn waited_for_pipeline(&mut self, arrived_ms: u64) -> bool {
        let wait = self.cfg.pipeline_max_wait_ms;
        if wait == 0 || arrived_ms == 0 || self.now_ms == 0 {
            return false;
        }
        let waited = self.now_ms.saturating_sub(arrived_ms);
        if waited >= wait {
            return true;
        }
        self.out.push(Action::SetTimer {
            kind: TimerKind::Pipeline,
            after_ms: wait - waited,
        });
        false
    }

    /// Whether a block that carries transactions (or whose transactions are unknown) is in
    /// flight above the last delivered height. The empty blocks of an idle leader closing its
    /// checkpoint ([`Self::close_checkpoint`]) are no reason for a request to wait for a
    /// batch: under a long round trip one of them is nearly always in flight.
    fn carrying_block_in_flight(&self) -> bool {
        self.slots
            .range(self.last_delivered + 1..self.next_propose)
            .any(|(_, s)| {
                s.pre_prepare.is_some() && (!s.body_known() || !s.pre_prepare_txs.is_empty())
            })
            || self
                .deliverable
                .values()
                .any(|(b, _)| !b.transactions.is_empty())
    }

    /// §4.3 leader: assign pending requests to the next heights, within the window.
    pub(super) fn try_propose(&mut self) {
        if self.view_changing || self.leader() != self.id {
            return;
        }
        self.close_checkpoint();
        while !self.pending.is_empty() {
            let n = self.next_propose;
            if n > self.high_watermark()
                || (n - 1).saturating_sub(self.last_delivered) >= self.cfg.max_blocks_in_flight
            {
                return;
            }
            let prev = match self
                .slots
                .get(&(n - 1))
                .and_then(|s| s.accepted_hash_in(self.view))
            {
                Some(h) => h,
                None => match self.committed_hash(n - 1) {
                    Some(h) => h,
                    None => return,
                },
            };
            // The pipelining rule below, tested first on the waiting requests (a bound on what
            // the block can take) before hashing every transaction in flight.
            let worth = self.cfg.pipeline_min_batch.min(self.cfg.max_batch_txs);
            let oldest = self
                .pending_order
                .values()
                .next()
                .and_then(|th| self.pending.get(th))
                .map_or(0, |p| p.arrived_ms);
            if n - 1 > self.last_delivered
                && self.pending.len() < worth
                && self.carrying_block_in_flight()
                && !self.waited_for_pipeline(oldest)
            {
                return;
            }
            let mut in_flight = BTreeSet::new();
            for slot in self.slots.range(self.last_delivered + 1..).map(|(_, s)| s) {
                if slot.pre_prepare.is_some() {
                    if slot.accepted_in(self.view).is_some() && !slot.body_known() {
                        // Re-proposed by header in the NEW-VIEW and never received: its
                        // transactions are unknown, so anything proposed now might repeat
                        // one. Wait until it commits and arrives by state transfer.
                        return;
                    }
                    in_flight.extend(slot.pre_prepare_txs.iter().copied());
                }
            }
            for (b, _) in self.deliverable.values() {
                in_flight.extend(b.transactions.iter().map(|t| TxHash::of(t)));
            }
            let mut txs = Vec::new();
            let mut bytes = 0usize;
            // When the oldest request to be proposed arrived (it comes first: arrival order).
            let mut first_arrived = None;
            for th in self.pending_order.values() {
                if txs.len() >= self.cfg.max_batch_txs {
                    break;
                }
                if in_flight.contains(th) || self.recent_txs.contains_key(th) {
                    continue;
                }
                if let Some(p) = self.pending.get(th) {
                    // The block's byte budget: what does not fit waits for the next block.
                    if bytes + p.payload.len() > self.cfg.max_block_bytes {
                        break;
                    }
                    bytes += p.payload.len();
                    txs.push(p.payload.clone());
                    first_arrived.get_or_insert(p.arrived_ms);
                }
            }
            if txs.is_empty() {
                return;
            }
            // With a block already in flight, wait for enough requests to make the next one
            // worth its round of votes: under load the blocks grow (fewer votes, fsyncs and
            // batch verifications per transaction); when idle the first block goes at once.
            // Under light load the wait is bounded by `pipeline_max_wait_ms`, so that a long
            // round trip does not make every request wait for the block before it.
            if n - 1 > self.last_delivered
                && txs.len() < worth
                && self.carrying_block_in_flight()
                && !self.waited_for_pipeline(first_arrived.unwrap_or(0))
            {
                return;
            }
            self.propose(n, prev, txs);
        }
    }
}
