//! Execution of a committed block: verification of what was not verified ahead, the ledger's
//! state transition and one store write transaction, before the replica learns the root.

use super::*;

impl NodeCore {
    /// Verifies (stateless, batched, cached), applies and stores one committed block.
    pub(super) fn execute(
        &mut self,
        block: &shoji_consensus::Block,
        certificate: &shoji_consensus::CommitCertificate,
    ) -> Result<(Vec<Output>, Vec<Action>, bool), NodeError> {
        let mut txs: Vec<Transaction> = Vec::new();
        let mut governance: Vec<GovernanceTx> = Vec::new();
        let mut accounts: Vec<AccountTx> = Vec::new();
        let mut opaque: Vec<(TxId, TxOutcome)> = Vec::new();
        // Which payload came where, for the events.
        let mut order = Vec::with_capacity(block.transactions.len());
        for b in &block.transactions {
            match self.decode_for_block(b) {
                Some(Payload::Governance(g)) => {
                    order.push(crate::events::Slot::Governance(governance.len()));
                    governance.push(*g)
                }
                // Applied only if its proof verifies (cached or checked below), which implies
                // the subgroup check this decoding leaves out.
                Some(Payload::Shielded(tx)) => {
                    order.push(crate::events::Slot::Shielded(txs.len()));
                    txs.push(*tx)
                }
                Some(Payload::Account(a)) => {
                    order.push(crate::events::Slot::Account(accounts.len()));
                    accounts.push(*a)
                }
                Some(Payload::Opaque(id)) => {
                    order.push(crate::events::Slot::Opaque(opaque.len()));
                    let why = Rejection::Stateless("an opaque payload: ordered only".into());
                    opaque.push((id, TxOutcome::Rejected(why)));
                }
                // The block passed the payload rule, so this does not happen.
                None => {}
            }
        }
        let ids: Vec<TxId> = txs.iter().map(Transaction::auth_id).collect();
        let cached: Vec<Option<Result<(), TxError>>> = ids
            .iter()
            .map(|id| self.verified.get(id).cloned())
            .collect();
        let (missing_ids, missing): (Vec<TxId>, Vec<Transaction>) = ids
            .iter()
            .zip(&txs)
            .zip(&cached)
            .filter(|(_, c)| c.is_none())
            .map(|((id, t), _)| (*id, *t))
            .unzip();
        if !missing.is_empty() {
            tracing::debug!(
                height = block.height,
                proofs = missing.len(),
                "verifying a block's unseen proofs"
            );
        }
        let mut fresh = self.verify_now(&missing_ids, &missing).into_iter();
        let mut stateless = Vec::with_capacity(txs.len());
        for (id, c) in ids.iter().zip(cached) {
            let r = match c {
                Some(r) => r,
                None => {
                    let r = fresh.next().unwrap_or(Err(TxError::Proof(
                        shoji_verifier::VerificationError::InvalidProof,
                    )));
                    self.remember(*id, r.clone());
                    r
                }
            };
            stateless.push(r);
        }
        // Account transactions: cached verdicts, the rest verified now in one batch.
        let account_ids: Vec<TxId> = accounts.iter().map(AccountTx::auth_id).collect();
        let unseen: Vec<(TxId, &AccountTx)> = account_ids
            .iter()
            .zip(&accounts)
            .filter(|(id, _)| !self.verified.contains_key(id))
            .map(|(id, a)| (*id, a))
            .collect();
        let unseen_txs: Vec<&AccountTx> = unseen.iter().map(|(_, a)| *a).collect();
        let verdicts = self.verify_accounts(&unseen_txs);
        for ((id, _), r) in unseen.iter().zip(verdicts) {
            self.remember(*id, r);
        }
        let account_stateless: Vec<Result<(), shoji_verifier::accounts::AccountTxError>> =
            account_ids
                .iter()
                .map(|id| match self.verified.get(id) {
                    Some(Ok(())) => Ok(()),
                    Some(Err(TxError::Account(e))) => Err(e.clone()),
                    _ => Err(shoji_verifier::accounts::AccountTxError::Proof(
                        shoji_confidential::Error::InvalidProof("not verified"),
                    )),
                })
                .collect();
        let previous_time_ms = self.ledger.time_ms();
        let outcome = self.ledger.apply_block_full(
            block.time_ms,
            &txs,
            &stateless,
            &accounts,
            &account_stateless,
            &governance,
        );
        for (id, o) in &outcome.governance {
            match o {
                TxOutcome::Enacted => tracing::info!(
                    height = outcome.height,
                    txid = %id,
                    policy_seq = self.ledger.policy().seq,
                    "governance transaction enacted"
                ),
                TxOutcome::Rejected(r) => tracing::warn!(
                    height = outcome.height,
                    txid = %id,
                    reason = %r,
                    "governance transaction refused"
                ),
                TxOutcome::Applied { .. } => {}
            }
        }
        let head = self.ledger.head();
        // A validator set decided here starts the epoch after the current one.
        let next_epoch = self.ledger.policy().epoch + 1;
        let events = shoji_client::events::encode_height(&crate::events::of_block(
            block,
            certificate,
            &order,
            &txs,
            &accounts,
            &governance,
            &opaque,
            &outcome,
            next_epoch,
        ));
        let started = std::time::Instant::now();
        self.store.commit_block(&CommittedBlock {
            block,
            certificate,
            transactions: &txs,
            accounts: &accounts,
            outcome: &outcome,
            ledger: &head,
            events: &events,
        })?;
        if self.snapshot_every > 0 && block.height.is_multiple_of(self.snapshot_every) {
            match self.store.state_view() {
                Ok(view) => self.snapshot_view = Some(view),
                Err(e) => tracing::warn!(height = block.height, error = %e,
                    "no snapshot of this height: the store could not be viewed"),
            }
        }
        let m = &self.metrics;
        m.store_commit_seconds
            .observe(started.elapsed().as_secs_f64());
        if previous_time_ms > 0 {
            m.block_interval
                .observe(block.time_ms.saturating_sub(previous_time_ms) as f64 / 1000.0);
        }
        let rejected = |o: &TxOutcome| match o {
            TxOutcome::Rejected(r) => Some(r.code().name()),
            TxOutcome::Applied { .. } | TxOutcome::Enacted => None,
        };
        for (tx, o) in txs.iter().zip(&outcome.outcomes) {
            m.transaction(tx.kind().name(), rejected(o));
        }
        for (tx, (_, o)) in accounts.iter().zip(&outcome.accounts) {
            let kind = match tx {
                AccountTx::Open(_) => "account_open",
                AccountTx::Transfer(_) => "account_transfer",
                AccountTx::Mint(_) => "account_mint",
                AccountTx::Redeem(_) => "account_redeem",
            };
            m.transaction(kind, rejected(o));
        }
        for (_, o) in &outcome.governance {
            m.transaction("governance", rejected(o));
        }
        for (_, o) in &opaque {
            m.transaction("opaque", rejected(o));
        }
        let committed = Output::Committed {
            height: outcome.height,
            state_root: outcome.state_root,
            outcomes: ids
                .into_iter()
                .zip(outcome.outcomes.iter().cloned())
                .chain(
                    account_ids
                        .into_iter()
                        .zip(outcome.accounts.iter().map(|(_, o)| o.clone())),
                )
                .chain(outcome.governance.iter().cloned())
                .chain(opaque)
                .collect(),
        };
        let mut outputs = vec![committed];
        let next = match &outcome.validators_decided {
            Some((_, v)) => {
                outputs.push(Output::ValidatorsDecided {
                    validators: v.iter().map(|(id, k)| (ReplicaId(*id), *k)).collect(),
                    addresses: self.added_validator_addresses(),
                });
                Some(validator_set(
                    &self.genesis,
                    self.ledger.policy().epoch + 1,
                    v,
                )?)
            }
            None => None,
        };
        let more = self
            .replica
            .on_block_executed(block.height, outcome.state_root, next);
        if outcome.epoch_started.is_some() {
            let (switched, actions) = self.switch_epoch()?;
            outputs.extend(switched);
            return Ok((outputs, actions, true));
        }
        Ok((outputs, more, false))
    }
}
