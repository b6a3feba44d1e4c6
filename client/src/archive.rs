//! The history archive: committed blocks with their commit certificates, their compact forms
//! and the stable checkpoints with their openings, in an object store (the `object_store`
//! crate, named by URL: the local file system or S3 and S3-compatible servers, see
//! [`Archive::open`]). Validators write it
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
//! | `checkpoints/<height>` | the certificate's length (u32 little-endian) ‖ postcard of the [`shoji_consensus::CheckpointCertificate`] ‖ [`shoji_ledger::StateOpening::to_bytes`] |
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

/// The objects of one kind in an archive ([`Archive::contents`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ObjectCount {
    /// How many.
    pub count: u64,
    /// Their bytes.
    pub bytes: u64,
    /// The lowest height (`None`: none).
    pub lowest: Option<u64>,
    /// The highest height (0: none).
    pub highest: u64,
}

/// What an archive holds ([`Archive::contents`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ArchiveContents {
    /// The height up to which every height is archived, as the archive records it.
    pub head: u64,
    /// Blocks with their commit certificates.
    pub blocks: ObjectCount,
    /// Compact blocks.
    pub compact: ObjectCount,
    /// Checkpoint certificates with their state openings.
    pub checkpoints: ObjectCount,
}

/// A block with its commit certificate, as archived.
pub type ArchivedBlock = (shoji_consensus::Block, shoji_consensus::CommitCertificate);

/// A stable checkpoint certificate with the state opening its state root hashes, as archived.
pub type ArchivedCheckpoint = (
    shoji_consensus::CheckpointCertificate,
    shoji_ledger::StateOpening,
);

/// Most objects [`Archive::objects`] reads at once.
pub const READS_AT_ONCE: usize = 64;

/// Most objects [`Archive::put_heights`] writes at once (two per height).
pub const WRITES_AT_ONCE: usize = 16;

/// Decodes the archived block object of `height`.
pub fn decode_block(height: u64, bytes: &[u8]) -> Result<ArchivedBlock, ArchiveError> {
    postcard::from_bytes(bytes).map_err(|_| ArchiveError::Malformed(name("blocks", height)))
}

/// Decodes the archived checkpoint object of `height`.
pub fn decode_checkpoint(height: u64, bytes: &[u8]) -> Result<ArchivedCheckpoint, ArchiveError> {
    let malformed = || ArchiveError::Malformed(name("checkpoints", height));
    let (len, rest) = bytes.split_first_chunk::<4>().ok_or_else(malformed)?;
    let len = u32::from_le_bytes(*len) as usize;
    if rest.len() < len {
        return Err(malformed());
    }
    let (cert, opening) = rest.split_at(len);
    let cert = postcard::from_bytes(cert).map_err(|_| malformed())?;
    let opening = shoji_ledger::StateOpening::from_bytes(opening).map_err(|_| malformed())?;
    Ok((cert, opening))
}

/// Checks that `url` names an archive this build can open ([`Archive::open`]), without
/// opening it.
pub fn check_url(url: &str) -> Result<(), ArchiveError> {
    parse(url).map(|_| ())
}

/// The object stores this build can open.
enum Backend {
    Local,
    S3,
}

/// `url` parsed: the URL, its object store, and the prefix of the archive's objects in it.
fn parse(url: &str) -> Result<(url::Url, Backend, Path), ArchiveError> {
    let bad = |reason: String| ArchiveError::Url {
        url: url.to_string(),
        reason,
    };
    let parsed = url::Url::parse(url).map_err(|e| bad(e.to_string()))?;
    let (scheme, prefix) =
        object_store::ObjectStoreScheme::parse(&parsed).map_err(|e| bad(e.to_string()))?;
    let backend = match scheme {
        object_store::ObjectStoreScheme::Local => Backend::Local,
        object_store::ObjectStoreScheme::AmazonS3 => Backend::S3,
        other => {
            return Err(bad(format!(
                "{other:?} is not supported: use file:// or s3://"
            )))
        }
    };
    let root = Path::parse(prefix).map_err(|e| bad(e.to_string()))?;
    Ok((parsed, backend, root))
}

/// An archive at a URL. Use one per tokio runtime: an S3 archive's connections are tasks of the
/// runtime that made them, and a request from another runtime waits on them while that runtime
/// is idle.
#[derive(Clone, Debug)]
pub struct Archive {
    store: Arc<dyn ObjectStore>,
    root: Path,
}

fn name(kind: &str, height: u64) -> String {
    format!("{kind}/{height:020}")
}

impl Archive {
    /// The archive at `url`:
    ///
    /// - `file:///srv/archive`: a directory of the local file system (created if missing);
    /// - `s3://bucket/prefix`: an S3 bucket, or a bucket of any S3-compatible server, configured
    ///   the way the AWS tools are, from the environment: `AWS_ACCESS_KEY_ID`,
    ///   `AWS_SECRET_ACCESS_KEY`, `AWS_REGION`, `AWS_ENDPOINT` (another server than AWS's), and
    ///   `AWS_ALLOW_HTTP=true` for an endpoint without TLS (a server on loopback).
    ///
    /// Google Cloud Storage, Azure and plain HTTP URLs are refused: their backends are not built.
    pub fn open(url: &str) -> Result<Archive, ArchiveError> {
        let bad = |reason: String| ArchiveError::Url {
            url: url.to_string(),
            reason,
        };
        let (parsed, scheme, root) = parse(url)?;
        let store: Arc<dyn ObjectStore> = match scheme {
            Backend::Local => {
                if let Ok(dir) = parsed.to_file_path() {
                    std::fs::create_dir_all(&dir)
                        .map_err(|e| bad(format!("creating {}: {e}", dir.display())))?;
                }
                Arc::new(object_store::local::LocalFileSystem::new())
            }
            Backend::S3 => {
                // TLS to the bucket is rustls on ring, as everywhere else in Shoji. Another
                // provider already installed for the process is as good.
                let _ = rustls::crypto::ring::default_provider().install_default();
                let s3 = object_store::aws::AmazonS3Builder::from_env()
                    .with_url(url)
                    .build()
                    .map_err(|e| bad(e.to_string()))?;
                Arc::new(s3)
            }
        };
        Ok(Archive { store, root })
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
    /// form.
    pub async fn put_height(
        &self,
        height: u64,
        block: Vec<u8>,
        compact: Vec<u8>,
    ) -> Result<(), ArchiveError> {
        let (block_name, compact_name) = (name("blocks", height), name("compact", height));
        futures_util::future::try_join(
            self.put(&block_name, block),
            self.put(&compact_name, compact),
        )
        .await
        .map(|_| ())
    }

    /// Writes heights as [`Archive::put_height`] does, in order, [`WRITES_AT_ONCE`] objects
    /// at once (an object store's latency, not its bandwidth, bounds one writer). On a failure,
    /// every height given below the failed one is written; the error names the failed height.
    pub async fn put_heights(
        &self,
        heights: Vec<(u64, Vec<u8>, Vec<u8>)>,
    ) -> Result<(), (u64, ArchiveError)> {
        use futures_util::StreamExt;
        let mut writes =
            futures_util::stream::iter(heights.into_iter().map(|(h, block, compact)| async move {
                (h, self.put_height(h, block, compact).await)
            }))
            .buffered(WRITES_AT_ONCE / 2);
        while let Some((h, written)) = writes.next().await {
            written.map_err(|e| (h, e))?;
        }
        Ok(())
    }

    /// Writes the stable checkpoint certificate of `height` (postcard) with the state opening
    /// its state root hashes.
    pub async fn put_checkpoint(
        &self,
        height: u64,
        certificate: Vec<u8>,
        opening: Vec<u8>,
    ) -> Result<(), ArchiveError> {
        let mut both = (certificate.len() as u32).to_le_bytes().to_vec();
        both.extend_from_slice(&certificate);
        both.extend_from_slice(&opening);
        self.put(&name("checkpoints", height), both).await
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

    /// The block of `height` with its commit certificate, as archived (`None`: not archived).
    /// Unchecked: [`crate::Client::verify_archive`] checks the certificate.
    pub async fn block(&self, height: u64) -> Result<Option<ArchivedBlock>, ArchiveError> {
        self.get(&name("blocks", height))
            .await?
            .map(|b| decode_block(height, &b))
            .transpose()
    }

    /// The stable checkpoint certificate of `height` with the state opening archived beside it
    /// (`None`: not archived). Unchecked: [`crate::Client::verify_archive`] checks both.
    pub async fn checkpoint(
        &self,
        height: u64,
    ) -> Result<Option<ArchivedCheckpoint>, ArchiveError> {
        self.get(&name("checkpoints", height))
            .await?
            .map(|b| decode_checkpoint(height, &b))
            .transpose()
    }

    /// The objects of `kind` (`"blocks"`, `"compact"` or `"checkpoints"`) of the heights in
    /// `heights`, in order (`None`: not archived), read [`READS_AT_ONCE`] at a time: an object
    /// store's latency, not its bandwidth, bounds one reader.
    pub async fn objects(
        &self,
        kind: &str,
        heights: std::ops::RangeInclusive<u64>,
    ) -> Result<Vec<Option<Vec<u8>>>, ArchiveError> {
        use futures_util::{StreamExt, TryStreamExt};
        futures_util::stream::iter(heights.map(|h| {
            let object = name(kind, h);
            async move { self.get(&object).await }
        }))
        .buffered(READS_AT_ONCE)
        .try_collect()
        .await
    }

    /// What the archive holds: the heights of each kind of object and their bytes.
    pub async fn contents(&self) -> Result<ArchiveContents, ArchiveError> {
        use futures_util::StreamExt;
        let mut contents = ArchiveContents {
            head: self.head().await?,
            ..ArchiveContents::default()
        };
        for (kind, into) in [
            ("blocks", &mut contents.blocks),
            ("compact", &mut contents.compact),
            ("checkpoints", &mut contents.checkpoints),
        ] {
            let prefix = self.path(kind);
            let mut listing = self.store.list(Some(&prefix));
            while let Some(meta) = listing.next().await {
                let meta = meta.map_err(|source| ArchiveError::Store {
                    what: format!("listing {kind}"),
                    source,
                })?;
                let Some(height) = meta.location.filename().and_then(|f| f.parse::<u64>().ok())
                else {
                    continue;
                };
                into.count += 1;
                into.bytes += meta.size;
                into.lowest = Some(into.lowest.map_or(height, |l| l.min(height)));
                into.highest = into.highest.max(height);
            }
        }
        Ok(contents)
    }

    /// The compact block of `height`, as archived (`None`: not archived). Unchecked: the
    /// caller checks it against a certified scan chain.
    pub async fn compact(&self, height: u64) -> Result<Option<Vec<u8>>, ArchiveError> {
        self.get(&name("compact", height)).await
    }
}
