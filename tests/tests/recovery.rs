//! Escrowed recovery on a four-validator devnet (docs/protocol/recovery.md): governance names
//! three recovery agents, any two of them, and registers Bank B; Bank B escrows its seed, signed
//! by its identity key. Its devices lost, a fresh seed's guardian key is the request key: agent 0
//! opens the recovery; a release inside the window, and one by a key that is not the agent's,
//! are refused; after the window agents 1 and 2 release; the recovering wallet reads the escrow
//! and the releases from certified state and rebuilds the seed. A recovery of Bank C cancelled
//! by its identity key inside the window releases nothing.

use shoji_client::{Client, ClientError, Network};
use shoji_ledger::LedgerConfig;
use shoji_primitives::governance::{GovernanceAction, GovernanceTx, Participant};
use shoji_primitives::keys::{SpendingKeys, WalletSeed};
use shoji_primitives::recovery::{Escrow, RecoveryAgent, RecoveryAgents};
use shoji_wallet::escrow;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Blocks between opening a recovery and the first release.
/// The recovery window, in blocks. Longer than a checkpoint interval (8) with room to spare:
/// an idle leader fills the chain up to the next checkpoint height on its own, so a window of
/// 6 could close while the test waited for a certified entry (the early release then
/// committed inside what was meant to be the window).
const WINDOW: u64 = 24;

fn until<T>(what: &str, limit: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(t) = f() {
            return t;
        }
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn agent_seed(i: u8) -> WalletSeed {
    WalletSeed([0xa0 + i; 32])
}

fn guardian_key(seed: &WalletSeed) -> [u8; 32] {
    shoji_primitives::encoding::hex_decode("key", &shoji_wallet::backup::guardian_public(seed))
        .expect("hex")
        .try_into()
        .expect("32 bytes")
}

fn agents() -> RecoveryAgents {
    RecoveryAgents {
        agents: (0..3)
            .map(|i| RecoveryAgent {
                signing: escrow::agent_signing_key(&agent_seed(i))
                    .verifying_key()
                    .to_bytes(),
                encryption: guardian_key(&agent_seed(i)),
            })
            .collect(),
        threshold: 2,
        window_blocks: WINDOW,
    }
}

struct Consortium<'a> {
    client: &'a Client,
    network: &'a Network,
}

impl Consortium<'_> {
    fn seq(&self) -> u64 {
        self.client.status().expect("status").governance_seq
    }

    /// `action` at the next sequence number, signed by the administrators (`by` empty) or by
    /// `by` alone: its commit height, or why it was refused.
    fn submit(
        &self,
        action: GovernanceAction,
        by: Option<&ed25519_dalek::SigningKey>,
    ) -> Result<u64, ClientError> {
        let mut g = GovernanceTx::new(self.seq(), action);
        match by {
            Some(k) => g.approve(k, &self.network.network_id),
            None => {
                for i in 0..2 {
                    g.approve(
                        &shoji_node::devnet::dev_admin_key(i),
                        &self.network.network_id,
                    );
                }
            }
        }
        self.client.submit_bytes(g.to_bytes()).map(|f| f.height)
    }

    fn register(&self, name: &str, identity: &ed25519_dalek::SigningKey, seed: u8) {
        let participant = Participant {
            addresses: vec![SpendingKeys::from_seed(&WalletSeed([seed; 32])).address()],
            identity: identity.verifying_key().to_bytes(),
        };
        self.submit(
            GovernanceAction::RegisterParticipant {
                name: name.into(),
                participant,
            },
            None,
        )
        .expect("registered");
    }

    fn escrow(&self, name: &str, seed: &WalletSeed, identity: &ed25519_dalek::SigningKey) {
        let e = escrow::escrow(seed, &agents(), &mut rand_core::OsRng).expect("escrow");
        self.submit(
            GovernanceAction::EscrowSeed {
                name: name.into(),
                escrow: e,
            },
            Some(identity),
        )
        .expect("escrowed");
    }

    /// Commits blocks until the chain is at `height` at least: each a registration of an
    /// unrelated participant (an idle chain stops at a checkpoint).
    fn advance_to(&self, height: u64) {
        let filler = ed25519_dalek::SigningKey::from_bytes(&[0x5f; 32]);
        while self.client.status().expect("status").height < height {
            self.register("Filler", &filler, 9);
        }
    }

    /// The entry's escrow and releases once a stable checkpoint shows its escrow and at least
    /// `releases` releases.
    fn certified(&self, name: &str, releases: usize) -> (Escrow, BTreeMap<u8, [u8; 80]>) {
        until(
            "the certified registry entry",
            Duration::from_secs(60),
            || {
                let p = self.client.certified_policy().ok()?.policy?;
                let e = p.registry.get(name)?;
                let r = e
                    .recovery
                    .as_ref()
                    .map(|r| r.releases.clone())
                    .unwrap_or_default();
                (r.len() >= releases).then_some((e.escrow.clone()?, r))
            },
        )
    }
}

#[test]
fn two_agents_recover_an_escrowed_seed_after_the_window_and_a_cancelled_recovery_releases_nothing()
{
    shoji_params::dev::parameters().expect("development parameters");
    let prover = shoji_prover::Prover::dev().expect("parameters");
    let verifier = Arc::new(shoji_verifier::Verifier::new(&prover.proving_key().vk));
    let auditor = shoji_primitives::audit::AuditSecretKey::random(&mut rand_core::OsRng);
    let ledger = LedgerConfig {
        anchor_window_blocks: 100,
        auditor: auditor.public_key(),
        issuers: BTreeMap::new(),
        governance: shoji_node::devnet::dev_governance(),
        network_id: [0; 32],
        validators: Default::default(),
        checkpoint_interval: 8,
        window_size: 16,
        account_auditor: None,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let dir = tempfile::tempdir().expect("tempdir");
    let net = {
        let _guard = runtime.enter();
        shoji_node::devnet::start(4, ledger, verifier, dir.path()).expect("devnet")
    };
    let network = net.client_network(auditor.public_key(), BTreeMap::new());
    let client = Client::connect(&network, Some(1)).expect("connect");
    let c = Consortium {
        client: &client,
        network: &network,
    };

    // The agents, Bank B and its escrow, signed by its identity key (a stranger's is refused).
    c.submit(
        GovernanceAction::SetRecoveryAgents { agents: agents() },
        None,
    )
    .expect("agents named");
    let identity = ed25519_dalek::SigningKey::from_bytes(&[0x51; 32]);
    c.register("Bank B", &identity, 2);
    let seed = WalletSeed([0x42; 32]);
    let stranger = ed25519_dalek::SigningKey::from_bytes(&[0x66; 32]);
    let forged = escrow::escrow(&seed, &agents(), &mut rand_core::OsRng).expect("escrow");
    assert!(c
        .submit(
            GovernanceAction::EscrowSeed {
                name: "Bank B".into(),
                escrow: forged,
            },
            Some(&stranger),
        )
        .is_err());
    c.escrow("Bank B", &seed, &identity);

    // Everything lost. A fresh seed's guardian key is the request key; agent 0, satisfied out of
    // band, opens the recovery.
    let request = WalletSeed([0x77; 32]);
    let opened_at = c
        .submit(
            GovernanceAction::OpenRecovery {
                name: "Bank B".into(),
                request_key: guardian_key(&request),
            },
            Some(&escrow::agent_signing_key(&agent_seed(0))),
        )
        .expect("opened");
    let (escrowed, _) = c.certified("Bank B", 0);
    let release = |agent: u8| GovernanceAction::ReleaseShare {
        name: "Bank B".into(),
        agent,
        share: escrow::release(
            &agent_seed(agent),
            &agents(),
            &escrowed,
            agent,
            &guardian_key(&request),
            &mut rand_core::OsRng,
        )
        .expect("release"),
    };
    // Inside the window: refused. Signed by another key than agent 1's: refused.
    let early = c.submit(release(1), Some(&escrow::agent_signing_key(&agent_seed(1))));
    assert!(early.is_err(), "{early:?}");
    c.advance_to(opened_at + WINDOW);
    assert!(c.submit(release(1), Some(&stranger)).is_err());
    for agent in [1, 2] {
        c.submit(
            release(agent),
            Some(&escrow::agent_signing_key(&agent_seed(agent))),
        )
        .expect("released");
    }
    let (_, releases) = c.certified("Bank B", 2);
    let recovered = escrow::recover(&request, &escrowed, &releases).expect("recovered");
    assert_eq!(recovered.0, seed.0);

    // Bank C: a recovery its identity key cancels inside the window releases nothing.
    let identity_c = ed25519_dalek::SigningKey::from_bytes(&[0x53; 32]);
    c.register("Bank C", &identity_c, 3);
    c.escrow("Bank C", &WalletSeed([0x43; 32]), &identity_c);
    let opened_at = c
        .submit(
            GovernanceAction::OpenRecovery {
                name: "Bank C".into(),
                request_key: guardian_key(&request),
            },
            Some(&escrow::agent_signing_key(&agent_seed(2))),
        )
        .expect("opened");
    c.submit(
        GovernanceAction::CancelRecovery {
            name: "Bank C".into(),
        },
        Some(&identity_c),
    )
    .expect("cancelled");
    c.advance_to(opened_at + WINDOW);
    let (escrowed_c, _) = c.certified("Bank C", 0);
    let share = escrow::release(
        &agent_seed(0),
        &agents(),
        &escrowed_c,
        0,
        &guardian_key(&request),
        &mut rand_core::OsRng,
    )
    .expect("the agent can still compute it");
    let refused = c.submit(
        GovernanceAction::ReleaseShare {
            name: "Bank C".into(),
            agent: 0,
            share,
        },
        Some(&escrow::agent_signing_key(&agent_seed(0))),
    );
    assert!(
        matches!(&refused, Err(ClientError::Refused(why) | ClientError::Rejected { reason: why, .. }) if why.contains("cancelled")),
        "{refused:?}"
    );
}
