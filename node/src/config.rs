//! The files of a network and of one validator: what `shoji-node init` writes and
//! `shoji-node run` reads.
//!
//! ```text
//! DIR/genesis.toml                what every validator agrees on (GenesisFile)
//! DIR/network.json                the client network file (shoji_client::NetworkFile)
//! DIR/issuer.key                  the development issuer's secret key (hex), when it is used
//! DIR/params/transfer.pk          a ceremony's proving key, for wallets (`init --params`)
//! DIR/params/transfer.vk          and its verifying key
//! DIR/validator-<i>/config.toml   validator i's configuration (ValidatorConfig)
//! DIR/validator-<i>/validator.key its Ed25519 secret key (hex, owner-only permissions)
//! DIR/validator-<i>/data/         its database (created by `run`)
//! ```
//!
//! `genesis.toml`:
//!
//! ```toml
//! epoch = 0
//! insecure = "development issuer key, auditor key, parameters (their trapdoor is public): never use for real value"  # optional
//! verifying_key_hash = "<blake3 of transfer.vk, hex>"   # optional; absent: the development key,
//!                                                      # which only an insecure genesis may pin
//! proving_key_hash = "<blake3 of transfer.pk, hex>"     # optional; for wallets, not hashed
//!
//! [ledger]
//! anchor_window_blocks = 100
//! auditor_public_key = "<32-byte hex>"
//!
//! [[ledger.issuers]]
//! public_key = "<32-byte hex Ed25519 key>"
//! assets = [840]
//!
//! [consensus]            # optional; these are the defaults
//! checkpoint_interval = 8
//! window_size = 16
//! max_batch_txs = 256
//! max_clock_skew_ms = 30000
//!
//! [assets]               # names for clients
//! 840 = "USD"
//!
//! [[validators]]
//! id = 0
//! public_key = "<32-byte hex Ed25519 key>"
//! address = "127.0.0.1:7000"
//! ```
//!
//! `config.toml` (relative paths are relative to the file's directory):
//!
//! ```toml
//! id = 0
//! key_file = "validator.key"
//! genesis = "../genesis.toml"
//! data_dir = "data"
//! listen = "0.0.0.0:7000"   # optional; default: this validator's genesis address
//! operations = "127.0.0.1:8000"  # optional: /metrics, /livez, /readyz over HTTP
//! log_level = "info"         # RUST_LOG, when set, takes precedence
//! log_format = "json"        # optional: one JSON object per line (default "text")
//! verifying_key = "transfer.vk"  # the network's key (init --params, join --params);
//!                                 # absent: the development parameters' cache
//! archive = "file:///srv/shoji-archive"  # optional: copy committed blocks to this object store (or s3://bucket/prefix)
//! keep_blocks = 100000        # optional, with archive: prune older block bodies once archived
//!
//! [tuning]                   # optional; local timers, these are the defaults
//! view_timeout_ms = 1000
//! view_timeout_ms_max = 16000
//! retransmit_ms = 400
//! state_transfer_timeout_ms = 1000
//! max_blocks_in_flight = 4
//! pipeline_min_batch = 32   # a leader proposes beside a block in flight only for this many
//! pipeline_max_wait_ms = 5  # ... or once the oldest waiting request has waited this long
//! sync_interval_ms = 5000
//!
//! [snapshots]                # optional; these are the defaults
//! every_blocks = 1024        # write a state snapshot every this many blocks (0: never)
//! keep = 2                   # the newest this many are kept and served
//! sync_from_peers = true     # on an empty data directory, start from the peers' newest
//! ```

use crate::ed25519_dalek_key::SigningKey;
use crate::host::HostOptions;
use crate::{ConsensusParams, Genesis, Tuning};
use serde::{Deserialize, Serialize};
use shoji_client::network::{
    insecure_devnet_auditor, insecure_devnet_issuer, IssuerEntry, NetworkFile, ValidatorEntry,
};
use shoji_consensus::ed25519_dalek::VerifyingKey;
use shoji_consensus::{ReplicaId, ValidatorSet};
use shoji_ledger::LedgerConfig;
use shoji_primitives::audit::AuditPublicKey;
use shoji_primitives::encoding::{hex_decode, hex_encode};
use shoji_primitives::governance::GovernanceRules;
use shoji_primitives::note::AssetId;
use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The genesis file's name in a network directory.
pub const GENESIS_FILE: &str = "genesis.toml";
/// The client network file's name in a network directory.
pub const NETWORK_FILE: &str = "network.json";
/// The development issuer key's file name in a network directory.
pub const ISSUER_KEY_FILE: &str = "issuer.key";
/// The governance administrator keys' file names in a network directory, when `init` creates
/// them: `admin-0.key`, `admin-1.key`, ….
pub fn admin_key_file(i: usize) -> String {
    format!("admin-{i}.key")
}
/// A validator's configuration file name in its directory.
pub const CONFIG_FILE: &str = "config.toml";
/// A validator's key file name in its directory.
pub const VALIDATOR_KEY_FILE: &str = "validator.key";
/// The transfer circuit's verifying key, copied into each validator's directory by `init --params`.
pub const VERIFYING_KEY_FILE: &str = shoji_params::VERIFYING_KEY_FILE;
/// The directory of a network directory that holds a ceremony's keys for wallets
/// (`shoji-wallet` looks beside its network file).
pub const PARAMS_DIR: &str = "params";
/// The database's file name in a validator's data directory.
pub const DATABASE_FILE: &str = "node.redb";

/// What is wrong with a network's or a validator's files. Every variant names the file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file does not parse or its content is invalid.
    #[error("{path}: {reason}")]
    Malformed {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A file could not be written.
    #[error("cannot write {path}: {source}")]
    Write {
        /// The file or directory.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// `init` would overwrite an existing network.
    #[error("{0} already exists: refusing to overwrite a network (choose another directory)")]
    Exists(PathBuf),
    /// An option of `init` is invalid.
    #[error("{0}")]
    Invalid(String),
}

fn malformed(path: &Path, reason: impl Into<String>) -> ConfigError {
    ConfigError::Malformed {
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

fn read_text(path: &Path) -> Result<String, ConfigError> {
    std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })
}

fn write_file(path: &Path, bytes: &[u8]) -> Result<(), ConfigError> {
    shoji_client::sealed::write_atomic(path, bytes).map_err(|source| ConfigError::Write {
        path: path.to_path_buf(),
        source,
    })
}

fn key32(what: &str, s: &str) -> Result<[u8; 32], String> {
    let bytes = hex_decode("key", s.trim()).map_err(|e| format!("{what}: {e}"))?;
    bytes
        .try_into()
        .map_err(|_| format!("{what}: must be 32 bytes (64 hex digits)"))
}

// ------------------------------------------------------------------ genesis

/// The genesis file's TOML form.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GenesisFile {
    /// Validator-set epoch (0 for a new network).
    #[serde(default)]
    pub epoch: u64,
    /// A warning carried to the client network file, set when development keys or
    /// parameters are used. Only a genesis with it may pin the development verifying key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub insecure: Option<String>,
    /// blake3 of the transfer circuit's verifying key (hex), from a ceremony
    /// (`shoji-node init --params DIR`); absent: the development key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verifying_key_hash: Option<String>,
    /// blake3 of the ceremony's proving-key file (hex), carried to the client network file so
    /// wallets prove with exactly that key. Validators never use it, so it is not part of the
    /// genesis hash.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proving_key_hash: Option<String>,
    /// Ledger configuration.
    pub ledger: LedgerSection,
    /// Consensus parameters.
    #[serde(default)]
    pub consensus: ConsensusParams,
    /// Asset names by id, for clients.
    #[serde(default)]
    pub assets: BTreeMap<String, String>,
    /// Who approves governance transactions (none: the policy never changes).
    #[serde(default)]
    pub governance: GovernanceSection,
    /// The validators.
    pub validators: Vec<GenesisValidator>,
}

/// `[governance]` of the genesis file.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GovernanceSection {
    /// The administrators' Ed25519 public keys, hex.
    #[serde(default)]
    pub admins: Vec<String>,
    /// How many distinct administrators must approve a governance transaction.
    #[serde(default)]
    pub threshold: u64,
}

impl GovernanceSection {
    /// Checks the keys and the threshold.
    pub fn rules(&self) -> Result<GovernanceRules, String> {
        let mut admins = BTreeSet::new();
        for a in &self.admins {
            let key = key32("governance admin public key", a)?;
            VerifyingKey::from_bytes(&key)
                .map_err(|e| format!("governance admin public key {a}: {e}"))?;
            if !admins.insert(key) {
                return Err(format!("governance admin {a} is listed twice"));
            }
        }
        let threshold = usize::try_from(self.threshold)
            .map_err(|_| "governance.threshold is too large".to_string())?;
        if admins.is_empty() && threshold != 0 {
            return Err("governance.threshold is set but there are no admins".into());
        }
        if !admins.is_empty() && (threshold == 0 || threshold > admins.len()) {
            return Err(format!(
                "governance.threshold must be between 1 and the number of admins ({}), not {threshold}",
                admins.len()
            ));
        }
        Ok(GovernanceRules { admins, threshold })
    }
}

/// `[ledger]` of the genesis file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LedgerSection {
    /// How many recent roots are accepted as anchors.
    #[serde(default = "default_anchor_window")]
    pub anchor_window_blocks: u64,
    /// The designated auditor's public key, hex.
    pub auditor_public_key: String,
    /// The auditor's account-tier key (Ristretto), hex; absent: no confidential accounts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_auditor_public_key: Option<String>,
    /// Registered issuers.
    #[serde(default)]
    pub issuers: Vec<IssuerSection>,
}

fn default_anchor_window() -> u64 {
    100
}

/// One `[[ledger.issuers]]` entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IssuerSection {
    /// The issuer's Ed25519 public key, hex.
    pub public_key: String,
    /// The assets it may mint and redeem.
    pub assets: Vec<u64>,
}

/// One `[[validators]]` entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GenesisValidator {
    /// Replica id.
    pub id: u16,
    /// Its Ed25519 public key, hex.
    pub public_key: String,
    /// The address other validators and clients reach it at (`host:port`, an IP address).
    pub address: String,
}

/// A checked genesis file.
#[derive(Clone, Debug)]
pub struct NetworkGenesis {
    /// What validators agree on.
    pub genesis: Genesis,
    /// Each validator's address.
    pub addrs: BTreeMap<ReplicaId, SocketAddr>,
    /// Asset names.
    pub assets: BTreeMap<AssetId, String>,
    /// The development warning, if any.
    pub insecure: Option<String>,
}

impl GenesisFile {
    /// Parses TOML text (not yet checked: see [`GenesisFile::check`]).
    pub fn parse(text: &str) -> Result<GenesisFile, String> {
        toml::from_str(text).map_err(|e| e.to_string())
    }

    /// Reads, parses and checks the genesis file at `path`.
    pub fn load(path: &Path) -> Result<(GenesisFile, NetworkGenesis), ConfigError> {
        let file = Self::parse(&read_text(path)?).map_err(|e| malformed(path, e))?;
        let checked = file.check().map_err(|e| malformed(path, e))?;
        Ok((file, checked))
    }

    /// The TOML text.
    pub fn to_toml(&self) -> String {
        let body = toml::to_string_pretty(self).unwrap_or_default();
        format!(
            "# Shoji genesis: what every validator of this network agrees on before the first\n\
             # block. Every validator must start from the same file (its hash is recorded in\n\
             # each validator's database); addresses may change, the rest may not.\n\n{body}"
        )
    }

    /// Checks every field and builds the genesis.
    pub fn check(&self) -> Result<NetworkGenesis, String> {
        let mut members = BTreeMap::new();
        let mut addrs = BTreeMap::new();
        let mut keys = BTreeSet::new();
        for v in &self.validators {
            let what = format!("validator {} public key", v.id);
            let key = VerifyingKey::from_bytes(&key32(&what, &v.public_key)?)
                .map_err(|e| format!("{what}: {e}"))?;
            if !keys.insert(key.to_bytes()) {
                return Err(format!("validator {}: key already used by another", v.id));
            }
            let addr: SocketAddr = v.address.parse().map_err(|e| {
                format!(
                    "validator {} address {:?}: {e} (expected IP:port)",
                    v.id, v.address
                )
            })?;
            if members.insert(ReplicaId(v.id), key).is_some() {
                return Err(format!("validator {} is listed twice", v.id));
            }
            addrs.insert(ReplicaId(v.id), addr);
        }
        if members.is_empty() {
            return Err("no validators".into());
        }
        let validators = ValidatorSet::new(self.epoch, members).map_err(|e| e.to_string())?;
        let auditor = AuditPublicKey::from_bytes(&key32(
            "ledger.auditor_public_key",
            &self.ledger.auditor_public_key,
        )?)
        .map_err(|e| format!("ledger.auditor_public_key: {e}"))?;
        let account_auditor = self
            .ledger
            .account_auditor_public_key
            .as_deref()
            .map(|h| {
                shoji_confidential::PublicKey::from_bytes(&key32(
                    "ledger.account_auditor_public_key",
                    h,
                )?)
                .map_err(|e| format!("ledger.account_auditor_public_key: {e}"))
            })
            .transpose()?;
        let mut issuers = BTreeMap::new();
        for i in &self.ledger.issuers {
            let key = key32("issuer public key", &i.public_key)?;
            VerifyingKey::from_bytes(&key).map_err(|e| format!("issuer public key: {e}"))?;
            if i.assets.is_empty() {
                return Err(format!("issuer {} has no assets", i.public_key));
            }
            let assets: BTreeSet<AssetId> = i.assets.iter().map(|a| AssetId(*a)).collect();
            if issuers.insert(key, assets).is_some() {
                return Err(format!("issuer {} is listed twice", i.public_key));
            }
        }
        if self.ledger.anchor_window_blocks == 0 {
            return Err("ledger.anchor_window_blocks must be positive".into());
        }
        let anchor_window_blocks = usize::try_from(self.ledger.anchor_window_blocks)
            .map_err(|_| "ledger.anchor_window_blocks is too large".to_string())?;
        let consensus = self.consensus;
        let genesis = Genesis {
            validators,
            ledger: LedgerConfig {
                anchor_window_blocks,
                auditor,
                issuers,
                governance: self.governance.rules()?,
                network_id: [0; 32],
                validators: Default::default(),
                checkpoint_interval: 8,
                window_size: 16,
                account_auditor,
            },
            consensus,
            verifying_key_hash: match &self.verifying_key_hash {
                Some(h) => key32("verifying_key_hash", h)?,
                None => shoji_params::dev_verifying_key_hash(),
            },
            insecure: self.insecure.is_some(),
        };
        genesis.check_parameters()?;
        if let Some(h) = &self.proving_key_hash {
            key32("proving_key_hash", h)?;
            if self.verifying_key_hash.is_none() {
                return Err("proving_key_hash names a ceremony's proving key, but no \
                     verifying_key_hash pins its verifying key: take both from the ceremony's \
                     `phase2 finalize`"
                    .into());
            }
        }
        genesis
            .consensus_config(&Tuning::default())
            .validate()
            .map_err(|e| format!("consensus: {e}"))?;
        let mut assets = BTreeMap::new();
        for (id, name) in &self.assets {
            let id: u64 = id
                .parse()
                .map_err(|_| format!("asset id {id:?} is not a number"))?;
            assets.insert(AssetId(id), name.clone());
        }
        Ok(NetworkGenesis {
            genesis,
            addrs,
            assets,
            insecure: self.insecure.clone(),
        })
    }

    /// The client network file of this network (`shoji-wallet --network`).
    pub fn network_file(&self) -> NetworkFile {
        NetworkFile {
            epoch: self.epoch,
            validators: self
                .validators
                .iter()
                .map(|v| ValidatorEntry {
                    id: v.id,
                    addr: v.address.clone(),
                    public_key: v.public_key.clone(),
                })
                .collect(),
            auditor_public_key: self.ledger.auditor_public_key.clone(),
            account_auditor_public_key: self.ledger.account_auditor_public_key.clone(),
            issuers: self
                .ledger
                .issuers
                .iter()
                .map(|i| IssuerEntry {
                    public_key: i.public_key.clone(),
                    assets: i.assets.clone(),
                })
                .collect(),
            assets: self.assets.clone(),
            insecure: self.insecure.clone(),
            network_id: self.check().ok().map(|g| hex_encode(&g.genesis.hash())),
            verifying_key_hash: self.verifying_key_hash.clone(),
            proving_key_hash: self.proving_key_hash.clone(),
            operations: BTreeMap::new(),
            archive: None,
        }
    }
}

// ------------------------------------------------------------------ validator configuration

/// A validator's configuration file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ValidatorConfig {
    /// This validator's replica id (its entry in the genesis).
    pub id: u16,
    /// Its Ed25519 secret key file (64 hex digits).
    pub key_file: PathBuf,
    /// The genesis file.
    pub genesis: PathBuf,
    /// Where its database lives (created if missing).
    pub data_dir: PathBuf,
    /// The UDP address to listen on; by default its address in the genesis.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub listen: Option<String>,
    /// The TCP address of the operations service (`/metrics`, `/livez`, `/readyz`); none:
    /// not served. Public data only, but bind it where only operators reach.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operations: Option<String>,
    /// Log filter (`info`, `debug`, `shoji_node=debug,info`, ...); `RUST_LOG` overrides it.
    #[serde(default = "default_log_level")]
    pub log_level: String,
    /// Log lines as text for people or as JSON objects, one per line, for log collectors;
    /// `SHOJI_LOG_FORMAT` overrides it.
    #[serde(default, skip_serializing_if = "LogFormat::is_text")]
    pub log_format: LogFormat,
    /// The verifying key file; by default the development parameters' cached one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verifying_key: Option<PathBuf>,
    /// Local timers.
    #[serde(default)]
    pub tuning: TuningSection,
    /// State snapshots: written, served, and fetched on an empty data directory.
    #[serde(default)]
    pub snapshots: SnapshotsSection,
    /// The history archive this validator copies committed blocks to: an object-store URL
    /// (`file:///srv/shoji-archive`, or `s3://bucket/prefix` configured from the `AWS_*`
    /// environment, see [`shoji_client::archive::Archive::open`]); none: no archive.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub archive: Option<String>,
    /// Keep the bodies of at least this many recent blocks; older ones are pruned once
    /// archived (needs `archive`). 0, the default: keep every block.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub keep_blocks: u64,
}

/// Fewest recent blocks a pruning validator keeps: enough for peers catching up by state
/// transfer within a few checkpoint windows.
pub const MIN_KEEP_BLOCKS: u64 = 64;

fn is_zero(x: &u64) -> bool {
    *x == 0
}

/// The `[snapshots]` section of a validator's configuration.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SnapshotsSection {
    /// Write a state snapshot (under `data_dir/snapshots`) every this many blocks, at a
    /// checkpoint height (rounded up to a multiple of the checkpoint interval); 0: never.
    pub every_blocks: u64,
    /// How many snapshots to keep and serve (the newest).
    pub keep: usize,
    /// On an empty data directory, fetch the newest snapshot the other validators serve,
    /// check it against its checkpoint certificate and start from it, instead of replaying
    /// every block from genesis.
    pub sync_from_peers: bool,
}

impl Default for SnapshotsSection {
    fn default() -> Self {
        SnapshotsSection {
            every_blocks: 1024,
            keep: 2,
            sync_from_peers: true,
        }
    }
}

fn default_log_level() -> String {
    "info".into()
}

/// How a validator writes its log.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// One human-readable line per event.
    #[default]
    Text,
    /// One JSON object per line: timestamp, level, target, message and every field.
    Json,
}

impl LogFormat {
    fn is_text(&self) -> bool {
        *self == LogFormat::Text
    }

    /// `text` or `json`.
    pub fn parse(s: &str) -> Option<LogFormat> {
        match s.trim().to_ascii_lowercase().as_str() {
            "text" => Some(LogFormat::Text),
            "json" => Some(LogFormat::Json),
            _ => None,
        }
    }
}

/// `[tuning]` of a validator's configuration: the replica's [`Tuning`] (defined, with its
/// defaults, in the consensus crate) and the host's probe interval ([`HostOptions`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct TuningSection {
    /// The replica's timers and pipelining.
    #[serde(flatten)]
    pub replica: Tuning,
    /// How often to ask another validator for blocks above our height.
    pub sync_interval_ms: u64,
}

impl Default for TuningSection {
    fn default() -> Self {
        TuningSection {
            replica: Tuning::default(),
            sync_interval_ms: HostOptions::default().sync_interval.as_millis() as u64,
        }
    }
}

impl TuningSection {
    /// The replica's settings.
    pub fn tuning(&self) -> Tuning {
        self.replica
    }

    /// The host's settings.
    pub fn host(&self) -> HostOptions {
        HostOptions {
            sync_interval: Duration::from_millis(self.sync_interval_ms),
            snapshots: None,
            archive: None,
            keep_blocks: 0,
        }
    }

    /// Refuses a `[tuning]` key this type does not have (serde cannot deny unknown fields of
    /// a flattened struct): the keys are those [`TuningSection::default`] serializes to.
    fn check_keys(text: &str) -> Result<(), String> {
        let table: toml::Table = toml::from_str(text).map_err(|e| e.to_string())?;
        let Some(given) = table.get("tuning").and_then(toml::Value::as_table) else {
            return Ok(());
        };
        let known = toml::Table::try_from(TuningSection::default()).map_err(|e| e.to_string())?;
        match given.keys().find(|k| !known.contains_key(*k)) {
            Some(k) => Err(format!(
                "unknown field `{k}` in [tuning], expected one of {}",
                known
                    .keys()
                    .map(|k| format!("`{k}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
            None => Ok(()),
        }
    }
}

impl ValidatorConfig {
    /// Parses TOML text; paths are left as written.
    pub fn parse(text: &str) -> Result<ValidatorConfig, String> {
        let config: ValidatorConfig = toml::from_str(text).map_err(|e| e.to_string())?;
        TuningSection::check_keys(text)?;
        if let Some(url) = &config.archive {
            shoji_client::archive::check_url(url).map_err(|e| e.to_string())?;
        }
        if config.keep_blocks > 0 && config.archive.is_none() {
            return Err(
                "keep_blocks prunes only what is archived: set archive (an object-store URL) too"
                    .into(),
            );
        }
        if config.keep_blocks > 0 && config.keep_blocks < MIN_KEEP_BLOCKS {
            return Err(format!(
                "keep_blocks must be 0 (keep every block) or at least {MIN_KEEP_BLOCKS}"
            ));
        }
        let every = config.snapshots.every_blocks;
        if config.keep_blocks > 0 && every > 0 && config.keep_blocks < every.saturating_mul(2) {
            return Err(format!(
                "keep_blocks ({}) must be at least twice [snapshots] every_blocks ({every}): a validator that joins from the newest snapshot fetches the blocks after it from its peers",
                config.keep_blocks
            ));
        }
        Ok(config)
    }

    /// The TOML text, with a header.
    pub fn to_toml(&self) -> String {
        let body = toml::to_string_pretty(self).unwrap_or_default();
        format!(
            "# Shoji validator {}. Relative paths are relative to this file's directory.\n\
             # Start it with: shoji-node run --config <this file>\n\n{body}",
            self.id
        )
    }

    /// Makes relative paths relative to `base` (the configuration file's directory).
    pub fn resolve(&mut self, base: &Path) {
        for p in [&mut self.key_file, &mut self.genesis, &mut self.data_dir] {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        }
        if let Some(p) = &mut self.verifying_key {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        }
    }
}

/// Reads a validator key file: 64 hex digits (surrounding whitespace ignored).
pub fn read_key(path: &Path) -> Result<SigningKey, ConfigError> {
    let text = read_text(path)?;
    let seed = key32("validator key", &text).map_err(|e| malformed(path, e))?;
    #[cfg(unix)]
    if let Ok(meta) = std::fs::metadata(path) {
        use std::os::unix::fs::PermissionsExt;
        if meta.permissions().mode() & 0o077 != 0 {
            tracing::warn!(
                path = %path.display(),
                "the key file can be read by other users: chmod 600 it"
            );
        }
    }
    Ok(SigningKey::from_bytes(&seed))
}

/// Everything `shoji-node run` needs, read and cross-checked.
pub struct Setup {
    /// The configuration file.
    pub path: PathBuf,
    /// Its content, paths resolved.
    pub config: ValidatorConfig,
    /// The genesis.
    pub network: NetworkGenesis,
    /// This validator's key.
    pub key: SigningKey,
    /// The address to listen on.
    pub listen: SocketAddr,
    /// The operations service's address, if it is served.
    pub operations: Option<SocketAddr>,
    /// Not in the genesis: a validator governance adds (see [`join`]), which runs as a
    /// learner until its epoch begins.
    pub joining: bool,
}

impl std::fmt::Debug for Setup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Setup")
            .field("path", &self.path)
            .field("config", &self.config)
            .field("listen", &self.listen)
            .finish_non_exhaustive()
    }
}

impl Setup {
    /// Reads the configuration at `path`, the genesis and the key it names, and checks that
    /// they agree (the validator is in the genesis, under this key).
    pub fn load(path: &Path) -> Result<Setup, ConfigError> {
        let mut config =
            ValidatorConfig::parse(&read_text(path)?).map_err(|e| malformed(path, e))?;
        let base = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        config.resolve(&base);
        let (_, network) = GenesisFile::load(&config.genesis)?;
        let key = read_key(&config.key_file)?;
        let id = ReplicaId(config.id);
        let joining = network.genesis.validators.key(id).is_none();
        if joining {
            // A validator governance adds: its key must be new, and it must say where it
            // listens (the genesis has no address for it).
            if network
                .genesis
                .validators
                .id_of(&key.verifying_key())
                .is_some()
            {
                return Err(malformed(
                    &config.key_file,
                    format!(
                        "validator {} is not in the genesis {}, and this key is a genesis validator's (a joining validator needs a key of its own)",
                        config.id,
                        config.genesis.display()
                    ),
                ));
            }
            if config.listen.is_none() {
                return Err(malformed(
                    path,
                    format!(
                        "validator {} is not in the genesis {}: a joining validator needs listen = \"IP:port\"",
                        config.id,
                        config.genesis.display()
                    ),
                ));
            }
        } else if network.genesis.validators.key(id) != Some(&key.verifying_key()) {
            return Err(malformed(
                &config.key_file,
                format!(
                    "this key is not validator {}'s key in the genesis {}",
                    config.id,
                    config.genesis.display()
                ),
            ));
        }
        let listen = match &config.listen {
            Some(s) => s.parse().map_err(|e| {
                malformed(
                    path,
                    format!("listen address {s:?}: {e} (expected IP:port)"),
                )
            })?,
            None => network.addrs.get(&id).copied().ok_or_else(|| {
                malformed(path, format!("validator {} has no address", config.id))
            })?,
        };
        let operations = match &config.operations {
            Some(s) => Some(s.parse().map_err(|e| {
                malformed(
                    path,
                    format!("operations address {s:?}: {e} (expected IP:port)"),
                )
            })?),
            None => None,
        };
        let tuning = config.tuning.tuning();
        network
            .genesis
            .consensus_config(&tuning)
            .validate()
            .map_err(|e| malformed(path, format!("tuning: {e}")))?;
        if config.tuning.sync_interval_ms == 0 {
            return Err(malformed(path, "tuning.sync_interval_ms must be positive"));
        }
        tracing_subscriber::EnvFilter::try_new(&config.log_level)
            .map_err(|e| malformed(path, format!("log_level {:?}: {e}", config.log_level)))?;
        Ok(Setup {
            path: path.to_path_buf(),
            config,
            network,
            key,
            listen,
            operations,
            joining,
        })
    }

    /// The database file.
    pub fn database(&self) -> PathBuf {
        self.config.data_dir.join(DATABASE_FILE)
    }

    /// The host's settings: the `[tuning]` ones and where and how often to write snapshots.
    pub fn host_options(&self) -> HostOptions {
        let s = &self.config.snapshots;
        HostOptions {
            snapshots: (s.every_blocks > 0).then(|| crate::snapshots::SnapshotOptions {
                keep: s.keep.max(1),
                ..crate::snapshots::SnapshotOptions::in_data_dir(
                    &self.config.data_dir,
                    s.every_blocks,
                )
            }),
            archive: self.config.archive.clone(),
            keep_blocks: self.config.keep_blocks,
            ..self.config.tuning.host()
        }
    }
}

// ------------------------------------------------------------------ join

/// What `shoji-node join` wrote for a validator that governance is to add.
#[derive(Clone, Debug)]
pub struct JoinReport {
    /// Its configuration file.
    pub config: PathBuf,
    /// Its secret key file.
    pub key_file: PathBuf,
    /// Its public key, for the administrators' `--add-validator ... --key`.
    pub public_key: [u8; 32],
}

/// Prepares a validator that governance is to add as replica `id`, listening on `listen`:
/// a fresh key (`DIR/validator.key`, owner-only) and `DIR/config.toml` naming the network's
/// `genesis` file. A network made from a ceremony's parameters needs their directory in
/// `params`: its `transfer.vk` must be the key the genesis pins, and is copied to `DIR`.
/// Refuses an id the genesis already has and an existing configuration.
pub fn join(
    dir: &Path,
    genesis: &Path,
    id: u16,
    listen: SocketAddr,
    params: Option<&Path>,
    rng: &mut (impl rand_core::RngCore + rand_core::CryptoRng),
) -> Result<JoinReport, ConfigError> {
    let (_, network) = GenesisFile::load(genesis)?;
    if network.genesis.validators.contains(ReplicaId(id)) {
        return Err(malformed(
            genesis,
            format!("validator {id} is already in this genesis: choose an unused id"),
        ));
    }
    let pin = network.genesis.verifying_key_hash;
    let verifying_key = match params {
        Some(p) => {
            let path = p.join(shoji_params::VERIFYING_KEY_FILE);
            let invalid = |e| ConfigError::Invalid(format!("--params: {e}"));
            let bytes = shoji_params::read_pinned(&path, &pin).map_err(invalid)?;
            shoji_params::decode_verifying_key(&path, &bytes).map_err(invalid)?;
            Some(bytes)
        }
        None if pin != shoji_params::dev_verifying_key_hash() => {
            return Err(malformed(
                genesis,
                format!(
                    "this network verifies with the ceremony key {}: pass --params DIR, the \
                     directory holding its transfer.vk (the network directory's params/)",
                    hex_encode(&pin)
                ),
            ))
        }
        None => None,
    };
    let config_path = dir.join(CONFIG_FILE);
    if config_path.exists() {
        return Err(ConfigError::Exists(config_path));
    }
    std::fs::create_dir_all(dir).map_err(|source| ConfigError::Write {
        path: dir.to_path_buf(),
        source,
    })?;
    let genesis = std::fs::canonicalize(genesis).map_err(|source| ConfigError::Read {
        path: genesis.to_path_buf(),
        source,
    })?;
    let key = SigningKey::generate(rng);
    let key_file = dir.join(VALIDATOR_KEY_FILE);
    write_file(
        &key_file,
        format!("{}\n", hex_encode(&key.to_bytes())).as_bytes(),
    )?;
    if let Some(bytes) = &verifying_key {
        write_file(&dir.join(VERIFYING_KEY_FILE), bytes)?;
    }
    let config = ValidatorConfig {
        id,
        key_file: PathBuf::from(VALIDATOR_KEY_FILE),
        genesis,
        data_dir: PathBuf::from("data"),
        listen: Some(listen.to_string()),
        // As `init` places them: loopback, above the validator's port.
        operations: listen
            .port()
            .checked_add(OPERATIONS_PORT_OFFSET)
            .map(|p| format!("127.0.0.1:{p}")),
        log_level: default_log_level(),
        log_format: LogFormat::Text,
        verifying_key: verifying_key.map(|_| PathBuf::from(VERIFYING_KEY_FILE)),
        tuning: TuningSection::default(),
        snapshots: SnapshotsSection::default(),
        archive: None,
        keep_blocks: 0,
    };
    write_file(&config_path, config.to_toml().as_bytes())?;
    Ok(JoinReport {
        config: config_path,
        key_file,
        public_key: key.verifying_key().to_bytes(),
    })
}

// ------------------------------------------------------------------ init

/// What `shoji-node init` creates.
#[derive(Clone, Debug)]
pub struct InitOptions {
    /// The network directory.
    pub dir: PathBuf,
    /// Number of validators (at least 4: `n = 3f + 1` with `f ≥ 1`).
    pub validators: u16,
    /// Each validator's address; when empty, `host:base_port + i`.
    pub addresses: Vec<SocketAddr>,
    /// Host of the generated addresses.
    pub host: IpAddr,
    /// Port of validator 0 in the generated addresses.
    pub base_port: u16,
    /// The designated auditor; by default the development auditor.
    pub auditor: Option<AuditPublicKey>,
    /// An issuer (public key) and its assets; by default the development issuer of asset 840,
    /// whose secret key is then written to `issuer.key`.
    pub issuer: Option<([u8; 32], BTreeSet<AssetId>)>,
    /// Asset names.
    pub assets: BTreeMap<AssetId, String>,
    /// Governance administrators (public keys) and threshold; by default three fresh keys, two
    /// of which must approve, written to `admin-0.key` … `admin-2.key`.
    pub governance: Option<(Vec<[u8; 32]>, usize)>,
    /// Tuning written into every validator's configuration.
    pub tuning: TuningSection,
    /// A ceremony's finalized parameters (`transfer.vk` in this directory, from
    /// `shoji-ceremony phase2 finalize`); by default the development parameters, and the
    /// genesis is then marked insecure.
    pub params: Option<PathBuf>,
    /// Each validator's operations address; when empty, `127.0.0.1` at its port plus
    /// [`OPERATIONS_PORT_OFFSET`].
    pub operations: Vec<SocketAddr>,
}

/// How far above a validator's port `init` puts its operations service by default.
pub const OPERATIONS_PORT_OFFSET: u16 = 1000;

impl Default for InitOptions {
    fn default() -> Self {
        InitOptions {
            dir: PathBuf::from("shoji-network"),
            validators: 4,
            addresses: Vec::new(),
            host: IpAddr::V4(Ipv4Addr::LOCALHOST),
            base_port: 7000,
            auditor: None,
            issuer: None,
            assets: BTreeMap::from([(AssetId(840), "USD".to_string())]),
            governance: None,
            tuning: TuningSection::default(),
            params: None,
            operations: Vec::new(),
        }
    }
}

/// The files `init` wrote.
#[derive(Clone, Debug)]
pub struct InitReport {
    /// The genesis file.
    pub genesis: PathBuf,
    /// The client network file.
    pub network: PathBuf,
    /// Each validator's configuration file, by id.
    pub configs: Vec<PathBuf>,
    /// The development issuer's key file, if written.
    pub issuer_key: Option<PathBuf>,
    /// The governance administrators' key files, if generated.
    pub admin_keys: Vec<PathBuf>,
}

/// A ceremony's keys as `init --params` read and checked them.
struct CeremonyKeys {
    /// `transfer.vk`, compressed.
    vk: Vec<u8>,
    /// Its blake3: what the genesis pins.
    hash: [u8; 32],
    /// `transfer.pk`, uncompressed.
    pk: Vec<u8>,
    /// Its blake3: what the network file names for wallets.
    pk_hash: [u8; 32],
}

/// The directory of validator `i` in a network directory.
pub fn validator_dir(dir: &Path, i: u16) -> PathBuf {
    dir.join(format!("validator-{i}"))
}

/// Creates a network: a random key per validator (owner-only files), the genesis, each
/// validator's configuration and the client network file. Refuses to overwrite an existing
/// network.
pub fn init(
    opts: &InitOptions,
    rng: &mut (impl rand_core::RngCore + rand_core::CryptoRng),
) -> Result<InitReport, ConfigError> {
    let n = opts.validators;
    if n < 4 {
        return Err(ConfigError::Invalid(
            "a PBFT network needs at least 4 validators (n = 3f + 1 with f >= 1)".into(),
        ));
    }
    let addresses: Vec<SocketAddr> = if opts.addresses.is_empty() {
        (0..n)
            .map(|i| {
                opts.base_port
                    .checked_add(i)
                    .map(|p| SocketAddr::new(opts.host, p))
                    .ok_or_else(|| {
                        ConfigError::Invalid(format!(
                            "--base-port {} leaves no port for validator {i}",
                            opts.base_port
                        ))
                    })
            })
            .collect::<Result<_, _>>()?
    } else if opts.addresses.len() == n as usize {
        opts.addresses.clone()
    } else {
        return Err(ConfigError::Invalid(format!(
            "{} addresses given for {n} validators",
            opts.addresses.len()
        )));
    };
    let operations: Vec<SocketAddr> = if opts.operations.is_empty() {
        addresses
            .iter()
            .map(|a| {
                a.port()
                    .checked_add(OPERATIONS_PORT_OFFSET)
                    .map(|p| SocketAddr::new(std::net::Ipv4Addr::LOCALHOST.into(), p))
                    .ok_or_else(|| {
                        ConfigError::Invalid(format!(
                            "no operations port above {a} (give --operations)"
                        ))
                    })
            })
            .collect::<Result<_, _>>()?
    } else if opts.operations.len() == n as usize {
        opts.operations.clone()
    } else {
        return Err(ConfigError::Invalid(format!(
            "{} operations addresses given for {n} validators",
            opts.operations.len()
        )));
    };
    let genesis_path = opts.dir.join(GENESIS_FILE);
    if genesis_path.exists() {
        return Err(ConfigError::Exists(genesis_path));
    }
    for i in 0..n {
        let d = validator_dir(&opts.dir, i);
        if d.exists() {
            return Err(ConfigError::Exists(d));
        }
    }
    let mkdir = |d: &Path| {
        std::fs::create_dir_all(d).map_err(|source| ConfigError::Write {
            path: d.to_path_buf(),
            source,
        })
    };
    mkdir(&opts.dir)?;

    let mut keys = Vec::new();
    for _ in 0..n {
        let mut seed = [0u8; 32];
        rng.fill_bytes(&mut seed);
        keys.push(SigningKey::from_bytes(&seed));
    }
    let dev_issuer = insecure_devnet_issuer();
    let (issuer_key, issuer_assets) = match &opts.issuer {
        Some((k, a)) => (*k, a.clone()),
        None => (
            dev_issuer.verifying_key().to_bytes(),
            BTreeSet::from([AssetId(840)]),
        ),
    };
    let auditor = opts
        .auditor
        .unwrap_or_else(|| insecure_devnet_auditor().public_key());
    let dev_auditor = opts.auditor.is_none();
    let mut dev = Vec::new();
    if opts.issuer.is_none() {
        dev.push("issuer key");
    }
    if dev_auditor {
        dev.push("auditor key");
    }
    // A ceremony's keys: the verifying key goes beside each validator's configuration, both
    // into DIR/params for wallets.
    let params = match &opts.params {
        Some(dir) => {
            let read = |name: &str| {
                let path = dir.join(name);
                std::fs::read(&path)
                    .map(|bytes| (path.clone(), bytes))
                    .map_err(|e| ConfigError::Invalid(format!("reading {}: {e}", path.display())))
            };
            let (vk_path, vk) = read(shoji_params::VERIFYING_KEY_FILE)?;
            let invalid = |e| ConfigError::Invalid(format!("--params: {e}"));
            let hash = *blake3::hash(&vk).as_bytes();
            shoji_params::decode_verifying_key(&vk_path, &vk).map_err(invalid)?;
            let (pk_path, pk) = read(shoji_params::PROVING_KEY_FILE)?;
            let pk_hash = *blake3::hash(&pk).as_bytes();
            shoji_params::decode_proving_key(&pk_path, &pk, &hash).map_err(invalid)?;
            if hash == shoji_params::dev_verifying_key_hash() {
                dev.push("parameters");
            }
            Some(CeremonyKeys {
                vk,
                hash,
                pk,
                pk_hash,
            })
        }
        None => {
            dev.push("parameters (their trapdoor is public)");
            None
        }
    };
    let insecure = (!dev.is_empty())
        .then(|| format!("development {}: never use for real value", dev.join(", ")));
    let (admin_keys, governance) = match &opts.governance {
        Some((admins, threshold)) => (
            Vec::new(),
            GovernanceSection {
                admins: admins.iter().map(|a| hex_encode(a)).collect(),
                threshold: *threshold as u64,
            },
        ),
        None => {
            let keys: Vec<SigningKey> = (0..3)
                .map(|_| {
                    let mut seed = [0u8; 32];
                    rng.fill_bytes(&mut seed);
                    SigningKey::from_bytes(&seed)
                })
                .collect();
            let section = GovernanceSection {
                admins: keys
                    .iter()
                    .map(|k| hex_encode(k.verifying_key().as_bytes()))
                    .collect(),
                threshold: 2,
            };
            (keys, section)
        }
    };
    let file = GenesisFile {
        epoch: 0,
        insecure,
        verifying_key_hash: params.as_ref().map(|p| hex_encode(&p.hash)),
        proving_key_hash: params.as_ref().map(|p| hex_encode(&p.pk_hash)),
        ledger: LedgerSection {
            anchor_window_blocks: default_anchor_window(),
            auditor_public_key: hex_encode(&auditor.to_bytes()),
            // The development auditor's account-tier key comes with it; a real auditor's is
            // added to the genesis by hand (`shoji-auditor public-key` prints it).
            account_auditor_public_key: dev_auditor.then(|| {
                hex_encode(
                    &shoji_client::network::insecure_devnet_account_auditor()
                        .public()
                        .to_bytes(),
                )
            }),
            issuers: vec![IssuerSection {
                public_key: hex_encode(&issuer_key),
                assets: issuer_assets.iter().map(|a| a.0).collect(),
            }],
        },
        consensus: ConsensusParams::default(),
        assets: opts
            .assets
            .iter()
            .map(|(id, name)| (id.0.to_string(), name.clone()))
            .collect(),
        governance,
        validators: keys
            .iter()
            .zip(&addresses)
            .enumerate()
            .map(|(i, (k, a))| GenesisValidator {
                id: i as u16,
                public_key: hex_encode(k.verifying_key().as_bytes()),
                address: a.to_string(),
            })
            .collect(),
    };
    file.check()
        .map_err(|e| ConfigError::Invalid(format!("the generated genesis is invalid: {e}")))?;

    let mut configs = Vec::new();
    for (i, key) in keys.iter().enumerate() {
        let d = validator_dir(&opts.dir, i as u16);
        mkdir(&d)?;
        write_file(
            &d.join(VALIDATOR_KEY_FILE),
            format!("{}\n", hex_encode(&key.to_bytes())).as_bytes(),
        )?;
        let verifying_key = match &params {
            Some(p) => {
                write_file(&d.join(VERIFYING_KEY_FILE), &p.vk)?;
                Some(PathBuf::from(VERIFYING_KEY_FILE))
            }
            None => None,
        };
        let config = ValidatorConfig {
            id: i as u16,
            key_file: PathBuf::from(VALIDATOR_KEY_FILE),
            genesis: PathBuf::from("..").join(GENESIS_FILE),
            data_dir: PathBuf::from("data"),
            listen: None,
            operations: Some(operations[i].to_string()),
            log_level: default_log_level(),
            log_format: LogFormat::Text,
            verifying_key,
            tuning: opts.tuning,
            snapshots: SnapshotsSection::default(),
            archive: None,
            keep_blocks: 0,
        };
        let path = d.join(CONFIG_FILE);
        write_file(&path, config.to_toml().as_bytes())?;
        configs.push(path);
    }
    let issuer_key_path = if opts.issuer.is_none() {
        let p = opts.dir.join(ISSUER_KEY_FILE);
        write_file(&p, hex_encode(&dev_issuer.to_bytes()).as_bytes())?;
        Some(p)
    } else {
        None
    };
    let mut admin_paths = Vec::new();
    for (i, k) in admin_keys.iter().enumerate() {
        let p = opts.dir.join(admin_key_file(i));
        write_file(&p, format!("{}\n", hex_encode(&k.to_bytes())).as_bytes())?;
        admin_paths.push(p);
    }
    if let Some(p) = &params {
        let d = opts.dir.join(PARAMS_DIR);
        mkdir(&d)?;
        write_file(&d.join(shoji_params::VERIFYING_KEY_FILE), &p.vk)?;
        write_file(&d.join(shoji_params::PROVING_KEY_FILE), &p.pk)?;
    }
    let network_path = opts.dir.join(NETWORK_FILE);
    let mut network_file = file.network_file();
    network_file.operations = operations
        .iter()
        .enumerate()
        .map(|(i, a)| (i.to_string(), a.to_string()))
        .collect();
    let json = serde_json::to_string_pretty(&network_file)
        .map_err(|e| ConfigError::Invalid(format!("encoding the network file: {e}")))?;
    write_file(&network_path, json.as_bytes())?;
    // Written last: its presence marks a complete network directory.
    write_file(&genesis_path, file.to_toml().as_bytes())?;
    Ok(InitReport {
        genesis: genesis_path,
        network: network_path,
        configs,
        issuer_key: issuer_key_path,
        admin_keys: admin_paths,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use shoji_client::Network;

    fn network(dir: &Path) -> InitReport {
        init(
            &InitOptions {
                dir: dir.to_path_buf(),
                ..InitOptions::default()
            },
            &mut rand_core::OsRng,
        )
        .unwrap()
    }

    #[test]
    fn init_writes_a_network_that_loads() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("net");
        let report = network(&dir);
        assert_eq!(report.configs.len(), 4);
        let (file, checked) = GenesisFile::load(&report.genesis).unwrap();
        assert_eq!(checked.genesis.validators.n(), 4);
        assert_eq!(
            checked.addrs[&ReplicaId(3)],
            "127.0.0.1:7003".parse().unwrap()
        );
        assert!(checked.insecure.is_some());
        assert_eq!(
            checked.genesis.ledger.auditor,
            insecure_devnet_auditor().public_key()
        );
        // The TOML round-trips.
        assert_eq!(GenesisFile::parse(&file.to_toml()).unwrap(), file);
        // Every validator's setup loads, with distinct keys matching the genesis.
        let mut keys = BTreeSet::new();
        for (i, c) in report.configs.iter().enumerate() {
            let s = Setup::load(c).unwrap();
            assert_eq!(s.config.id, i as u16);
            assert_eq!(s.listen, checked.addrs[&ReplicaId(i as u16)]);
            assert!(keys.insert(s.key.to_bytes()));
            assert_eq!(
                s.database(),
                validator_dir(&dir, i as u16).join("data/node.redb")
            );
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                let mode = std::fs::metadata(&s.config.key_file)
                    .unwrap()
                    .permissions()
                    .mode();
                assert_eq!(mode & 0o077, 0, "key files are owner-only");
            }
        }
        // The client network file is the one clients load.
        let net = Network::load(&report.network).unwrap();
        let genesis = &checked.genesis;
        assert_eq!(
            net.validators,
            genesis.validators.clone().on_network(genesis.hash())
        );
        assert_eq!(net.network_id, genesis.hash());
        assert_eq!(net.auditor, checked.genesis.ledger.auditor);
        assert_eq!(net.issuers, checked.genesis.ledger.issuers);
        assert_eq!(
            net.assets.get(&AssetId(840)).map(String::as_str),
            Some("USD")
        );
        // The issuer key is the development issuer's.
        let issuer = std::fs::read_to_string(report.issuer_key.unwrap()).unwrap();
        assert_eq!(
            issuer.trim(),
            hex_encode(&insecure_devnet_issuer().to_bytes())
        );
        // A second init refuses to overwrite.
        assert!(matches!(
            init(
                &InitOptions {
                    dir: dir.clone(),
                    ..InitOptions::default()
                },
                &mut rand_core::OsRng
            ),
            Err(ConfigError::Exists(_))
        ));
    }

    /// A network pins its verifying key in the genesis. Without `--params` it pins the
    /// development key and is marked insecure; a genesis pinning the development key without
    /// the marker is refused; `--params` pins the ceremony's key, copies it to every validator
    /// and, with real issuer and auditor keys, leaves the genesis unmarked.
    #[test]
    fn a_network_pins_its_verifying_key_and_only_an_insecure_one_the_development_key() {
        let tmp = tempfile::tempdir().unwrap();
        let report = network(&tmp.path().join("dev"));
        let (file, checked) = GenesisFile::load(&report.genesis).unwrap();
        assert_eq!(
            checked.genesis.verifying_key_hash,
            shoji_params::dev_verifying_key_hash()
        );
        assert!(file
            .insecure
            .as_deref()
            .unwrap_or("")
            .contains("parameters"));
        let mut unmarked = file.clone();
        unmarked.insecure = None;
        let err = unmarked.check().map(|_| ()).unwrap_err();
        assert!(err.contains("trapdoor"), "{err}");
        // The marker and the pinned key are part of the network's identity.
        let mut other = file.clone();
        other.verifying_key_hash = Some(hex_encode(&[5; 32]));
        assert_ne!(
            other.check().unwrap().genesis.hash(),
            checked.genesis.hash()
        );

        // A ceremony's key (here the development key with δ and γ swapped: valid points,
        // another key), with real issuer and auditor keys.
        let dev = shoji_params::dev::parameters().unwrap();
        let mut vk = dev.vk.clone();
        std::mem::swap(&mut vk.delta_g2, &mut vk.gamma_g2);
        let vk_bytes = shoji_params::verifying_key_to_bytes(&vk);
        let params = tmp.path().join("params");
        std::fs::create_dir_all(&params).unwrap();
        std::fs::write(params.join("transfer.vk"), &vk_bytes).unwrap();
        let mut pk = dev.pk.clone();
        pk.vk = vk.clone();
        let mut pk_bytes = Vec::new();
        ark_serialize::CanonicalSerialize::serialize_uncompressed(&pk, &mut pk_bytes).unwrap();
        std::fs::write(params.join("transfer.pk"), &pk_bytes).unwrap();
        let opts = InitOptions {
            dir: tmp.path().join("real"),
            params: Some(params.clone()),
            auditor: Some(
                shoji_primitives::audit::AuditSecretKey::random(&mut rand_core::OsRng).public_key(),
            ),
            issuer: Some((
                SigningKey::from_bytes(&[3; 32]).verifying_key().to_bytes(),
                BTreeSet::from([AssetId(840)]),
            )),
            ..InitOptions::default()
        };
        let report = init(&opts, &mut rand_core::OsRng).unwrap();
        let (file, checked) = GenesisFile::load(&report.genesis).unwrap();
        assert_eq!(file.insecure, None);
        assert_eq!(
            checked.genesis.verifying_key_hash,
            *blake3::hash(&vk_bytes).as_bytes()
        );
        for c in &report.configs {
            let s = Setup::load(c).unwrap();
            let path = s.config.verifying_key.expect("a verifying key file");
            assert_eq!(std::fs::read(&path).unwrap(), vk_bytes);
            assert!(shoji_params::load_verifying_key_pinned(
                &path,
                &s.network.genesis.verifying_key_hash
            )
            .is_ok());
        }
        // Wallets find both keys in DIR/params, and the network file names their hashes.
        let net = shoji_client::Network::load(&report.network).unwrap();
        assert_eq!(
            net.parameters,
            shoji_client::ParameterPins {
                verifying_key_hash: *blake3::hash(&vk_bytes).as_bytes(),
                proving_key_hash: Some(*blake3::hash(&pk_bytes).as_bytes()),
            }
        );
        let copied = tmp.path().join("real").join(PARAMS_DIR);
        assert_eq!(std::fs::read(copied.join("transfer.pk")).unwrap(), pk_bytes);
        assert_eq!(std::fs::read(copied.join("transfer.vk")).unwrap(), vk_bytes);

        // A validator joining later needs the network's verifying key, and only that one.
        let join_at = |name: &str, params: Option<&Path>| {
            join(
                &tmp.path().join(name),
                &report.genesis,
                9,
                "127.0.0.1:7009".parse().unwrap(),
                params,
                &mut rand_core::OsRng,
            )
        };
        let err = join_at("j0", None).map(|_| ()).unwrap_err();
        assert!(err.to_string().contains("pass --params DIR"), "{err}");
        let dev_params = tmp.path().join("dev-params");
        std::fs::create_dir_all(&dev_params).unwrap();
        std::fs::write(
            dev_params.join("transfer.vk"),
            shoji_params::verifying_key_to_bytes(&dev.vk),
        )
        .unwrap();
        let err = join_at("j1", Some(&dev_params)).map(|_| ()).unwrap_err();
        assert!(err.to_string().contains("the network pins"), "{err}");
        let joined = join_at("j2", Some(&copied)).unwrap();
        let s = Setup::load(&joined.config).unwrap();
        let path = s.config.verifying_key.expect("a verifying key file");
        assert_eq!(std::fs::read(&path).unwrap(), vk_bytes);

        // A proving key of another verifying key is refused by init.
        std::fs::write(
            params.join("transfer.vk"),
            shoji_params::verifying_key_to_bytes(&dev.vk),
        )
        .unwrap();
        let bad = InitOptions {
            dir: tmp.path().join("mixed"),
            ..opts.clone()
        };
        let err = init(&bad, &mut rand_core::OsRng).map(|_| ()).unwrap_err();
        assert!(err.to_string().contains("network verifies with"), "{err}");
        // A file that is not a verifying key is refused by init.
        std::fs::write(params.join("transfer.vk"), b"not a key").unwrap();
        let bad = InitOptions {
            dir: tmp.path().join("bad"),
            ..opts
        };
        let err = init(&bad, &mut rand_core::OsRng).map(|_| ()).unwrap_err();
        assert!(err.to_string().contains("--params"), "{err}");
    }

    #[test]
    fn init_options_are_checked() {
        let tmp = tempfile::tempdir().unwrap();
        let bad = |opts: InitOptions| init(&opts, &mut rand_core::OsRng).unwrap_err();
        let dir = tmp.path().join("x");
        assert!(bad(InitOptions {
            dir: dir.clone(),
            validators: 3,
            ..InitOptions::default()
        })
        .to_string()
        .contains("at least 4"));
        assert!(bad(InitOptions {
            dir: dir.clone(),
            base_port: u16::MAX - 1,
            ..InitOptions::default()
        })
        .to_string()
        .contains("--base-port"));
        assert!(bad(InitOptions {
            dir: dir.clone(),
            addresses: vec!["127.0.0.1:1".parse().unwrap()],
            ..InitOptions::default()
        })
        .to_string()
        .contains("addresses"));
        assert!(!dir.join(GENESIS_FILE).exists());
    }

    fn sample() -> GenesisFile {
        let tmp = tempfile::tempdir().unwrap();
        let report = network(&tmp.path().join("n"));
        GenesisFile::load(&report.genesis).unwrap().0
    }

    #[test]
    fn malformed_genesis_files_are_refused_with_the_reason() {
        let good = sample();
        let text = good.to_toml();
        let check = |f: &GenesisFile| f.check().map(|_| ()).unwrap_err();
        // Not TOML, unknown fields, missing sections.
        assert!(GenesisFile::parse("validators = [").is_err());
        assert!(GenesisFile::parse(&format!("{text}\nsurprise = 1\n"))
            .unwrap_err()
            .contains("surprise"));
        assert!(GenesisFile::parse("epoch = 0\n")
            .unwrap_err()
            .contains("ledger"));
        let mut f = good.clone();
        f.validators[1].id = 0;
        assert!(check(&f).contains("twice"));
        let mut f = good.clone();
        f.validators[1].public_key = f.validators[0].public_key.clone();
        assert!(check(&f).contains("already used"));
        let mut f = good.clone();
        f.validators[2].public_key.pop();
        assert!(check(&f).contains("validator 2 public key"));
        let mut f = good.clone();
        f.validators[0].address = "localhost:7000".into();
        assert!(check(&f).contains("address"));
        let mut f = good.clone();
        f.validators.clear();
        assert!(check(&f).contains("no validators"));
        let mut f = good.clone();
        f.ledger.auditor_public_key = "zz".into();
        assert!(check(&f).contains("auditor"));
        let mut f = good.clone();
        f.ledger.issuers[0].assets.clear();
        assert!(check(&f).contains("no assets"));
        let mut f = good.clone();
        f.ledger.anchor_window_blocks = 0;
        assert!(check(&f).contains("anchor_window_blocks"));
        let mut f = good.clone();
        f.consensus.window_size = 12;
        assert!(check(&f).contains("consensus"));
        let mut f = good.clone();
        f.assets.insert("usd".into(), "USD".into());
        assert!(check(&f).contains("asset id"));
        // The genesis hash covers what validators must agree on, not the addresses.
        let a = good.check().unwrap().genesis.hash();
        let mut f = good.clone();
        f.validators[0].address = "10.0.0.1:7000".into();
        assert_eq!(f.check().unwrap().genesis.hash(), a);
        let mut f = good.clone();
        f.consensus.checkpoint_interval = 4;
        assert_ne!(f.check().unwrap().genesis.hash(), a);
        let mut f = good.clone();
        f.ledger.issuers[0].assets.push(978);
        assert_ne!(f.check().unwrap().genesis.hash(), a);
    }

    #[test]
    fn malformed_validator_configs_are_refused_with_the_path() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("n");
        let report = network(&dir);
        let path = report.configs[1].clone();
        let text = std::fs::read_to_string(&path).unwrap();
        let parsed = ValidatorConfig::parse(&text).unwrap();
        assert_eq!(ValidatorConfig::parse(&parsed.to_toml()).unwrap(), parsed);
        let err = |content: &str| {
            std::fs::write(&path, content).unwrap();
            let e = Setup::load(&path).unwrap_err().to_string();
            assert!(
                e.contains(&path.display().to_string()) || e.contains("validator"),
                "{e}"
            );
            e
        };
        // Missing file.
        let missing = dir.join("nope.toml");
        let e = Setup::load(&missing).unwrap_err();
        assert!(matches!(e, ConfigError::Read { .. }));
        assert!(e.to_string().contains("nope.toml"));
        // Not TOML, unknown key, missing field, wrong type.
        assert!(err("id = ").contains(&path.display().to_string()));
        assert!(err(&format!("{text}\nbogus = 1\n")).contains("bogus"));
        // An unknown or misspelt [tuning] key, though the replica's settings are flattened in.
        assert!(text.contains("[tuning]"), "{text}");
        let e = err(&text.replace("retransmit_ms", "retransmit_msec"));
        assert!(
            e.contains("retransmit_msec") && e.contains("[tuning]"),
            "{e}"
        );
        // Pruning needs an archive, a window of at least 64 blocks, and twice the snapshot
        // interval (so a validator joining from the newest snapshot finds the blocks after it).
        assert!(err(&format!("keep_blocks = 5000\n{text}")).contains("archive"));
        let archived = format!("archive = \"file:///tmp/a\"\n{text}");
        assert!(err(&format!("keep_blocks = 10\n{archived}")).contains("at least 64"));
        assert!(err(&format!("keep_blocks = 2000\n{archived}")).contains("twice"));
        assert_eq!(
            ValidatorConfig::parse(&format!("keep_blocks = 2048\n{archived}"))
                .map(|c| (c.keep_blocks, c.archive)),
            Ok((2048, Some("file:///tmp/a".to_string())))
        );
        // An archive this build cannot open is refused when the configuration loads.
        let gcs = err(&format!("archive = \"gs://bucket/shoji\"\n{text}"));
        assert!(
            gcs.contains("gs://bucket/shoji") && gcs.contains("s3://"),
            "{gcs}"
        );
        assert!(
            ValidatorConfig::parse(&format!("archive = \"s3://bucket/shoji\"\n{text}")).is_ok()
        );
        assert!(err(&text.replace("key_file", "# key_file")).contains("key_file"));
        assert!(err(&text.replace("id = 1", "id = \"one\"")).contains("id"));
        // A validator the genesis does not have.
        assert!(err(&text.replace("id = 1", "id = 9")).contains("not in the genesis"));
        // A joining validator (an id the genesis lacks) needs a key of its own and a listen
        // address; with both it loads, marked joining.
        let fresh = SigningKey::from_bytes(&[0x42; 32]);
        let key_file = dir.join("joiner.key");
        std::fs::write(&key_file, hex_encode(&fresh.to_bytes())).unwrap();
        let joiner = text.replace("id = 1", "id = 9").replace(
            &format!("key_file = {:?}", parsed.key_file.display().to_string()),
            &format!("key_file = {:?}", key_file.display().to_string()),
        );
        assert_ne!(
            joiner,
            text.replace("id = 1", "id = 9"),
            "key_file replaced"
        );
        assert!(err(&joiner).contains("listen"));
        std::fs::write(&path, format!("listen = \"127.0.0.1:7009\"\n{joiner}")).unwrap();
        let setup = Setup::load(&path).expect("a joining validator's configuration");
        assert!(setup.joining);
        assert_eq!(setup.listen.to_string(), "127.0.0.1:7009");
        // Another validator's key.
        assert!(err(&text.replace("id = 1", "id = 2")).contains("not validator 2's key"));
        // Bad listen address, bad log level, bad tuning.
        assert!(err(&format!("listen = \"here\"\n{text}")).contains("listen"));
        assert!(
            err(&text.replace("log_level = \"info\"", "log_level = \"[=\"")).contains("log_level")
        );
        assert!(
            err(&text.replace("max_blocks_in_flight = 4", "max_blocks_in_flight = 0"))
                .contains("tuning")
        );
        assert!(
            err(&text.replace("sync_interval_ms = 5000", "sync_interval_ms = 0"))
                .contains("sync_interval_ms")
        );
        // A missing key file, a malformed one, a missing genesis.
        std::fs::write(&path, &text).unwrap();
        let key = validator_dir(&dir, 1).join(VALIDATOR_KEY_FILE);
        let saved = std::fs::read(&key).unwrap();
        std::fs::remove_file(&key).unwrap();
        let e = Setup::load(&path).unwrap_err();
        assert!(matches!(e, ConfigError::Read { .. }) && e.to_string().contains("validator.key"));
        std::fs::write(&key, "not hex").unwrap();
        let e = Setup::load(&path).unwrap_err().to_string();
        assert!(e.contains("validator.key"), "{e}");
        std::fs::write(&key, saved).unwrap();
        std::fs::rename(&report.genesis, dir.join("moved.toml")).unwrap();
        let e = Setup::load(&path).unwrap_err().to_string();
        assert!(e.contains("genesis.toml"), "{e}");
        std::fs::rename(dir.join("moved.toml"), &report.genesis).unwrap();
        Setup::load(&path).unwrap();
    }
}
