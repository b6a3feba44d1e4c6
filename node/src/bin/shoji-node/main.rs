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

mod history;

use anyhow::{bail, Context};
use clap::{ArgGroup, Args, Parser, Subcommand};
use shoji_cli::{fail, Exit, Failure};
use shoji_client::network::{insecure_devnet_auditor, insecure_devnet_issuer};
use shoji_client::Network;
use shoji_consensus::ReplicaId;
use shoji_node::config::{InitOptions, LogFormat, Setup, ValidatorConfig};
use shoji_primitives::audit::AuditPublicKey;
use shoji_primitives::encoding::{hex_decode, hex_encode};
use shoji_primitives::governance::{GovernanceAction, GovernanceTx};
use shoji_primitives::note::AssetId;
use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
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

/// Exit codes `shoji-node` returns, listed in its `--help`.
const EXIT_CODES: [Exit; 3] = [Exit::Other, Exit::Usage, Exit::Rejected];

#[derive(Parser)]
#[command(
    name = "shoji-node",
    version,
    about = "The Shoji validator: create a network, run a validator, join one, govern it.",
    override_usage = USAGE,
    after_help = Exit::help("file", &EXIT_CODES)
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// One line per command, shown by `--help`.
const USAGE: &str = "shoji-node init --dir DIR [--validators N] [--base-port P] [--host IP] [--addresses IP:PORT,...]
                       [--operations IP:PORT,...] [--auditor-public-key HEX] [--issuer-public-key HEX --issuer-assets ID,...] [--params DIR]
                       [--admin-public-key HEX ... --admin-threshold T]
       shoji-node run --config FILE
       shoji-node join --dir DIR --genesis FILE --id N --listen IP:PORT [--params DIR]
       shoji-node devnet [--validators N] [--dir DIR] [--auditor-public-key HEX] [--anchor-window BLOCKS] [--ordering-only]
       shoji-node governance propose --network FILE --out FILE [--seq N] (--set-auditor HEX | --set-issuer HEX --assets ID,...
                       | --revoke-issuer HEX | --remove-validator ID ... | --add-validator ID --key HEX --address IP:PORT
                       | --register-participant NAME --identity-key HEX --participant-address shoji1... | --revoke-participant NAME)
       shoji-node governance approve FILE --admin-key FILE
       shoji-node governance show FILE
       shoji-node governance submit FILE --network FILE
       shoji-node snapshot list --config FILE
       shoji-node snapshot verify --config FILE [--height H]
       shoji-node snapshot take --config FILE
       shoji-node archive list (--network FILE | --archive URL)
       shoji-node archive verify --network FILE [--archive URL] [--from H] [--to H]
       shoji-node prune --config FILE [--keep N]";

#[derive(Subcommand)]
enum Command {
    /// Create a network directory: validator keys and configurations, the genesis, the client
    /// network file, and (unless given) development issuer and administrator keys.
    Init(InitArgs),
    /// Run one validator from its configuration until SIGINT or SIGTERM.
    Run {
        /// The validator's `config.toml` (written by `init` or `join`).
        #[arg(long)]
        config: PathBuf,
    },
    /// Prepare a validator that governance is to add: a fresh key and a configuration.
    Join(JoinArgs),
    /// Run a development network in this process (development keys: never for real value).
    Devnet(DevnetArgs),
    /// Prepare, approve, show and submit governance transactions.
    #[command(subcommand)]
    Governance(Governance),
    /// List, check and take a validator's state snapshots.
    #[command(subcommand)]
    Snapshot(history::SnapshotCommand),
    /// List and check the history archive.
    #[command(subcommand)]
    Archive(history::ArchiveCommand),
    /// Prune a stopped validator's old block bodies now, up to what its archive holds.
    Prune(history::PruneArgs),
}

#[derive(Args)]
struct InitArgs {
    /// The network directory to create.
    #[arg(long)]
    dir: PathBuf,
    /// Number of validators (at least 4); by default 4, or as many as --addresses lists.
    #[arg(long)]
    validators: Option<u16>,
    /// Port of validator 0; validator i listens on P + i.
    #[arg(long, default_value_t = 7000)]
    base_port: u16,
    /// Host of the generated addresses.
    #[arg(long, default_value = "127.0.0.1")]
    host: IpAddr,
    /// Every validator's address, in order (instead of --host and --base-port).
    #[arg(long, value_delimiter = ',')]
    addresses: Vec<SocketAddr>,
    /// Every validator's operations address (/metrics, /livez, /readyz), in order; by default
    /// 127.0.0.1 at the validator's port + 1000.
    #[arg(long, value_delimiter = ',')]
    operations: Vec<SocketAddr>,
    /// The designated auditor (hex); by default the development auditor.
    #[arg(long, value_parser = auditor_key)]
    auditor_public_key: Option<AuditPublicKey>,
    /// An issuer's Ed25519 public key (hex); by default the development issuer of asset 840.
    #[arg(long, value_parser = ed25519_public_key, requires = "issuer_assets")]
    issuer_public_key: Option<[u8; 32]>,
    /// The assets the issuer may issue.
    #[arg(long, value_delimiter = ',', requires = "issuer_public_key")]
    issuer_assets: Vec<u64>,
    /// A ceremony's finalized parameters (the directory holding `transfer.vk` and
    /// `transfer.pk`); by default the development parameters, and the network is insecure.
    #[arg(long)]
    params: Option<PathBuf>,
    /// A governance administrator's Ed25519 public key (hex), once per administrator; by
    /// default three fresh keys, two of which must approve.
    #[arg(long, value_parser = ed25519_public_key, requires = "admin_threshold")]
    admin_public_key: Vec<[u8; 32]>,
    /// How many administrators must approve a governance transaction.
    #[arg(long, requires = "admin_public_key")]
    admin_threshold: Option<usize>,
}

#[derive(Args)]
struct JoinArgs {
    /// The directory to write the key and configuration into.
    #[arg(long)]
    dir: PathBuf,
    /// The network's `genesis.toml`.
    #[arg(long)]
    genesis: PathBuf,
    /// The validator id governance is to add.
    #[arg(long)]
    id: u16,
    /// The address to listen on.
    #[arg(long)]
    listen: SocketAddr,
    /// The network's ceremony parameters (the directory holding `transfer.vk`).
    #[arg(long)]
    params: Option<PathBuf>,
}

#[derive(Args)]
struct DevnetArgs {
    /// Number of validators (at least 4).
    #[arg(long, default_value_t = 4)]
    validators: u16,
    /// Where to write `devnet.json`, the development keys, the validators' stores and the
    /// history archive (`DIR/archive`).
    #[arg(long, default_value = "devnet")]
    dir: PathBuf,
    /// The designated auditor (hex); by default the development auditor.
    #[arg(long, value_parser = auditor_key)]
    auditor_public_key: Option<AuditPublicKey>,
    /// How many recent blocks a transaction's anchor may be from.
    #[arg(long = "anchor-window", default_value_t = 100, value_parser = clap::value_parser!(u64).range(1..))]
    anchor_window: u64,
    /// Benchmark mode: also order opaque payloads (up to 1 KiB) without executing them.
    #[arg(long)]
    ordering_only: bool,
    #[command(flatten)]
    distance: shoji_cli::DistanceArgs,
}

#[derive(Subcommand)]
enum Governance {
    /// Write a proposal file for the network's next governance sequence number.
    Propose(Box<ProposeArgs>),
    /// Approve a proposal file with an administrator's key.
    Approve {
        /// The proposal file.
        file: PathBuf,
        /// The administrator's key file.
        #[arg(long)]
        admin_key: PathBuf,
    },
    /// Print a proposal file.
    Show {
        /// The proposal file.
        file: PathBuf,
    },
    /// Submit an approved proposal and wait for its commit certificate.
    Submit {
        /// The proposal file.
        file: PathBuf,
        /// The client network file.
        #[arg(long)]
        network: PathBuf,
    },
}

#[derive(Args)]
#[command(group(
    ArgGroup::new("action")
        .required(true)
        .args(["set_auditor", "set_account_auditor", "set_issuer", "revoke_issuer", "remove_validator", "add_validator", "register_participant", "revoke_participant", "set_recovery_agents"])
))]
struct ProposeArgs {
    /// The client network file.
    #[arg(long)]
    network: PathBuf,
    /// The proposal file to write.
    #[arg(long)]
    out: PathBuf,
    /// The governance sequence number; by default asked of a validator.
    #[arg(long)]
    seq: Option<u64>,
    /// Designate another auditor (its public key, hex).
    #[arg(long, value_parser = auditor_key)]
    set_auditor: Option<AuditPublicKey>,
    /// Designate the account-tier auditor key (hex, from `shoji-auditor public-key`): opens
    /// confidential accounts on a network without them.
    #[arg(long, value_parser = account_auditor_key)]
    set_account_auditor: Option<shoji_confidential::PublicKey>,
    /// Register an issuer (its Ed25519 public key, hex) of --assets.
    #[arg(long, value_parser = ed25519_public_key, requires = "assets")]
    set_issuer: Option<[u8; 32]>,
    /// The assets the issuer may issue.
    #[arg(long, value_delimiter = ',', requires = "set_issuer")]
    assets: Vec<u64>,
    /// Revoke an issuer (its Ed25519 public key, hex).
    #[arg(long, value_parser = ed25519_public_key)]
    revoke_issuer: Option<[u8; 32]>,
    /// Remove a validator, at a checkpoint boundary (repeat for several).
    #[arg(long)]
    remove_validator: Vec<u16>,
    /// Add a validator (prepared with `shoji-node join`) with --key and --address.
    #[arg(long, requires_all = ["key", "address"])]
    add_validator: Option<u16>,
    /// The added validator's Ed25519 public key (hex).
    #[arg(long, value_parser = ed25519_public_key, requires = "add_validator")]
    key: Option<[u8; 32]>,
    /// The added validator's address.
    #[arg(long, requires = "add_validator")]
    address: Option<SocketAddr>,
    /// Register a participant under this name (or update its entry), with --identity-key and
    /// one or more --participant-address.
    #[arg(long, requires_all = ["identity_key", "participant_address"])]
    register_participant: Option<String>,
    /// The participant's Ed25519 identity key (hex).
    #[arg(long, value_parser = ed25519_public_key, requires = "register_participant")]
    identity_key: Option<[u8; 32]>,
    /// A shielded address of the participant (`shoji1…`; repeat for several, the first is
    /// the one its name is paid at).
    #[arg(long, requires = "register_participant")]
    participant_address: Vec<String>,
    /// Revoke the participant registered under this name.
    #[arg(long)]
    revoke_participant: Option<String>,
    /// Name the recovery agents, in order: each `SIGNING:ENCRYPTION` (hex, from
    /// `shoji-wallet recovery agent-key`), comma-separated; with --recovery-threshold and
    /// --recovery-window.
    #[arg(long, value_delimiter = ',', value_parser = recovery_agent, requires_all = ["recovery_threshold", "recovery_window"])]
    set_recovery_agents: Vec<shoji_primitives::recovery::RecoveryAgent>,
    /// How many recovery agents' shares rebuild an escrowed seed.
    #[arg(long, requires = "set_recovery_agents")]
    recovery_threshold: Option<u8>,
    /// Blocks between the opening of a recovery and the first release, during which the
    /// participant can cancel it.
    #[arg(long, requires = "set_recovery_agents")]
    recovery_window: Option<u64>,
}

/// `SIGNING:ENCRYPTION`: an agent's Ed25519 key and its Ristretto key, both hex.
fn recovery_agent(s: &str) -> anyhow::Result<shoji_primitives::recovery::RecoveryAgent> {
    let (signing, encryption) = s.split_once(':').context(
        "a recovery agent is SIGNING:ENCRYPTION (from `shoji-wallet recovery agent-key`)",
    )?;
    let signing = ed25519_public_key(signing)?;
    let encryption: [u8; 32] = hex_decode("encryption key", encryption)?
        .try_into()
        .map_err(|_| anyhow::anyhow!("an agent's encryption key is 32 bytes"))?;
    // Whether it is a Ristretto point is checked with the whole list, as the ledger decodes it.
    Ok(shoji_primitives::recovery::RecoveryAgent {
        signing,
        encryption,
    })
}

fn auditor_key(hex: &str) -> anyhow::Result<AuditPublicKey> {
    let bytes = hex_decode("auditor public key", hex)?;
    Ok(AuditPublicKey::from_bytes(&bytes)?)
}

fn account_auditor_key(hex: &str) -> anyhow::Result<shoji_confidential::PublicKey> {
    let bytes: [u8; 32] = hex_decode("account auditor key", hex)?
        .try_into()
        .map_err(|_| anyhow::anyhow!("an account key is 32 bytes"))?;
    Ok(shoji_confidential::PublicKey::from_bytes(&bytes)?)
}

fn ed25519_public_key(hex: &str) -> anyhow::Result<[u8; 32]> {
    let bytes = hex_decode("public key", hex)?;
    let key: [u8; 32] = bytes
        .try_into()
        .map_err(|_| anyhow::anyhow!("a public key is 32 bytes"))?;
    shoji_consensus::ed25519_dalek::VerifyingKey::from_bytes(&key)
        .context("not an Ed25519 public key")?;
    Ok(key)
}

/// Errors are messages (`error: …`), never a debug dump with a backtrace, whatever
/// `RUST_BACKTRACE` says; bad usage exits with 2, a refusal by the network with 8.
fn main() -> ExitCode {
    let cli = Cli::parse();
    match main_inner(cli.command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => f.report(false),
    }
}

fn main_inner(command: Command) -> Result<(), Failure> {
    match command {
        Command::Init(args) => {
            init_tracing("info", LogFormat::Text);
            Ok(init(args)?)
        }
        Command::Run { config } => Ok(run(&config)?),
        Command::Join(args) => {
            init_tracing("info", LogFormat::Text);
            Ok(join(args)?)
        }
        Command::Devnet(args) => {
            init_tracing("info", LogFormat::Text);
            if args.validators < 4 {
                return Err(fail(
                    Exit::Usage,
                    anyhow::anyhow!(
                        "a PBFT network needs at least 4 validators (n = 3f + 1 with f >= 1)"
                    ),
                ));
            }
            Ok(devnet(
                args.validators,
                args.dir,
                args.auditor_public_key
                    .unwrap_or_else(|| insecure_devnet_auditor().public_key()),
                usize::try_from(args.anchor_window).context("--anchor-window")?,
                args.ordering_only,
                args.distance,
            )?)
        }
        Command::Governance(g) => governance(g),
        Command::Snapshot(s) => Ok(history::snapshot_command(s)?),
        Command::Archive(a) => history::archive_command(a),
        Command::Prune(args) => history::prune(args),
    }
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

fn governance(command: Governance) -> Result<(), Failure> {
    use shoji_node::governance::Proposal;
    match command {
        Governance::Propose(args) => Ok(propose(*args)?),
        Governance::Approve { file, admin_key } => {
            let key = shoji_node::config::read_key(&admin_key)?;
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
        Governance::Show { file } => {
            let p = Proposal::load(&file)?;
            println!("network  {}", hex_encode(&p.network_id));
            println!("sequence {}", p.tx.seq);
            println!("action   {}", p.tx.action);
            println!("txid     {}", p.tx.id());
            for a in &p.tx.approvals {
                println!("approved by {}", hex_encode(&a.admin));
            }
            Ok(())
        }
        Governance::Submit { file, network } => submit(&file, &network),
    }
}

/// The proposal's action, checked against the network file's validator set.
fn proposed_action(args: &ProposeArgs, net: &Network) -> anyhow::Result<GovernanceAction> {
    // clap lets exactly one action through (the `action` group), with its companions.
    if let Some(auditor) = &args.set_auditor {
        return Ok(GovernanceAction::SetAuditor { auditor: *auditor });
    }
    if let Some(auditor) = args.set_account_auditor {
        return Ok(GovernanceAction::SetAccountAuditor { auditor });
    }
    if let Some(issuer) = args.set_issuer {
        return Ok(GovernanceAction::SetIssuer {
            issuer,
            assets: args.assets.iter().copied().map(AssetId).collect(),
        });
    }
    if let Some(issuer) = args.revoke_issuer {
        return Ok(GovernanceAction::SetIssuer {
            issuer,
            assets: BTreeSet::new(),
        });
    }
    if let (Some(id), Some(key), Some(address)) = (args.add_validator, args.key, args.address) {
        if net.validators.contains(ReplicaId(id)) {
            bail!("validator {id} is already in the network file's validator set");
        }
        return Ok(GovernanceAction::AddValidator {
            id,
            key,
            address: address.to_string(),
        });
    }
    if let (Some(name), Some(identity)) = (&args.register_participant, args.identity_key) {
        if !shoji_primitives::governance::valid_name(name) {
            bail!("{name:?} cannot name a participant: 1 to 64 bytes, no control characters, no surrounding spaces, not an address");
        }
        let mut addresses = Vec::new();
        for a in &args.participant_address {
            let a: shoji_primitives::keys::Address = a
                .parse()
                .with_context(|| format!("{a:?} is not a valid address"))?;
            if !addresses.contains(&a) {
                addresses.push(a);
            }
        }
        if addresses.len() > shoji_primitives::governance::MAX_PARTICIPANT_ADDRESSES {
            bail!("a participant registers at most 8 addresses");
        }
        return Ok(GovernanceAction::RegisterParticipant {
            name: name.clone(),
            participant: shoji_primitives::governance::Participant {
                addresses,
                identity,
            },
        });
    }
    if let Some(name) = &args.revoke_participant {
        return Ok(GovernanceAction::RevokeParticipant { name: name.clone() });
    }
    if let (false, Some(threshold), Some(window_blocks)) = (
        args.set_recovery_agents.is_empty(),
        args.recovery_threshold,
        args.recovery_window,
    ) {
        let agents = shoji_primitives::recovery::RecoveryAgents {
            agents: args.set_recovery_agents.clone(),
            threshold,
            window_blocks,
        };
        // What the ledger will decode strictly: the keys, the threshold and the window.
        let mut bytes = Vec::new();
        agents.write(&mut bytes);
        shoji_primitives::recovery::RecoveryAgents::read(
            &mut shoji_primitives::encoding::Reader::new("recovery agents", &bytes),
        )
        .map_err(|e| anyhow::anyhow!("these recovery agents would be refused: {e}"))?;
        return Ok(GovernanceAction::SetRecoveryAgents { agents });
    }
    let remove: BTreeSet<u16> = args.remove_validator.iter().copied().collect();
    if remove.is_empty() {
        bail!("propose needs one action");
    }
    for id in &remove {
        if !net.validators.contains(ReplicaId(*id)) {
            bail!("validator {id} is not in the network file's validator set");
        }
    }
    Ok(GovernanceAction::SetValidators {
        validators: net
            .validators
            .members
            .iter()
            .filter(|(id, _)| !remove.contains(&id.0))
            .map(|(id, k)| (id.0, k.to_bytes()))
            .collect(),
    })
}

fn propose(args: ProposeArgs) -> anyhow::Result<()> {
    use shoji_node::governance::Proposal;
    let net = Network::load(&args.network)?;
    let action = proposed_action(&args, &net)?;
    let out = &args.out;
    if out.exists() {
        bail!("{} exists: choose another --out", out.display());
    }
    let seq = match args.seq {
        Some(s) => s,
        None => {
            shoji_client::Client::connect(&net, None)?
                .status()?
                .governance_seq
        }
    };
    let p = Proposal {
        network_id: net.network_id,
        tx: GovernanceTx::new(seq, action),
    };
    p.save(out)?;
    println!("proposal {} written to {}", seq, out.display());
    println!("  {}", p.tx.action);
    println!(
        "each administrator approves it with: shoji-node governance approve {} --admin-key KEY",
        out.display()
    );
    Ok(())
}

fn submit(file: &Path, network: &Path) -> Result<(), Failure> {
    use shoji_node::governance::Proposal;
    let p = Proposal::load(file)?;
    let net = Network::load(network)?;
    if net.network_id != p.network_id {
        return Err(anyhow::anyhow!(
            "the proposal is for another network than {}",
            network.display()
        )
        .into());
    }
    let client = shoji_client::Client::connect(&net, None)?;
    let f = match client.submit_bytes(p.tx.to_bytes()) {
        Ok(f) => f,
        Err(
            e
            @ (shoji_client::ClientError::Refused(_) | shoji_client::ClientError::Rejected { .. }),
        ) => return Err(fail(Exit::Rejected, e.into())),
        Err(e) => return Err(e.into()),
    };
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
            let address = address
                .parse()
                .with_context(|| format!("the added validator's address {address:?}"))?;
            Some(next_network(&net, &validators, Some((*id, address)))?)
        }
        _ => None,
    };
    if let Some(next) = next {
        let path = network.with_extension("next.json");
        let mut file = next.to_file();
        // The operations addresses of the validators that stay are the old file's.
        let old: Option<shoji_client::network::NetworkFile> = std::fs::read_to_string(network)
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok());
        if let Some(old) = old {
            let staying: std::collections::BTreeSet<String> =
                file.validators.iter().map(|v| v.id.to_string()).collect();
            file.operations = old
                .operations
                .into_iter()
                .filter(|(id, _)| staying.contains(id))
                .collect();
        }
        shoji_client::sealed::write_atomic(&path, serde_json::to_string_pretty(&file)?.as_bytes())?;
        println!(
            "the new validator set orders blocks from the checkpoint boundary a log window after height {}; from then on clients need the network file {} (epoch {})",
            f.height,
            path.display(),
            next.validators.epoch
        );
    }
    Ok(())
}

fn join(args: JoinArgs) -> anyhow::Result<()> {
    let JoinArgs {
        dir,
        genesis,
        id,
        listen,
        params,
    } = args;
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

fn init(args: InitArgs) -> anyhow::Result<()> {
    let validators = match (args.validators, args.addresses.len()) {
        (Some(n), 0) => n,
        (None, 0) => InitOptions::default().validators,
        (n, listed) => {
            let listed = u16::try_from(listed).context("--addresses: too many validators")?;
            if n.is_some_and(|n| n != listed) {
                bail!(
                    "--validators {} but --addresses lists {listed}",
                    n.unwrap_or(0)
                );
            }
            listed
        }
    };
    let opts = InitOptions {
        dir: args.dir,
        validators,
        addresses: args.addresses,
        host: args.host,
        base_port: args.base_port,
        auditor: args.auditor_public_key,
        issuer: args
            .issuer_public_key
            .map(|k| (k, args.issuer_assets.iter().copied().map(AssetId).collect())),
        governance: args
            .admin_threshold
            .map(|t| (args.admin_public_key.clone(), t)),
        params: args.params,
        operations: args.operations,
        ..InitOptions::default()
    };
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
    store.check_genesis(&genesis.hash()).with_context(|| {
        format!(
            "starting validator {id} on the database {} with the genesis {}",
            db.display(),
            setup.config.genesis.display()
        )
    })?;
    if setup.config.snapshots.sync_from_peers {
        let network = shoji_node::snapshots::peers_network(&genesis, &setup.network.addrs);
        match shoji_node::snapshots::sync_from_peers(&store, &network, id)
            .context("starting from the other validators' state snapshot (set sync_from_peers = false in [snapshots] to replay from genesis instead)")?
        {
            shoji_node::snapshots::Synced::From { height, refused } => tracing::info!(
                height,
                refused = refused.len(),
                "started from a state snapshot checked against its checkpoint certificate"
            ),
            shoji_node::snapshots::Synced::NoSnapshot => {
                tracing::info!("no validator serves a state snapshot yet: starting from genesis")
            }
            shoji_node::snapshots::Synced::NotEmpty => {}
        }
    }
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
    let host_options = setup.host_options();
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
        let operations = match setup.operations {
            Some(addr) => match tokio::net::TcpListener::bind(addr).await {
                Ok(l) => Some((addr, l)),
                Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => bail!(
                    "cannot serve operations on {addr} (from {}): the address is in use — is this validator already running?",
                    config.display()
                ),
                Err(e) => {
                    return Err(anyhow::Error::new(e).context(format!(
                        "serving operations on {addr} (from {})",
                        config.display()
                    )))
                }
            },
            None => None,
        };
        if let Some((addr, listener)) = operations {
            let (node, net) = (core.metrics().clone(), endpoint.metrics());
            tokio::spawn(async move {
                let pending = std::future::pending::<()>();
                if let Err(e) = shoji_node::operations::serve(listener, &node, &net, Some(db), pending).await {
                    tracing::error!(error = %e, "the operations service stopped");
                }
            });
            tracing::info!(%addr, "operations service: /metrics, /livez, /readyz");
        }
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
            host_options,
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
    distance: shoji_cli::DistanceArgs,
) -> anyhow::Result<()> {
    let path = distance.conditions();
    let vk_path = shoji_params::default_dir().join(shoji_params::vk_file());
    let verifier = shoji_verifier::Verifier::from_file(&vk_path).with_context(|| {
        "loading the verifying key (generate the development parameters first: `cargo run --release -p shoji-params --bin shoji-params`)".to_string()
    })?;
    let issuer = insecure_devnet_issuer();
    let ledger_issuers = shoji_node::devnet::dev_issuers();
    let ledger = shoji_node::devnet::dev_ledger(auditor, anchor_window_blocks);
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    // The archive's URL names the directory absolutely.
    let dir = std::path::absolute(&dir).with_context(|| format!("resolving {}", dir.display()))?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let options = shoji_node::devnet::DevnetOptions {
            ordering_only,
            placement: shoji_node::devnet::Placement::Threads,
            archive: true,
            path,
        };
        let net =
            shoji_node::devnet::start_with_options(n, ledger, Arc::new(verifier), &dir, &options)?;
        if let Some(p) = path {
            tracing::info!(one_way = ?p.one_way, jitter = ?p.jitter, loss = p.loss, "every validator behind a delaying relay");
        }
        let mut network = net.client_network(auditor, ledger_issuers);
        if distance.clients_local {
            tracing::info!("clients reach each validator directly, not through its relay");
            network.addrs = net.direct_addrs();
        }
        network.assets = BTreeMap::from([(AssetId(840), "USD".to_string())]);
        let mut info = network.to_file();
        info.operations = net
            .operations
            .iter()
            .map(|(id, a)| (id.to_string(), a.to_string()))
            .collect();
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
