//! A local network of four validators in this process, over QUIC on loopback, each with its own
//! redb database in a temporary directory: the validator core, host and transport of
//! `shoji-node`, with development keys. [`Devnet`] is a [`crate::Chain`] the story runs on.

use crate::Chain;
use anyhow::{bail, ensure, Context};
use shoji_consensus::{ReplicaId, ValidatorSet};
use shoji_ledger::{CompactBlock, LedgerConfig};
use shoji_net::{ClientConnection, Identity, NetConfig, ValidatorEndpoint};
use shoji_node::api::{Request, Response};
use shoji_node::{ed25519_dalek_key::SigningKey, Genesis, NodeCore};
use shoji_primitives::tx::Transaction;
use shoji_store::Store;
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
    pub addrs: BTreeMap<u64, SocketAddr>,
    /// The validator set (what a client checks commit certificates against).
    pub validators: ValidatorSet,
    scanned: u64,
    _dirs: Vec<tempfile::TempDir>,
}

impl Devnet {
    /// Starts four validators with development keys and the given genesis ledger configuration.
    pub fn start(ledger: LedgerConfig, verifier: Verifier) -> anyhow::Result<Self> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()?;
        let verifier = Arc::new(verifier);
        // Development validator keys: public, for a local network only.
        let keys: Vec<SigningKey> = (0..VALIDATORS as u8)
            .map(|i| SigningKey::from_bytes(&[0xd0 + i; 32]))
            .collect();
        let validators = ValidatorSet::new(
            0,
            keys.iter()
                .enumerate()
                .map(|(i, k)| (ReplicaId(i as u16), k.verifying_key()))
                .collect(),
        )?;
        let genesis = Genesis {
            validators: validators.clone(),
            ledger,
        };
        let sockets = (0..VALIDATORS)
            .map(|_| std::net::UdpSocket::bind("127.0.0.1:0"))
            .collect::<Result<Vec<_>, _>>()
            .context("binding loopback UDP sockets")?;
        let addrs: BTreeMap<u64, SocketAddr> = sockets
            .iter()
            .enumerate()
            .map(|(i, s)| Ok((i as u64, s.local_addr()?)))
            .collect::<Result<_, std::io::Error>>()?;
        let set: BTreeMap<u64, _> = keys
            .iter()
            .enumerate()
            .map(|(i, k)| (i as u64, k.verifying_key()))
            .collect();
        let peers: Vec<ReplicaId> = (0..VALIDATORS as u16).map(ReplicaId).collect();
        let mut dirs = Vec::new();
        for (i, socket) in sockets.into_iter().enumerate() {
            let dir = tempfile::tempdir()?;
            let store = Store::open(dir.path().join("node.redb"))?;
            let (core, out) = NodeCore::open(store, &genesis, keys[i].clone(), verifier.clone())?;
            let identity = Identity::new(&keys[i])?;
            let endpoint = {
                let _guard = runtime.enter();
                ValidatorEndpoint::from_socket(
                    identity,
                    socket,
                    set.clone(),
                    addrs.clone(),
                    NetConfig::default(),
                )?
            };
            let peers = peers.clone();
            runtime.spawn(async move {
                if let Err(e) = shoji_node::host::run(core, endpoint, out, peers).await {
                    eprintln!("validator {i} stopped: {e}");
                }
            });
            dirs.push(dir);
        }
        let client = runtime.block_on(ClientConnection::connect(
            addrs[&0],
            &keys[0].verifying_key(),
        ))?;
        Ok(Self {
            runtime,
            client,
            addrs,
            validators,
            scanned: 0,
            _dirs: dirs,
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
                    block,
                    certificate,
                    ..
                } => {
                    let block: shoji_consensus::Block = postcard::from_bytes(&block)?;
                    let cert: shoji_consensus::CommitCertificate =
                        postcard::from_bytes(&certificate)?;
                    shoji_consensus::verify_commit_certificate(&self.validators, &block, &cert)
                        .context("commit certificate does not verify against the validator set")?;
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

    fn describe(&self) -> String {
        let addrs: Vec<String> = self.addrs.values().map(|a| a.to_string()).collect();
        format!(
            "{} validators (PBFT over QUIC) at {}",
            VALIDATORS,
            addrs.join(", ")
        )
    }
}
