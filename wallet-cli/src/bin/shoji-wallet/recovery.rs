//! `shoji-wallet recovery …`: escrowed recovery with the consortium's recovery agents
//! (docs/protocol/recovery.md). A participant escrows its seed and can cancel a recovery; an
//! agent opens a recovery and releases its share; the recovering participant's fresh wallet
//! collects the releases into the old seed and sweeps its notes into itself.
//!
//! Everything read from the ledger (the agents, an escrow, a recovery and its releases) is read
//! from certified state (`Client::certified_policy`), never from one validator's word; every
//! step is a governance transaction signed by one key, and the ledger checks who may sign it.

use super::*;
use shoji_ledger::RegistryEntry;
use shoji_primitives::encoding::hex_encode;
use shoji_primitives::governance::{GovernanceAction, GovernanceTx};
use shoji_primitives::recovery::RecoveryAgents;
use shoji_wallet::escrow;

/// `shoji-wallet recovery …`.
#[derive(Subcommand)]
pub(crate) enum RecoveryCommand {
    /// This wallet's keys for recovery: its participant identity key (what governance
    /// registers with --identity-key), its agent key `SIGNING:ENCRYPTION` (what governance
    /// names with --set-recovery-agents) and its request key (what an agent opens a recovery
    /// of a lost wallet to).
    Keys,
    /// Escrow this wallet's seed with the network's recovery agents, under the name this
    /// wallet's identity key is registered as.
    Escrow {
        /// The participant's registered name.
        #[arg(long)]
        name: String,
    },
    /// What certified ledger state holds of a participant's escrow and recovery.
    Status {
        /// The participant's registered name.
        #[arg(long)]
        name: String,
    },
    /// Cancel a recovery of this participant's seed (its identity key signs): no agent can
    /// release a share to it any more.
    Cancel {
        /// The participant's registered name.
        #[arg(long)]
        name: String,
    },
    /// As a recovery agent: open a recovery of a participant's seed to a request key, having
    /// checked out of band who asks. Agents release their shares once the window has passed.
    Open {
        /// The participant's registered name.
        #[arg(long)]
        name: String,
        /// The request key (hex): the recovering wallet's `recovery keys` request key.
        #[arg(long)]
        request_key: String,
    },
    /// As a recovery agent: release this agent's share of the participant's escrow, encrypted
    /// to the open recovery's request key (refused inside the window and after a cancel).
    Release {
        /// The participant's registered name.
        #[arg(long)]
        name: String,
    },
    /// In the recovering (fresh) wallet whose request key the recovery was opened to: rebuild
    /// the escrowed seed from the agents' releases into the wallet file --out, sync it, and
    /// with --sweep pay all its notes to this wallet. Run again to finish an interrupted sweep.
    Collect {
        /// The participant's registered name.
        #[arg(long)]
        name: String,
        /// The wallet file to write the recovered seed to (opened again if it exists; sealed
        /// with this wallet's passphrase source).
        #[arg(long)]
        out: PathBuf,
        /// Pay every note of the recovered wallet to this wallet.
        #[arg(long)]
        sweep: bool,
    },
}

/// A guardian/request key (hex) as 32 bytes.
fn key_bytes(what: &'static str, hex: &str) -> Result<[u8; 32], Failure> {
    shoji_primitives::encoding::hex_decode(what, hex.trim())
        .ok()
        .and_then(|b| <[u8; 32]>::try_from(b).ok())
        .filter(|k| {
            curve25519_dalek::ristretto::CompressedRistretto(*k)
                .decompress()
                .is_some()
        })
        .ok_or_else(|| {
            fail(
                Exit::Usage,
                anyhow!("{hex:?} is not a {what} (64 hex digits of a Ristretto point)"),
            )
        })
}

/// The certified policy's recovery agents and `name`'s registry entry.
fn certified(client: &Client, name: &str) -> Result<(RecoveryAgents, RegistryEntry, u64), Failure> {
    let c = client.certified_policy()?;
    let policy = c.policy.as_ref();
    let entry = policy.and_then(|p| p.registry.get(name)).ok_or_else(|| {
        fail(
            Exit::Usage,
            anyhow!(
                "no participant is registered as {name:?} as of the certified height {} (one registered since shows once a checkpoint covers it)",
                c.height
            ),
        )
    })?;
    let agents = policy
        .and_then(|p| p.recovery_agents.clone())
        .ok_or_else(|| {
            fail(
                Exit::Usage,
                anyhow!(
                    "the network names no recovery agents as of the certified height {} (governance: --set-recovery-agents)",
                    c.height
                ),
            )
        })?;
    Ok((agents, entry.clone(), c.height))
}

/// Signs `action` with `key` alone at the network's next governance sequence number and waits
/// for its commit certificate.
fn submit_signed(
    client: &Client,
    net: &Network,
    action: GovernanceAction,
    key: &ed25519_dalek::SigningKey,
) -> Result<shoji_client::Finality, Failure> {
    let mut g = GovernanceTx::new(client.status()?.governance_seq, action);
    g.approve(key, &net.network_id);
    client.submit_bytes(g.to_bytes()).map_err(|e| match e {
        e @ (ClientError::Refused(_) | ClientError::Rejected { .. }) => {
            fail(Exit::Rejected, anyhow::Error::new(e))
        }
        e => e.into(),
    })
}

/// This agent's index among `agents`, by its signing key.
fn agent_index(agents: &RecoveryAgents, key: &ed25519_dalek::SigningKey) -> Result<u8, Failure> {
    let mine = key.verifying_key().to_bytes();
    agents
        .agents
        .iter()
        .position(|a| a.signing == mine)
        .map(|i| i as u8)
        .ok_or_else(|| {
            fail(
                Exit::Usage,
                anyhow!(
                    "this wallet is not one of the network's recovery agents (its agent signing key is {})",
                    hex_encode(&mine)
                ),
            )
        })
}

fn print(cli: &Cli, value: serde_json::Value, text: String) {
    if cli.json {
        println!("{value}");
    } else {
        println!("{text}");
    }
}

pub(crate) fn run(cli: &Cli, cmd: &RecoveryCommand) -> Result<(), Failure> {
    match cmd {
        RecoveryCommand::Keys => {
            let o = open(cli)?;
            let seed = o.wallet.seed();
            let identity = hex_encode(escrow::identity_key(seed).verifying_key().as_bytes());
            let guardian = shoji_wallet::backup::guardian_public(seed);
            let agent = format!(
                "{}:{guardian}",
                hex_encode(escrow::agent_signing_key(seed).verifying_key().as_bytes())
            );
            print(
                cli,
                json!({"identity_key": identity, "agent_key": agent, "request_key": guardian}),
                format!(
                    "identity key  {identity}\nagent key     {agent}\nrequest key   {guardian}"
                ),
            );
            Ok(())
        }
        RecoveryCommand::Escrow { name } => {
            let o = open(cli)?;
            let net = network(cli)?;
            let client = connect(cli, &net)?;
            let (agents, entry, _) = certified(&client, name)?;
            let identity = escrow::identity_key(o.wallet.seed());
            let mine = identity.verifying_key().to_bytes();
            if entry.participant.identity != mine {
                return Err(fail(
                    Exit::Usage,
                    anyhow!(
                        "{name:?} is registered with identity key {}, not this wallet's {}: governance registers the name again with this wallet's identity key (`shoji-wallet recovery keys`)",
                        hex_encode(&entry.participant.identity),
                        hex_encode(&mine)
                    ),
                ));
            }
            let e = escrow::escrow(o.wallet.seed(), &agents, &mut rand_core::OsRng)
                .map_err(anyhow::Error::new)?;
            let f = submit_signed(
                &client,
                &net,
                GovernanceAction::EscrowSeed {
                    name: name.clone(),
                    escrow: e,
                },
                &identity,
            )?;
            print(
                cli,
                json!({"name": name, "height": f.height, "agents": agents.agents.len(), "threshold": agents.threshold}),
                format!(
                    "Escrowed the seed of {name:?} in block {} with {} recovery agents, any {} of which can recover it.",
                    f.height,
                    agents.agents.len(),
                    agents.threshold
                ),
            );
            Ok(())
        }
        RecoveryCommand::Status { name } => {
            let net = network(cli)?;
            let client = connect(cli, &net)?;
            let (agents, entry, height) = certified(&client, name)?;
            let current = entry.escrow.as_ref().map(|e| e.agents == agents.id());
            let recovery = entry.recovery.as_ref().map(|r| {
                json!({
                    "request_key": hex_encode(&r.request_key),
                    "opened_at": r.opened_at,
                    "opened_by": r.opened_by,
                    "releases_from": r.opened_at.saturating_add(agents.window_blocks),
                    "cancelled": r.cancelled,
                    "released_by": r.releases.keys().collect::<Vec<_>>(),
                })
            });
            let text = {
                let mut t = format!("As of the certified height {height}, {name:?}:\n");
                t += &match current {
                    None => "  no escrow\n".to_string(),
                    Some(true) => format!(
                        "  seed escrowed with the current {} agents (any {} recover it)\n",
                        agents.agents.len(),
                        agents.threshold
                    ),
                    Some(false) => {
                        "  seed escrowed with earlier agents: escrow again to be recoverable\n"
                            .to_string()
                    }
                };
                t += &match &entry.recovery {
                    None => "  no recovery".to_string(),
                    Some(r) if r.cancelled => format!(
                        "  recovery opened at height {} by agent {}: cancelled",
                        r.opened_at, r.opened_by
                    ),
                    Some(r) => format!(
                        "  recovery opened at height {} by agent {} to request key {}: releases from height {}; released by {} of {} needed",
                        r.opened_at,
                        r.opened_by,
                        hex_encode(&r.request_key),
                        r.opened_at.saturating_add(agents.window_blocks),
                        r.releases.len(),
                        agents.threshold
                    ),
                };
                t
            };
            print(
                cli,
                json!({"name": name, "height": height, "escrowed": current.is_some(),
                       "escrow_current": current.unwrap_or(false), "threshold": agents.threshold,
                       "recovery": recovery}),
                text,
            );
            Ok(())
        }
        RecoveryCommand::Cancel { name } => {
            let o = open(cli)?;
            let net = network(cli)?;
            let client = connect(cli, &net)?;
            let f = submit_signed(
                &client,
                &net,
                GovernanceAction::CancelRecovery { name: name.clone() },
                &escrow::identity_key(o.wallet.seed()),
            )?;
            print(
                cli,
                json!({"name": name, "height": f.height, "cancelled": true}),
                format!(
                    "Cancelled the recovery of {name:?} in block {}: no share is released to it.",
                    f.height
                ),
            );
            Ok(())
        }
        RecoveryCommand::Open { name, request_key } => {
            let request_key = key_bytes("request key", request_key)?;
            let o = open(cli)?;
            let net = network(cli)?;
            let client = connect(cli, &net)?;
            let (agents, _, _) = certified(&client, name)?;
            let key = escrow::agent_signing_key(o.wallet.seed());
            let agent = agent_index(&agents, &key)?;
            let f = submit_signed(
                &client,
                &net,
                GovernanceAction::OpenRecovery {
                    name: name.clone(),
                    request_key,
                },
                &key,
            )?;
            let from = f.height.saturating_add(agents.window_blocks);
            print(
                cli,
                json!({"name": name, "height": f.height, "agent": agent, "releases_from": from}),
                format!(
                    "Agent {agent} opened a recovery of {name:?} in block {}; agents may release from height {from}, and until then its identity key can cancel it.",
                    f.height
                ),
            );
            Ok(())
        }
        RecoveryCommand::Release { name } => {
            let o = open(cli)?;
            let net = network(cli)?;
            let client = connect(cli, &net)?;
            let (agents, entry, height) = certified(&client, name)?;
            let key = escrow::agent_signing_key(o.wallet.seed());
            let agent = agent_index(&agents, &key)?;
            let (Some(e), Some(r)) = (&entry.escrow, &entry.recovery) else {
                return Err(fail(
                    Exit::Usage,
                    anyhow!("no recovery of {name:?} is open as of the certified height {height}"),
                ));
            };
            let share = escrow::release(
                o.wallet.seed(),
                &agents,
                e,
                agent,
                &r.request_key,
                &mut rand_core::OsRng,
            )
            .map_err(|e| fail(Exit::Rejected, anyhow::Error::new(e)))?;
            let f = submit_signed(
                &client,
                &net,
                GovernanceAction::ReleaseShare {
                    name: name.clone(),
                    agent,
                    share,
                },
                &key,
            )?;
            print(
                cli,
                json!({"name": name, "height": f.height, "agent": agent}),
                format!(
                    "Agent {agent} released its share of {name:?} to request key {} in block {}.",
                    hex_encode(&r.request_key),
                    f.height
                ),
            );
            Ok(())
        }
        RecoveryCommand::Collect { name, out, sweep } => collect(cli, name, out, *sweep),
    }
}

/// `recovery collect`: the releases opened with this wallet's seed, the old seed rebuilt into
/// `out`, synced, and with `sweep` its notes paid to this wallet.
fn collect(cli: &Cli, name: &str, out: &Path, sweep: bool) -> Result<(), Failure> {
    let this = open(cli)?;
    let net = network(cli)?;
    let client = connect(cli, &net)?;
    let (agents, entry, height) = certified(&client, name)?;
    let (Some(e), Some(r)) = (&entry.escrow, &entry.recovery) else {
        return Err(fail(
            Exit::Usage,
            anyhow!("no recovery of {name:?} is open as of the certified height {height}"),
        ));
    };
    let mine = shoji_wallet::backup::guardian_public(this.wallet.seed());
    if hex_encode(&r.request_key) != mine {
        return Err(fail(
            Exit::Usage,
            anyhow!(
                "the recovery of {name:?} was opened to request key {}, not this wallet's {mine}",
                hex_encode(&r.request_key)
            ),
        ));
    }
    if r.releases.len() < usize::from(agents.threshold) {
        return Err(fail(
            Exit::Usage,
            anyhow!(
                "{} of the {} releases needed are in certified state at height {height}; agents release from height {}",
                r.releases.len(),
                agents.threshold,
                r.opened_at.saturating_add(agents.window_blocks)
            ),
        ));
    }
    let seed = escrow::recover(this.wallet.seed(), e, &r.releases)
        .map_err(|e| fail(Exit::Rejected, anyhow::Error::new(e)))?;
    let mut file = secret_file(cli);
    file.path = out;
    let mut old = if out.exists() {
        let (f, payload) = file.open()?;
        let wallet = Wallet::from_bytes(&payload).context("reading the recovered wallet")?;
        if wallet.seed().0 != seed.0 {
            return Err(fail(
                Exit::File,
                anyhow!(
                    "{} holds another wallet than the recovered one: choose another --out",
                    out.display()
                ),
            ));
        }
        Open { wallet, file: f }
    } else {
        let wallet = Wallet::new(&seed);
        let f = file.create(&wallet.to_bytes())?;
        Open { wallet, file: f }
    };
    drop(seed);
    sync(cli, &mut old, &client)?;
    let old_address = old.wallet.address().to_string();
    let mut swept = Vec::new();
    if sweep {
        swept = sweep_notes(cli, &mut old, &client, this.wallet.address())?;
    }
    let balances: Vec<serde_json::Value> = old
        .wallet
        .assets()
        .into_iter()
        .map(|a| json!({"asset": a.0, "name": net.asset_name(a), "balance": old.wallet.balance(a)}))
        .collect();
    let mut text = format!(
        "Recovered the seed of {name:?} (address {old_address}) into {} from {} agents' releases.",
        out.display(),
        r.releases.len()
    );
    for s in &swept {
        text += &format!(
            "\nSwept {} {} to this wallet in {} payments.",
            s["amount"],
            s["name"].as_str().unwrap_or_default(),
            s["payments"]
        );
    }
    if !sweep {
        text += "\nIts balances stay there; `--sweep` pays its notes to this wallet.";
    }
    print(
        cli,
        json!({"name": name, "wallet": out.display().to_string(), "address": old_address,
               "swept": swept, "balances": balances}),
        text,
    );
    Ok(())
}

/// Pays every unspent note of `from` to `to`, two at a time (a transaction spends at most
/// two), syncing before each: what was paid, per asset.
fn sweep_notes(
    cli: &Cli,
    from: &mut Open,
    client: &Client,
    to: Address,
) -> Result<Vec<serde_json::Value>, Failure> {
    let net = client.network().clone();
    let mut swept = Vec::new();
    for asset in from.wallet.assets() {
        let (mut total, mut payments) = (0u128, 0u32);
        loop {
            let tip = sync(cli, from, client)?.height;
            let pending: Vec<_> = from
                .wallet
                .pending()
                .iter()
                .flat_map(|p| p.nullifiers.iter().copied())
                .collect();
            let mut values: Vec<u64> = from
                .wallet
                .notes()
                .iter()
                .filter(|n| {
                    n.spent_at.is_none()
                        && n.note.asset == asset
                        && n.note.value.0 > 0
                        && !pending.contains(&n.nullifier)
                })
                .map(|n| n.note.value.0)
                .collect();
            values.sort_unstable_by(|a, b| b.cmp(a));
            let amount = match values.as_slice() {
                [] => break,
                [a] => *a,
                [a, b, ..] => a.checked_add(*b).unwrap_or(*a),
            };
            from.wallet.set_network(net.network_id);
            let unproven = from.wallet.pay(
                to,
                asset,
                Amount(amount),
                Memo::from_text("recovered").unwrap_or_else(Memo::empty),
                net.auditor,
                tip + EXPIRY_BLOCKS,
                &mut rand_core::OsRng,
            )?;
            let what = Outgoing {
                asset,
                amount: Amount(amount),
                to: Some(to),
                expiry: tip + EXPIRY_BLOCKS,
                quiet: true,
            };
            prove_and_submit(cli, from, client, unproven, what)?;
            total += u128::from(amount);
            payments += 1;
        }
        if payments > 0 {
            swept.push(json!({"asset": asset.0, "name": net.asset_name(asset), "amount": total, "payments": payments}));
        }
    }
    Ok(swept)
}
