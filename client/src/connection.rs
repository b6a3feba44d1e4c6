//! A blocking client: one connection to one validator at a time, failing over to the next.

use crate::api::{Request, Response, Status, MAX_COMPACT_BLOCKS};
use crate::network::Network;
use shoji_consensus::{verify_commit_certificate, Block, BlockHash, CommitCertificate, ReplicaId};
use shoji_ledger::CompactBlock;
use shoji_net::{ClientConnection, NetConfig};
use shoji_primitives::encoding::fr_from_bytes;
use shoji_primitives::tx::Transaction;
use shoji_primitives::Fr;
use std::time::Duration;

/// What can go wrong talking to a network.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// No validator could be reached.
    #[error("no validator is reachable ({0})")]
    Unreachable(String),
    /// The connection failed mid-request.
    #[error("validator {node} stopped answering: {reason}")]
    Connection {
        /// Which validator.
        node: u16,
        /// Why.
        reason: String,
    },
    /// The validator refused the transaction before ordering it.
    #[error("transaction refused: {0}")]
    Refused(String),
    /// The transaction was ordered into a block but is invalid there (for example a double
    /// spend ordered concurrently); it changed nothing.
    #[error("transaction rejected in block {height}: {reason}")]
    Rejected {
        /// The block.
        height: u64,
        /// Why.
        reason: String,
    },
    /// The validator could not serve the request.
    #[error("validator error: {0}")]
    Server(String),
    /// The validator answered something that is not a valid answer.
    #[error("invalid answer from validator {node}: {reason}")]
    Protocol {
        /// Which validator.
        node: u16,
        /// What was wrong.
        reason: String,
    },
    /// The commit certificate does not verify against the network's validator set.
    #[error("the commit certificate from validator {node} does not verify: {reason}")]
    BadCertificate {
        /// Which validator.
        node: u16,
        /// Why.
        reason: String,
    },
}

/// A transaction's finality: the block holding it, checked against its commit certificate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finality {
    /// Block height.
    pub height: u64,
    /// Block hash.
    pub block_hash: BlockHash,
    /// Number of validators whose commit signatures were checked.
    pub signatures: usize,
}

/// The tree's state at a validator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TreeState {
    /// Last committed height.
    pub height: u64,
    /// The current root (a valid anchor).
    pub anchor: Fr,
    /// Commitments in the tree.
    pub size: u64,
}

/// A blocking connection to a network.
pub struct Client {
    runtime: tokio::runtime::Runtime,
    conn: ClientConnection,
    node: ReplicaId,
    network: Network,
}

/// How long a client waits for one answer; a submission waits for its commit. Longer than a
/// validator's own limit for answering (`NetConfig::answer_timeout`, 60 s), so the validator's
/// answer or reset arrives first.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(75);

impl Client {
    /// Connects to the first validator of `network` that answers, starting with `first` (or
    /// validator order). The validator's TLS key must be the one the network file pins.
    pub fn connect(network: &Network, first: Option<u16>) -> Result<Client, ClientError> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| ClientError::Unreachable(format!("cannot start a runtime: {e}")))?;
        let mut order = network.addrs.clone();
        if let Some(first) = first {
            order.sort_by_key(|(id, _)| id.0 != first);
        }
        let config = NetConfig {
            stream_timeout: REQUEST_TIMEOUT,
            ..NetConfig::default()
        };
        let mut failures = Vec::new();
        for (id, addr) in order {
            let Some(key) = network.validators.key(id) else {
                continue;
            };
            let attempt = runtime.block_on(async {
                tokio::time::timeout(
                    Duration::from_secs(5),
                    ClientConnection::connect_with(addr, key, config.clone()),
                )
                .await
            });
            match attempt {
                Ok(Ok(conn)) => {
                    return Ok(Client {
                        runtime,
                        conn,
                        node: id,
                        network: network.clone(),
                    })
                }
                Ok(Err(e)) => failures.push(format!("validator {} at {addr}: {e}", id.0)),
                Err(_) => failures.push(format!("validator {} at {addr}: timed out", id.0)),
            }
        }
        Err(ClientError::Unreachable(failures.join("; ")))
    }

    /// The validator this client talks to.
    pub fn node(&self) -> u16 {
        self.node.0
    }

    /// The network.
    pub fn network(&self) -> &Network {
        &self.network
    }

    fn ask(&self, req: &Request) -> Result<Response, ClientError> {
        let bytes = self
            .runtime
            .block_on(self.conn.request(&req.encode()))
            .map_err(|e| ClientError::Connection {
                node: self.node.0,
                reason: e.to_string(),
            })?;
        let resp = Response::decode(&bytes).map_err(|reason| self.protocol(reason))?;
        if let Response::Error(e) = resp {
            return Err(ClientError::Server(e));
        }
        Ok(resp)
    }

    fn protocol(&self, reason: impl Into<String>) -> ClientError {
        ClientError::Protocol {
            node: self.node.0,
            reason: reason.into(),
        }
    }

    /// The validator's height, anchor and tree size.
    pub fn tree_state(&self) -> Result<TreeState, ClientError> {
        match self.ask(&Request::TreeState)? {
            Response::TreeState {
                height,
                anchor,
                size,
            } => Ok(TreeState {
                height,
                anchor: fr_from_bytes("anchor", &anchor)
                    .map_err(|e| self.protocol(e.to_string()))?,
                size,
            }),
            other => Err(self.protocol(format!("expected a tree state, got {other:?}"))),
        }
    }

    /// Where the validator stands: height, last block hash, state root, view, leader. The
    /// answer is the validator's word, not checked against certificates.
    pub fn status(&self) -> Result<Status, ClientError> {
        match self.ask(&Request::Status)? {
            Response::Status(s) => {
                if s.node != self.node.0 {
                    return Err(self.protocol(format!(
                        "status of validator {} from validator {}",
                        s.node, self.node.0
                    )));
                }
                Ok(s)
            }
            other => Err(self.protocol(format!("expected a status, got {other:?}"))),
        }
    }

    /// Up to `max` compact blocks from `from_height` (fewer at the tip; none past it). Each is
    /// checked to be well formed and in sequence.
    pub fn compact_blocks(
        &self,
        from_height: u64,
        max: u32,
    ) -> Result<Vec<CompactBlock>, ClientError> {
        let max = max.min(MAX_COMPACT_BLOCKS);
        match self.ask(&Request::CompactBlocks { from_height, max })? {
            Response::CompactBlocks(raw) => {
                if raw.len() > max as usize {
                    return Err(self.protocol("more compact blocks than asked for"));
                }
                let mut out = Vec::with_capacity(raw.len());
                for (i, b) in raw.iter().enumerate() {
                    let block = CompactBlock::from_bytes(b)
                        .map_err(|e| self.protocol(format!("compact block: {e}")))?;
                    if block.height != from_height + i as u64 {
                        return Err(self.protocol(format!(
                            "compact block {} out of sequence (expected {})",
                            block.height,
                            from_height + i as u64
                        )));
                    }
                    out.push(block);
                }
                Ok(out)
            }
            other => Err(self.protocol(format!("expected compact blocks, got {other:?}"))),
        }
    }

    /// Submits `tx` and waits until it is final: returns only when the block holding it comes
    /// with a commit certificate that verifies against the network's validator set and the
    /// block holds exactly these transaction bytes.
    pub fn submit(&self, tx: &Transaction) -> Result<Finality, ClientError> {
        self.submit_bytes(tx.to_bytes())
    }

    /// [`Client::submit`] for an encoded transaction of any kind (a governance transaction,
    /// for instance).
    pub fn submit_bytes(&self, bytes: Vec<u8>) -> Result<Finality, ClientError> {
        match self.ask(&Request::Submit { tx: bytes.clone() })? {
            Response::Refused(reason) => Err(ClientError::Refused(reason)),
            Response::Committed {
                height,
                applied,
                reason,
                block,
                certificate,
            } => {
                let block: Block = postcard::from_bytes(&block)
                    .map_err(|e| self.protocol(format!("block: {e}")))?;
                let cert: CommitCertificate = postcard::from_bytes(&certificate)
                    .map_err(|e| self.protocol(format!("certificate: {e}")))?;
                verify_commit_certificate(&self.network.validators, &block, &cert).map_err(
                    |e| ClientError::BadCertificate {
                        node: self.node.0,
                        reason: e.to_string(),
                    },
                )?;
                if block.height != height || !block.transactions.contains(&bytes) {
                    return Err(ClientError::BadCertificate {
                        node: self.node.0,
                        reason: format!("block {} does not hold the transaction", block.height),
                    });
                }
                if !applied {
                    return Err(ClientError::Rejected {
                        height,
                        reason: reason.unwrap_or_else(|| "no reason given".into()),
                    });
                }
                Ok(Finality {
                    height,
                    block_hash: block.hash(),
                    signatures: cert.signatures.len(),
                })
            }
            other => Err(self.protocol(format!("expected a commit, got {other:?}"))),
        }
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        self.conn.connection().close(0u32.into(), b"client done");
    }
}
