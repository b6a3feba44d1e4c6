//! The validator's metrics, in Prometheus conventions (`shoji_*`, units in names, `_total`
//! counters, histograms with buckets), and its health: what `/metrics`, `/livez` and
//! `/readyz` of the operations address ([`crate::operations`]) serve.
//!
//! The handles are shared (cloning one shares its value): [`NodeCore`](crate::NodeCore) counts
//! what it verifies, executes and stores, the host what clients ask and what the replica's
//! state is after each turn of its loop, and the transport what it refuses
//! ([`shoji_net::NetMetrics`]). [`registry`] gathers them for the text encoder.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::{Registry, Unit};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// A transaction's kind and outcome.
#[derive(Clone, Debug, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct TxLabels {
    /// `transfer`, `mint`, `redeem`, `governance` or `opaque`.
    pub kind: &'static str,
    /// `applied` or `rejected`.
    pub outcome: &'static str,
}

/// One label: a reason or a result.
#[derive(Clone, Debug, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct ReasonLabel {
    /// The reason.
    pub reason: &'static str,
}

/// A client request's kind and result.
#[derive(Clone, Debug, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct RequestLabels {
    /// `submit`, `status`, `tree_state`, `compact_blocks`, `certified`, `epoch_change` or
    /// `malformed`.
    pub kind: &'static str,
    /// `ok`, `refused` (a submission refused at admission) or `error`.
    pub result: &'static str,
}

fn histogram(start: f64, factor: f64, count: u16) -> Histogram {
    Histogram::new(exponential_buckets(start, factor, count))
}

/// Every metric a validator exports (see the module documentation).
#[derive(Clone, Debug)]
pub struct Metrics {
    /// Last committed (and executed) height.
    pub height: Gauge,
    /// The highest height another validator reported (state-transfer answers): how far the
    /// network is, as far as this validator knows.
    pub network_height: Gauge,
    /// Current view.
    pub view: Gauge,
    /// 1 while a view change runs.
    pub view_changing: Gauge,
    /// View changes this validator went through (views entered after the first).
    pub view_changes: Counter,
    /// Validator-set epoch.
    pub epoch: Gauge,
    /// Validators in the current epoch.
    pub validators: Gauge,
    /// Height of the last stable checkpoint.
    pub stable_checkpoint: Gauge,
    /// Client transactions waiting to be ordered.
    pub pending_requests: Gauge,
    /// Seconds between consecutive blocks (their block times).
    pub block_interval: Histogram,
    /// Transactions committed, by kind and outcome.
    pub transactions: Family<TxLabels, Counter>,
    /// Transactions rejected in blocks, by reason.
    pub rejections: Family<ReasonLabel, Counter>,
    /// Submissions at admission, by result (`admitted` or why refused).
    pub admissions: Family<ReasonLabel, Counter>,
    /// Transactions per verification batch.
    pub verification_batch_size: Histogram,
    /// Seconds per verification batch.
    pub verification_seconds: Histogram,
    /// Proofs verified ahead of need (carried by a peer's message, verified in a batch that ran
    /// for other transactions).
    pub proofs_verified_ahead: Counter,
    /// Seconds to write one committed block to the store.
    pub store_commit_seconds: Histogram,
    /// Blocks committed through state transfer (catching up).
    pub state_transfer_blocks: Counter,
    /// Client requests, by kind and result.
    pub client_requests: Family<RequestLabels, Counter>,
    /// Peer messages this validator refused (undecodable or invalid).
    pub peer_messages_refused: Counter,
    /// 1 when ready (see [`Metrics::readiness`]), 0 when not (set at each scrape).
    pub ready: Gauge,
    /// Size of the database file, in bytes (read at each scrape).
    pub storage_bytes: Gauge,
    /// Bytes available to the validator on the database's file system (read at each scrape).
    pub storage_available_bytes: Gauge,
    /// Height of the newest state snapshot this validator wrote (0: none yet).
    pub snapshot_height: Gauge,
    /// Bytes of the newest state snapshot's chunks.
    pub snapshot_bytes: Gauge,
    /// Seconds to write one state snapshot.
    pub snapshot_seconds: Histogram,
    /// Every height up to this one is in the history archive (0: none, or no archive).
    pub archived_height: Gauge,
    /// Block bodies at and below this height are pruned (0: none): with `archived_height` and
    /// `height`, the window a validator keeps.
    pub pruned_height: Gauge,
    /// When the host loop last turned (Unix ms): `/livez` fails when it stalls.
    last_turn_ms: Arc<AtomicU64>,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            height: Gauge::default(),
            network_height: Gauge::default(),
            view: Gauge::default(),
            view_changing: Gauge::default(),
            view_changes: Counter::default(),
            epoch: Gauge::default(),
            validators: Gauge::default(),
            stable_checkpoint: Gauge::default(),
            pending_requests: Gauge::default(),
            // 10 ms to about 80 s.
            block_interval: histogram(0.01, 2.0, 14),
            transactions: Family::default(),
            rejections: Family::default(),
            admissions: Family::default(),
            // 1 to 512 transactions.
            verification_batch_size: histogram(1.0, 2.0, 10),
            // 1 ms to about 16 s.
            verification_seconds: histogram(0.001, 2.0, 15),
            proofs_verified_ahead: Counter::default(),
            // 0.1 ms to about 3 s.
            store_commit_seconds: histogram(0.0001, 2.0, 16),
            state_transfer_blocks: Counter::default(),
            client_requests: Family::default(),
            peer_messages_refused: Counter::default(),
            ready: Gauge::default(),
            storage_bytes: Gauge::default(),
            storage_available_bytes: Gauge::default(),
            snapshot_height: Gauge::default(),
            snapshot_bytes: Gauge::default(),
            // 10 ms to about 160 s.
            snapshot_seconds: histogram(0.01, 2.0, 15),
            archived_height: Gauge::default(),
            pruned_height: Gauge::default(),
            last_turn_ms: Arc::new(AtomicU64::new(0)),
        }
    }
}

/// Most blocks a validator may be behind the highest height it heard of and still be ready.
pub const READY_LAG_BLOCKS: i64 = 16;

/// Longest the host loop may go without turning before `/livez` fails (it turns at least every
/// sync interval, 5 s by default).
pub const LIVE_WITHIN_MS: u64 = 30_000;

impl Metrics {
    /// Counts one transaction of a committed block.
    pub fn transaction(&self, kind: &'static str, rejected: Option<&'static str>) {
        let outcome = match rejected {
            None => "applied",
            Some(_) => "rejected",
        };
        self.transactions
            .get_or_create(&TxLabels { kind, outcome })
            .inc();
        if let Some(reason) = rejected {
            self.rejections.get_or_create(&ReasonLabel { reason }).inc();
        }
    }

    /// Counts one submission at admission: `admitted`, or why it was refused.
    pub fn admission(&self, result: &'static str) {
        self.admissions
            .get_or_create(&ReasonLabel { reason: result })
            .inc();
    }

    /// Counts one client request.
    pub fn client_request(&self, kind: &'static str, result: &'static str) {
        self.client_requests
            .get_or_create(&RequestLabels { kind, result })
            .inc();
    }

    /// Reads the size of `database` and the space left on its file system into the storage
    /// gauges (left as they are where they cannot be read).
    pub fn read_storage(&self, database: &std::path::Path) {
        if let Ok(m) = std::fs::metadata(database) {
            self.storage_bytes
                .set(i64::try_from(m.len()).unwrap_or(i64::MAX));
        }
        #[cfg(unix)]
        if let Some(dir) = database.parent() {
            if let Ok(s) = rustix::fs::statvfs(dir) {
                let bytes = s.f_bavail.saturating_mul(s.f_frsize);
                self.storage_available_bytes
                    .set(i64::try_from(bytes).unwrap_or(i64::MAX));
            }
        }
    }

    /// Records that the host loop turned at `now_ms`.
    pub fn turned(&self, now_ms: u64) {
        self.last_turn_ms.store(now_ms, Ordering::Relaxed);
    }

    /// Whether the host loop turned within [`LIVE_WITHIN_MS`] of `now_ms`; else why not.
    pub fn liveness(&self, now_ms: u64) -> Result<(), String> {
        let last = self.last_turn_ms.load(Ordering::Relaxed);
        match now_ms.saturating_sub(last) {
            _ if last == 0 => Err("the validator loop has not started".into()),
            idle if idle > LIVE_WITHIN_MS => Err(format!(
                "the validator loop has not turned for {} s",
                idle / 1000
            )),
            _ => Ok(()),
        }
    }

    /// Whether this validator is ready: connected to enough validators to make a quorum with
    /// itself, and within [`READY_LAG_BLOCKS`] of the highest height it heard of. Else every
    /// reason it is not.
    pub fn readiness(&self, net: &shoji_net::NetMetrics) -> Result<(), Vec<String>> {
        let mut missing = Vec::new();
        let n = self.validators.get();
        let f = (n - 1).max(0) / 3;
        let quorum = 2 * f + 1;
        let connected = net.validators_connected.get();
        if connected + 1 < quorum {
            missing.push(format!(
                "connected to {connected} other validators; a quorum of {n} needs {}",
                quorum - 1
            ));
        }
        let (height, network) = (self.height.get(), self.network_height.get());
        if network - height > READY_LAG_BLOCKS {
            missing.push(format!(
                "catching up: at height {height}, the network is at {network} or beyond"
            ));
        }
        self.ready.set(i64::from(missing.is_empty()));
        match missing.is_empty() {
            true => Ok(()),
            false => Err(missing),
        }
    }
}

/// A registry of every metric of `node` and `net`, for the text encoder.
pub fn registry(node: &Metrics, net: &shoji_net::NetMetrics) -> Registry {
    let mut r = Registry::with_prefix("shoji");
    let m = node.clone();
    r.register("height", "Last committed and executed height", m.height);
    r.register(
        "network_height",
        "Highest height another validator reported",
        m.network_height,
    );
    r.register("view", "Current consensus view", m.view);
    r.register(
        "view_changing",
        "1 while a view change runs",
        m.view_changing,
    );
    r.register(
        "view_changes",
        "View changes this validator went through",
        m.view_changes,
    );
    r.register("epoch", "Validator-set epoch", m.epoch);
    r.register(
        "validators",
        "Validators in the current epoch",
        m.validators,
    );
    r.register(
        "stable_checkpoint_height",
        "Height of the last stable checkpoint",
        m.stable_checkpoint,
    );
    r.register(
        "pending_requests",
        "Client transactions waiting to be ordered",
        m.pending_requests,
    );
    r.register_with_unit(
        "block_interval",
        "Time between consecutive blocks (block times)",
        Unit::Seconds,
        m.block_interval,
    );
    r.register(
        "transactions",
        "Transactions committed, by kind and outcome",
        m.transactions,
    );
    r.register(
        "rejections",
        "Transactions rejected in blocks, by reason",
        m.rejections,
    );
    r.register(
        "admissions",
        "Client submissions at admission, by result",
        m.admissions,
    );
    r.register(
        "verification_batch_size",
        "Transactions per proof-verification batch",
        m.verification_batch_size,
    );
    r.register_with_unit(
        "verification",
        "Time per proof-verification batch",
        Unit::Seconds,
        m.verification_seconds,
    );
    r.register(
        "proofs_verified_ahead",
        "Proofs verified ahead of need",
        m.proofs_verified_ahead,
    );
    r.register_with_unit(
        "store_commit",
        "Time to write one committed block to the store",
        Unit::Seconds,
        m.store_commit_seconds,
    );
    r.register(
        "state_transfer_blocks",
        "Blocks committed through state transfer",
        m.state_transfer_blocks,
    );
    r.register(
        "client_requests",
        "Client requests, by kind and result",
        m.client_requests,
    );
    r.register(
        "peer_messages_refused",
        "Peer messages refused (undecodable or invalid)",
        m.peer_messages_refused,
    );
    r.register(
        "ready",
        "1 when connected to a quorum and caught up (as /readyz)",
        m.ready,
    );
    r.register(
        "storage_bytes",
        "Size of the database file",
        m.storage_bytes,
    );
    r.register(
        "storage_available_bytes",
        "Bytes available on the database's file system",
        m.storage_available_bytes,
    );
    r.register(
        "snapshot_height",
        "Height of the newest state snapshot written (0: none)",
        m.snapshot_height,
    );
    r.register(
        "snapshot_bytes",
        "Bytes of the newest state snapshot's chunks",
        m.snapshot_bytes,
    );
    r.register(
        "archived_height",
        "Every height up to this one is in the history archive",
        m.archived_height,
    );
    r.register(
        "pruned_height",
        "Block bodies at and below this height are pruned (0: none)",
        m.pruned_height,
    );
    r.register_with_unit(
        "snapshot_seconds",
        "Time to write one state snapshot",
        Unit::Seconds,
        m.snapshot_seconds,
    );
    let n = net.clone();
    r.register(
        "peers_connected",
        "Validators connected to this one",
        n.validators_connected,
    );
    r.register(
        "clients_connected",
        "Client connections being served",
        n.clients_connected,
    );
    r.register(
        "transport_refused",
        "Connections, streams and frames the transport refused, by reason",
        n.refused,
    );
    r
}

/// The registry in the Prometheus (OpenMetrics) text format.
pub fn encode(registry: &Registry) -> String {
    let mut out = String::new();
    // Writing to a String does not fail.
    let _ = prometheus_client::encoding::text::encode(&mut out, registry);
    out
}
