//! Retransmission: re-sending this replica's own messages that have not taken effect, and
//! answering a peer's help request within a budget.

use super::*;

impl Replica {
    pub(super) fn outstanding(&self) -> bool {
        if self.view_changing || !self.own_checkpoints.is_empty() || !self.help_used.is_empty() {
            return true;
        }
        self.slots
            .range(self.last_delivered + 1..)
            .any(|(_, s)| s.committed.is_none() && s.accepted_in(self.view).is_some())
    }

    pub(super) fn ensure_retransmit(&mut self) {
        if !self.retransmit_armed && self.outstanding() {
            self.retransmit_armed = true;
            self.out.push(Action::SetTimer {
                kind: TimerKind::Retransmit,
                after_ms: self.cfg.retransmit_ms,
            });
        }
    }

    /// Re-sends own messages that have not yet taken effect (messages may be lost).
    pub(super) fn retransmit(&mut self) {
        if self.view_changing {
            if let Some(sm) = self.own_view_changes.get(&self.view).cloned() {
                self.out.push(Action::Broadcast { msg: sm });
            }
        } else {
            let view = self.view;
            let is_leader = self.leader() == self.id;
            let mut msgs = Vec::new();
            for slot in self.slots.range(self.last_delivered + 1..).map(|(_, s)| s) {
                if slot.committed.is_some() {
                    continue;
                }
                if is_leader {
                    if let Some(pp) = slot.accepted_in(view) {
                        if let Some(block) = slot.block_with_hash(&slot.pre_prepare_hash) {
                            msgs.push(pp.message(self.id, block.clone()));
                        }
                    }
                }
                for own in [&slot.own_prepare, &slot.own_commit].into_iter().flatten() {
                    let v = match &own.message {
                        Message::Prepare(v) | Message::Commit(v) => v.view,
                        _ => continue,
                    };
                    if v == view {
                        msgs.push(own.clone());
                    }
                }
            }
            for msg in msgs {
                self.out.push(Action::Broadcast { msg });
            }
        }
        if let Some((_, sm)) = self.own_checkpoints.iter().next_back() {
            let sm = sm.clone();
            self.out.push(Action::Broadcast { msg: sm });
        }
    }
}
