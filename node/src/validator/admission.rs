//! Admission of client transactions and the verify-ahead pool: stateless results cached by
//! id, transactions seen in peer messages verified ahead of need in the batches that must run
//! anyway, and decoded transactions kept for their block.

use super::*;

impl NodeCore {
    /// A client's transaction: decoded, checked statelessly and against the current state, then
    /// handed to consensus. A governance transaction is checked for its sequence number and
    /// approvals.
    pub fn submit(
        &mut self,
        bytes: Vec<u8>,
    ) -> Result<Result<Vec<Output>, SubmitError>, NodeError> {
        let (out, mut results) = self.submit_batch(vec![bytes])?;
        match results.pop() {
            Some(Err(e)) => Ok(Err(e)),
            _ => Ok(Ok(out)),
        }
    }

    /// Several clients' transactions at once, each admitted as by [`NodeCore::submit`]: the
    /// proofs not verified before are verified together in one batch (on every core), and the
    /// admitted transactions go to consensus together (relayed in one signed message). Returns
    /// the outputs and each transaction's admission, in order: the id its commit will be
    /// reported under ([`Output::Committed`]), or why it was refused.
    #[allow(clippy::type_complexity)]
    pub fn submit_batch(
        &mut self,
        batch: Vec<Vec<u8>>,
    ) -> Result<(Vec<Output>, Vec<Result<TxId, SubmitError>>), NodeError> {
        enum Entry {
            Shielded(Box<Transaction>, TxId),
            Account(Box<AccountTx>, TxId),
            Other(TxId),
        }
        if self.retired || self.replica.is_learner() {
            let e = match self.retired {
                true => SubmitError::Retired,
                false => SubmitError::Learning,
            };
            return Ok((Vec::new(), batch.iter().map(|_| Err(e.clone())).collect()));
        }
        let mut results: Vec<Result<TxId, SubmitError>> = Vec::with_capacity(batch.len());
        let mut entries = Vec::with_capacity(batch.len());
        for bytes in &batch {
            // The epk subgroup check is left to the proof (docs/decisions/0021); a refused
            // proof is explained below by strict decoding.
            let entry = match Payload::decode(bytes, self.payloads) {
                Ok(Payload::Governance(g)) => self
                    .ledger
                    .admissible_governance(&g)
                    .map(|()| Entry::Other(g.id()))
                    .map_err(SubmitError::Stateful),
                Ok(Payload::Shielded(tx)) => {
                    let id = tx.auth_id();
                    self.keep_decoded(id, *tx);
                    Ok(Entry::Shielded(tx, id))
                }
                Ok(Payload::Account(a)) => {
                    let id = a.auth_id();
                    Ok(Entry::Account(a, id))
                }
                Ok(Payload::Opaque(id)) => Ok(Entry::Other(id)),
                Err(e) => Err(e.into()),
            };
            match entry {
                Ok(e) => {
                    results.push(Ok(match &e {
                        Entry::Shielded(_, id) | Entry::Account(_, id) | Entry::Other(id) => *id,
                    }));
                    entries.push(Some(e));
                }
                Err(e) => {
                    entries.push(None);
                    results.push(Err(e));
                }
            }
        }
        // Stateless checks of the shielded transactions not seen before, as one batch.
        let (unseen_ids, unseen): (Vec<TxId>, Vec<Transaction>) = entries
            .iter()
            .filter_map(|e| match e {
                Some(Entry::Shielded(tx, id)) if !self.verified.contains_key(id) => {
                    Some((*id, **tx))
                }
                _ => None,
            })
            .unzip();
        if !unseen.is_empty() {
            tracing::debug!(proofs = unseen.len(), "verifying admissions");
        }
        let verdicts = self.verify_now(&unseen_ids, &unseen);
        for (id, r) in unseen_ids.into_iter().zip(verdicts) {
            self.remember(id, r);
        }
        // The account transactions not seen before, as one batch of their own.
        let (unseen_ids, unseen): (Vec<TxId>, Vec<&AccountTx>) = entries
            .iter()
            .filter_map(|e| match e {
                Some(Entry::Account(tx, id)) if !self.verified.contains_key(id) => {
                    Some((*id, &**tx))
                }
                _ => None,
            })
            .unzip();
        let verdicts = self.verify_accounts(&unseen);
        for (id, r) in unseen_ids.into_iter().zip(verdicts) {
            self.remember(id, r);
        }
        let mut admitted = Vec::new();
        for ((bytes, entry), result) in batch.into_iter().zip(entries).zip(results.iter_mut()) {
            match entry {
                None => continue,
                Some(Entry::Other(_)) => admitted.push(bytes),
                Some(Entry::Account(tx, id)) => {
                    let admission = match self.verified.get(&id).cloned() {
                        Some(Ok(())) => self.ledger.admissible_account(&tx).map_err(|r| match r {
                            Rejection::DoubleSpend => SubmitError::DoubleSpend,
                            r => SubmitError::Stateful(r),
                        }),
                        Some(Err(e)) => Err(SubmitError::Invalid(e)),
                        None => Err(SubmitError::Invalid(TxError::Proof(
                            shoji_verifier::VerificationError::InvalidProof,
                        ))),
                    };
                    match admission {
                        Ok(()) => admitted.push(bytes),
                        Err(e) => *result = Err(e),
                    }
                }
                Some(Entry::Shielded(tx, id)) => {
                    let stateless = self
                        .verified
                        .get(&id)
                        .cloned()
                        .unwrap_or(Err(TxError::Proof(
                            shoji_verifier::VerificationError::InvalidProof,
                        )));
                    // A refused proof over an `epk` outside the subgroup: say so.
                    let stateless = match stateless {
                        Err(e) => Err(match Transaction::from_bytes(&bytes) {
                            Err(strict) => SubmitError::from(strict),
                            Ok(_) => SubmitError::from(e),
                        }),
                        Ok(()) => Ok(()),
                    };
                    let admission = stateless.and_then(|()| {
                        self.ledger.admissible(&tx).map_err(|r| match r {
                            Rejection::DoubleSpend => SubmitError::DoubleSpend,
                            Rejection::UnknownAnchor => SubmitError::UnknownAnchor,
                            r => SubmitError::Stateful(r),
                        })
                    });
                    match admission {
                        Ok(()) => admitted.push(bytes),
                        Err(e) => *result = Err(e),
                    }
                }
            }
        }
        let out = if admitted.is_empty() {
            Vec::new()
        } else {
            let actions = self.replica.on_client_requests(admitted);
            self.process(actions)?
        };
        Ok((out, results))
    }

    /// Keeps the shielded transactions a peer's message carries (relayed to us or proposed)
    /// that were not verified yet, for [`NodeCore::verify_now`]. The message is decoded again
    /// by the replica, which alone judges it: nothing here acts on it but verification, which
    /// the transactions get anyway when their block commits.
    pub(super) fn hold_for_verification(&mut self, msg: &[u8]) {
        use shoji_consensus::{Message, SignedMessage};
        if self.payloads == PayloadPolicy::OrderingOnly || self.ahead.len() >= AHEAD_MAX {
            return;
        }
        let Ok(signed) = SignedMessage::decode(msg, self.replica.config().max_message_bytes) else {
            return;
        };
        let txs: Vec<Vec<u8>> = match signed.message {
            Message::Request(tx) => vec![tx],
            Message::Requests(txs) => txs,
            Message::PrePrepare(pp) => pp.block.transactions,
            _ => return,
        };
        for bytes in txs {
            if self.ahead.len() >= AHEAD_MAX {
                break;
            }
            // A transaction's auth id hashes its encoding: skip the ones verified or held
            // already before paying for decoding (a wrong skip only leaves the transaction to
            // be verified when its block commits).
            let likely_id = TxId(*blake3::hash(&bytes).as_bytes());
            if self.verified.contains_key(&likely_id) || self.ahead_ids.contains(&likely_id) {
                continue;
            }
            let Ok(tx) = Transaction::from_bytes_proof_bound(&bytes) else {
                continue;
            };
            let id = tx.auth_id();
            self.keep_decoded(id, tx);
            if !self.verified.contains_key(&id) && self.ahead_ids.insert(id) {
                self.ahead.push_back((id, tx));
            }
        }
    }

    /// Stateless verdicts for `txs`, which must be verified now (in order), verified in one
    /// batch filled up to [`AHEAD_BATCH`] with transactions held ahead: one batch of 64 costs
    /// less than four of 16, and the held ones would otherwise be verified in smaller batches
    /// of their own when their block commits. The held ones' verdicts are remembered. Nothing
    /// needed, nothing verified.
    pub(super) fn verify_now(
        &mut self,
        ids: &[TxId],
        txs: &[Transaction],
    ) -> Vec<Result<(), TxError>> {
        if txs.is_empty() {
            return Vec::new();
        }
        let mut extra: Vec<(TxId, Transaction)> = Vec::new();
        let needed: BTreeSet<&TxId> = ids.iter().collect();
        while txs.len() + extra.len() < AHEAD_BATCH {
            let Some((id, tx)) = self.ahead.pop_front() else {
                break;
            };
            self.ahead_ids.remove(&id);
            if !self.verified.contains_key(&id) && !needed.contains(&id) {
                extra.push((id, tx));
            }
        }
        let batch: Vec<Transaction> = txs
            .iter()
            .copied()
            .chain(extra.iter().map(|(_, t)| *t))
            .collect();
        tracing::debug!(needed = txs.len(), ahead = extra.len(), "verifying a batch");
        self.verification.batches += 1;
        self.verification.proofs += batch.len() as u64;
        self.verification.ahead += extra.len() as u64;
        let started = std::time::Instant::now();
        let mut verdicts = self.verifier.verify_transactions(&batch);
        self.metrics
            .verification_seconds
            .observe(started.elapsed().as_secs_f64());
        self.metrics
            .verification_batch_size
            .observe(batch.len() as f64);
        self.metrics
            .proofs_verified_ahead
            .inc_by(extra.len() as u64);
        for ((id, _), r) in extra.iter().zip(verdicts.split_off(txs.len())) {
            self.remember(*id, r);
        }
        verdicts
    }

    /// Stateless verdicts for account transactions, batched (one multiscalar multiplication
    /// per core), for this network.
    pub(super) fn verify_accounts(&mut self, txs: &[&AccountTx]) -> Vec<Result<(), TxError>> {
        if txs.is_empty() {
            return Vec::new();
        }
        let started = std::time::Instant::now();
        let network = self.ledger.config().network_id;
        let verdicts = shoji_verifier::accounts::verify_account_txs(txs, &network);
        self.metrics
            .verification_seconds
            .observe(started.elapsed().as_secs_f64());
        self.metrics
            .verification_batch_size
            .observe(txs.len() as f64);
        verdicts
            .into_iter()
            .map(|r| r.map_err(TxError::Account))
            .collect()
    }

    pub(super) fn keep_decoded(&mut self, id: TxId, tx: Transaction) {
        if self.decoded.len() >= DECODED_MAX {
            self.decoded.clear();
        }
        self.decoded.insert(id, tx);
    }

    /// `bytes` decoded as a shielded transaction (without the `epk` subgroup check, see
    /// [`Transaction::from_bytes_proof_bound`]), taken from [`NodeCore::decoded`] when it was
    /// decoded before. The auth id is the hash of the canonical encoding, so a kept transaction
    /// whose id is the hash of `bytes` is what decoding `bytes` would give.
    /// The payload of a committed block, decoded: a shielded transaction decoded at admission
    /// or from a peer's message is taken from [`NodeCore::decoded`] instead of decoded again.
    pub(super) fn decode_for_block(&mut self, bytes: &[u8]) -> Option<Payload> {
        if !self.decoded.is_empty() {
            let id = TxId(*blake3::hash(bytes).as_bytes());
            if let Some(tx) = self.decoded.remove(&id) {
                return Some(Payload::Shielded(Box::new(tx)));
            }
        }
        Payload::decode(bytes, self.payloads).ok()
    }

    pub(super) fn remember(&mut self, id: TxId, r: Result<(), TxError>) {
        if self.verified.len() >= VERIFIED_CACHE_MAX {
            self.verified.clear();
        }
        self.verified.insert(id, r);
    }
}
