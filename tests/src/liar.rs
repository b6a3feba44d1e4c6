//! A lying validator: a double that holds a validator's real key, answers every client request
//! by asking an honest validator, and lies in three ways:
//! - it adds a forged payment to the compact blocks it serves (a copy of a block's first
//!   transaction with another commitment: a note its recipient would credit and never be able
//!   to spend), and keeps the forged blocks consistent with themselves: each block's tree root
//!   is recomputed over the forged commitments, so a client that checks its tree only against
//!   the roots in the same answers is fooled;
//! - it reports every applied submission as rejected (a flipped `applied`), under the honest
//!   commit certificate;
//! - it serves a colluding auditor's record in place of one transaction's real audit record;
//! - it pads every block summary it serves with a transaction hash, under the honest commit
//!   certificate, and reports every applied transaction it is asked about as rejected.
//!
//! Clients pin the validator's key, so only what they check against certified data can catch
//! it.

use std::net::SocketAddr;

use shoji_client::api::Response;
use shoji_ledger::CompactBlock;
use shoji_net::{ClientConnection, Identity, NetConfig, ValidatorEndpoint, VerifyingKey};
use shoji_primitives::audit::AuditRecord;
use shoji_primitives::tree::Frontier;
use shoji_primitives::tx::TxId;

/// A running double; it stops with the process.
pub struct LyingValidator {
    /// Where it listens.
    pub addr: SocketAddr,
}

impl LyingValidator {
    /// Starts the double of the validator with `key` (a member of `validators`), forwarding to
    /// the honest validator at `honest` (pinned to `honest_key`), on a thread of its own. It
    /// serves `fake_record.1` as the audit record of transaction `fake_record.0`.
    pub fn start(
        key: &ed25519_dalek::SigningKey,
        validators: std::collections::BTreeMap<u16, VerifyingKey>,
        honest: SocketAddr,
        honest_key: VerifyingKey,
        fake_record: (TxId, AuditRecord),
    ) -> anyhow::Result<LyingValidator> {
        let socket = std::net::UdpSocket::bind("127.0.0.1:0")?;
        let addr = socket.local_addr()?;
        let identity = Identity::new(key)?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()?;
        let (started, result) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            runtime.block_on(async move {
                let endpoint = match ValidatorEndpoint::from_socket(
                    identity,
                    socket,
                    validators,
                    Default::default(),
                    NetConfig::default(),
                ) {
                    Ok(e) => e,
                    Err(e) => {
                        let _ = started.send(Err(anyhow::Error::new(e)));
                        return;
                    }
                };
                let upstream = match ClientConnection::connect(honest, &honest_key).await {
                    Ok(c) => std::sync::Arc::new(c),
                    Err(e) => {
                        let _ = started.send(Err(anyhow::Error::new(e)));
                        return;
                    }
                };
                let _ = started.send(Ok(()));
                // The forged chain so far: the next height and the tree over forged blocks.
                let forged = std::sync::Arc::new(std::sync::Mutex::new((1u64, Frontier::new())));
                while let Some(req) = endpoint.next_request().await {
                    let (upstream, forged) = (upstream.clone(), forged.clone());
                    tokio::spawn(async move {
                        if let Ok(answer) = upstream.request(req.body()).await {
                            req.respond(forge(answer, &forged, &fake_record));
                        }
                    });
                }
            })
        });
        result.recv()??;
        Ok(LyingValidator { addr })
    }
}

/// The honest answer with the lies told: a forged payment added to every compact block that
/// has a transaction, every block's tree root made that of the forged chain (when the blocks
/// come in order from the first), the fake audit record in place of the real one, and an
/// applied submission reported rejected.
fn forge(
    answer: Vec<u8>,
    chain: &std::sync::Mutex<(u64, Frontier)>,
    fake_record: &(TxId, AuditRecord),
) -> Vec<u8> {
    let mut blocks = match Response::decode(&answer) {
        Ok(Response::CompactBlocks(blocks)) => blocks,
        Ok(Response::Committed {
            height,
            applied: true,
            summary,
            certificate,
            ..
        }) => {
            return Response::Committed {
                height,
                applied: false,
                reason: Some("double spend: nullifier already revealed".into()),
                summary,
                certificate,
            }
            .encode()
        }
        Ok(Response::Block {
            summary,
            certificate,
        }) if !summary.is_empty() => {
            let Ok(mut padded) = postcard::from_bytes::<shoji_consensus::BlockSummary>(&summary)
            else {
                return answer;
            };
            padded.tx_hashes.push(shoji_consensus::TxHash([7; 32]));
            return Response::Block {
                summary: postcard::to_allocvec(&padded).unwrap_or_default(),
                certificate,
            }
            .encode();
        }
        Ok(Response::Transaction(Some(mut record))) if record.rejected.is_none() => {
            record.rejected = Some("double spend: nullifier already revealed".into());
            return Response::Transaction(Some(record)).encode();
        }
        _ => return answer,
    };
    let Ok(mut chain) = chain.lock() else {
        return answer;
    };
    for raw in blocks.iter_mut() {
        let Ok(mut block) = CompactBlock::from_bytes(raw) else {
            continue;
        };
        for tx in block.txs.iter_mut().filter(|t| t.txid == fake_record.0) {
            tx.audit = fake_record.1;
        }
        if let Some(mut forged) = block.txs.first().cloned() {
            forged.commitments[0] += shoji_primitives::Fr::from(1u64);
            block.txs.push(forged);
        }
        if block.height == chain.0 {
            for cm in block.txs.iter().flat_map(|t| t.commitments) {
                let _ = chain.1.append(cm);
            }
            block.tree_root = chain.1.root();
            chain.0 += 1;
        }
        *raw = block.to_bytes();
    }
    Response::CompactBlocks(blocks).encode()
}
