//! The network file: what a client must know of a network before it talks to it.
//!
//! ```json
//! {
//!   "epoch": 0,
//!   "validators": [{"id": 0, "addr": "127.0.0.1:7000", "public_key": "<32-byte hex>"}, ...],
//!   "auditor_public_key": "<32-byte hex>",
//!   "issuers": [{"public_key": "<32-byte hex>", "assets": [840]}],
//!   "assets": {"840": "USD"},
//!   "network_id": "<genesis hash, hex>",
//!   "verifying_key_hash": "<blake3 of transfer.vk, hex>",  // absent: the development key
//!   "proving_key_hash": "<blake3 of transfer.pk, hex>",    // what wallets prove with
//!   "insecure": "<why>"                                    // development networks only
//! }
//! ```
//!
//! The validator keys are the trust anchor: a client accepts a transaction as final only with a
//! commit certificate signed by a quorum of them. The parameter hashes pin the keys of the
//! network's ceremony: a wallet proves only with the proving key the file names. A file that
//! names the development key (whose trapdoor is public) must say `insecure`.

use serde::{Deserialize, Serialize};
use shoji_consensus::ed25519_dalek::VerifyingKey;
use shoji_consensus::{ReplicaId, ValidatorSet};
use shoji_primitives::audit::AuditPublicKey;
use shoji_primitives::encoding::{hex_decode, hex_encode};
use shoji_primitives::note::AssetId;
use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// Why a network file could not be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NetworkError {
    /// The file could not be read.
    #[error("cannot read the network file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not a network description.
    #[error("the network file {path} is malformed: {reason}")]
    Malformed {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// An asset neither the network nor a number names.
    #[error("unknown asset {0:?}: use a number or one of the network's asset names ({1})")]
    UnknownAsset(String, String),
}

/// One validator as the file lists it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ValidatorEntry {
    /// Replica id.
    pub id: u16,
    /// Its client and validator address.
    pub addr: String,
    /// Its Ed25519 public key, hex.
    pub public_key: String,
}

/// An issuer as the file lists it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct IssuerEntry {
    /// Its Ed25519 public key, hex.
    pub public_key: String,
    /// The assets it may mint and redeem.
    pub assets: Vec<u64>,
}

/// The file's JSON form.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct NetworkFile {
    /// Validator-set epoch.
    #[serde(default)]
    pub epoch: u64,
    /// The validators.
    pub validators: Vec<ValidatorEntry>,
    /// The designated auditor's public key, hex.
    pub auditor_public_key: String,
    /// The auditor's account-tier key (Ristretto), hex: what account transfers encrypt their
    /// amounts to. Absent: the network has no confidential accounts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_auditor_public_key: Option<String>,
    /// Issuers.
    #[serde(default)]
    pub issuers: Vec<IssuerEntry>,
    /// Asset names by id (JSON object keys are strings).
    #[serde(default)]
    pub assets: BTreeMap<String, String>,
    /// A warning, set for development networks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub insecure: Option<String>,
    /// The network's identifier (its genesis hash), hex: what governance approvals sign.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network_id: Option<String>,
    /// blake3 of the verifying key the genesis pins, hex; absent: the development key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verifying_key_hash: Option<String>,
    /// blake3 of the proving-key file wallets prove with, hex (a ceremony network's
    /// `transfer.pk`); absent on development networks, whose proving key is pinned in the code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proving_key_hash: Option<String>,
    /// Each validator's operations address (`/metrics`, `/livez`, `/readyz`), by replica id:
    /// for the operators' monitoring, not for clients (which ignore it).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub operations: BTreeMap<String, String>,
    /// Where the network's history archive is (an object-store URL: `file:///…`):
    /// clients read old compact blocks there when a validator no longer keeps them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub archive: Option<String>,
}

/// The proof parameters a network uses, by hash.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ParameterPins {
    /// blake3 of the compressed verifying key the validators verify with.
    pub verifying_key_hash: [u8; 32],
    /// blake3 of the proving-key file (`transfer.pk`); `None` for the development key.
    pub proving_key_hash: Option<[u8; 32]>,
}

impl ParameterPins {
    /// The development parameters (their trapdoor is public).
    pub fn development() -> Self {
        ParameterPins {
            verifying_key_hash: shoji_params::dev_verifying_key_hash(),
            proving_key_hash: None,
        }
    }

    /// Whether these are the development parameters.
    pub fn is_development(&self) -> bool {
        self.verifying_key_hash == shoji_params::dev_verifying_key_hash()
    }
}

/// A network, checked.
#[derive(Clone, Debug)]
pub struct Network {
    /// The validator set commit certificates are checked against.
    pub validators: ValidatorSet,
    /// Where each validator listens, in id order.
    pub addrs: Vec<(ReplicaId, SocketAddr)>,
    /// The designated auditor.
    pub auditor: AuditPublicKey,
    /// The auditor's account-tier key; `None`: no confidential accounts on this network.
    pub account_auditor: Option<shoji_confidential::PublicKey>,
    /// Issuers and their assets.
    pub issuers: BTreeMap<[u8; 32], BTreeSet<AssetId>>,
    /// Asset names.
    pub assets: BTreeMap<AssetId, String>,
    /// Set for development networks.
    pub insecure: Option<String>,
    /// The network's identifier (its genesis hash): what governance approvals and the
    /// validators' votes sign, so the certificates of another network never verify here.
    pub network_id: [u8; 32],
    /// The proof parameters, by hash.
    pub parameters: ParameterPins,
    /// The history archive's URL ([`crate::archive`]), if the network has one.
    pub archive: Option<String>,
}

fn key32(what: &'static str, s: &str) -> Result<[u8; 32], String> {
    let bytes = hex_decode(what, s).map_err(|e| format!("{what}: {e}"))?;
    bytes
        .try_into()
        .map_err(|_| format!("{what} must be 32 bytes"))
}

impl Network {
    /// Reads and checks `path`.
    pub fn load(path: &Path) -> Result<Network, NetworkError> {
        let text = std::fs::read_to_string(path).map_err(|source| NetworkError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let file: NetworkFile =
            serde_json::from_str(&text).map_err(|e| NetworkError::Malformed {
                path: path.to_path_buf(),
                reason: e.to_string(),
            })?;
        Network::from_file(file).map_err(|reason| NetworkError::Malformed {
            path: path.to_path_buf(),
            reason,
        })
    }

    /// Checks a parsed file.
    pub fn from_file(file: NetworkFile) -> Result<Network, String> {
        let mut members = BTreeMap::new();
        let mut addrs = Vec::new();
        for v in &file.validators {
            let key = VerifyingKey::from_bytes(&key32("validator key", &v.public_key)?)
                .map_err(|e| format!("validator {}: {e}", v.id))?;
            let addr: SocketAddr = v
                .addr
                .parse()
                .map_err(|e| format!("validator {} address {:?}: {e}", v.id, v.addr))?;
            if members.insert(ReplicaId(v.id), key).is_some() {
                return Err(format!("validator {} is listed twice", v.id));
            }
            addrs.push((ReplicaId(v.id), addr));
        }
        addrs.sort_by_key(|(id, _)| *id);
        let network_id = file.network_id.as_deref().ok_or(
            "the file has no network_id, so no commit certificate can be checked against it \
             (validators sign for their network since consensus signing v2): take the network \
             file that shoji-node init or devnet writes now",
        )?;
        let network_id = key32("network_id", network_id)?;
        let validators = ValidatorSet::new(file.epoch, members)
            .map_err(|e| e.to_string())?
            .on_network(network_id);
        let auditor =
            AuditPublicKey::from_bytes(&key32("auditor public key", &file.auditor_public_key)?)
                .map_err(|e| format!("auditor public key: {e}"))?;
        let account_auditor = file
            .account_auditor_public_key
            .as_deref()
            .map(|h| {
                shoji_confidential::PublicKey::from_bytes(&key32("account auditor public key", h)?)
                    .map_err(|e| format!("account auditor public key: {e}"))
            })
            .transpose()?;
        let mut issuers = BTreeMap::new();
        for i in &file.issuers {
            issuers.insert(
                key32("issuer public key", &i.public_key)?,
                i.assets.iter().map(|a| AssetId(*a)).collect(),
            );
        }
        let mut assets = BTreeMap::new();
        for (id, name) in &file.assets {
            let id: u64 = id
                .parse()
                .map_err(|_| format!("asset id {id:?} is not a number"))?;
            assets.insert(AssetId(id), name.clone());
        }
        let parameters = match &file.verifying_key_hash {
            None => ParameterPins::development(),
            Some(h) => ParameterPins {
                verifying_key_hash: key32("verifying_key_hash", h)?,
                proving_key_hash: file
                    .proving_key_hash
                    .as_deref()
                    .map(|h| key32("proving_key_hash", h))
                    .transpose()?,
            },
        };
        if parameters.is_development() && file.insecure.is_none() {
            return Err(
                "the file names the development verifying key, whose trapdoor anyone can \
                 recompute, but does not mark the network insecure: take the network file its \
                 `shoji-node init` wrote, from a ceremony's parameters (`--params DIR`)"
                    .into(),
            );
        }
        Ok(Network {
            validators,
            addrs,
            auditor,
            account_auditor,
            issuers,
            assets,
            insecure: file.insecure,
            network_id,
            parameters,
            archive: file.archive,
        })
    }

    /// The file form of this network.
    pub fn to_file(&self) -> NetworkFile {
        NetworkFile {
            epoch: self.validators.epoch,
            validators: self
                .addrs
                .iter()
                .map(|(id, addr)| ValidatorEntry {
                    id: id.0,
                    addr: addr.to_string(),
                    public_key: self
                        .validators
                        .key(*id)
                        .map(|k| hex_encode(k.as_bytes()))
                        .unwrap_or_default(),
                })
                .collect(),
            auditor_public_key: hex_encode(&self.auditor.to_bytes()),
            account_auditor_public_key: self.account_auditor.map(|k| hex_encode(&k.to_bytes())),
            issuers: self
                .issuers
                .iter()
                .map(|(k, a)| IssuerEntry {
                    public_key: hex_encode(k),
                    assets: a.iter().map(|a| a.0).collect(),
                })
                .collect(),
            assets: self
                .assets
                .iter()
                .map(|(id, name)| (id.0.to_string(), name.clone()))
                .collect(),
            insecure: self.insecure.clone(),
            network_id: Some(hex_encode(&self.network_id)),
            verifying_key_hash: (!self.parameters.is_development())
                .then(|| hex_encode(&self.parameters.verifying_key_hash)),
            proving_key_hash: self.parameters.proving_key_hash.map(|h| hex_encode(&h)),
            operations: BTreeMap::new(),
            archive: self.archive.clone(),
        }
    }

    /// The asset a user means by `s`: a name the network gives (case-insensitive) or a number the
    /// network knows. Unknown assets are refused, so a typo cannot send value nobody expects.
    pub fn resolve_asset(&self, s: &str) -> Result<AssetId, NetworkError> {
        let known = || {
            self.assets
                .iter()
                .map(|(id, n)| format!("{n} = {}", id.0))
                .collect::<Vec<_>>()
                .join(", ")
        };
        if let Some((id, _)) = self.assets.iter().find(|(_, n)| n.eq_ignore_ascii_case(s)) {
            return Ok(*id);
        }
        match s.parse::<u64>() {
            Ok(id)
                if self.assets.contains_key(&AssetId(id))
                    || self.issuers.values().any(|a| a.contains(&AssetId(id))) =>
            {
                Ok(AssetId(id))
            }
            _ => Err(NetworkError::UnknownAsset(s.to_string(), known())),
        }
    }

    /// The name of `asset`, or its number.
    pub fn asset_name(&self, asset: AssetId) -> String {
        self.assets
            .get(&asset)
            .cloned()
            .unwrap_or_else(|| asset.0.to_string())
    }
}

/// The warning every program prints on a network marked insecure, with the genesis' reason.
pub fn insecure_warning(why: &str) -> String {
    format!(
        "WARNING: INSECURE NETWORK: {why}. Whoever holds a development key, or the development \
         parameters' public trapdoor, can forge on it (mint without limit)."
    )
}

/// The auditor key of local development networks: a public constant, so that a newcomer can
/// audit a devnet with nothing set up. Never designate it on a network that carries real value.
pub fn insecure_devnet_auditor() -> shoji_primitives::audit::AuditSecretKey {
    shoji_primitives::audit::AuditSecretKey(ark_ed_on_bls12_381::Fr::from(0x5401_u64))
}

/// The account-tier key of [`insecure_devnet_auditor`], derived from it as every auditor's is.
pub fn insecure_devnet_account_auditor() -> shoji_confidential::SecretKey {
    shoji_confidential::SecretKey::auditor(&insecure_devnet_auditor().to_bytes())
}

/// The issuer key of local development networks (a public constant, like
/// [`insecure_devnet_auditor`]).
pub fn insecure_devnet_issuer() -> shoji_consensus::ed25519_dalek::SigningKey {
    shoji_consensus::ed25519_dalek::SigningKey::from_bytes(b"shoji insecure devnet issuer key")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> NetworkFile {
        let key = shoji_consensus::ed25519_dalek::SigningKey::from_bytes(&[7; 32]);
        NetworkFile {
            epoch: 0,
            validators: (0..4)
                .map(|i| ValidatorEntry {
                    id: i,
                    addr: format!("127.0.0.1:{}", 7000 + i),
                    public_key: hex_encode(key.verifying_key().as_bytes()),
                })
                .collect(),
            auditor_public_key: hex_encode(&insecure_devnet_auditor().public_key().to_bytes()),
            account_auditor_public_key: None,
            issuers: vec![IssuerEntry {
                public_key: hex_encode(insecure_devnet_issuer().verifying_key().as_bytes()),
                assets: vec![840],
            }],
            assets: BTreeMap::from([("840".into(), "USD".into())]),
            insecure: Some("development keys".into()),
            network_id: Some(hex_encode(&[9; 32])),
            verifying_key_hash: None,
            proving_key_hash: None,
            operations: BTreeMap::new(),
            archive: None,
        }
    }

    /// Validators sign for their network, so a file without its id cannot check a certificate:
    /// it is refused with what to do, and the loaded set signs for the file's network.
    #[test]
    fn the_network_id_is_required_and_reaches_the_validator_set() {
        let net = Network::from_file(sample()).unwrap();
        assert_eq!(net.network_id, [9; 32]);
        assert_eq!(net.validators.network, [9; 32]);
        let mut old = sample();
        old.network_id = None;
        let err = Network::from_file(old).unwrap_err();
        assert!(err.contains("no network_id"), "{err}");
        assert!(err.contains("shoji-node init or devnet"), "{err}");
    }

    #[test]
    fn round_trip_and_asset_names() {
        let net = Network::from_file(sample()).unwrap();
        let again = Network::from_file(net.to_file()).unwrap();
        assert_eq!(again.addrs, net.addrs);
        assert_eq!(net.resolve_asset("usd").unwrap(), AssetId(840));
        assert_eq!(net.resolve_asset("840").unwrap(), AssetId(840));
        assert!(matches!(
            net.resolve_asset("EUR"),
            Err(NetworkError::UnknownAsset(..))
        ));
        assert!(net.resolve_asset("978").is_err());
    }

    #[test]
    fn bad_files_are_refused_with_the_reason() {
        let mut f = sample();
        f.validators[1].id = 0;
        assert!(Network::from_file(f).unwrap_err().contains("twice"));
        let mut f = sample();
        f.validators[0].public_key.pop();
        assert!(Network::from_file(f).is_err());
        let mut f = sample();
        f.validators[0].addr = "localhost".into();
        assert!(Network::from_file(f).unwrap_err().contains("address"));
        let mut f = sample();
        f.auditor_public_key = "00".repeat(32);
        assert!(Network::from_file(f).is_err());
    }

    /// The parameter pins: the development key only with the insecure mark; a ceremony's
    /// hashes survive a round trip; a malformed hash is refused by name.
    #[test]
    fn parameter_pins_and_the_development_key() {
        let net = Network::from_file(sample()).unwrap();
        assert_eq!(net.parameters, ParameterPins::development());
        let mut unmarked = sample();
        unmarked.insecure = None;
        let err = Network::from_file(unmarked.clone()).unwrap_err();
        assert!(err.contains("development verifying key"), "{err}");
        unmarked.verifying_key_hash = Some(hex_encode(&shoji_params::dev_verifying_key_hash()));
        assert!(Network::from_file(unmarked.clone()).is_err());
        let mut ceremony = unmarked;
        ceremony.verifying_key_hash = Some(hex_encode(&[5; 32]));
        ceremony.proving_key_hash = Some(hex_encode(&[6; 32]));
        let net = Network::from_file(ceremony.clone()).unwrap();
        assert_eq!(
            net.parameters,
            ParameterPins {
                verifying_key_hash: [5; 32],
                proving_key_hash: Some([6; 32])
            }
        );
        assert!(!net.parameters.is_development());
        let again = Network::from_file(net.to_file()).unwrap();
        assert_eq!(again.parameters, net.parameters);
        ceremony.proving_key_hash = Some("abc".into());
        let err = Network::from_file(ceremony).unwrap_err();
        assert!(err.contains("proving_key_hash"), "{err}");
    }
}
