//! `shoji-node`: the Shoji validator.
//!
//! ```text
//! shoji-node init --dir DIR [--validators N] [--base-port P] [--host IP]
//!                 [--addresses IP:PORT,...] [--auditor-public-key HEX]
//!                 [--issuer-public-key HEX --issuer-assets ID,...] [--params DIR]
//!                 [--admin-public-key HEX ... --admin-threshold T]
//! shoji-node run --config DIR/validator-<i>/config.toml
//! shoji-node join --dir DIR --genesis FILE --id N --listen IP:PORT [--params DIR]
//! shoji-node devnet [--validators N] [--dir DIR] [--auditor-public-key HEX] [--anchor-window BLOCKS]
//!                   [--ordering-only]
//! shoji-node governance propose --network FILE --out FILE [--seq N]
//!                       (--set-auditor HEX | --set-issuer HEX --assets ID,... | --revoke-issuer HEX
//!                        | --remove-validator ID ... | --add-validator ID --key HEX --address IP:PORT)
//! shoji-node governance approve FILE --admin-key FILE
//! shoji-node governance show FILE
//! shoji-node governance submit FILE --network FILE
//! ```
//!
//! `init` creates a network directory: one random Ed25519 key per validator (owner-only
//! files), `genesis.toml`, `validator-<i>/config.toml` for each validator, the client network
//! file `network.json`, unless an issuer is given the development issuer's `issuer.key`, and
//! unless administrators are given three fresh governance administrator keys `admin-<i>.key`
//! (two must approve; see `shoji_node::config` for the formats). Validator `i` listens on `IP:P+i` (default
//! 127.0.0.1:7000+i) unless `--addresses` lists every address.
//!
//! `run` starts one validator from its configuration: it opens (or creates) its database in
//! the data directory, joins the others, serves clients, and stops cleanly on SIGINT or
//! SIGTERM. Logs go to standard error, as text or (`log_format = "json"` in the configuration,
//! or `SHOJI_LOG_FORMAT=json`) one JSON object per line; `RUST_LOG` overrides the configured
//! level.
//!
//! `join` prepares a validator that governance is to add: a fresh key and a configuration
//! (`DIR/validator.key`, `DIR/config.toml`) for replica `N` of the network of `FILE`,
//! listening on `IP:PORT`. It prints the public key and the `governance propose
//! --add-validator` command for the administrators. Started with `run`, the validator follows
//! the chain as a learner (refusing client transactions) once the change is enacted, and
//! becomes a member at the boundary of the epoch that adds it.
//!
//! `devnet` starts N (default 4) validators in this process over QUIC on loopback, with
//! development keys, a development auditor (or the given one) and a development issuer of asset
//! 840 ("USD"). It writes `DIR/devnet.json` (the network file clients load: addresses, keys,
//! auditor, issuer, assets), `DIR/issuer.key` (the development issuer's secret) and
//! `DIR/admin-0.key` … `admin-2.key` (the development governance administrators, two of whom
//! must approve), then runs until interrupted. `--ordering-only` is a benchmark mode: the
//! validators also order opaque client payloads (up to 1 KiB) without executing them, which is
//! how `shoji-bench cluster` measures consensus capacity alone; never for real value.
//!
//! `governance` prepares, approves and submits governance transactions (register or revoke an
//! issuer, designate another auditor, remove validators): `propose` writes a proposal file for the network's next
//! sequence number (asked of a validator unless `--seq` is given), each administrator runs
//! `approve` with its key on the file, and `submit` sends it and waits for its commit
//! certificate. Removing validators takes effect at a checkpoint boundary; `submit` then
//! writes the client network file of the next epoch beside the given one (`*.next.json`).
//! Exit codes: 0 done, 1 error, 8 refused or rejected by the network.

/// mimalloc: validators allocate and free many small buffers per message (frames, blocks,
/// transactions); the system allocator cost a fifth of a validator's time under load. Built
/// without transparent huge pages (`no_thp`): with them, every 2 MiB region mimalloc handed
/// back to the system and took again was zeroed whole by the kernel, 5 % of the machine under
/// load (BENCHMARKS.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use anyhow::{bail, Context};
use shoji_client::network::{insecure_devnet_auditor, insecure_devnet_issuer};
use shoji_client::Network;
use shoji_consensus::ReplicaId;
use shoji_ledger::LedgerConfig;
use shoji_node::config::{InitOptions, LogFormat, Setup, ValidatorConfig};
use shoji_primitives::audit::AuditPublicKey;
use shoji_primitives::encoding::{hex_decode, hex_encode};
use shoji_primitives::note::AssetId;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Logs to standard error at `RUST_LOG`'s level (or `default`), as text or as JSON lines
/// (`SHOJI_LOG_FORMAT`, else `format`).
fn init_tracing(default: &str, format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .or_else(|_| tracing_subscriber::EnvFilter::try_new(default))
        .unwrap_or_else(|_| "info".into());
    let format = std::env::var("SHOJI_LOG_FORMAT")
        .ok()
        .and_then(|v| LogFormat::parse(&v))
        .unwrap_or(format);
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().flatten_event(true).init(),
    }
}

fn value(
    args: &mut impl Iterator<Item = String>,
    flag: &str,
    what: &str,
) -> anyhow::Result<String> {
    args.next()
        .with_context(|| format!("{flag} needs {what} ({USAGE})"))
}

fn auditor_key(hex: &str) -> anyhow::Result<AuditPublicKey> {
    let bytes = hex_decode("auditor public key", hex)?;
    AuditPublicKey::from_bytes(&bytes).context("--auditor-public-key")
}

/// Errors are messages (`error: …`, exit code 1), never a debug dump with a backtrace, whatever
/// `RUST_BACKTRACE` says.
fn main() -> std::process::ExitCode {
    match main_inner() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => shoji_cli::Failure::new(shoji_cli::Exit::Other, e).report(false),
    }
}

fn main_inner() -> anyhow::Result<()> {
    // `--help` anywhere (or `help`): the usage, one command per line, on stdout.
    if std::env::args()
        .skip(1)
        .enumerate()
        .any(|(i, a)| a == "--help" || a == "-h" || (i == 0 && a == "help"))
    {
        println!("{}", USAGE.replace(" | shoji-node", "\n       shoji-node"));
        return Ok(());
    }
    let mut args = std::env::args().skip(1);
    match args.next().as_deref() {
        Some("init") => {
            init_tracing("info", LogFormat::Text);
            init(args)
        }
        Some("run") => {
            let mut config = None;
            while let Some(a) = args.next() {
                match a.as_str() {
                    "--config" => config = Some(PathBuf::from(value(&mut args, &a, "a file")?)),
                    other => bail!("unknown option {other} ({USAGE})"),
                }
            }
            let config = config.with_context(|| format!("run needs --config FILE ({USAGE})"))?;
            run(&config)
        }
        Some("join") => {
            init_tracing("info", LogFormat::Text);
            join(args)
        }
        Some("devnet") => {
            init_tracing("info", LogFormat::Text);
            let (mut n, mut dir) = (4u16, PathBuf::from("devnet"));
            let mut auditor = None;
            let mut anchor_window = 100usize;
            let mut ordering_only = false;
            while let Some(a) = args.next() {
                match a.as_str() {
                    "--ordering-only" => ordering_only = true,
                    "--validators" => {
                        n = value(&mut args, &a, "a number")?
                            .parse()
                            .context("--validators needs a number")?
                    }
                    "--dir" => dir = PathBuf::from(value(&mut args, &a, "a path")?),
                    "--auditor-public-key" => {
                        auditor = Some(auditor_key(&value(&mut args, &a, "a hex key")?)?);
                    }
                    "--anchor-window" => {
                        anchor_window = value(&mut args, &a, "a number of blocks")?
                            .parse()
                            .context("--anchor-window needs a number of blocks")?;
                        if anchor_window == 0 {
                            bail!("--anchor-window must be at least 1");
                        }
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
                anchor_window,
                ordering_only,
            )
        }
        Some("governance") => governance(args),
        _ => {
            eprintln!("{USAGE}");
            std::process::exit(2)
        }
    }
}

fn issuer_public_key(flag: &str, hex: &str) -> anyhow::Result<[u8; 32]> {
    let bytes = hex_decode("issuer public key", hex)?;
    let key: [u8; 32] = bytes
        .try_into()
        .map_err(|_| anyhow::anyhow!("{flag} must be 32 bytes"))?;
    shoji_consensus::ed25519_dalek::VerifyingKey::from_bytes(&key)
        .with_context(|| format!("{flag} is not an Ed25519 key"))?;
    Ok(key)
}

fn asset_list(flag: &str, list: &str) -> anyhow::Result<BTreeSet<AssetId>> {
    list.split(',')
        .map(|s| {
            s.trim()
                .parse()
                .map(AssetId)
                .with_context(|| format!("{flag}: {s:?} is not a number"))
        })
        .collect()
}

/// The client network after a validator-set change: the next epoch, its members and their
/// addresses.
fn next_network(
    net: &Network,
    validators: &BTreeMap<u16, [u8; 32]>,
    added: Option<(u16, std::net::SocketAddr)>,
) -> anyhow::Result<Network> {
    let members = validators
        .iter()
        .map(|(id, k)| {
            Ok((
                ReplicaId(*id),
                shoji_consensus::ed25519_dalek::VerifyingKey::from_bytes(k)?,
            ))
        })
        .collect::<anyhow::Result<BTreeMap<_, _>>>()?;
    let mut next = net.clone();
    next.validators = shoji_consensus::ValidatorSet::new(net.validators.epoch + 1, members)?
        .on_network(net.network_id);
    next.addrs.retain(|(id, _)| validators.contains_key(&id.0));
    if let Some((id, addr)) = added {
        next.addrs.retain(|(i, _)| i.0 != id);
        next.addrs.push((ReplicaId(id), addr));
        next.addrs.sort_by_key(|(i, _)| *i);
    }
    Ok(next)
}

fn governance(mut args: impl Iterator<Item = String>) -> anyhow::Result<()> {
    use shoji_node::governance::Proposal;
    use shoji_primitives::governance::{GovernanceAction, GovernanceTx};
    let sub = args.next().unwrap_or_default();
    let mut file = None;
    let (mut network, mut out, mut seq, mut admin_key) = (None, None, None, None);
    let (mut action, mut issuer, mut assets) = (None, None, None);
    let mut remove: BTreeSet<u16> = BTreeSet::new();
    let (mut add_id, mut add_key, mut add_address) = (None, None, None);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--network" => network = Some(PathBuf::from(value(&mut args, &a, "a file")?)),
            "--out" => out = Some(PathBuf::from(value(&mut args, &a, "a file")?)),
            "--admin-key" => admin_key = Some(PathBuf::from(value(&mut args, &a, "a file")?)),
            "--seq" => {
                seq = Some(
                    value(&mut args, &a, "a number")?
                        .parse::<u64>()
                        .context("--seq needs a number")?,
                )
            }
            "--set-auditor" => {
                action = Some(GovernanceAction::SetAuditor {
                    auditor: auditor_key(&value(&mut args, &a, "a hex key")?)?,
                })
            }
            "--set-issuer" => {
                issuer = Some(issuer_public_key(&a, &value(&mut args, &a, "a hex key")?)?)
            }
            "--assets" => assets = Some(asset_list(&a, &value(&mut args, &a, "asset ids")?)?),
            "--remove-validator" => {
                remove.insert(
                    value(&mut args, &a, "a validator id")?
                        .parse()
                        .context("--remove-validator needs a validator id")?,
                );
            }
            "--add-validator" => {
                add_id = Some(
                    value(&mut args, &a, "a validator id")?
                        .parse::<u16>()
                        .context("--add-validator needs a validator id (0 to 65535)")?,
                )
            }
            "--key" => add_key = Some(issuer_public_key(&a, &value(&mut args, &a, "a hex key")?)?),
            "--address" => {
                let v = value(&mut args, &a, "IP:PORT")?;
                let addr: std::net::SocketAddr = v
                    .parse()
                    .with_context(|| format!("--address {v:?} is not IP:PORT"))?;
                add_address = Some(addr.to_string());
            }
            "--revoke-issuer" => {
                action = Some(GovernanceAction::SetIssuer {
                    issuer: issuer_public_key(&a, &value(&mut args, &a, "a hex key")?)?,
                    assets: BTreeSet::new(),
                })
            }
            other if !other.starts_with("--") && file.is_none() => {
                file = Some(PathBuf::from(other))
            }
            other => bail!("unknown option {other} ({USAGE})"),
        }
    }
    let load_network = |network: &Option<PathBuf>| -> anyhow::Result<Network> {
        let path = network
            .as_ref()
            .with_context(|| format!("governance {sub} needs --network FILE ({USAGE})"))?;
        Ok(Network::load(path)?)
    };
    let need_file = || {
        file.clone()
            .with_context(|| format!("governance {sub} needs a proposal FILE ({USAGE})"))
    };
    match sub.as_str() {
        "propose" => {
            let net = load_network(&network)?;
            match (add_id, add_key, add_address) {
                (None, None, None) => {}
                (Some(id), Some(key), Some(address)) => {
                    if action.is_some() || issuer.is_some() || !remove.is_empty() {
                        bail!("one action per proposal: --add-validator goes alone");
                    }
                    if net.validators.contains(ReplicaId(id)) {
                        bail!("validator {id} is already in the network file's validator set");
                    }
                    action = Some(GovernanceAction::AddValidator { id, key, address });
                }
                _ => bail!("--add-validator ID, --key HEX and --address IP:PORT go together"),
            }
            if !remove.is_empty() {
                if action.is_some() || issuer.is_some() {
                    bail!("one action per proposal: --remove-validator goes alone");
                }
                for id in &remove {
                    if !net.validators.contains(ReplicaId(*id)) {
                        bail!("validator {id} is not in the network file's validator set");
                    }
                }
                action = Some(GovernanceAction::SetValidators {
                    validators: net
                        .validators
                        .members
                        .iter()
                        .filter(|(id, _)| !remove.contains(&id.0))
                        .map(|(id, k)| (id.0, k.to_bytes()))
                        .collect(),
                });
            }
            let action = match (action, issuer, assets) {
                (Some(a), None, None) => a,
                (None, Some(issuer), Some(assets)) if !assets.is_empty() => {
                    GovernanceAction::SetIssuer { issuer, assets }
                }
                (None, Some(_), _) | (None, None, Some(_)) => {
                    bail!("--set-issuer HEX and --assets ID,... go together")
                }
                _ => bail!(
                    "propose needs one action: --set-auditor HEX, --set-issuer HEX --assets ID,..., --revoke-issuer HEX, --remove-validator ID or --add-validator ID --key HEX --address IP:PORT"
                ),
            };
            let out = out.with_context(|| format!("propose needs --out FILE ({USAGE})"))?;
            let network_id = net.network_id;
            let seq = match seq {
                Some(s) => s,
                None => {
                    shoji_client::Client::connect(&net, None)?
                        .status()?
                        .governance_seq
                }
            };
            if out.exists() {
                bail!("{} exists: choose another --out", out.display());
            }
            let p = Proposal {
                network_id,
                tx: GovernanceTx::new(seq, action),
            };
            p.save(&out)?;
            println!("proposal {} written to {}", seq, out.display());
            println!("  {}", p.tx.action);
            println!("each administrator approves it with: shoji-node governance approve {} --admin-key KEY", out.display());
            Ok(())
        }
        "approve" => {
            let file = need_file()?;
            let key_path =
                admin_key.with_context(|| format!("approve needs --admin-key FILE ({USAGE})"))?;
            let key = shoji_node::config::read_key(&key_path)?;
            let mut p = Proposal::load(&file)?;
            let network_id = p.network_id;
            p.tx.approve(&key, &network_id);
            p.save(&file)?;
            println!(
                "approved by {} ({} approvals): {}",
                hex_encode(key.verifying_key().as_bytes()),
                p.tx.approvals.len(),
                p.tx.action
            );
            Ok(())
        }
        "show" => {
            let p = Proposal::load(&need_file()?)?;
            println!("network  {}", hex_encode(&p.network_id));
            println!("sequence {}", p.tx.seq);
            println!("action   {}", p.tx.action);
            println!("txid     {}", p.tx.id());
            for a in &p.tx.approvals {
                println!("approved by {}", hex_encode(&a.admin));
            }
            Ok(())
        }
        "submit" => {
            let p = Proposal::load(&need_file()?)?;
            let net = load_network(&network)?;
            if net.network_id != p.network_id {
                bail!(
                    "the proposal is for another network than {}",
                    network.unwrap_or_default().display()
                );
            }
            let client = shoji_client::Client::connect(&net, None)?;
            match client.submit_bytes(p.tx.to_bytes()) {
                Ok(f) => {
                    println!(
                        "enacted at height {} (commit certificate with {} signatures checked): {}",
                        f.height, f.signatures, p.tx.action
                    );
                    let next = match &p.tx.action {
                        GovernanceAction::SetValidators { validators } => {
                            Some(next_network(&net, validators, None)?)
                        }
                        GovernanceAction::AddValidator { id, key, address } => {
                            let mut validators: BTreeMap<u16, [u8; 32]> = net
                                .validators
                                .members
                                .iter()
                                .map(|(i, k)| (i.0, k.to_bytes()))
                                .collect();
                            validators.insert(*id, *key);
                            Some(next_network(
                                &net,
                                &validators,
                                Some((*id, address.parse()?)),
                            )?)
                        }
                        _ => None,
                    };
                    if let Some(next) = next {
                        let path = network.unwrap_or_default().with_extension("next.json");
                        shoji_client::sealed::write_atomic(
                            &path,
                            serde_json::to_string_pretty(&next.to_file())?.as_bytes(),
                        )?;
                        println!(
                            "the new validator set orders blocks from the checkpoint boundary a log window after height {}; from then on clients need the network file {} (epoch {})",
                            f.height,
                            path.display(),
                            next.validators.epoch
                        );
                    }
                    Ok(())
                }
                Err(
                    e @ (shoji_client::ClientError::Refused(_)
                    | shoji_client::ClientError::Rejected { .. }),
                ) => {
                    eprintln!("error: {e}");
                    std::process::exit(8)
                }
                Err(e) => Err(e.into()),
            }
        }
        _ => bail!("governance needs propose, approve, show or submit ({USAGE})"),
    }
}

const USAGE: &str = "usage: shoji-node init --dir DIR [--validators N] [--base-port P] [--host IP] \
[--addresses IP:PORT,...] [--auditor-public-key HEX] [--issuer-public-key HEX --issuer-assets ID,...] [--params DIR] \
[--admin-public-key HEX ... --admin-threshold T] \
| shoji-node run --config FILE \
| shoji-node join --dir DIR --genesis FILE --id N --listen IP:PORT [--params DIR] \
| shoji-node devnet [--validators N] [--dir DIR] [--auditor-public-key HEX] [--anchor-window BLOCKS] [--ordering-only] \
| shoji-node governance propose --network FILE --out FILE [--seq N] (--set-auditor HEX | --set-issuer HEX --assets ID,... | --revoke-issuer HEX | --remove-validator ID ... | --add-validator ID --key HEX --address IP:PORT) \
| shoji-node governance approve FILE --admin-key FILE | shoji-node governance show FILE \
| shoji-node governance submit FILE --network FILE";

fn join(mut args: impl Iterator<Item = String>) -> anyhow::Result<()> {
    let (mut dir, mut genesis, mut id, mut listen) = (None, None, None, None);
    let mut params = None;
    while let Some(a) = args.next() {
        match a.as_str() {
            "--dir" => dir = Some(PathBuf::from(value(&mut args, &a, "a directory")?)),
            "--params" => params = Some(PathBuf::from(value(&mut args, &a, "a directory")?)),
            "--genesis" => genesis = Some(PathBuf::from(value(&mut args, &a, "a file")?)),
            "--id" => {
                id = Some(
                    value(&mut args, &a, "a validator id")?
                        .parse::<u16>()
                        .context("--id needs a validator id (0 to 65535)")?,
                )
            }
            "--listen" => {
                let v = value(&mut args, &a, "IP:PORT")?;
                listen = Some(
                    v.parse::<std::net::SocketAddr>()
                        .with_context(|| format!("--listen {v:?} is not IP:PORT"))?,
                )
            }
            other => bail!("unknown option {other} ({USAGE})"),
        }
    }
    let need = |what: &str| format!("join needs {what} ({USAGE})");
    let dir = dir.with_context(|| need("--dir DIR"))?;
    let genesis = genesis.with_context(|| need("--genesis FILE"))?;
    let id = id.with_context(|| need("--id N"))?;
    let listen = listen.with_context(|| need("--listen IP:PORT"))?;
    let report = shoji_node::config::join(
        &dir,
        &genesis,
        id,
        listen,
        params.as_deref(),
        &mut rand_core::OsRng,
    )?;
    let key = hex_encode(&report.public_key);
    println!("validator {id} prepared in {}", dir.display());
    println!("  key:    {} (secret: keep it)", report.key_file.display());
    println!("  config: {}", report.config.display());
    println!("  public key: {key}");
    println!("the administrators add it with:");
    println!("  shoji-node governance propose --network NETWORK.json --out add-{id}.json --add-validator {id} --key {key} --address {listen}");
    println!("start it now (it catches up as a learner once the change is enacted):");
    println!("  shoji-node run --config {}", report.config.display());
    Ok(())
}

fn init(mut args: impl Iterator<Item = String>) -> anyhow::Result<()> {
    let mut opts = InitOptions::default();
    let mut dir = None;
    let (mut issuer, mut issuer_assets) = (None, None);
    let (mut admins, mut threshold) = (Vec::new(), None);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--admin-public-key" => {
                admins.push(issuer_public_key(&a, &value(&mut args, &a, "a hex key")?)?)
            }
            "--admin-threshold" => {
                threshold = Some(
                    value(&mut args, &a, "a number")?
                        .parse::<usize>()
                        .context("--admin-threshold needs a number")?,
                )
            }
            "--dir" => dir = Some(PathBuf::from(value(&mut args, &a, "a path")?)),
            "--params" => opts.params = Some(PathBuf::from(value(&mut args, &a, "a directory")?)),
            "--validators" => {
                opts.validators = value(&mut args, &a, "a number")?
                    .parse()
                    .context("--validators needs a number")?
            }
            "--base-port" => {
                opts.base_port = value(&mut args, &a, "a port")?
                    .parse()
                    .context("--base-port needs a port number")?
            }
            "--host" => {
                opts.host = value(&mut args, &a, "an IP address")?
                    .parse()
                    .context("--host needs an IP address")?
            }
            "--addresses" => {
                opts.addresses = value(&mut args, &a, "IP:PORT,...")?
                    .split(',')
                    .map(|s| {
                        s.trim()
                            .parse()
                            .with_context(|| format!("--addresses: {s:?} is not IP:PORT"))
                    })
                    .collect::<anyhow::Result<_>>()?;
                opts.validators = u16::try_from(opts.addresses.len())
                    .context("--addresses: too many validators")?;
            }
            "--auditor-public-key" => {
                opts.auditor = Some(auditor_key(&value(&mut args, &a, "a hex key")?)?)
            }
            "--issuer-public-key" => {
                let bytes = hex_decode("issuer public key", &value(&mut args, &a, "a hex key")?)?;
                let key: [u8; 32] = bytes
                    .try_into()
                    .map_err(|_| anyhow::anyhow!("--issuer-public-key must be 32 bytes"))?;
                shoji_consensus::ed25519_dalek::VerifyingKey::from_bytes(&key)
                    .context("--issuer-public-key is not an Ed25519 key")?;
                issuer = Some(key);
            }
            "--issuer-assets" => {
                issuer_assets = Some(
                    value(&mut args, &a, "asset ids")?
                        .split(',')
                        .map(|s| {
                            s.trim()
                                .parse()
                                .map(AssetId)
                                .with_context(|| format!("--issuer-assets: {s:?} is not a number"))
                        })
                        .collect::<anyhow::Result<BTreeSet<AssetId>>>()?,
                )
            }
            other => bail!("unknown option {other} ({USAGE})"),
        }
    }
    opts.dir = dir.with_context(|| format!("init needs --dir DIR ({USAGE})"))?;
    match (issuer, issuer_assets) {
        (Some(k), Some(a)) => opts.issuer = Some((k, a)),
        (None, None) => {}
        _ => bail!("--issuer-public-key and --issuer-assets go together"),
    }
    match (admins.is_empty(), threshold) {
        (true, None) => {}
        (false, Some(t)) => opts.governance = Some((admins, t)),
        _ => bail!("--admin-public-key (one per administrator) and --admin-threshold go together"),
    }
    let report = shoji_node::config::init(&opts, &mut rand_core::OsRng)?;
    println!(
        "created a network of {} validators in {}",
        report.configs.len(),
        opts.dir.display()
    );
    println!("  genesis:      {}", report.genesis.display());
    println!(
        "  network file: {} (shoji-wallet --network ...)",
        report.network.display()
    );
    for k in &report.admin_keys {
        println!(
            "  admin key:    {} (governance: 2 of 3 approve)",
            k.display()
        );
    }
    if let Some(k) = &report.issuer_key {
        println!(
            "  issuer key:   {} (development issuer of asset 840)",
            k.display()
        );
    }
    println!("start each validator with:");
    for c in &report.configs {
        println!("  shoji-node run --config {}", c.display());
    }
    Ok(())
}

/// Completes on SIGINT or SIGTERM.
async fn stop_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot watch SIGTERM; only SIGINT stops the validator");
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

fn run(config: &Path) -> anyhow::Result<()> {
    // The log level comes from the configuration; a broken configuration is reported below.
    let (level, format) = std::fs::read_to_string(config)
        .ok()
        .and_then(|t| ValidatorConfig::parse(&t).ok())
        .map_or_else(
            || ("info".to_string(), LogFormat::Text),
            |c| (c.log_level, c.log_format),
        );
    init_tracing(&level, format);
    let setup = Setup::load(config)?;
    let id = setup.config.id;
    let vk_path = setup
        .config
        .verifying_key
        .clone()
        .unwrap_or_else(|| shoji_params::default_dir().join(shoji_params::vk_file()));
    // The key the genesis pins, and no other.
    let pinned = setup.network.genesis.verifying_key_hash;
    let pvk = shoji_params::load_verifying_key_pinned(&vk_path, &pinned).with_context(|| {
        format!(
            "loading the verifying key {} (for the development parameters, generate them first: `cargo run --release -p shoji-params --bin shoji-params`; for a ceremony's, set verifying_key in {})",
            vk_path.display(),
            config.display()
        )
    })?;
    let verifier = shoji_verifier::Verifier::new(&pvk.vk);
    let data_dir = &setup.config.data_dir;
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("creating the data directory {}", data_dir.display()))?;
    let db = setup.database();
    let store = shoji_store::Store::open(&db)
        .with_context(|| format!("opening the database {}", db.display()))?;
    let genesis = setup.network.genesis.clone();
    let tuning = setup.config.tuning.tuning();
    let opened = match setup.joining {
        true => shoji_node::NodeCore::open_joining(
            store,
            &genesis,
            setup.key.clone(),
            ReplicaId(id),
            Arc::new(verifier),
            &tuning,
        ),
        false => shoji_node::NodeCore::open_with(
            store,
            &genesis,
            setup.key.clone(),
            Arc::new(verifier),
            &tuning,
        ),
    };
    let (core, initial) = opened.with_context(|| {
        format!(
            "starting validator {id} on the database {} with the genesis {}",
            db.display(),
            setup.config.genesis.display()
        )
    })?;
    if let Some(why) = &setup.network.insecure {
        tracing::warn!("{}", shoji_client::network::insecure_warning(why));
    }
    let status = core.status();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        // The genesis validators, those the ledger knows of now (current and decided), and
        // this validator itself when it is joining.
        let mut set: BTreeMap<u16, _> = genesis
            .validators
            .members
            .iter()
            .map(|(id, k)| (id.0, *k))
            .collect();
        for (v, k) in core.known_validators() {
            if let Ok(k) = shoji_consensus::ed25519_dalek::VerifyingKey::from_bytes(&k) {
                set.insert(v.0, k);
            }
        }
        set.insert(id, setup.key.verifying_key());
        let mut addrs: BTreeMap<u16, _> = setup
            .network
            .addrs
            .iter()
            .map(|(id, a)| (id.0, *a))
            .collect();
        for (v, a) in core.added_validator_addresses() {
            match a.parse() {
                Ok(a) => {
                    addrs.insert(v.0, a);
                }
                Err(e) => tracing::warn!(validator = v.0, address = %a, error = %e,
                    "an added validator's stored address does not parse: it will not be dialed"),
            }
        }
        let identity = shoji_net::Identity::new(&setup.key)?;
        let endpoint = match shoji_net::ValidatorEndpoint::bind(
            identity,
            setup.listen,
            set,
            addrs,
            shoji_net::NetConfig::default(),
        ) {
            Ok(e) => e,
            Err(shoji_net::Error::Bind(e)) if e.kind() == std::io::ErrorKind::AddrInUse => bail!(
                "cannot listen on {} (from {}): the address is in use — is this validator already running?",
                setup.listen,
                config.display()
            ),
            Err(e) => {
                return Err(anyhow::Error::new(e)
                    .context(format!("listening on {} (from {})", setup.listen, config.display())))
            }
        };
        tracing::info!(
            validator = id,
            listen = %setup.listen,
            height = status.height,
            view = status.view,
            data = %data_dir.display(),
            "validator running; SIGINT or SIGTERM stops it"
        );
        // The current epoch's validators (governance may have removed some of genesis's).
        let peers: Vec<ReplicaId> = status.validators.clone();
        shoji_node::host::run_until(
            core,
            endpoint,
            initial,
            peers,
            setup.config.tuning.host(),
            stop_signal(),
        )
        .await
        .context("the validator stopped")?;
        tracing::info!(validator = id, "stopped");
        Ok(())
    })
}

fn devnet(
    n: u16,
    dir: PathBuf,
    auditor: AuditPublicKey,
    anchor_window_blocks: usize,
    ordering_only: bool,
) -> anyhow::Result<()> {
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
        anchor_window_blocks,
        auditor,
        issuers: ledger_issuers.clone(),
        governance: shoji_node::devnet::dev_governance(),
        network_id: [0; 32],
        validators: Default::default(),
        checkpoint_interval: 8,
        window_size: 16,
    };
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let net = shoji_node::devnet::start_placed(
            n,
            ledger,
            Arc::new(verifier),
            &dir,
            ordering_only,
            shoji_node::devnet::Placement::Threads,
        )?;
        let network = Network {
            addrs: net
                .addrs
                .iter()
                .map(|(id, a)| (ReplicaId(*id), *a))
                .collect(),
            validators: net.validators.clone(),
            auditor,
            issuers: ledger_issuers,
            assets: BTreeMap::from([(AssetId(840), "USD".to_string())]),
            insecure: Some("development keys and parameters: never use for real value".into()),
            network_id: net.network_id,
            parameters: shoji_client::ParameterPins::development(),
        };
        let info = network.to_file();
        let key_path = dir.join("issuer.key");
        shoji_client::sealed::write_atomic(&key_path, hex_encode(&issuer.to_bytes()).as_bytes())
            .with_context(|| format!("writing {}", key_path.display()))?;
        for i in 0..3u8 {
            let p = dir.join(shoji_node::config::admin_key_file(i.into()));
            let k = shoji_node::devnet::dev_admin_key(i);
            shoji_client::sealed::write_atomic(&p, hex_encode(&k.to_bytes()).as_bytes())
                .with_context(|| format!("writing {}", p.display()))?;
        }
        let path = dir.join("devnet.json");
        shoji_client::sealed::write_atomic(&path, serde_json::to_string_pretty(&info)?.as_bytes())
            .with_context(|| format!("writing {}", path.display()))?;
        tracing::info!(validators = n, info = %path.display(), "devnet running; Ctrl-C stops it");
        tokio::signal::ctrl_c().await?;
        tracing::info!("stopping");
        Ok(())
    })
}
