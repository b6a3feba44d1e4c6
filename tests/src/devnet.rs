//! A local network of four validators in this process, over QUIC on loopback, each with its own
//! redb database in a temporary directory: the validator core, host and transport of
//! `shoji-node`, with development keys. [`Devnet`] is a [`crate::Chain`] the story runs on.

use crate::Chain;
use anyhow::{bail, ensure, Context};
use shoji_consensus::ValidatorSet;
use shoji_ledger::{CompactBlock, LedgerConfig};
use shoji_net::ClientConnection;
use shoji_node::api::{Request, Response};
use shoji_primitives::tx::Transaction;
use shoji_verifier::Verifier;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

/// Number of validators.
pub const VALIDATORS: usize = 4;

/// Four running validators and a client connected to one of them.
pub struct Devnet {
    runtime: tokio::runtime::Runtime,
    client: ClientConnection,
    /// Validator addresses, by replica id.
    pub addrs: BTreeMap<u16, SocketAddr>,
    /// The validator set (what a client checks commit certificates against).
    pub validators: ValidatorSet,
    scanned: u64,
    _dirs: Vec<tempfile::TempDir>,
}

impl Devnet {
    /// Starts four validators with development keys and the given genesis ledger configuration,
    /// their databases in a temporary directory removed when the network is dropped.
    pub fn start(ledger: LedgerConfig, verifier: Verifier) -> anyhow::Result<Self> {
        let dir = tempfile::tempdir()?;
        let mut net = Self::start_in(ledger, verifier, dir.path())?;
        net._dirs.push(dir);
        Ok(net)
    }

    /// Like [`Devnet::start`], with the databases under `dir` (kept after the network stops, for
    /// inspection).
    pub fn start_in(
        ledger: LedgerConfig,
        verifier: Verifier,
        dir: &std::path::Path,
    ) -> anyhow::Result<Self> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()?;
        let net = {
            let _guard = runtime.enter();
            shoji_node::devnet::start(VALIDATORS as u16, ledger, Arc::new(verifier), dir)?
        };
        let key = net.key(0).context("validator 0")?;
        let client = runtime.block_on(ClientConnection::connect(net.addrs[&0], &key))?;
        Ok(Self {
            runtime,
            client,
            addrs: net.addrs,
            validators: net.validators,
            scanned: 0,
            _dirs: Vec::new(),
        })
    }

    fn ask(&self, req: &Request) -> anyhow::Result<Response> {
        let bytes = self.runtime.block_on(async {
            tokio::time::timeout(Duration::from_secs(120), self.client.request(&req.encode())).await
        })??;
        Response::decode(&bytes).map_err(anyhow::Error::msg)
    }
}

impl Chain for Devnet {
    fn commit(&mut self, txs: Vec<Transaction>) -> anyhow::Result<Vec<CompactBlock>> {
        let mut top = self.scanned;
        for tx in &txs {
            match self.ask(&Request::Submit { tx: tx.to_bytes() })? {
                Response::Committed {
                    height,
                    applied: true,
                    summary,
                    certificate,
                    ..
                } => {
                    let summary: shoji_consensus::BlockSummary = postcard::from_bytes(&summary)?;
                    let cert: shoji_consensus::CommitCertificate =
                        postcard::from_bytes(&certificate)?;
                    shoji_consensus::verify_commit_certificate_for(
                        &self.validators,
                        summary.height,
                        summary.hash(),
                        &cert,
                    )
                    .context("commit certificate does not verify against the validator set")?;
                    anyhow::ensure!(
                        summary.height == height && summary.contains(&tx.to_bytes()),
                        "block {height} does not hold transaction {}",
                        tx.id()
                    );
                    top = top.max(height);
                }
                other => bail!("transaction {} not applied: {other:?}", tx.id()),
            }
        }
        let mut blocks = Vec::new();
        while self.scanned < top {
            let Response::CompactBlocks(bs) = self.ask(&Request::CompactBlocks {
                from_height: self.scanned + 1,
                max: 100,
            })?
            else {
                bail!("unexpected answer to a compact-block request")
            };
            ensure!(
                !bs.is_empty(),
                "validator has no block {} yet",
                self.scanned + 1
            );
            for b in bs {
                let b = CompactBlock::from_bytes(&b)?;
                self.scanned = b.height;
                blocks.push(b);
            }
        }
        Ok(blocks)
    }

    fn anchor(&mut self) -> anyhow::Result<shoji_primitives::Fr> {
        match self.ask(&Request::TreeState)? {
            Response::TreeState { anchor, .. } => Ok(shoji_primitives::encoding::fr_from_bytes(
                "anchor", &anchor,
            )?),
            other => bail!("unexpected answer to a tree-state request: {other:?}"),
        }
    }

    fn network_id(&self) -> [u8; 32] {
        self.validators.network
    }

    fn describe(&self) -> String {
        let addrs: Vec<String> = self.addrs.values().map(|a| a.to_string()).collect();
        format!(
            "{} validators (PBFT over QUIC) at {}",
            VALIDATORS,
            addrs.join(", ")
        )
    }
}
