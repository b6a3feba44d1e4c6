//! `shoji-node snapshot …` and `shoji-node archive …`: a validator's state snapshots and the
//! network's history archive.

use anyhow::Context;
use clap::Subcommand;
use shoji_cli::{fail, Exit, Failure};
use shoji_client::archive::Archive;
use shoji_client::Network;
use shoji_node::config::Setup;
use shoji_primitives::encoding::hex_encode;
use std::path::PathBuf;

#[derive(Subcommand)]
pub(crate) enum SnapshotCommand {
    /// The snapshots in the validator's data directory: height, state root, chunks, bytes.
    List {
        /// The validator's `config.toml`.
        #[arg(long)]
        config: PathBuf,
    },
    /// Check a snapshot's chunks and its whole against its opening and, when the validator is
    /// stopped, against the stored checkpoint certificate of its height.
    Verify {
        /// The validator's `config.toml`.
        #[arg(long)]
        config: PathBuf,
        /// The snapshot's height; by default the newest.
        #[arg(long)]
        height: Option<u64>,
    },
    /// Write a snapshot of the stored state now (the validator stopped): served once a stable
    /// checkpoint certificate of its height is stored.
    Take {
        /// The validator's `config.toml`.
        #[arg(long)]
        config: PathBuf,
    },
}

/// `shoji-node prune`: what to prune.
#[derive(clap::Args)]
pub(crate) struct PruneArgs {
    /// The validator's `config.toml` (the validator stopped): its store, and its archive.
    #[arg(long)]
    config: PathBuf,
    /// Keep the bodies of this many recent blocks (at least 64); by default the configuration's
    /// `keep_blocks`.
    #[arg(long)]
    keep: Option<u64>,
}

#[derive(Subcommand)]
pub(crate) enum ArchiveCommand {
    /// What the archive holds: the height up to which it is complete, and its blocks, compact
    /// blocks and checkpoints (how many, which heights, how many bytes).
    List {
        /// The client network file, which names the archive.
        #[arg(long, required_unless_present = "archive")]
        network: Option<PathBuf>,
        /// The archive's URL (`file:///…` or `s3://bucket/prefix`), instead of the network
        /// file's.
        #[arg(long)]
        archive: Option<String>,
    },
    /// Check the archive against the network's certificates: every block's commit
    /// certificate, every checkpoint's certificate and state opening, and the compact blocks
    /// against the checkpoints' scan chains.
    Verify {
        /// The client network file: the validator sets, and the archive unless --archive.
        #[arg(long)]
        network: PathBuf,
        /// The archive's URL, instead of the network file's.
        #[arg(long)]
        archive: Option<String>,
        /// The first height to check.
        #[arg(long, default_value_t = 1)]
        from: u64,
        /// The last height to check; by default the archive's head.
        #[arg(long)]
        to: Option<u64>,
    },
}

pub(crate) fn snapshot_command(cmd: SnapshotCommand) -> anyhow::Result<()> {
    use shoji_node::snapshots;
    let (SnapshotCommand::List { config }
    | SnapshotCommand::Verify { config, .. }
    | SnapshotCommand::Take { config }) = &cmd;
    let setup = Setup::load(config)?;
    let dir = setup.config.data_dir.join(snapshots::SNAPSHOT_DIR);
    match cmd {
        SnapshotCommand::List { .. } => {
            let mut heights = snapshots::list(&dir)?;
            heights.sort_unstable();
            if heights.is_empty() {
                println!("no snapshots in {}", dir.display());
            }
            for h in heights {
                let f = snapshots::inspect(&dir, h, false, None)?;
                println!(
                    "height {h}: state root {}, {} chunks, {} bytes, {} nullifiers, {} accounts",
                    hex_encode(&f.state_root),
                    f.chunks,
                    f.bytes,
                    f.nullifiers,
                    f.accounts
                );
            }
            Ok(())
        }
        SnapshotCommand::Verify { height, .. } => {
            let h = match height {
                Some(h) => h,
                None => snapshots::list(&dir)?
                    .into_iter()
                    .max()
                    .ok_or_else(|| anyhow::anyhow!("no snapshots in {}", dir.display()))?,
            };
            // The certificate, when the validator is stopped (a running one holds the store).
            let certified = shoji_store::Store::open(setup.database())
                .ok()
                .map(|s| s.checkpoint(h))
                .transpose()?
                .flatten();
            let f = snapshots::inspect(&dir, h, true, certified.as_ref().map(|c| c.state_root))
                .with_context(|| format!("checking the snapshot of height {h}"))?;
            let against = match &certified {
                Some(_) => "its stored checkpoint certificate",
                None => {
                    "its manifest's opening (no stored certificate read: stopped validators only)"
                }
            };
            println!(
                "snapshot {h} checks against {against}: state root {}, {} chunks, {} bytes",
                hex_encode(&f.state_root),
                f.chunks,
                f.bytes
            );
            Ok(())
        }
        SnapshotCommand::Take { .. } => {
            let store = shoji_store::Store::open(setup.database()).with_context(|| {
                format!(
                    "opening {} (stop the validator first)",
                    setup.database().display()
                )
            })?;
            let view = store.state_view()?;
            let options = snapshots::SnapshotOptions::in_data_dir(&setup.config.data_dir, 1);
            let m = snapshots::write(
                &view,
                &snapshots::SnapshotOptions {
                    keep: usize::MAX,
                    ..options
                },
            )?;
            println!(
                "wrote the snapshot of height {} ({} chunks) to {}",
                view.height(),
                m.chunks.len(),
                dir.display()
            );
            Ok(())
        }
    }
}

/// The archive's URL: `url`, or else the network file's.
fn archive_url(network: Option<&Network>, url: Option<String>) -> Result<String, Failure> {
    url.or_else(|| network.and_then(|n| n.archive.clone()))
        .ok_or_else(|| {
            fail(
                Exit::Usage,
                anyhow::anyhow!("the network file names no archive: give --archive URL"),
            )
        })
}

pub(crate) fn archive_command(cmd: ArchiveCommand) -> Result<(), Failure> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting a runtime")?;
    match cmd {
        ArchiveCommand::List { network, archive } => {
            let network = network.map(|n| shoji_cli::load_network(&n)).transpose()?;
            let archive = Archive::open(&archive_url(network.as_ref(), archive)?)
                .map_err(|e| fail(Exit::Usage, e.into()))?;
            let c = runtime
                .block_on(archive.contents())
                .context("listing the archive")?;
            println!("complete up to height {}", c.head);
            for (kind, n) in [
                ("blocks", c.blocks),
                ("compact blocks", c.compact),
                ("checkpoints", c.checkpoints),
            ] {
                match n.lowest {
                    Some(lowest) => println!(
                        "{kind}: {} from height {lowest} to {}, {} bytes",
                        n.count, n.highest, n.bytes
                    ),
                    None => println!("{kind}: none"),
                }
            }
            Ok(())
        }
        ArchiveCommand::Verify {
            network,
            archive,
            from,
            to,
        } => {
            let network = shoji_cli::load_network(&network)?;
            let url = archive_url(Some(&network), archive)?;
            let client = shoji_client::Client::connect(&network, None)?;
            let mut last_report = std::time::Instant::now();
            let check = client
                .verify_archive(&url, from, to.unwrap_or(u64::MAX), |h| {
                    if last_report.elapsed() >= std::time::Duration::from_secs(5) {
                        eprintln!("checked up to height {h}");
                        last_report = std::time::Instant::now();
                    }
                })
                .context("the archive does not check")?;
            println!(
                "heights {}..={} check: {} blocks against their commit certificates, {} checkpoints against their state roots, {} compact blocks above the last checkpoint",
                check.from, check.to, check.blocks, check.checkpoints, check.uncovered
            );
            Ok(())
        }
    }
}

/// Prunes a stopped validator's block bodies older than the newest `--keep`, up to what its
/// archive holds, as the running validator does with `keep_blocks`.
pub(crate) fn prune(args: PruneArgs) -> Result<(), Failure> {
    let setup = Setup::load(&args.config)?;
    let usage = |m: String| fail(Exit::Usage, anyhow::anyhow!(m));
    let url = setup.config.archive.clone().ok_or_else(|| {
        usage(format!(
            "{} names no archive: a validator prunes only what is archived",
            args.config.display()
        ))
    })?;
    let keep = match args.keep {
        Some(k) => k,
        None if setup.config.keep_blocks > 0 => setup.config.keep_blocks,
        None => {
            return Err(usage(
                "give --keep N (the configuration has no keep_blocks)".into(),
            ))
        }
    };
    if keep < shoji_node::config::MIN_KEEP_BLOCKS {
        return Err(usage(format!(
            "--keep must be at least {}",
            shoji_node::config::MIN_KEEP_BLOCKS
        )));
    }
    let store = shoji_store::Store::open(setup.database()).with_context(|| {
        format!(
            "opening {} (stop the validator first)",
            setup.database().display()
        )
    })?;
    let archive = Archive::open(&url).map_err(|e| fail(Exit::Usage, e.into()))?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting a runtime")?;
    let archived = runtime
        .block_on(archive.head())
        .context("reading the archive's head")?;
    let tip = store.height()?;
    let up_to = tip.saturating_sub(keep).min(archived);
    let mut base = store.base()?.map_or(0, |(h, _)| h);
    loop {
        let next = store.prune(up_to, 256)?;
        if next <= base {
            break;
        }
        base = next;
    }
    println!(
        "blocks kept from height {} to {tip} (the archive holds every height up to {archived})",
        base + 1
    );
    Ok(())
}
