//! `shoji-node`: the Shoji validator.
//!
//! ```text
//! shoji-node devnet [--validators N] [--dir DIR] [--auditor-public-key HEX]
//! ```
//!
//! `devnet` starts N (default 4) validators in this process over QUIC on loopback, with
//! development keys, a development auditor (or the given one) and a development issuer of asset
//! 840 ("USD"). It writes `DIR/devnet.json` (the network file clients load: addresses, keys,
//! auditor, issuer, assets) and `DIR/issuer.key` (the development issuer's secret), then runs
//! until interrupted.

use anyhow::{bail, Context};
use shoji_client::network::{insecure_devnet_auditor, insecure_devnet_issuer};
use shoji_client::Network;
use shoji_consensus::ReplicaId;
use shoji_ledger::LedgerConfig;
use shoji_primitives::audit::AuditPublicKey;
use shoji_primitives::encoding::{hex_decode, hex_encode};
use shoji_primitives::note::AssetId;
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let mut args = std::env::args().skip(1);
    match args.next().as_deref() {
        Some("devnet") => {
            let (mut n, mut dir) = (4u16, PathBuf::from("devnet"));
            let mut auditor = None;
            while let Some(a) = args.next() {
                match a.as_str() {
                    "--validators" => {
                        n = args
                            .next()
                            .context("--validators needs a number")?
                            .parse()
                            .context("--validators needs a number")?
                    }
                    "--dir" => dir = PathBuf::from(args.next().context("--dir needs a path")?),
                    "--auditor-public-key" => {
                        let hex = args
                            .next()
                            .context("--auditor-public-key needs a hex key")?;
                        let bytes = hex_decode("auditor public key", &hex)?;
                        auditor = Some(
                            AuditPublicKey::from_bytes(&bytes).context("--auditor-public-key")?,
                        );
                    }
                    other => bail!("unknown option {other} ({USAGE})"),
                }
            }
            if n < 4 {
                bail!("a PBFT network needs at least 4 validators (n = 3f + 1 with f >= 1)");
            }
            devnet(
                n,
                dir,
                auditor.unwrap_or_else(|| insecure_devnet_auditor().public_key()),
            )
        }
        _ => {
            eprintln!("{USAGE}");
            std::process::exit(2)
        }
    }
}

const USAGE: &str =
    "usage: shoji-node devnet [--validators N] [--dir DIR] [--auditor-public-key HEX]";

fn devnet(n: u16, dir: PathBuf, auditor: AuditPublicKey) -> anyhow::Result<()> {
    let vk_path = shoji_params::default_dir().join(shoji_params::vk_file());
    let verifier = shoji_verifier::Verifier::from_file(&vk_path).with_context(|| {
        "loading the verifying key (generate the development parameters first: `cargo run --release -p shoji-params --bin shoji-params`)".to_string()
    })?;
    let issuer = insecure_devnet_issuer();
    let ledger_issuers = BTreeMap::from([(
        issuer.verifying_key().to_bytes(),
        BTreeSet::from([AssetId(840)]),
    )]);
    let ledger = LedgerConfig {
        anchor_window_blocks: 100,
        auditor,
        issuers: ledger_issuers.clone(),
    };
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let net = shoji_node::devnet::start(n, ledger, Arc::new(verifier), &dir)?;
        let network = Network {
            addrs: net
                .addrs
                .iter()
                .map(|(id, a)| (ReplicaId(*id as u16), *a))
                .collect(),
            validators: net.validators.clone(),
            auditor,
            issuers: ledger_issuers,
            assets: BTreeMap::from([(AssetId(840), "USD".to_string())]),
            insecure: Some("development keys and parameters: never use for real value".into()),
        };
        let info = network.to_file();
        let key_path = dir.join("issuer.key");
        shoji_client::sealed::write_atomic(&key_path, hex_encode(&issuer.to_bytes()).as_bytes())
            .with_context(|| format!("writing {}", key_path.display()))?;
        let path = dir.join("devnet.json");
        shoji_client::sealed::write_atomic(&path, serde_json::to_string_pretty(&info)?.as_bytes())
            .with_context(|| format!("writing {}", path.display()))?;
        tracing::info!(validators = n, info = %path.display(), "devnet running; Ctrl-C stops it");
        tokio::signal::ctrl_c().await?;
        tracing::info!("stopping");
        Ok(())
    })
}
