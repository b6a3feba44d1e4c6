//! The history archive: committed blocks with their commit certificates, their compact forms
//! and the stable checkpoints with their openings, in an object store (the `object_store`
//! crate, named by URL; this build has its local file system only, its S3, GCS and Azure
//! backends are features not enabled yet). Validators write it
//! ([`Archive::put_height`]); wallets and auditors read old compact blocks from it when a
//! validator no longer keeps them, and check them exactly as they check a validator's: the scan
//! chain from a certified checkpoint up to the next ([`crate::Client::certified_blocks`]). The
//! archive is trusted for nothing: an altered object fails that check.
//!
//! Layout under the URL's path (heights as 20 decimal digits, so that names sort by height):
//!
//! | object | content |
//! |---|---|
//! | `compact/<height>` | [`shoji_ledger::CompactBlock::to_bytes`] |
//! | `blocks/<height>` | postcard of the block and its [`shoji_consensus::CommitCertificate`] |
//! | `checkpoints/<height>` | postcard of the [`shoji_consensus::CheckpointCertificate`] ‖ [`shoji_ledger::StateOpening::to_bytes`] |
//! | `head` | the highest height below which every height is archived (u64 little-endian) |

use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use std::sync::Arc;

/// Why the archive could not be read or written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ArchiveError {
    /// The URL is not one of a supported object store.
    #[error("archive URL {url}: {reason}")]
    Url {
        /// The URL.
        url: String,
        /// Why.
        reason: String,
    },
    /// The object store failed.
    #[error("archive {what}: {source}")]
    Store {
        /// What was being done.
        what: String,
        /// The error.
        #[source]
        source: object_store::Error,
    },
    /// An object does not decode.
    #[error("archive object {0} is malformed")]
    Malformed(String),
}

/// An archive at a URL.
#[derive(Clone, Debug)]
pub struct Archive {
    store: Arc<dyn ObjectStore>,
    root: Path,
}

fn name(kind: &str, height: u64) -> String {
    format!("{kind}/{height:020}")
}

impl Archive {
    /// The archive at `url` (`file:///srv/archive`; another scheme is refused by this build).
    pub fn open(url: &str) -> Result<Archive, ArchiveError> {
        let bad = |reason: String| ArchiveError::Url {
            url: url.to_string(),
            reason,
        };
        let parsed = url::Url::parse(url).map_err(|e| bad(e.to_string()))?;
        if parsed.scheme() == "file" {
            if let Ok(dir) = parsed.to_file_path() {
                std::fs::create_dir_all(&dir)
                    .map_err(|e| bad(format!("creating {}: {e}", dir.display())))?;
            }
        }
        let (store, root) = object_store::parse_url(&parsed).map_err(|e| bad(e.to_string()))?;
        Ok(Archive {
            store: Arc::from(store),
            root,
        })
    }

    fn path(&self, object: &str) -> Path {
        let mut p = self.root.clone();
        for part in object.split('/') {
            p = p.clone().join(part);
        }
        p
    }

    async fn put(&self, object: &str, bytes: Vec<u8>) -> Result<(), ArchiveError> {
        self.store
            .put(&self.path(object), PutPayload::from(bytes))
            .await
            .map(|_| ())
            .map_err(|source| ArchiveError::Store {
                what: format!("writing {object}"),
                source,
            })
    }

    async fn get(&self, object: &str) -> Result<Option<Vec<u8>>, ArchiveError> {
        let store_err = |source| ArchiveError::Store {
            what: format!("reading {object}"),
            source,
        };
        match self.store.get(&self.path(object)).await {
            Ok(r) => Ok(Some(r.bytes().await.map_err(store_err)?.to_vec())),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(store_err(e)),
        }
    }

    /// Writes height `height`: its block with its commit certificate (postcard) and its compact
    /// form, and, for a checkpoint, the certificate and the opening.
    pub async fn put_height(
        &self,
        height: u64,
        block: Vec<u8>,
        compact: Vec<u8>,
        checkpoint: Option<(Vec<u8>, Vec<u8>)>,
    ) -> Result<(), ArchiveError> {
        self.put(&name("blocks", height), block).await?;
        self.put(&name("compact", height), compact).await?;
        if let Some((cert, opening)) = checkpoint {
            let mut both = (cert.len() as u32).to_le_bytes().to_vec();
            both.extend_from_slice(&cert);
            both.extend_from_slice(&opening);
            self.put(&name("checkpoints", height), both).await?;
        }
        Ok(())
    }

    /// Records that every height up to `height` is archived.
    pub async fn put_head(&self, height: u64) -> Result<(), ArchiveError> {
        self.put("head", height.to_le_bytes().to_vec()).await
    }

    /// The height up to which every height is archived (0: none).
    pub async fn head(&self) -> Result<u64, ArchiveError> {
        match self.get("head").await? {
            None => Ok(0),
            Some(b) => <[u8; 8]>::try_from(b.as_slice())
                .map(u64::from_le_bytes)
                .map_err(|_| ArchiveError::Malformed("head".into())),
        }
    }

    /// The compact block of `height`, as archived (`None`: not archived). Unchecked: the
    /// caller checks it against a certified scan chain.
    pub async fn compact(&self, height: u64) -> Result<Option<Vec<u8>>, ArchiveError> {
        self.get(&name("compact", height)).await
    }
}
