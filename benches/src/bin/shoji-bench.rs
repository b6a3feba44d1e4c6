//! `shoji-bench`: measures Shoji and prints one JSON line per measurement.
//!
//! ```text
//! shoji-bench zk [--json] [--proofs N] [--verifies N] [--batches N]
//! shoji-bench wallet [--json] [--blocks N] [--txs-per-block N] [--rounds N] [--sends N]
//! shoji-bench cluster [--json] [--txs N] [--load transfers|mints] [--clients N] [--ordering-payloads N] [--ordering-in-flight N]
//! shoji-bench ceremony [--json] [--power N] [--contributions N]
//! ```

use anyhow::{bail, Context};
use shoji_benches::zk::{self, ZkOptions};

const USAGE: &str = "\
usage: shoji-bench zk [--json] [--proofs N] [--verifies N] [--batches N]
       shoji-bench wallet [--json] [--blocks N] [--txs-per-block N] [--rounds N] [--sends N]
       shoji-bench cluster [--json] [--txs N] [--load transfers|mints] [--clients N] [--ordering-payloads N] [--ordering-in-flight N]
       shoji-bench ceremony [--json] [--power N] [--contributions N]

Each measurement prints one JSON line. `cluster` needs shoji-node built beside shoji-bench
(cargo build --release -p shoji-node); SHOJI_BENCH_NODE_LOG=FILE keeps the validators' log
and SHOJI_BENCH_NODE_LOG_LEVEL sets its filter (default info).";

/// Bad usage: the usage on stderr, exit code 2.
fn usage() -> ! {
    eprintln!("{USAGE}");
    std::process::exit(2)
}

/// `--help` after a subcommand: the usage on stdout, exit code 0. Anything else unknown: the
/// usage on stderr, exit code 2.
fn help_or_bad_option(option: &str) -> ! {
    if option == "--help" || option == "-h" {
        println!("{USAGE}");
        std::process::exit(0)
    }
    eprintln!("unknown option {option}");
    usage()
}

/// The number after option `name`.
fn number(args: &mut impl Iterator<Item = String>, name: &str) -> anyhow::Result<usize> {
    args.next()
        .with_context(|| format!("{name} needs a number"))?
        .parse()
        .with_context(|| format!("{name} needs a number"))
}

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let Some(cmd) = args.next() else { usage() };
    if cmd == "--help" || cmd == "-h" || cmd == "help" {
        println!("{USAGE}");
        return Ok(());
    }
    match cmd.as_str() {
        "zk" => {
            let mut opts = ZkOptions {
                proofs: 10,
                verifies: 50,
                batches: 5,
            };
            let mut json = false;
            while let Some(a) = args.next() {
                let mut num = |name: &str| number(&mut args, name);
                match a.as_str() {
                    "--json" => json = true,
                    "--proofs" => opts.proofs = num("--proofs")?.max(1),
                    "--verifies" => opts.verifies = num("--verifies")?.max(1),
                    "--batches" => opts.batches = num("--batches")?.max(1),
                    other => help_or_bad_option(other),
                }
            }
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
            Ok(())
        }
        "wallet" => {
            let mut opts = shoji_benches::wallet::SyncOptions {
                blocks: 100,
                txs_per_block: 100,
            };
            let mut rounds = 3;
            let mut sends = 10;
            while let Some(a) = args.next() {
                let mut num = |name: &str| number(&mut args, name);
                match a.as_str() {
                    "--json" => {}
                    "--blocks" => opts.blocks = num("--blocks")?.max(1),
                    "--txs-per-block" => opts.txs_per_block = num("--txs-per-block")?.max(1),
                    "--rounds" => rounds = num("--rounds")?.max(1),
                    "--sends" => sends = num("--sends")?,
                    other => help_or_bad_option(other),
                }
            }
            eprintln!(
                "measuring: wallet sync over {} blocks of {} transactions, {rounds} rounds ...",
                opts.blocks, opts.txs_per_block
            );
            println!("{}", shoji_benches::wallet::sync_rate(&opts, rounds)?);
            if sends > 0 {
                eprintln!("measuring: {sends} sends on four local validators ...");
                println!("{}", shoji_benches::wallet::send_latency(sends)?);
            }
            Ok(())
        }
        "ceremony" => {
            let mut opts = shoji_benches::ceremony::CeremonyOptions {
                power: 16,
                contributions: 3,
            };
            while let Some(a) = args.next() {
                let mut num = |name: &str| number(&mut args, name);
                match a.as_str() {
                    "--json" => {}
                    "--power" => opts.power = num("--power")? as u32,
                    "--contributions" => opts.contributions = num("--contributions")?.max(1),
                    other => help_or_bad_option(other),
                }
            }
            eprintln!(
                "measuring: phase 1 at 2^{}, phase 2 of the transfer circuit with {} contributions ...",
                opts.power, opts.contributions
            );
            println!("{}", shoji_benches::ceremony::run(&opts)?);
            Ok(())
        }
        "cluster" => {
            let mut opts = shoji_benches::cluster::ClusterOptions {
                txs: 600,
                load: shoji_benches::cluster::Load::Transfers,
                clients: 128,
                ordering_payloads: 20_000,
                ordering_in_flight: 512,
            };
            while let Some(a) = args.next() {
                let mut num = |name: &str| number(&mut args, name);
                match a.as_str() {
                    "--json" => {}
                    "--txs" => opts.txs = num("--txs")?.max(1),
                    "--load" => {
                        opts.load = match args.next().as_deref() {
                            Some("transfers") => shoji_benches::cluster::Load::Transfers,
                            Some("mints") => shoji_benches::cluster::Load::Mints,
                            _ => bail!("--load takes transfers or mints"),
                        }
                    }
                    "--clients" => opts.clients = num("--clients")?.max(1),
                    "--ordering-payloads" => opts.ordering_payloads = num("--ordering-payloads")?,
                    "--ordering-in-flight" => {
                        opts.ordering_in_flight = num("--ordering-in-flight")?.max(1)
                    }
                    other => help_or_bad_option(other),
                }
            }
            eprintln!(
                "measuring: {} shielded {} over {} clients against four validators (cached in {}) ...",
                opts.txs,
                opts.load.name(),
                opts.clients,
                shoji_benches::cluster::cache_location()
            );
            println!("{}", shoji_benches::cluster::run(&opts)?);
            Ok(())
        }
        _ => usage(),
    }
}
