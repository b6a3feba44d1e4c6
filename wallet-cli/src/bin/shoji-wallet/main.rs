//! `shoji-wallet`: a participant's wallet for a Shoji network.
//!
//! The wallet file is sealed with a passphrase (Argon2id + XChaCha20-Poly1305), locked against a
//! second process and replaced atomically on every save. The wallet scans every compact block
//! itself and keeps its own witnesses: no node learns which notes are its own. A note is marked
//! spent only when a committed block reveals its nullifier.

use anyhow::{anyhow, Context};
use clap::{Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;
use shoji_cli as cli;
use shoji_cli::{fail, Exit, Failure, Synced};
use shoji_client::sealed::SealedFile;
use shoji_client::{Client, ClientError, Network};
use shoji_primitives::encryption::Memo;
use shoji_primitives::keys::{Address, WalletSeed, ADDRESS_PREFIX};
use shoji_primitives::note::{Amount, AssetId};
use shoji_primitives::tx::Transaction;
use shoji_prover::Prover;
use shoji_wallet::{Answer, HistoryEntry, Pending, Settlement, Wallet, WalletError};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

mod recovery;

const KIND: &[u8; 8] = b"SHOJIWLT";
const PASSPHRASE_ENV: &str = "SHOJI_WALLET_PASSPHRASE";
/// Blocks after the current height within which a transaction must commit.
const EXPIRY_BLOCKS: u64 = 20;

/// The exit codes this program returns, listed by `--help`.
const EXIT_CODES: [Exit; 11] = [
    Exit::Other,
    Exit::Usage,
    Exit::InsufficientFunds,
    Exit::UnknownAsset,
    Exit::BadAddress,
    Exit::WrongPassphrase,
    Exit::Unreachable,
    Exit::Rejected,
    Exit::OutOfDate,
    Exit::InUse,
    Exit::File,
];

#[derive(Parser)]
#[command(
    name = "shoji-wallet",
    version,
    about = "A Shoji wallet: private payments on a permissioned ledger.",
    after_help = Exit::help("wallet file", &EXIT_CODES)
)]
struct Cli {
    /// The wallet file.
    #[arg(
        long,
        global = true,
        env = "SHOJI_WALLET",
        default_value = "wallet.shoji"
    )]
    wallet: PathBuf,
    /// The network file (validators, auditor, issuers, assets).
    #[arg(
        long,
        global = true,
        env = "SHOJI_NETWORK",
        default_value = "devnet/devnet.json"
    )]
    network: PathBuf,
    /// The directory holding the network's proving key (`transfer.pk`, whose hash the network
    /// file names); default: `params` beside the network file. Development networks need none.
    #[arg(long, global = true, env = "SHOJI_PARAMS")]
    params: Option<PathBuf>,
    /// Read the passphrase from the first line of this file (else $SHOJI_WALLET_PASSPHRASE, else
    /// the terminal).
    #[arg(long, global = true)]
    passphrase_file: Option<PathBuf>,
    /// Talk to this validator first.
    #[arg(long, global = true)]
    node: Option<u16>,
    /// Print JSON (one object) instead of text.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Create a wallet; its recovery phrase is shown once.
    Init,
    /// Recreate a wallet from its recovery phrase (read from --phrase-file or standard input),
    /// or from guardian shares (--share, as many as the backup's threshold), then sync to find
    /// its payments again.
    Restore {
        /// File holding the 24-word phrase.
        #[arg(long, conflicts_with = "share")]
        phrase_file: Option<PathBuf>,
        /// A guardian share file (from `backup split`); repeat for each share.
        #[arg(long)]
        share: Vec<PathBuf>,
        /// Do not sync after restoring.
        #[arg(long)]
        no_sync: bool,
    },
    /// Print the wallet's address.
    Address,
    /// Scan new blocks.
    Sync,
    /// Balance per asset.
    Balance,
    /// Pay someone.
    Send {
        /// Receiver's address (`shoji1…`), or the name of a participant in the network's
        /// registry ("Bank B"), resolved from certified ledger state.
        #[arg(long)]
        to: String,
        /// Amount, in the asset's smallest unit.
        #[arg(long)]
        amount: u64,
        /// Asset name or number.
        #[arg(long)]
        asset: String,
        /// A memo for the receiver (at most 128 bytes).
        #[arg(long)]
        memo: Option<String>,
        /// Do not sync first; refuse if the wallet is behind the network.
        #[arg(long)]
        no_sync: bool,
    },
    /// Payments received and sent.
    History,
    /// Guardian shares of the seed: any T of N rebuild the wallet (`restore --share`).
    #[command(subcommand)]
    Backup(BackupCommand),
    /// Confidential accounts: open, address, balance, send, shield, unshield, redeem, mint.
    #[command(subcommand)]
    Account(AccountCommand),
    /// Escrowed recovery with the network's recovery agents: keys, escrow, status, cancel;
    /// open and release (agents); collect (the recovering wallet).
    #[command(subcommand)]
    Recovery(recovery::RecoveryCommand),
    /// Issue new value (issuers only): public amount in, shielded note out.
    Mint {
        /// The issuer's Ed25519 key (file holding its 32-byte secret in hex).
        #[arg(long)]
        issuer_key: PathBuf,
        /// Receiver's address.
        #[arg(long)]
        to: String,
        /// Amount.
        #[arg(long)]
        amount: u64,
        /// Asset name or number.
        #[arg(long)]
        asset: String,
        /// Memo.
        #[arg(long)]
        memo: Option<String>,
    },
    /// Return value to its issuer (shielded notes in, public amount out).
    Redeem {
        /// Amount.
        #[arg(long)]
        amount: u64,
        /// Asset name or number.
        #[arg(long)]
        asset: String,
    },
}

/// `shoji-wallet backup …`: guardian shares.
#[derive(Subcommand)]
enum BackupCommand {
    /// Split the wallet's seed into N share files, any T of which rebuild it; give one to each
    /// guardian. Fewer than T say nothing of the seed.
    Split {
        /// How many shares rebuild the seed.
        #[arg(long)]
        threshold: u8,
        /// How many shares to write.
        #[arg(long)]
        shares: u8,
        /// The directory to write them to (created if missing).
        #[arg(long)]
        out: PathBuf,
        /// Encrypt share i to the i-th guardian key given (from `backup guardian-key`); give
        /// one per share, or none.
        #[arg(long = "guardian")]
        guardians: Vec<String>,
    },
    /// Print this wallet's guardian key: what a participant encrypts the share it gives you to.
    GuardianKey,
    /// Open a share encrypted to this wallet's guardian key, check it, and write it in the
    /// clear (to hand over for a restore).
    Open {
        /// The encrypted share file.
        #[arg(long)]
        share: PathBuf,
        /// Where to write the opened share.
        #[arg(long)]
        out: PathBuf,
    },
    /// Check that a share belongs to its set (what a guardian runs; needs no wallet and learns
    /// nothing of the seed).
    Check {
        /// The share file.
        #[arg(long)]
        share: PathBuf,
    },
}

/// `shoji-wallet account …`: confidential accounts, amounts hidden and parties known.
#[derive(Subcommand)]
enum AccountCommand {
    /// Open this wallet's account for an asset.
    Open {
        /// Asset name or number.
        #[arg(long)]
        asset: String,
    },
    /// Print this wallet's account key (what payers send to).
    Address,
    /// Balance of each open account.
    Balance,
    /// Pay another account: the amount is encrypted for the receiver and the auditor.
    Send {
        /// The receiver's account key (hex, from `shoji-wallet account address`).
        #[arg(long)]
        to: String,
        /// Amount, in the asset's smallest unit.
        #[arg(long)]
        amount: u64,
        /// Asset name or number.
        #[arg(long)]
        asset: String,
    },
    /// Move value from the account into a shielded note (the amount is public at the
    /// boundary; the note's owner is not).
    Shield {
        /// Amount.
        #[arg(long)]
        amount: u64,
        /// Asset name or number.
        #[arg(long)]
        asset: String,
        /// The note's receiver (a `shoji1…` address); this wallet when left out.
        #[arg(long)]
        to: Option<String>,
        /// Memo for the note.
        #[arg(long)]
        memo: Option<String>,
    },
    /// Move value from shielded notes into an account (the amount is public at the
    /// boundary; the notes' owner is not).
    Unshield {
        /// Amount.
        #[arg(long)]
        amount: u64,
        /// Asset name or number.
        #[arg(long)]
        asset: String,
        /// The receiving account's key (hex); this wallet's account when left out.
        #[arg(long)]
        to: Option<String>,
    },
    /// Return value from the account to the asset's issuer (public amount).
    Redeem {
        /// Amount.
        #[arg(long)]
        amount: u64,
        /// Asset name or number.
        #[arg(long)]
        asset: String,
    },
    /// Issue new value into an account (issuers only): a public amount, signed.
    Mint {
        /// The issuer's Ed25519 key (file holding its 32-byte secret in hex).
        #[arg(long)]
        issuer_key: PathBuf,
        /// The receiving account's key (hex).
        #[arg(long)]
        to: String,
        /// Amount.
        #[arg(long)]
        amount: u64,
        /// Asset name or number.
        #[arg(long)]
        asset: String,
    },
}

fn main() -> ExitCode {
    let args = Cli::parse();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(mut f) => {
            // The wallet's own code, for a failure the shared table has none for.
            if f.code == Exit::Other
                && f.error.chain().any(|c| {
                    matches!(
                        c.downcast_ref::<WalletError>(),
                        Some(WalletError::InsufficientFunds { .. })
                    )
                })
            {
                f.code = Exit::InsufficientFunds;
            }
            f.report(args.json)
        }
    }
}

/// An open wallet: its state and its sealed, locked file.
struct Open {
    wallet: Wallet,
    file: SealedFile,
}

impl Open {
    fn save(&self) -> Result<(), Failure> {
        Ok(self
            .file
            .save(&self.wallet.to_bytes())
            .context("saving the wallet (the previous file is intact)")?)
    }
}

fn secret_file(cli: &Cli) -> cli::SecretFile<'_> {
    cli::SecretFile {
        path: &cli.wallet,
        kind: KIND,
        what: "wallet",
        hint: "create one with `shoji-wallet init`, or pass --wallet",
        env_var: PASSPHRASE_ENV,
        passphrase_file: cli.passphrase_file.as_deref(),
    }
}

fn open(cli: &Cli) -> Result<Open, Failure> {
    let (file, payload) = secret_file(cli).open()?;
    let wallet = Wallet::from_bytes(&payload).context("reading the wallet")?;
    Ok(Open { wallet, file })
}

fn create(cli: &Cli, seed: &WalletSeed) -> Result<Open, Failure> {
    let wallet = Wallet::new(seed);
    let file = secret_file(cli).create(&wallet.to_bytes())?;
    Ok(Open { wallet, file })
}

fn network(cli: &Cli) -> Result<Network, Failure> {
    shoji_cli::load_network(&cli.network)
}

/// The prover of `net`: the development parameters on a development network, else the proving
/// key whose hash the network file names, found in `--params` (default: `params` beside the
/// network file). Any other file is refused before anything is proved.
fn load_prover(cli: &Cli, net: &Network) -> anyhow::Result<Prover> {
    let pins = net.parameters;
    if pins.is_development() {
        return Prover::dev().context("loading the development proving parameters");
    }
    let hash = pins.proving_key_hash.ok_or_else(|| {
        anyhow!(
            "the network file {} pins a ceremony's verifying key but names no proving key \
             (proving_key_hash): take the network file `shoji-node init --params` wrote",
            cli.network.display()
        )
    })?;
    let dir = cli.params.clone().unwrap_or_else(|| {
        cli.network
            .parent()
            .unwrap_or(Path::new("."))
            .join("params")
    });
    let path = dir.join(shoji_params::PROVING_KEY_FILE);
    let pk = shoji_params::load_proving_key_pinned(&path, &hash, &pins.verifying_key_hash)
        .context(
            "the network's proving key (pass --params DIR, the directory holding the \
             transfer.pk of the network's ceremony)",
        )?;
    Ok(Prover::new(pk)?)
}

fn connect(cli: &Cli, net: &Network) -> Result<Client, Failure> {
    Ok(Client::connect(net, cli.node)?)
}

/// The address of the participant registered as `name`, from the certified registry; an unknown
/// or revoked name is a usage error that says so.
fn resolve_name(client: &Client, name: &str) -> Result<Address, Failure> {
    match client.resolve_name(name) {
        Ok(a) => Ok(a),
        Err(e @ (ClientError::UnknownName { .. } | ClientError::RevokedName { .. })) => Err(fail(
            Exit::Usage,
            anyhow!("{e}: pay an address (shoji1…) or a registered name"),
        )),
        Err(e) => Err(e.into()),
    }
}

fn parse_address(s: &str) -> Result<Address, Failure> {
    Ok(s.trim()
        .parse::<Address>()
        .with_context(|| format!("{s:?} is not a valid address"))?)
}

fn memo(text: Option<&str>) -> Result<Memo, Failure> {
    match text {
        None => Ok(Memo::empty()),
        Some(t) => Memo::from_text(t)
            .ok_or_else(|| fail(Exit::Usage, anyhow!("the memo is longer than 128 bytes"))),
    }
}

fn positive(amount: u64) -> Result<Amount, Failure> {
    if amount == 0 {
        return Err(fail(Exit::Usage, anyhow!("the amount must be positive")));
    }
    Ok(Amount(amount))
}

fn run(cli: &Cli) -> Result<(), Failure> {
    match &cli.command {
        Command::Init => {
            let seed = WalletSeed::random(&mut rand_core::OsRng);
            let phrase = zeroize::Zeroizing::new(
                bip39::Mnemonic::from_entropy(&seed.0)
                    .map_err(|e| anyhow!("phrase: {e}"))?
                    .to_string(),
            );
            let o = create(cli, &seed)?;
            let address = o.wallet.address().to_string();
            if cli.json {
                println!(
                    "{}",
                    json!({"wallet": cli.wallet.display().to_string(), "address": address, "recovery_phrase": phrase.as_str()})
                );
            } else {
                println!("Created {}.", cli.wallet.display());
                println!();
                println!("Recovery phrase (write it down; it is shown only this once, and anyone who has it can spend):");
                println!();
                println!("  {}", phrase.as_str());
                println!();
                println!("Address: {address}");
            }
            Ok(())
        }
        Command::Restore {
            phrase_file,
            share,
            no_sync,
        } => {
            if !share.is_empty() {
                let files = share
                    .iter()
                    .map(|p| read_share(p))
                    .collect::<Result<Vec<_>, _>>()?;
                let seed = shoji_wallet::backup::combine(&files)
                    .map_err(|e| fail(Exit::Usage, anyhow::Error::new(e)))?;
                let o = create(cli, &seed)?;
                return finish_restore(cli, o, *no_sync);
            }
            let text = match phrase_file {
                Some(f) => std::fs::read_to_string(f)
                    .with_context(|| format!("reading {}", f.display()))?,
                None => {
                    if !cli.json {
                        eprintln!("Type the 24-word recovery phrase, then Enter:");
                    }
                    let mut line = String::new();
                    std::io::stdin()
                        .read_line(&mut line)
                        .context("reading the phrase")?;
                    line
                }
            };
            let text = zeroize::Zeroizing::new(text);
            let words =
                zeroize::Zeroizing::new(text.split_whitespace().collect::<Vec<_>>().join(" "));
            let m = bip39::Mnemonic::parse_normalized(&words).map_err(|e| {
                fail(
                    Exit::Usage,
                    anyhow!("not a valid recovery phrase ({e}); check each word"),
                )
            })?;
            let entropy = zeroize::Zeroizing::new(m.to_entropy());
            let seed: [u8; 32] = entropy
                .as_slice()
                .try_into()
                .map_err(|_| fail(Exit::Usage, anyhow!("a Shoji recovery phrase has 24 words")))?;
            let o = create(cli, &WalletSeed(seed))?;
            finish_restore(cli, o, *no_sync)
        }
        Command::Backup(BackupCommand::Split {
            threshold,
            shares,
            out,
            guardians,
        }) => {
            let guardians = guardians
                .iter()
                .map(|g| shoji_wallet::backup::parse_guardian(g))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| fail(Exit::Usage, anyhow::Error::new(e)))?;
            let o = open(cli)?;
            let files = shoji_wallet::backup::split(
                o.wallet.seed(),
                *threshold,
                *shares,
                &guardians,
                &mut rand_core::OsRng,
            )
            .map_err(|e| fail(Exit::Usage, anyhow::Error::new(e)))?;
            std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
            let mut written = Vec::new();
            for f in &files {
                let path = out.join(format!("share-{}-{}-of-{}.json", f.set, f.index, f.shares));
                shoji_client::sealed::write_atomic(
                    &path,
                    serde_json::to_string_pretty(f)?.as_bytes(),
                )
                .with_context(|| format!("writing {}", path.display()))?;
                written.push(path.display().to_string());
            }
            let set = files.first().map(|f| f.set.clone()).unwrap_or_default();
            if cli.json {
                println!(
                    "{}",
                    json!({"set": set, "threshold": threshold, "shares": shares, "files": written})
                );
            } else {
                println!("Wrote {shares} shares of set {set}; any {threshold} rebuild the wallet:");
                for w in &written {
                    println!("  {w}");
                }
                println!("Give each to a different guardian; each can check its own with `shoji-wallet backup check --share FILE`.");
            }
            Ok(())
        }
        Command::Backup(BackupCommand::GuardianKey) => {
            let o = open(cli)?;
            let key = shoji_wallet::backup::guardian_public(o.wallet.seed());
            if cli.json {
                println!("{}", json!({"guardian_key": key}));
            } else {
                println!("{key}");
            }
            Ok(())
        }
        Command::Backup(BackupCommand::Open { share, out }) => {
            let (name, f) = read_share(share)?;
            let o = open(cli)?;
            let plain = shoji_wallet::backup::open_share(&f, &name, o.wallet.seed())
                .and_then(|p| shoji_wallet::backup::check(&p, &name).map(|()| p))
                .map_err(|e| fail(Exit::Usage, anyhow::Error::new(e)))?;
            shoji_client::sealed::write_atomic(
                out,
                serde_json::to_string_pretty(&plain)?.as_bytes(),
            )
            .with_context(|| format!("writing {}", out.display()))?;
            if cli.json {
                println!(
                    "{}",
                    json!({"file": out.display().to_string(), "set": plain.set, "index": plain.index})
                );
            } else {
                println!(
                    "Opened share {} of set {} into {} (it checks; hand it over only to its owner).",
                    plain.index,
                    plain.set,
                    out.display()
                );
            }
            Ok(())
        }
        Command::Backup(BackupCommand::Check { share }) => {
            let (name, f) = read_share(share)?;
            shoji_wallet::backup::check(&f, &name)
                .map_err(|e| fail(Exit::Usage, anyhow::Error::new(e)))?;
            if cli.json {
                println!(
                    "{}",
                    json!({"valid": true, "set": f.set, "index": f.index, "threshold": f.threshold, "shares": f.shares})
                );
            } else {
                println!(
                    "Share {} of {} of set {} checks: it lies on the set's committed polynomial ({} needed to restore).",
                    f.index, f.shares, f.set, f.threshold
                );
            }
            Ok(())
        }
        Command::Account(a) => account(cli, a),
        Command::Recovery(r) => recovery::run(cli, r),
        Command::Address => {
            let o = open(cli)?;
            if cli.json {
                println!("{}", json!({"address": o.wallet.address().to_string()}));
            } else {
                println!("{}", o.wallet.address());
            }
            Ok(())
        }
        Command::Sync => {
            let mut o = open(cli)?;
            let net = network(cli)?;
            let client = connect(cli, &net)?;
            let report = sync(cli, &mut o, &client)?;
            print_sync(cli, &report);
            Ok(())
        }
        Command::Balance => {
            let o = open(cli)?;
            let net = Network::load(&cli.network).ok();
            let name = |a: AssetId| net.as_ref().map_or(a.0.to_string(), |n| n.asset_name(a));
            let rows: Vec<serde_json::Value> = o
                .wallet
                .assets()
                .into_iter()
                .map(|a| {
                    let total = o.wallet.balance(a);
                    let pending = o.wallet.pending_balance(a);
                    json!({"asset": a.0, "name": name(a), "balance": total, "spendable": total - pending, "pending": pending})
                })
                .collect();
            if cli.json {
                println!("{}", json!({"height": o.wallet.height(), "balances": rows}));
            } else {
                println!("As of height {}:", o.wallet.height());
                if rows.is_empty() {
                    println!("  (no funds)");
                }
                for r in &rows {
                    let pending = r["pending"].as_u64().unwrap_or(0);
                    let extra = if pending > 0 {
                        format!(" ({pending} held by a pending payment)")
                    } else {
                        String::new()
                    };
                    println!(
                        "  {:>8} {:>12}{}",
                        r["name"].as_str().unwrap_or(""),
                        r["balance"].as_u64().unwrap_or(0),
                        extra
                    );
                }
            }
            Ok(())
        }
        Command::History => {
            let o = open(cli)?;
            let net = Network::load(&cli.network).ok();
            let name = |a: AssetId| net.as_ref().map_or(a.0.to_string(), |n| n.asset_name(a));
            let mut rows: Vec<serde_json::Value> = o
                .wallet
                .history()
                .iter()
                .map(|h| match h {
                    HistoryEntry::Received { txid, height, time_ms, asset, value, memo } => json!({
                        "direction": "received", "txid": txid.to_string(), "height": height, "time": cli::format_time(*time_ms),
                        "asset": asset.0, "asset_name": name(*asset), "amount": value.0, "memo": memo,
                    }),
                    HistoryEntry::Sent { txid, height, time_ms, to, asset, value, memo } => json!({
                        "direction": "sent", "txid": txid.to_string(), "height": height, "time": cli::format_time(*time_ms),
                        "to": to.to_string(), "asset": asset.0, "asset_name": name(*asset),
                        "amount": value.0, "memo": memo,
                    }),
                })
                .collect();
            for p in o.wallet.pending() {
                rows.push(json!({
                    "direction": "pending", "txid": p.txid.to_string(), "expires_after": p.expiry_height,
                    "to": p.to.map(|a| a.to_string()), "asset": p.asset.0, "asset_name": name(p.asset),
                    "amount": p.amount.0,
                }));
            }
            if cli.json {
                println!("{}", json!({"height": o.wallet.height(), "history": rows}));
            } else {
                if rows.is_empty() {
                    println!("(no payments)");
                }
                for r in &rows {
                    let s = |k: &str| r[k].as_str().unwrap_or("").to_string();
                    let num = |k: &str| r[k].as_u64().unwrap_or(0);
                    match s("direction").as_str() {
                        "received" => println!(
                            "{:>6}  {}  received {:>10} {:<5} tx {}…{}",
                            num("height"),
                            s("time"),
                            num("amount"),
                            s("asset_name"),
                            &s("txid")[..16],
                            memo_suffix(&s("memo"))
                        ),
                        "sent" => println!(
                            "{:>6}  {}  sent     {:>10} {:<5} to {} tx {}…{}",
                            num("height"),
                            s("time"),
                            num("amount"),
                            s("asset_name"),
                            s("to"),
                            &s("txid")[..16],
                            memo_suffix(&s("memo"))
                        ),
                        _ => println!(
                            "pending sent {:>10} {:<5} to {} tx {}… (expires after height {})",
                            num("amount"),
                            s("asset_name"),
                            s("to"),
                            &s("txid")[..16],
                            r["expires_after"]
                        ),
                    }
                }
            }
            Ok(())
        }
        Command::Send {
            to,
            amount,
            asset,
            memo: text,
            no_sync,
        } => {
            let named = !to.trim().starts_with(ADDRESS_PREFIX);
            let address = match named {
                true => None,
                false => Some(parse_address(to)?),
            };
            let amount = positive(*amount)?;
            let memo = memo(text.as_deref())?;
            let net = network(cli)?;
            let asset = net.resolve_asset(asset)?;
            let mut o = open(cli)?;
            let client = connect(cli, &net)?;
            let to = match address {
                Some(a) => a,
                None => resolve_name(&client, to)?,
            };
            let tip = if *no_sync {
                let tip = client.tree_state()?;
                if o.wallet.height() < tip.height {
                    return Err(fail(Exit::OutOfDate,
                        anyhow!(
                            "the wallet is at height {} and the network at {}: run `shoji-wallet sync` first",
                            o.wallet.height(),
                            tip.height
                        ),
                    ));
                }
                tip.height
            } else {
                sync(cli, &mut o, &client)?.height
            };
            o.wallet.set_network(net.network_id);
            let unproven = o.wallet.pay(
                to,
                asset,
                amount,
                memo,
                net.auditor,
                tip + EXPIRY_BLOCKS,
                &mut rand_core::OsRng,
            )?;
            let what = Outgoing {
                asset,
                amount,
                to: Some(to),
                expiry: tip + EXPIRY_BLOCKS,
                quiet: false,
            };
            prove_and_submit(cli, &mut o, &client, unproven, what)
        }
        Command::Redeem { amount, asset } => {
            let amount = positive(*amount)?;
            let net = network(cli)?;
            let asset = net.resolve_asset(asset)?;
            let issuer = issuer_of(&net, asset)?;
            let mut o = open(cli)?;
            let client = connect(cli, &net)?;
            let tip = sync(cli, &mut o, &client)?.height;
            o.wallet.set_network(net.network_id);
            let unproven = o.wallet.redeem(
                asset,
                amount,
                issuer,
                net.auditor,
                tip + EXPIRY_BLOCKS,
                &mut rand_core::OsRng,
            )?;
            let what = Outgoing {
                asset,
                amount,
                to: None,
                expiry: tip + EXPIRY_BLOCKS,
                quiet: false,
            };
            prove_and_submit(cli, &mut o, &client, unproven, what)
        }
        Command::Mint {
            issuer_key,
            to,
            amount,
            asset,
            memo: text,
        } => {
            let to = parse_address(to)?;
            let amount = positive(*amount)?;
            let memo = memo(text.as_deref())?;
            let net = network(cli)?;
            let asset = net.resolve_asset(asset)?;
            let key = read_issuer_key(issuer_key)?;
            let issuer = authorized_issuer(&net, &key, asset)?;
            let mut o = open(cli)?;
            let client = connect(cli, &net)?;
            let tip = client.tree_state()?;
            o.wallet.set_network(net.network_id);
            let unproven = o.wallet.mint(
                to,
                asset,
                amount,
                memo,
                tip.anchor,
                net.auditor,
                issuer,
                tip.height + EXPIRY_BLOCKS,
                &mut rand_core::OsRng,
            )?;
            let tx = prove(cli, &net, |prover| {
                Ok(unproven
                    .prove(prover, &mut rand_core::OsRng)?
                    .sign_mint(&key)?)
            })?;
            let finality = client.submit(&tx)?;
            let txid = tx.id();
            sync(cli, &mut o, &client)?;
            print_final(cli, &txid.to_string(), &finality);
            Ok(())
        }
    }
}

/// A share file, named by its path for errors.
fn read_share(path: &Path) -> Result<(String, shoji_wallet::backup::ShareFile), Failure> {
    let name = path.display().to_string();
    let text = zeroize::Zeroizing::new(
        std::fs::read_to_string(path).with_context(|| format!("reading {name}"))?,
    );
    let f = serde_json::from_str(&text).map_err(|e| {
        fail(
            Exit::Usage,
            anyhow!("share {name} is corrupted: not a share file ({e})"),
        )
    })?;
    Ok((name, f))
}

/// After a restore: says so, then syncs unless asked not to.
fn finish_restore(cli: &Cli, mut o: Open, no_sync: bool) -> Result<(), Failure> {
    if !cli.json {
        println!(
            "Restored {} (address {}).",
            cli.wallet.display(),
            o.wallet.address()
        );
    }
    if no_sync {
        if cli.json {
            println!(
                "{}",
                json!({"address": o.wallet.address().to_string(), "height": 0})
            );
        }
        return Ok(());
    }
    let net = network(cli)?;
    let client = connect(cli, &net)?;
    let report = sync(cli, &mut o, &client)?;
    print_sync(cli, &report);
    Ok(())
}

fn memo_suffix(m: &str) -> String {
    if m.is_empty() {
        String::new()
    } else {
        format!("  \"{m}\"")
    }
}

fn read_issuer_key(path: &Path) -> Result<ed25519_dalek::SigningKey, Failure> {
    let text = zeroize::Zeroizing::new(
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?,
    );
    let bytes = shoji_primitives::encoding::hex_decode("issuer key", text.trim())
        .with_context(|| format!("{} does not hold a hex key", path.display()))?;
    let seed: [u8; 32] = bytes
        .as_slice()
        .try_into()
        .map_err(|_| anyhow!("{} must hold a 32-byte key", path.display()))?;
    Ok(ed25519_dalek::SigningKey::from_bytes(&seed))
}

/// What a submitted transaction pays, for the pending list.
struct Outgoing {
    asset: AssetId,
    amount: Amount,
    to: Option<Address>,
    expiry: u64,
    /// Print nothing once it commits (the caller reports).
    quiet: bool,
}

/// Proves a transfer or redeem, then [`submit`]s it.
fn prove_and_submit(
    cli: &Cli,
    o: &mut Open,
    client: &Client,
    unproven: shoji_prover::UnprovenTransaction,
    what: Outgoing,
) -> Result<(), Failure> {
    let tx = prove(cli, client.network(), |prover| {
        Ok(unproven
            .prove(prover, &mut rand_core::OsRng)?
            .into_transaction()?)
    })?;
    submit(cli, o, client, tx, what)
}

/// Records the transaction as pending (saved before it leaves), submits it, waits for its
/// certificate, then scans its block.
fn submit(
    cli: &Cli,
    o: &mut Open,
    client: &Client,
    tx: Transaction,
    what: Outgoing,
) -> Result<(), Failure> {
    let txid = tx.id();
    let bundle = tx.bundle();
    o.wallet.add_pending(Pending {
        txid,
        nullifiers: bundle.nullifiers,
        expiry_height: what.expiry,
        asset: what.asset,
        amount: what.amount,
        to: what.to,
    });
    o.save()?;
    let spinner = spinner(cli, format!("submitting to validator {}", client.node()));
    let result = client.submit(&tx);
    spinner.finish_and_clear();
    let (answer, finality, refusal) = match result {
        Ok(f) => (Answer::Applied(f.height), Some(f), None),
        Err(e @ ClientError::Rejected { height, .. }) => (Answer::Rejected(height), None, Some(e)),
        Err(e @ ClientError::Refused(_)) => (Answer::Refused, None, Some(e)),
        Err(e) => {
            return Err(anyhow::Error::new(e)
                .context(format!(
                    "transaction {txid} may still commit: its notes stay reserved until it commits or expires after height {}; run `shoji-wallet sync` to see",
                    what.expiry
                ))
                .into())
        }
    };
    // Whatever the validator answered, the certified blocks decide (`Wallet::settle`).
    sync(cli, o, client)?;
    let auth_id = tx.auth_id();
    let settlement = o
        .wallet
        .settle(&txid, answer, |h| certified_rejection(client, h, &auth_id))?;
    o.save()?;
    let node = client.node();
    let said = match answer {
        Answer::Applied(h) => {
            format!("validator {node} reported transaction {txid} applied in block {h}")
        }
        Answer::Rejected(h) => {
            format!("validator {node} reported transaction {txid} rejected in block {h}")
        }
        Answer::Refused => format!("validator {node} refused transaction {txid}"),
    };
    match settlement {
        Settlement::Committed { height, copy } => {
            if let (Answer::Rejected(h), false) = (answer, copy) {
                eprintln!("warning: {said}, but the certified block {h} does not reject it");
            }
            match (&finality, cli.json) {
                _ if what.quiet => {}
                (Some(f), _) => print_final(cli, &txid.to_string(), f),
                (None, true) => println!("{}", json!({"txid": txid.to_string(), "height": height})),
                (None, false) if copy => {
                    println!(
                        "Committed in block {height} (the network ordered a copy of it with other proof bytes; this copy was refused: {}).",
                        refusal.as_ref().map_or(String::new(), |e| e.to_string())
                    );
                    println!("Transaction {txid}");
                }
                (None, false) => {
                    println!("Committed in block {height}.");
                    println!("Transaction {txid}");
                }
            }
            Ok(())
        }
        Settlement::Uncertified { .. } => {
            eprintln!(
                "warning: {said}, which the network has not certified yet; run `shoji-wallet sync` to confirm"
            );
            if let Some(f) = &finality {
                print_final(cli, &txid.to_string(), f);
            }
            Ok(())
        }
        Settlement::Unsettled { height, contradicted: false } => Err(anyhow!(
            "{said}; block {height} is not certified yet: its notes stay reserved until it commits or expires after height {}; run `shoji-wallet sync` to see",
            what.expiry
        )
        .into()),
        Settlement::Unsettled { height, contradicted: true } => Err(anyhow!(
            "{said}, but the certified block {height} does not account for it: its notes stay reserved until it commits or expires after height {}; run `shoji-wallet sync` to see",
            what.expiry
        )
        .into()),
        Settlement::Rejected { height, code } => Err(fail(
            Exit::Rejected,
            anyhow!(
                "transaction {txid} was rejected in block {height} ({code}, certified by the network); nothing was spent"
            ),
        )),
        Settlement::Refused => Err(fail(
            Exit::Rejected,
            anyhow!(
                "{said} ({}); it did not go through; nothing was spent",
                refusal.as_ref().map_or(String::new(), |e| e.to_string())
            ),
        )),
    }
}

/// Why the certified block `height` says the exact bytes `auth_id` were rejected there; `None`
/// when it does not list them.
fn certified_rejection(
    client: &Client,
    height: u64,
    auth_id: &shoji_primitives::tx::TxId,
) -> Result<Option<shoji_ledger::RejectionCode>, Failure> {
    let mut found = None;
    let mut seen = false;
    // A batch reaching past the next checkpoint above `height`, which certifies the block.
    let liars = client.scan_certified(
        height,
        height,
        cli::SYNC_BATCH,
        |blocks, _| -> Result<(), Failure> {
            for b in blocks.iter().filter(|b| b.height == height) {
                seen = true;
                found = b
                    .rejected
                    .iter()
                    .find(|r| r.auth_id == *auth_id)
                    .map(|r| r.code);
            }
            Ok(())
        },
    )?;
    cli::warn_liars(&liars);
    if !seen {
        return Err(
            anyhow!("block {height} is not certified yet; run `shoji-wallet sync` to see").into(),
        );
    }
    Ok(found)
}

/// `key`'s public key, if `net` authorizes it to issue `asset`.
fn authorized_issuer(
    net: &Network,
    key: &ed25519_dalek::SigningKey,
    asset: AssetId,
) -> Result<[u8; 32], Failure> {
    let issuer = key.verifying_key().to_bytes();
    if !net
        .issuers
        .get(&issuer)
        .is_some_and(|assets| assets.contains(&asset))
    {
        return Err(fail(
            Exit::Rejected,
            anyhow!(
                "the network does not authorize this issuer key for asset {}",
                net.asset_name(asset)
            ),
        ));
    }
    Ok(issuer)
}

/// The issuer of `asset` on `net`, to redeem to.
fn issuer_of(net: &Network, asset: AssetId) -> Result<[u8; 32], Failure> {
    net.issuers
        .iter()
        .find(|(_, assets)| assets.contains(&asset))
        .map(|(k, _)| *k)
        .ok_or_else(|| {
            fail(
                Exit::UnknownAsset,
                anyhow!("no issuer of asset {} to redeem to", asset.0),
            )
        })
}

fn account_key(s: &str) -> Result<shoji_confidential::PublicKey, Failure> {
    let bytes = shoji_primitives::encoding::hex_decode("account key", s.trim())
        .ok()
        .and_then(|b| <[u8; 32]>::try_from(b).ok())
        .ok_or_else(|| {
            fail(
                Exit::BadAddress,
                anyhow!("{s:?} is not a 32-byte hex account key"),
            )
        })?;
    shoji_confidential::PublicKey::from_bytes(&bytes).map_err(|e| {
        fail(
            Exit::BadAddress,
            anyhow!("{s:?} is not an account key: {e}"),
        )
    })
}

/// The account auditor of `net`, or a failure saying the network has no accounts.
fn account_auditor(net: &Network) -> Result<shoji_confidential::PublicKey, Failure> {
    net.account_auditor.ok_or_else(|| {
        fail(
            Exit::Rejected,
            anyhow!("this network has no confidential accounts (its network file names no account auditor key)"),
        )
    })
}

/// What an account command that pays needs: the network (which must have accounts) and its
/// account auditor, the asset, the wallet synced and set to the network, a client, and the
/// expiry height for a transaction made now.
struct Ready {
    net: Network,
    auditor: shoji_confidential::PublicKey,
    asset: AssetId,
    o: Open,
    client: Client,
    expiry: u64,
}

fn ready(cli: &Cli, asset: &str) -> Result<Ready, Failure> {
    let net = network(cli)?;
    let auditor = account_auditor(&net)?;
    let asset = net.resolve_asset(asset)?;
    let mut o = open(cli)?;
    let client = connect(cli, &net)?;
    let tip = sync(cli, &mut o, &client)?.height;
    o.wallet.set_network(net.network_id);
    Ok(Ready {
        net,
        auditor,
        asset,
        o,
        client,
        expiry: tip + EXPIRY_BLOCKS,
    })
}

fn account(cli: &Cli, cmd: &AccountCommand) -> Result<(), Failure> {
    let submit = |o: &mut Open, client: &Client, tx: shoji_primitives::account::AccountTx| {
        let pb = spinner(cli, "waiting for the commit".into());
        let finality = client.submit_bytes(tx.to_bytes());
        pb.finish_and_clear();
        let finality = finality?;
        sync(cli, o, client)?;
        print_final(cli, &tx.id().to_string(), &finality);
        Ok::<(), Failure>(())
    };
    match cmd {
        AccountCommand::Address => {
            let o = open(cli)?;
            let key = shoji_primitives::encoding::hex_encode(&o.wallet.account_key().to_bytes());
            if cli.json {
                println!("{}", json!({"account_key": key}));
            } else {
                println!("{key}");
            }
            Ok(())
        }
        AccountCommand::Balance => {
            let o = open(cli)?;
            let net = Network::load(&cli.network).ok();
            let name = |a: AssetId| net.as_ref().map_or(a.0.to_string(), |n| n.asset_name(a));
            let rows: Vec<serde_json::Value> = o
                .wallet
                .accounts()
                .map(|(a, b)| json!({"asset": a.0, "name": name(*a), "balance": b.balance, "sequence": b.state.sequence, "credits": b.state.credits}))
                .collect();
            if cli.json {
                println!("{}", json!({"height": o.wallet.height(), "accounts": rows}));
            } else {
                println!("As of height {}:", o.wallet.height());
                if rows.is_empty() {
                    println!("  (no open account)");
                }
                for r in &rows {
                    println!(
                        "  {:>8} {:>12}",
                        r["name"].as_str().unwrap_or(""),
                        r["balance"].as_u64().unwrap_or(0)
                    );
                }
            }
            Ok(())
        }
        AccountCommand::Open { asset } => {
            let net = network(cli)?;
            account_auditor(&net)?;
            let asset = net.resolve_asset(asset)?;
            let mut o = open(cli)?;
            let client = connect(cli, &net)?;
            sync(cli, &mut o, &client)?;
            o.wallet.set_network(net.network_id);
            let tx = o.wallet.open_account(asset, &mut rand_core::OsRng)?;
            submit(&mut o, &client, tx)
        }
        AccountCommand::Send { to, amount, asset } => {
            let to = account_key(to)?;
            let amount = positive(*amount)?;
            let mut r = ready(cli, asset)?;
            let tx = r.o.wallet.account_send(
                &to,
                r.asset,
                amount.0,
                &r.auditor,
                r.expiry,
                &mut rand_core::OsRng,
            )?;
            submit(&mut r.o, &r.client, tx)
        }
        AccountCommand::Shield {
            amount,
            asset,
            to,
            memo: text,
        } => {
            let amount = positive(*amount)?;
            let memo = memo(text.as_deref())?;
            let to = to.as_deref().map(parse_address).transpose()?;
            let mut r = ready(cli, asset)?;
            let to = to.unwrap_or_else(|| r.o.wallet.address());
            let unproven = r.o.wallet.account_shield(
                to,
                r.asset,
                amount,
                memo,
                r.net.auditor,
                r.expiry,
                &mut rand_core::OsRng,
            )?;
            let (wallet, asset) = (&r.o.wallet, r.asset);
            let tx = prove(cli, &r.net, |prover| {
                let proven = unproven.prove(prover, &mut rand_core::OsRng)?;
                Ok(wallet.authorize_shield(proven, asset, &mut rand_core::OsRng)?)
            })?;
            let what = Outgoing {
                asset,
                amount,
                to: Some(to),
                expiry: r.expiry,
                quiet: false,
            };
            crate::submit(cli, &mut r.o, &r.client, tx, what)
        }
        AccountCommand::Unshield { amount, asset, to } => {
            let amount = positive(*amount)?;
            let to = to.as_deref().map(account_key).transpose()?;
            let mut r = ready(cli, asset)?;
            let to = to.unwrap_or_else(|| r.o.wallet.account_key());
            let unproven = r.o.wallet.account_unshield(
                &to,
                r.asset,
                amount,
                r.net.auditor,
                r.expiry,
                &mut rand_core::OsRng,
            )?;
            let what = Outgoing {
                asset: r.asset,
                amount,
                to: None,
                expiry: r.expiry,
                quiet: false,
            };
            prove_and_submit(cli, &mut r.o, &r.client, unproven, what)
        }
        AccountCommand::Redeem { amount, asset } => {
            let amount = positive(*amount)?;
            let mut r = ready(cli, asset)?;
            let issuer = issuer_of(&r.net, r.asset)?;
            let tx = r.o.wallet.account_redeem(
                issuer,
                r.asset,
                amount.0,
                r.expiry,
                &mut rand_core::OsRng,
            )?;
            submit(&mut r.o, &r.client, tx)
        }
        AccountCommand::Mint {
            issuer_key,
            to,
            amount,
            asset,
        } => {
            let to = account_key(to)?;
            let amount = positive(*amount)?;
            let net = network(cli)?;
            account_auditor(&net)?;
            let asset = net.resolve_asset(asset)?;
            let key = read_issuer_key(issuer_key)?;
            authorized_issuer(&net, &key, asset)?;
            let mut nonce = [0u8; 32];
            rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut nonce);
            let tx = shoji_primitives::account::AccountTx::mint(
                &net.network_id,
                &key,
                asset,
                to,
                amount,
                nonce,
            );
            let mut o = open(cli)?;
            let client = connect(cli, &net)?;
            submit(&mut o, &client, tx)
        }
    }
}

fn print_final(cli: &Cli, txid: &str, f: &shoji_client::Finality) {
    let hash = shoji_primitives::encoding::hex_encode(&f.block_hash.0);
    if cli.json {
        println!(
            "{}",
            json!({"txid": txid, "height": f.height, "block_hash": hash, "certificate_signatures": f.signatures})
        );
    } else {
        println!(
            "Committed in block {} (certificate: {} validator signatures, checked).",
            f.height, f.signatures
        );
        println!("Transaction {txid}");
    }
}

fn spinner(cli: &Cli, msg: String) -> ProgressBar {
    if cli.json {
        return ProgressBar::hidden();
    }
    let pb = ProgressBar::new_spinner();
    pb.set_style(
        ProgressStyle::with_template("{spinner} {msg} {elapsed}")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    pb.set_message(msg);
    pb.enable_steady_tick(Duration::from_millis(100));
    pb
}

fn prove(
    cli: &Cli,
    net: &Network,
    f: impl FnOnce(&Prover) -> anyhow::Result<Transaction>,
) -> Result<Transaction, Failure> {
    let pb = spinner(cli, "loading proving parameters".into());
    let prover = load_prover(cli, net)?;
    pb.set_message("proving");
    let tx = f(&prover)?;
    pb.finish_and_clear();
    Ok(tx)
}

struct SyncReport {
    height: u64,
    synced: Synced,
}

/// Scans every block the network has that the wallet has not, saving after each batch.
fn sync(cli: &Cli, o: &mut Open, client: &Client) -> Result<SyncReport, Failure> {
    let synced = cli::sync_certified(
        client,
        o.wallet.height(),
        "syncing",
        cli.json,
        |batch, node, done| {
            o.wallet
                .scan_blocks(batch)
                .with_context(|| format!("scanning blocks from validator {node}"))?;
            o.save()?;
            Ok(format!("{:.0} outputs/s", 2.0 * done.rate()))
        },
    )?;
    o.save()?;
    Ok(SyncReport {
        height: o.wallet.height(),
        synced,
    })
}

fn print_sync(cli: &Cli, r: &SyncReport) {
    // Two outputs per transaction.
    let (outputs, rate) = (2 * r.synced.transactions, 2.0 * r.synced.rate());
    let (blocks, seconds) = (r.synced.blocks, r.synced.seconds);
    if cli.json {
        println!(
            "{}",
            json!({"height": r.height, "blocks": blocks, "outputs": outputs, "seconds": seconds, "outputs_per_second": rate})
        );
    } else {
        println!(
            "Synced to height {} ({blocks} blocks, {outputs} outputs in {seconds:.2} s, {rate:.0} outputs/s).",
            r.height
        );
    }
}
