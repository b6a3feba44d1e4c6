//! `shoji-node`: the Shoji validator.
//!
//! ```text
//! shoji-node devnet [--validators N] [--dir DIR]
//! ```
//!
//! `devnet` starts N (default 4) validators in this process over QUIC on loopback, with
//! development keys, a development auditor and a development issuer of asset 840 ("USD"), writes
//! `DIR/devnet.json` (addresses and public keys, for clients) and runs until interrupted.

use anyhow::{bail, Context};
use shoji_ledger::LedgerConfig;
use shoji_primitives::audit::AuditSecretKey;
use shoji_primitives::encoding::hex_encode;
use shoji_primitives::note::AssetId;
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;

/// The development auditor's secret (a public constant: local networks only).
fn dev_auditor() -> AuditSecretKey {
    AuditSecretKey(ark_ed_on_bls12_381::Fr::from(0x5401_u64))
}

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
            while let Some(a) = args.next() {
                match a.as_str() {
                    "--validators" => n = args.next().context("--validators needs a number")?.parse().context("--validators needs a number")?,
                    "--dir" => dir = PathBuf::from(args.next().context("--dir needs a path")?),
                    other => bail!("unknown option {other} (usage: shoji-node devnet [--validators N] [--dir DIR])"),
                }
            }
            if n < 4 {
                bail!("a PBFT network needs at least 4 validators (n = 3f + 1 with f >= 1)");
            }
            devnet(n, dir)
        }
        _ => {
            eprintln!("usage: shoji-node devnet [--validators N] [--dir DIR]");
            std::process::exit(2)
        }
    }
}

fn devnet(n: u16, dir: PathBuf) -> anyhow::Result<()> {
    let vk_path = shoji_params::default_dir().join(shoji_params::vk_file());
    let verifier = shoji_verifier::Verifier::from_file(&vk_path).with_context(|| {
        "loading the verifying key (generate the development parameters first: `cargo run --release -p shoji-params --bin shoji-params`)".to_string()
    })?;
    let issuer =
        shoji_consensus::ed25519_dalek::SigningKey::from_bytes(b"shoji insecure devnet issuer key");
    let auditor = dev_auditor().public_key();
    let ledger = LedgerConfig {
        anchor_window_blocks: 100,
        auditor,
        issuers: BTreeMap::from([(
            issuer.verifying_key().to_bytes(),
            BTreeSet::from([AssetId(840)]),
        )]),
    };
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let net = shoji_node::devnet::start(n, ledger, Arc::new(verifier), &dir)?;
        let validators: Vec<serde_json::Value> = net
            .addrs
            .iter()
            .map(|(id, addr)| {
                let key = net
                    .key(*id as u16)
                    .map(|k| hex_encode(k.as_bytes()))
                    .unwrap_or_default();
                serde_json::json!({"id": id, "addr": addr.to_string(), "public_key": key})
            })
            .collect();
        let info = serde_json::json!({
            "validators": validators,
            "auditor_public_key": hex_encode(&auditor.to_bytes()),
            "issuer_public_key": hex_encode(issuer.verifying_key().as_bytes()),
            "assets": {"840": "USD"},
            "insecure": "development keys and parameters: never use for real value",
        });
        let path = dir.join("devnet.json");
        std::fs::write(&path, serde_json::to_string_pretty(&info)?)
            .with_context(|| format!("writing {}", path.display()))?;
        tracing::info!(validators = n, info = %path.display(), "devnet running; Ctrl-C stops it");
        tokio::signal::ctrl_c().await?;
        tracing::info!("stopping");
        Ok(())
    })
}
