//! `shoji-bench`: measures Shoji and prints one JSON line per measurement.
//!
//! ```text
//! shoji-bench zk [--json] [--proofs N] [--verifies N] [--batches N]
//! shoji-bench wallet [--json] [--blocks N] [--txs-per-block N] [--rounds N] [--sends N]
//! shoji-bench cluster [--json] [--txs N] [--load transfers|mints|accounts] [--clients N] [--ordering-payloads N] [--ordering-in-flight N]
//! shoji-bench ceremony [--json] [--power N] [--contributions N]
//! shoji-bench accounts [--json] [--proofs N] [--verifies N]
//! shoji-bench peers [--json] [--rounds N] [--batch N] [--outputs N]   (with --features peers)
//! ```

use clap::{Parser, Subcommand, ValueEnum};
use shoji_benches::cluster::{ClusterOptions, Load};
use shoji_benches::zk::{self, ZkOptions};

/// At least one: the count of something measured.
fn positive(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(0) => Err("must be at least 1".into()),
        Ok(n) => Ok(n),
        Err(e) => Err(e.to_string()),
    }
}

#[derive(Parser)]
#[command(
    name = "shoji-bench",
    about = "Measures Shoji; each measurement prints one JSON line.",
    after_help = "`cluster` needs shoji-node built beside shoji-bench (cargo build --release -p \
shoji-node); SHOJI_BENCH_NODE_LOG=FILE keeps the validators' log and SHOJI_BENCH_NODE_LOG_LEVEL \
sets its filter (default info).\n\nExit codes: 0 measured, 1 error, 2 usage error."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Proving and verifying time of the transfer circuit, one and all threads.
    Zk {
        /// One JSON line instead of pretty JSON.
        #[arg(long)]
        json: bool,
        /// Proofs per thread setting.
        #[arg(long, default_value = "10", value_parser = positive)]
        proofs: usize,
        /// Single verifications.
        #[arg(long, default_value = "50", value_parser = positive)]
        verifies: usize,
        /// Batches of 64 verifications.
        #[arg(long, default_value = "5", value_parser = positive)]
        batches: usize,
    },
    /// Wallet sync rate over synthetic blocks, and send latency on four local validators.
    Wallet {
        /// Accepted for symmetry: the output is JSON lines.
        #[arg(long)]
        json: bool,
        /// Blocks to scan.
        #[arg(long, default_value = "100", value_parser = positive)]
        blocks: usize,
        /// Transactions per block.
        #[arg(long, default_value = "100", value_parser = positive)]
        txs_per_block: usize,
        /// Scans of the chain (the median is reported).
        #[arg(long, default_value = "3", value_parser = positive)]
        rounds: usize,
        /// Sends to time (0 skips the network part).
        #[arg(long, default_value_t = 10)]
        sends: usize,
    },
    /// Throughput and latency of four validator processes under a shielded or account load.
    Cluster {
        /// Accepted for symmetry: the output is JSON lines.
        #[arg(long)]
        json: bool,
        /// Transactions per phase.
        #[arg(long, default_value = "600", value_parser = positive)]
        txs: usize,
        /// The kind of transaction.
        #[arg(long, value_enum, default_value_t = LoadArg::Transfers)]
        load: LoadArg,
        /// Concurrent client connections.
        #[arg(long, default_value = "128", value_parser = positive)]
        clients: usize,
        /// Opaque payloads for the ordering-capacity phase (0 skips it).
        #[arg(long, default_value_t = 20_000)]
        ordering_payloads: usize,
        /// Ordering requests in flight at once.
        #[arg(long, default_value = "512", value_parser = positive)]
        ordering_in_flight: usize,
        #[command(flatten)]
        distance: shoji_cli::DistanceArgs,
    },
    /// The auditor's records database: append rate and report query times at scale, on SQLite
    /// and (with --postgres) PostgreSQL.
    Auditor {
        /// Accepted for symmetry: the output is JSON lines.
        #[arg(long)]
        json: bool,
        /// Records to store.
        #[arg(long, default_value_t = 1_000_000, value_parser = clap::value_parser!(u64).range(1..))]
        records: u64,
        /// Designated records per block.
        #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u64).range(1..))]
        per_block: u64,
        /// Records appended per database transaction.
        #[arg(long, default_value = "10000", value_parser = positive)]
        batch: usize,
        /// A PostgreSQL database whose `records` and `meta` tables may be dropped
        /// (postgres://user:password@host/db); SQLite only without it.
        #[arg(long, env = "SHOJI_BENCH_POSTGRES")]
        postgres: Option<String>,
    },
    /// Confidential accounts: proving and verifying transfers (one and batched), withdrawals,
    /// openings and disclosures; decryption; sizes.
    Accounts {
        /// One JSON line instead of pretty JSON.
        #[arg(long)]
        json: bool,
        /// Proofs to time per proof type.
        #[arg(long, default_value = "30", value_parser = positive)]
        proofs: usize,
        /// Single verifications to time.
        #[arg(long, default_value = "100", value_parser = positive)]
        verifies: usize,
    },
    /// State snapshots: producing one from a store, checking it against its certified root,
    /// installing it into an empty store and restoring the ledger, at each nullifier count.
    History {
        /// Accepted for symmetry: the output is JSON lines.
        #[arg(long)]
        json: bool,
        /// Nullifier counts to measure (comma-separated).
        #[arg(long, value_delimiter = ',', default_value = "1000000,10000000")]
        nullifiers: Vec<u64>,
        /// Blocks to write to, then read back from, the archive (0: no archive figures).
        #[arg(long, default_value_t = 2000)]
        archive_blocks: u64,
        /// Transactions per archived block (2,000 bytes each, a shielded transfer's size).
        #[arg(long, default_value_t = 64)]
        archive_block_txs: usize,
        /// The archive to measure (`file:///…` or `s3://bucket/prefix` with the `AWS_*`
        /// environment); by default a fresh local directory.
        #[arg(long)]
        archive: Option<String>,
        /// Shielded transactions in a chain a late validator replays from genesis, to set the
        /// join beside a replay (0: none). The cluster load's cached mints; missing ones are
        /// proved once (about 0.6 s each) and cached.
        #[arg(long, default_value_t = 600)]
        replay_txs: usize,
    },
    /// The trusted-setup ceremony: phase 1 and phase 2 contributions and verifications.
    Ceremony {
        /// Accepted for symmetry: the output is JSON lines.
        #[arg(long)]
        json: bool,
        /// Phase 1's size, log2 of the number of powers.
        #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..=28))]
        power: u32,
        /// Phase-2 contributions to make and verify.
        #[arg(long, default_value = "3", value_parser = positive)]
        contributions: usize,
    },
    /// Shoji against Zcash Sapling and Orchard and stock ark-groth16, in one process: proving,
    /// verifying, batch verifying, trial decryption. Needs the `peers` feature.
    Peers {
        /// One JSON line instead of pretty JSON.
        #[arg(long)]
        json: bool,
        /// Rounds of each alternation (medians are reported).
        #[arg(long, default_value = "5", value_parser = positive)]
        rounds: usize,
        /// Proofs (and transactions) per batch verification.
        #[arg(long, default_value = "64", value_parser = positive)]
        batch: usize,
        /// Outputs per trial-decryption round.
        #[arg(long, default_value = "4096", value_parser = positive)]
        outputs: usize,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum LoadArg {
    /// Two-in, two-out shielded transfers (their setup mints first).
    Transfers,
    /// Mints: public amount in, shielded note out.
    Mints,
    /// Confidential-account transfers (their accounts opened and funded first).
    Accounts,
}

fn main() -> anyhow::Result<()> {
    // The in-process validators (`history`'s replay) log to stderr under RUST_LOG.
    if let Ok(filter) = tracing_subscriber::EnvFilter::try_from_default_env() {
        tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .init();
    }
    match Cli::parse().command {
        Command::Zk {
            json,
            proofs,
            verifies,
            batches,
        } => {
            let opts = ZkOptions {
                proofs,
                verifies,
                batches,
            };
            eprintln!(
                "measuring: {} proofs, {} verifications, {} batches of 64 ...",
                opts.proofs, opts.verifies, opts.batches
            );
            let out = zk::run(&opts)?;
            if json {
                println!("{out}");
            } else {
                println!("{}", serde_json::to_string_pretty(&out)?);
            }
        }
        Command::Accounts {
            json,
            proofs,
            verifies,
        } => {
            eprintln!("measuring: {proofs} proofs and {verifies} verifications per account proof type ...");
            let out = shoji_benches::accounts::run(&shoji_benches::accounts::AccountsOptions {
                proofs,
                verifies,
            })?;
            if json {
                println!("{out}");
            } else {
                println!("{}", serde_json::to_string_pretty(&out)?);
            }
        }
        Command::Wallet {
            json: _,
            blocks,
            txs_per_block,
            rounds,
            sends,
        } => {
            let opts = shoji_benches::wallet::SyncOptions {
                blocks,
                txs_per_block,
            };
            eprintln!(
                "measuring: wallet sync over {blocks} blocks of {txs_per_block} transactions, {rounds} rounds ..."
            );
            println!("{}", shoji_benches::wallet::sync_rate(&opts, rounds)?);
            if sends > 0 {
                eprintln!("measuring: {sends} sends on four local validators ...");
                println!("{}", shoji_benches::wallet::send_latency(sends)?);
            }
        }
        Command::Auditor {
            json: _,
            records,
            per_block,
            batch,
            postgres,
        } => {
            let opts = shoji_benches::auditor::AuditorOptions {
                records,
                per_block,
                batch,
                postgres,
            };
            eprintln!(
                "measuring: {records} auditor records on SQLite{} ...",
                if opts.postgres.is_some() {
                    " and PostgreSQL"
                } else {
                    ""
                }
            );
            for line in shoji_benches::auditor::run(&opts)? {
                println!("{line}");
            }
        }
        Command::History {
            json: _,
            nullifiers,
            archive_blocks,
            archive_block_txs,
            archive,
            replay_txs,
        } => {
            eprintln!("measuring: snapshots of {nullifiers:?} nullifiers, an archive of {archive_blocks} blocks, a replay of {replay_txs} transactions ...");
            let out = shoji_benches::history::run(&shoji_benches::history::HistoryOptions {
                nullifiers,
                archive_blocks,
                archive_block_txs,
                archive,
                replay_txs,
            })?;
            for line in out {
                println!("{line}");
            }
        }
        Command::Ceremony {
            json: _,
            power,
            contributions,
        } => {
            let opts = shoji_benches::ceremony::CeremonyOptions {
                power,
                contributions,
            };
            eprintln!(
                "measuring: phase 1 at 2^{power}, phase 2 of the transfer circuit with {contributions} contributions ..."
            );
            println!("{}", shoji_benches::ceremony::run(&opts)?);
        }
        Command::Cluster {
            json: _,
            txs,
            load,
            clients,
            ordering_payloads,
            ordering_in_flight,
            distance,
        } => {
            let opts = ClusterOptions {
                latency: distance,
                txs,
                load: match load {
                    LoadArg::Transfers => Load::Transfers,
                    LoadArg::Mints => Load::Mints,
                    LoadArg::Accounts => Load::Accounts,
                },
                clients,
                ordering_payloads,
                ordering_in_flight,
            };
            eprintln!(
                "measuring: {} {} over {} clients against four validators (shielded loads cached in {}) ...",
                opts.txs,
                opts.load.name(),
                opts.clients,
                shoji_benches::cluster::cache_location()
            );
            println!("{}", shoji_benches::cluster::run(&opts)?);
        }
        Command::Peers {
            json,
            rounds,
            batch,
            outputs,
        } => peers(json, rounds, batch, outputs)?,
    }
    Ok(())
}

#[cfg(feature = "peers")]
fn peers(json: bool, rounds: usize, batch: usize, outputs: usize) -> anyhow::Result<()> {
    let opts = shoji_benches::peers::PeersOptions {
        rounds,
        batch,
        outputs,
    };
    eprintln!(
        "measuring: {rounds} rounds of Shoji, Sapling, Orchard and ark-groth16 (Sapling parameters cached in {}) ...",
        shoji_params::default_dir().join("peers").display()
    );
    let out = shoji_benches::peers::run(&opts)?;
    if json {
        println!("{out}");
    } else {
        println!("{}", serde_json::to_string_pretty(&out)?);
    }
    Ok(())
}

#[cfg(not(feature = "peers"))]
fn peers(_: bool, _: usize, _: usize, _: usize) -> anyhow::Result<()> {
    anyhow::bail!(
        "this shoji-bench was built without Zcash's crates; build it with them: \
         cargo build --release -p shoji-benches --features peers"
    )
}
