//! `shoji-auditor`: the designated auditor's tool.
//!
//! The auditor's view key and everything it has decrypted live in one passphrase-sealed file
//! (Argon2id + XChaCha20-Poly1305, locked, replaced atomically). A disclosure file proves one
//! transfer's contents to anyone holding the auditor's public key and access to a node.

use anyhow::{anyhow, Context};
use clap::{Parser, Subcommand, ValueEnum};
use serde_json::json;
use shoji_auditor::account_disclosure::{AccountDisclosureFile, ACCOUNT_DISCLOSURE_FORMAT};
use shoji_auditor::disclosure_file::DisclosureFile;
use shoji_auditor::records::{Query, Records};
use shoji_auditor::{AuditEntry, Auditor, Payment};
use shoji_cli as cli;
use shoji_cli::{fail, Exit, Failure};
use shoji_client::network::insecure_devnet_auditor;
use shoji_client::{Client, Network};
use shoji_primitives::audit::{AuditPlaintext, AuditSecretKey};
use shoji_primitives::encoding::{fr_to_bytes, hex_decode, hex_encode};
use shoji_primitives::keys::Address;
use shoji_primitives::note::AssetId;
use shoji_primitives::tx::{TxId, TxKind};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

const KIND: &[u8; 8] = b"SHOJIAUD";
const PASSPHRASE_ENV: &str = "SHOJI_AUDITOR_PASSPHRASE";

/// The exit codes this program returns, listed by `--help`.
const EXIT_CODES: [Exit; 8] = [
    Exit::Other,
    Exit::Usage,
    Exit::WrongPassphrase,
    Exit::Unreachable,
    Exit::InUse,
    Exit::File,
    Exit::InvalidDisclosure,
    Exit::NotFound,
];

#[derive(Parser)]
#[command(
    name = "shoji-auditor",
    version,
    about = "The designated auditor of a Shoji network: decrypt, report and disclose transfers.",
    after_help = Exit::help("key file", &EXIT_CODES)
)]
struct Cli {
    /// The auditor's key file.
    #[arg(
        long,
        global = true,
        env = "SHOJI_AUDITOR_KEY",
        default_value = "auditor.shoji"
    )]
    key: PathBuf,
    /// The network file.
    #[arg(
        long,
        global = true,
        env = "SHOJI_NETWORK",
        default_value = "devnet/devnet.json"
    )]
    network: PathBuf,
    /// Where the decrypted records are kept: a `postgres://…` URL, or an SQLite file (default:
    /// the key file's name with `.db`, created readable by its owner only).
    #[arg(long, global = true, env = "SHOJI_AUDITOR_DATABASE")]
    database: Option<String>,
    /// A PEM file of certificate authorities to trust for the PostgreSQL server's certificate,
    /// beside the system's (it also turns TLS on).
    #[arg(long, global = true, env = "SHOJI_AUDITOR_DATABASE_CA")]
    database_ca: Option<PathBuf>,
    /// A directory of participants: a JSON object mapping addresses (`shoji1…`) and account
    /// keys (64 hex digits) to names. `report` names addresses from the network's certified
    /// participant registry first; this file overrides it.
    #[arg(long, global = true, env = "SHOJI_DIRECTORY")]
    names: Option<PathBuf>,
    /// Read the passphrase from the first line of this file (else $SHOJI_AUDITOR_PASSPHRASE, else
    /// the terminal).
    #[arg(long, global = true)]
    passphrase_file: Option<PathBuf>,
    /// Talk to this validator first.
    #[arg(long, global = true)]
    node: Option<u16>,
    /// Print JSON instead of text.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Create the auditor's view key (stored encrypted) and print its public key, which
    /// governance registers.
    Keygen {
        /// Use the published development auditor key of `shoji-node devnet` instead of a new one.
        #[arg(long)]
        insecure_devnet: bool,
    },
    /// Print the public key, and the account-tier key derived from the same secret.
    PublicKey,
    /// Decrypt every new audit record designated to this key.
    Scan,
    /// One transfer: sender, receivers, amounts, asset, height.
    Show {
        /// Transaction id (hex).
        txid: String,
    },
    /// Payments between two heights, optionally for one participant.
    Report {
        /// First height (inclusive).
        #[arg(long, default_value_t = 1)]
        from: u64,
        /// Last height (inclusive; default: the last scanned).
        #[arg(long)]
        to: Option<u64>,
        /// Only payments in blocks at or after this time (RFC 3339, or a UTC date YYYY-MM-DD).
        #[arg(long)]
        since: Option<String>,
        /// Only payments in blocks before this time (RFC 3339, or a UTC date YYYY-MM-DD).
        #[arg(long)]
        until: Option<String>,
        /// Only payments from or to this participant (name, address or owner-tag prefix).
        #[arg(long)]
        participant: Option<String>,
        /// Also list issuances (mints into notes and into accounts).
        #[arg(long)]
        include_mints: bool,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
    },
    /// Write a disclosure of one transfer: its contents with a proof that they are what the
    /// on-chain record holds.
    Disclose {
        /// Transaction id (hex).
        txid: String,
        /// Output file (default: disclosure-<txid prefix>.json).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Check a disclosure file against the chain (needs no auditor key).
    VerifyDisclosure {
        /// The disclosure file.
        file: PathBuf,
    },
}

#[derive(Clone, Copy, ValueEnum, PartialEq, Eq)]
enum Format {
    Table,
    Csv,
    Json,
}

fn main() -> ExitCode {
    let args = Cli::parse();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => f.report(args.json),
    }
}

struct Open {
    auditor: Auditor,
    records: Records,
}

fn secret_file(cli: &Cli) -> cli::SecretFile<'_> {
    cli::SecretFile {
        path: &cli.key,
        kind: KIND,
        what: "auditor key",
        hint: "create one with `shoji-auditor keygen`, or pass --key",
        env_var: PASSPHRASE_ENV,
        passphrase_file: cli.passphrase_file.as_deref(),
    }
}

/// Where the records database is: `--database`, else the key file's name with `.db`.
fn database(cli: &Cli) -> String {
    cli.database
        .clone()
        .unwrap_or_else(|| cli.key.with_extension("db").display().to_string())
}

fn open(cli: &Cli) -> Result<Open, Failure> {
    let (file, payload) = secret_file(cli).open()?;
    let mut auditor = Auditor::from_bytes(&payload).context("reading the auditor state")?;
    let location = database(cli);
    let mut records = Records::open(
        &location,
        &auditor.key().public_key(),
        cli.database_ca.as_deref(),
    )
    .with_context(|| format!("opening the records database {}", redact(&location)))?;
    // A key file of the first layout held the records too: move them to the database, then
    // keep only the key in the file.
    let moved = auditor.take_entries();
    if !moved.is_empty() || auditor.height() > 0 {
        let height = auditor.height().max(records.height()?);
        records
            .append(&moved, &[], height)
            .context("moving the key file's records to the database")?;
        file.save(&auditor.to_bytes())
            .context("rewriting the key file without its records (the previous file is intact)")?;
        eprintln!(
            "Moved {} records from {} to {}.",
            moved.len(),
            cli.key.display(),
            redact(&location)
        );
    }
    auditor.resume_after(records.height()?);
    if let Some(names) = &cli.names {
        load_names(&mut auditor, names)?;
    }
    Ok(Open { auditor, records })
}

/// `location` without a password (`postgres://user:secret@host/db` → `postgres://user:…@host/db`).
fn redact(location: &str) -> String {
    match (location.find("://"), location.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let creds = &location[scheme + 3..at];
            match creds.split_once(':') {
                Some((user, _)) => {
                    format!("{}{user}:…{}", &location[..scheme + 3], &location[at..])
                }
                None => location.to_string(),
            }
        }
        _ => location.to_string(),
    }
}

/// Names every address of the participant registry, as certified at a validator's latest stable
/// checkpoint (revoked participants too: their past payments keep their names). Without a
/// reachable validator, or with one that answers what the network did not certify, the report
/// goes on with the names file alone, and says so.
fn registry_names(auditor: &mut Auditor, net: &Network) {
    let certified = Client::connect(net, None).and_then(|c| c.certified_policy());
    match certified {
        Ok(c) => {
            for (name, e) in c.policy.iter().flat_map(|p| p.registry.iter()) {
                for a in &e.participant.addresses {
                    auditor.name(a.apk, name);
                }
            }
        }
        Err(e) => {
            eprintln!("The participant registry is not used ({e}); names come from --names alone.")
        }
    }
}

/// Reads a directory file: `{"shoji1…": "Bank A", "<account key hex>": "Bank A", …}`.
fn load_names(auditor: &mut Auditor, path: &Path) -> Result<(), Failure> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let map: BTreeMap<String, String> = serde_json::from_str(&text).with_context(|| {
        format!(
            "{} must be a JSON object mapping addresses to names",
            path.display()
        )
    })?;
    for (addr, name) in map {
        if let Ok(a) = addr.parse::<Address>() {
            auditor.name(a.apk, &name);
            continue;
        }
        let key = hex_decode("account key", &addr)
            .ok()
            .and_then(|b| <[u8; 32]>::try_from(b).ok())
            .filter(|k| shoji_confidential::PublicKey::from_bytes(k).is_ok())
            .ok_or_else(|| {
                anyhow!(
                    "{}: {addr:?} is neither an address nor an account key",
                    path.display()
                )
            })?;
        auditor.name_account(key, &name);
    }
    Ok(())
}

fn network(cli: &Cli) -> Result<Network, Failure> {
    shoji_cli::load_network(&cli.network)
}

/// The record of `txid`, read back from the database and checked against its decryption.
fn find(o: &mut Open, txid: &TxId) -> Result<AuditEntry, Failure> {
    let found = o
        .records
        .entry(txid, o.auditor.key())
        .context("reading the records database")?;
    found.ok_or_else(|| {
        fail(
            Exit::NotFound,
            anyhow!(
                "transaction {txid} is not among the records designated to this key (scanned to height {}; run `shoji-auditor scan`)",
                o.auditor.height()
            ),
        )
    })
}

fn parse_txid(s: &str) -> Result<TxId, Failure> {
    let b = hex_decode("transaction id", s.trim())
        .map_err(|e| fail(Exit::Usage, anyhow!("{s:?} is not a transaction id: {e}")))?;
    let b: [u8; 32] = b.try_into().map_err(|_| {
        fail(
            Exit::Usage,
            anyhow!("a transaction id is 32 bytes (64 hex digits)"),
        )
    })?;
    Ok(TxId(b))
}

fn run(cli: &Cli) -> Result<(), Failure> {
    match &cli.command {
        Command::Keygen { insecure_devnet } => {
            let key = if *insecure_devnet {
                insecure_devnet_auditor()
            } else {
                AuditSecretKey::random(&mut rand_core::OsRng)
            };
            let auditor = Auditor::new(key);
            secret_file(cli).create(&auditor.to_bytes())?;
            let pk = hex_encode(&auditor.key().public_key().to_bytes());
            let apk = account_public_key(&auditor);
            if cli.json {
                println!(
                    "{}",
                    json!({"key_file": cli.key.display().to_string(), "public_key": pk, "account_public_key": apk})
                );
            } else {
                println!("Created {}.", cli.key.display());
                println!("Public key (register it with governance): {pk}");
                println!(
                    "Account-tier public key (the genesis's account_auditor_public_key): {apk}"
                );
            }
            Ok(())
        }
        Command::PublicKey => {
            let o = open(cli)?;
            let pk = hex_encode(&o.auditor.key().public_key().to_bytes());
            let apk = account_public_key(&o.auditor);
            if cli.json {
                println!("{}", json!({"public_key": pk, "account_public_key": apk}));
            } else {
                println!("{pk}");
                println!("account tier: {apk}");
            }
            Ok(())
        }
        Command::Scan => {
            let mut o = open(cli)?;
            let net = network(cli)?;
            let client = Client::connect(&net, cli.node)?;
            let mut found = 0usize;
            let synced = cli::sync_certified(
                &client,
                o.auditor.height(),
                "scanning",
                cli.json,
                |batch, _node, _done| {
                    for b in batch {
                        found += o.auditor.scan_next(b)?;
                    }
                    let height = o.auditor.height();
                    let accounts = o.auditor.take_account_records();
                    o.records
                        .append(&o.auditor.take_entries(), &accounts, height)
                        .context("appending to the records database")?;
                    Ok(format!("{found} designated records"))
                },
            )?;
            let total = o.records.count().context("counting the records")?;
            let records = synced.transactions;
            let secs = synced.seconds;
            if cli.json {
                println!(
                    "{}",
                    json!({"height": o.auditor.height(), "records_scanned": records, "decrypted": found, "total_entries": total, "database": o.records.backend(), "seconds": secs})
                );
            } else {
                println!(
                    "Scanned to height {}: {records} records, {found} designated to this key ({} in all), {secs:.2} s.",
                    o.auditor.height(),
                    total
                );
            }
            Ok(())
        }
        Command::Show { txid } => {
            let txid = parse_txid(txid)?;
            let mut o = open(cli)?;
            let net = Network::load(&cli.network).ok();
            let e = find(&mut o, &txid)?;
            let p = &e.plaintext;
            let asset = net
                .as_ref()
                .map_or(p.asset.0.to_string(), |n| n.asset_name(p.asset));
            let outputs: Vec<serde_json::Value> = (0..2)
                .map(|j| {
                    json!({
                        "receiver": o.auditor.participant(&p.receivers[j]),
                        "amount": p.values[j].0,
                        "change": p.receivers[j] == p.sender,
                    })
                })
                .collect();
            if cli.json {
                println!(
                    "{}",
                    json!({
                        "txid": txid.to_string(), "height": e.height, "time": cli::format_time(e.time_ms), "kind": TxKind::name(e.kind),
                        "sender": o.auditor.participant(&p.sender), "asset": p.asset.0, "asset_name": asset,
                        "outputs": outputs,
                    })
                );
            } else {
                println!("Transaction {txid}");
                println!("  kind    {}", TxKind::name(e.kind));
                println!("  height  {}", e.height);
                println!("  time    {}", cli::format_time(e.time_ms));
                println!("  asset   {asset}");
                println!("  sender  {}", o.auditor.participant(&p.sender));
                for j in 0..2 {
                    let note = if p.values[j].0 == 0 {
                        " (padding)"
                    } else if p.receivers[j] == p.sender {
                        " (change)"
                    } else {
                        ""
                    };
                    println!(
                        "  output  {} ← {}{}",
                        o.auditor.participant(&p.receivers[j]),
                        p.values[j].0,
                        note
                    );
                }
            }
            Ok(())
        }
        Command::Report {
            from,
            to,
            since,
            until,
            participant,
            include_mints,
            format,
        } => {
            let mut o = open(cli)?;
            let net = Network::load(&cli.network).ok();
            if let Some(net) = &net {
                registry_names(&mut o.auditor, net);
                // The local names file overrides the registry.
                if let Some(names) = &cli.names {
                    load_names(&mut o.auditor, names)?;
                }
            }
            let asset_name = |a: AssetId| net.as_ref().map_or(a.0.to_string(), |n| n.asset_name(a));
            let to = to.unwrap_or(o.auditor.height());
            let since = since.as_deref().map(parse_time).transpose()?;
            let until = until.as_deref().map(parse_time).transpose()?;
            // The database selects by height, time and, when it names one owner tag, the
            // participant; the names filter below handles owner-tag prefixes.
            let apk = participant.as_deref().and_then(|who| {
                who.parse::<Address>()
                    .ok()
                    .map(|a| fr_to_bytes(&a.apk))
                    .or_else(|| o.auditor.named(who))
            });
            let entries = o
                .records
                .query(&Query {
                    from: *from,
                    to,
                    since_ms: since,
                    until_ms: until,
                    participant: apk,
                    asset: None,
                })
                .context("querying the records database")?;
            let kinds: BTreeMap<TxId, TxKind> = entries.iter().map(|e| (e.txid, e.kind)).collect();
            let mut rows: Vec<(&'static str, Payment)> = o
                .auditor
                .payments(&entries)
                .into_iter()
                .map(|p| {
                    (
                        kinds.get(&p.txid).map_or("transfer", |k| TxKind::name(*k)),
                        p,
                    )
                })
                .collect();
            if *include_mints {
                rows.extend(o.auditor.mints(&entries).into_iter().map(|p| ("mint", p)));
            }
            let accounts = o
                .records
                .query_accounts(&Query {
                    from: *from,
                    to,
                    since_ms: since,
                    until_ms: until,
                    participant: None,
                    asset: None,
                })
                .context("querying the records database")?;
            rows.extend(
                o.auditor
                    .account_payments(&accounts)
                    .into_iter()
                    .filter(|(kind, _)| *include_mints || *kind != "account_mint"),
            );
            rows.sort_by_key(|(_, p)| p.height);
            if let Some(who) = participant {
                let who_apk = who
                    .parse::<Address>()
                    .ok()
                    .map(|a| o.auditor.participant(&a.apk));
                let matches =
                    |s: &str| s.eq_ignore_ascii_case(who) || who_apk.as_deref() == Some(s);
                rows.retain(|(_, p)| matches(&p.from) || matches(&p.to));
            }
            let records: Vec<serde_json::Value> = rows
                .iter()
                .map(|(kind, p)| {
                    json!({
                        "height": p.height, "time": cli::format_time(p.time_ms), "txid": p.txid.to_string(), "kind": kind,
                        "from": if *kind == "mint" { "(issuer)".to_string() } else { p.from.clone() },
                        "tier": if kind.starts_with("account_") { "accounts" } else { "notes" },
                        "to": p.to, "amount": p.amount.0, "asset": p.asset.0, "asset_name": asset_name(p.asset),
                    })
                })
                .collect();
            let fmt = if cli.json { Format::Json } else { *format };
            match fmt {
                Format::Json => println!(
                    "{}",
                    json!({"from_height": from, "to_height": to, "scanned_to": o.auditor.height(), "payments": records})
                ),
                Format::Csv => {
                    println!("height,time,txid,kind,from,to,amount,asset");
                    for r in &records {
                        println!(
                            "{},{},{},{},{},{},{},{}",
                            r["height"],
                            csv(r["time"].as_str()),
                            csv(r["txid"].as_str()),
                            csv(r["kind"].as_str()),
                            csv(r["from"].as_str()),
                            csv(r["to"].as_str()),
                            r["amount"],
                            csv(r["asset_name"].as_str())
                        );
                    }
                }
                Format::Table => {
                    println!(
                        "Payments in blocks {from}..={to} (scanned to {}):",
                        o.auditor.height()
                    );
                    println!(
                        "{:>7}  {:<24}  {:<16}  {:<20} {:<20} {:>12} asset",
                        "height", "time (UTC)", "tx", "from", "to", "amount"
                    );
                    for r in &records {
                        println!(
                            "{:>7}  {:<24}  {:<16}  {:<20} {:<20} {:>12} {}",
                            r["height"].as_u64().unwrap_or(0),
                            r["time"].as_str().unwrap_or(""),
                            &r["txid"].as_str().unwrap_or("")[..16],
                            r["from"].as_str().unwrap_or(""),
                            r["to"].as_str().unwrap_or(""),
                            r["amount"].as_u64().unwrap_or(0),
                            r["asset_name"].as_str().unwrap_or("")
                        );
                    }
                    let mut totals: BTreeMap<(String, String), u128> = BTreeMap::new();
                    for r in &records {
                        let key = (
                            r["from"].as_str().unwrap_or("").to_string(),
                            r["asset_name"].as_str().unwrap_or("").to_string(),
                        );
                        *totals.entry(key).or_default() +=
                            r["amount"].as_u64().unwrap_or(0) as u128;
                    }
                    if !totals.is_empty() {
                        println!("Totals paid:");
                        for ((who, asset), sum) in totals {
                            println!("  {who:<20} {sum:>12} {asset}");
                        }
                    }
                }
            }
            Ok(())
        }
        Command::Disclose { txid, out } => {
            let txid = parse_txid(txid)?;
            let mut o = open(cli)?;
            let account = o
                .records
                .account_record(&txid)
                .context("reading the records database")?;
            let (json_text, prefix) = match account {
                // An account transfer: its amount ciphertext is in the certified block.
                Some(r) => {
                    let net = network(cli)?;
                    let block = certified_block(&net, cli.node, r.height)?;
                    let name = |k: &Option<[u8; 32]>| k.map(|k| o.auditor.account_participant(&k));
                    let names = json!({"sender": name(&r.from), "receiver": name(&r.to)});
                    let file = AccountDisclosureFile::new(
                        &block,
                        &txid,
                        o.auditor.account_key(),
                        Some(names),
                        &mut rand_core::OsRng,
                    )
                    .map_err(|e| anyhow!("transaction {txid}: {e}"))?;
                    (
                        serde_json::to_string_pretty(&file)?,
                        file.txid[..16].to_string(),
                    )
                }
                None => {
                    let e = find(&mut o, &txid)?;
                    let proof = o.auditor.disclose_entry(&e, &mut rand_core::OsRng);
                    let names = json!({
                        "sender": o.auditor.participant(&e.plaintext.sender),
                        "receivers": [o.auditor.participant(&e.plaintext.receivers[0]), o.auditor.participant(&e.plaintext.receivers[1])],
                    });
                    let file =
                        DisclosureFile::new(&e, &o.auditor.key().public_key(), &proof, Some(names));
                    (
                        serde_json::to_string_pretty(&file)?,
                        file.txid[..16].to_string(),
                    )
                }
            };
            let path = out
                .clone()
                .unwrap_or_else(|| PathBuf::from(format!("disclosure-{prefix}.json")));
            shoji_client::sealed::write_atomic(&path, json_text.as_bytes())
                .with_context(|| format!("writing {}", path.display()))?;
            if cli.json {
                println!(
                    "{}",
                    json!({"file": path.display().to_string(), "txid": txid.to_string()})
                );
            } else {
                println!("Wrote {} (disclosure of {txid}).", path.display());
            }
            Ok(())
        }
        Command::VerifyDisclosure { file } => {
            let net = network(cli)?;
            let text = std::fs::read_to_string(file)
                .with_context(|| format!("reading {}", file.display()))?;
            let format = serde_json::from_str::<serde_json::Value>(&text)
                .ok()
                .and_then(|v| v["format"].as_str().map(str::to_string));
            if format.as_deref() == Some(ACCOUNT_DISCLOSURE_FORMAT) {
                return verify_account_disclosure(cli, &net, file, &text);
            }
            let d: DisclosureFile = serde_json::from_str(&text).map_err(|e| {
                fail(
                    Exit::InvalidDisclosure,
                    anyhow!("{} is not a disclosure file: {e}", file.display()),
                )
            })?;
            let (claimed, time_ms) = verify(&net, cli.node, &d).map_err(|e| {
                if e.code == Exit::Other {
                    fail(
                        Exit::InvalidDisclosure,
                        e.error.context("INVALID disclosure"),
                    )
                } else {
                    e
                }
            })?;
            let asset = net.asset_name(claimed.asset);
            // What is proven is owner tags; the names in the file are the auditor's labels for
            // them, which the proof says nothing about: shown as such, after the tags.
            let names = d.names.clone().unwrap_or_default();
            let tag = |apk: &shoji_primitives::Fr| hex_encode(&fr_to_bytes(apk))[..16].to_string();
            let label = |v: &serde_json::Value| v.as_str().map(str::to_string);
            let party = |apk: &shoji_primitives::Fr, v: &serde_json::Value| match label(v) {
                Some(l) => format!("owner tag {} (the auditor's label: {l:?})", tag(apk)),
                None => format!("owner tag {}", tag(apk)),
            };
            let paid: Vec<usize> = (0..2).filter(|&j| claimed.values[j].0 > 0).collect();
            let outs: Vec<String> = paid
                .iter()
                .map(|&j| {
                    if claimed.receivers[j] == claimed.sender {
                        format!("{} {} back to itself (change)", claimed.values[j].0, asset)
                    } else {
                        format!(
                            "{} {} to {}",
                            claimed.values[j].0,
                            asset,
                            party(&claimed.receivers[j], &names["receivers"][j])
                        )
                    }
                })
                .collect();
            if cli.json {
                let outputs: Vec<serde_json::Value> = paid
                    .iter()
                    .map(|&j| {
                        json!({
                            "amount": claimed.values[j].0,
                            "asset": asset,
                            "receiver_tag": tag(&claimed.receivers[j]),
                            "receiver_label": label(&names["receivers"][j]),
                            "change": claimed.receivers[j] == claimed.sender,
                        })
                    })
                    .collect();
                println!(
                    "{}",
                    json!({"valid": true, "kind": d.kind, "txid": d.txid, "height": d.height, "time": cli::format_time(time_ms), "sender_tag": tag(&claimed.sender), "sender_label": label(&names["sender"]), "outputs": outputs})
                );
            } else {
                println!(
                    "VALID: {} {} in block {} ({}): {} sent {}.",
                    d.kind,
                    d.txid,
                    d.height,
                    cli::format_time(time_ms),
                    party(&claimed.sender, &names["sender"]),
                    outs.join(" and ")
                );
                println!("(The kind, amounts, asset and owner tags are proven against the block; the labels are the auditor's word, not proven.)");
            }
            Ok(())
        }
    }
}

/// Unix milliseconds of an RFC 3339 time or a UTC date.
fn parse_time(s: &str) -> Result<u64, Failure> {
    let t = if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
        t.timestamp_millis()
    } else if let Ok(d) = chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        d.and_hms_opt(0, 0, 0)
            .map(|t| t.and_utc().timestamp_millis())
            .unwrap_or(0)
    } else {
        return Err(fail(
            Exit::Usage,
            anyhow!(
                "{s:?} is not a time: use RFC 3339 (2026-11-25T09:30:00Z) or a date (2026-11-25)"
            ),
        ));
    };
    Ok(t.max(0) as u64)
}

fn csv(s: Option<&str>) -> String {
    let s = s.unwrap_or("");
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// Checks `d` against the chain: the transaction is in the block it names, designated to the
/// key it names, with the record it quotes, and the proof shows the record decrypts to the claim.
fn verify(
    net: &Network,
    node: Option<u16>,
    d: &DisclosureFile,
) -> Result<(AuditPlaintext, u64), Failure> {
    let block = certified_block(net, node, d.height)?;
    let claimed = d.check(&block)?;
    Ok((claimed, block.time_ms))
}

/// The block at `height` as the network certified it (a stable checkpoint's state root covers
/// it), from the first validator that does not lie about it.
fn certified_block(
    net: &Network,
    node: Option<u16>,
    height: u64,
) -> Result<shoji_ledger::CompactBlock, Failure> {
    let client = Client::connect(net, node)?;
    let mut found = None;
    let liars = client.scan_certified(height, height, 64, |batch, _| {
        found = batch.iter().find(|b| b.height == height).cloned();
        Ok::<(), Failure>(())
    })?;
    cli::warn_liars(&liars);
    Ok(found.ok_or_else(|| {
        anyhow!("block {height} is not under a stable checkpoint yet (try again shortly)")
    })?)
}

/// `verify-disclosure` of an account transfer's disclosure file (`text`, read from `file`).
fn verify_account_disclosure(
    cli: &Cli,
    net: &Network,
    file: &Path,
    text: &str,
) -> Result<(), Failure> {
    let invalid = |e: anyhow::Error| fail(Exit::InvalidDisclosure, e.context("INVALID disclosure"));
    let d: AccountDisclosureFile = serde_json::from_str(text).map_err(|e| {
        fail(
            Exit::InvalidDisclosure,
            anyhow!("{} is not a disclosure file: {e}", file.display()),
        )
    })?;
    let block = certified_block(net, cli.node, d.height)?;
    d.check(&block).map_err(|e| invalid(e.into()))?;
    let asset = net.asset_name(AssetId(d.asset));
    let names = d.names.clone().unwrap_or_default();
    let label = |v: &serde_json::Value| v.as_str().map(str::to_string);
    let party = |key: &str, v: &serde_json::Value| match label(v) {
        Some(l) => format!("account {} (the auditor's label: {l:?})", &key[..16]),
        None => format!("account {}", &key[..16]),
    };
    if cli.json {
        println!(
            "{}",
            json!({"valid": true, "kind": "account_transfer", "txid": d.txid, "height": d.height, "time": cli::format_time(block.time_ms),
                "sender": d.sender, "sender_label": label(&names["sender"]), "receiver": d.receiver, "receiver_label": label(&names["receiver"]),
                "amount": d.amount, "asset": asset})
        );
    } else {
        println!(
            "VALID: account transfer {} in block {} ({}): {} paid {} {} to {}.",
            d.txid,
            d.height,
            cli::format_time(block.time_ms),
            party(&d.sender, &names["sender"]),
            d.amount,
            asset,
            party(&d.receiver, &names["receiver"]),
        );
        println!("(The amount, asset and accounts are proven against the block; the labels are the auditor's word, not proven.)");
    }
    Ok(())
}

/// The auditor's account-tier public key (confidential accounts), hex: derived from the same
/// secret as its note-tier key.
fn account_public_key(auditor: &Auditor) -> String {
    hex_encode(&auditor.account_key().public().to_bytes())
}
