//! The tokio host: joins a [`NodeCore`] to its QUIC endpoint and clock.
//!
//! One task per validator owns the core; it waits on peer messages, client requests and the
//! earliest timer, sets the core's clock to the system time, feeds the core and routes what
//! comes out. A client's `Submit` is answered when the block holding the transaction is
//! committed (with the block's summary and its certificate), or at once when admission refuses
//! it.
//!
//! The host also asks one other validator, at start and then every
//! [`HostOptions::sync_interval`], for the blocks above its height ([`NodeCore::sync_probe`]),
//! so that a validator that was down catches up even when nothing else tells it it is behind.

use crate::api::{Request, Response};
use crate::{NodeCore, NodeError, Output};
use shoji_consensus::{ReplicaId, TimerKind};
use shoji_ledger::TxOutcome;
use shoji_net::{ClientRequest, ValidatorEndpoint};
use shoji_primitives::encoding::fr_to_bytes;
use shoji_primitives::tx::TxId;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};
use tokio::time::{sleep_until, Duration, Instant};

fn slot(kind: TimerKind) -> u8 {
    match kind {
        TimerKind::ViewChange => 0,
        TimerKind::Retransmit => 1,
        TimerKind::StateTransfer => 2,
        TimerKind::Pipeline => 3,
    }
}

/// The system clock in Unix milliseconds (0 if it reads before 1970, which turns the replica's
/// clock checks off rather than failing).
fn unix_now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Settings of the host loop.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostOptions {
    /// How often to ask another validator for blocks above our height (see
    /// [`NodeCore::sync_probe`]).
    pub sync_interval: Duration,
    /// Where to write and serve state snapshots, and how often (`None`: neither).
    pub snapshots: Option<crate::snapshots::SnapshotOptions>,
    /// The history archive's URL (`None`: no archive): committed blocks are copied there.
    pub archive: Option<String>,
    /// Keep the bodies of this many recent blocks (at least); older ones, once archived, are
    /// pruned at stable checkpoints. 0: keep every block.
    pub keep_blocks: u64,
}

impl Default for HostOptions {
    fn default() -> Self {
        HostOptions {
            sync_interval: Duration::from_secs(5),
            snapshots: None,
            archive: None,
            keep_blocks: 0,
        }
    }
}

/// Runs the validator until the endpoint closes or storage fails.
pub async fn run(
    core: NodeCore,
    endpoint: ValidatorEndpoint,
    initial: Vec<Output>,
    peers: Vec<ReplicaId>,
) -> Result<(), NodeError> {
    run_until(
        core,
        endpoint,
        initial,
        peers,
        HostOptions::default(),
        std::future::pending::<()>(),
    )
    .await
}

/// Runs the validator until `shutdown` completes (then closes the endpoint and returns
/// `Ok`), the endpoint closes, or storage fails. Every committed block is already durable
/// when it is reported, so stopping between two inputs loses nothing.
pub async fn run_until(
    core: NodeCore,
    endpoint: ValidatorEndpoint,
    initial: Vec<Output>,
    peers: Vec<ReplicaId>,
    options: HostOptions,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<(), NodeError> {
    use tracing::Instrument;
    // Every line this validator logs names it (several share a process in a devnet).
    let span = tracing::info_span!("validator", id = core.id().0);
    serve(core, endpoint, initial, peers, options, shutdown)
        .instrument(span)
        .await
}

async fn serve(
    mut core: NodeCore,
    endpoint: ValidatorEndpoint,
    initial: Vec<Output>,
    mut peers: Vec<ReplicaId>,
    options: HostOptions,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<(), NodeError> {
    let mut timers: BTreeMap<u8, (Instant, TimerKind)> = BTreeMap::new();
    let mut waiting: BTreeMap<TxId, Vec<ClientRequest>> = BTreeMap::new();
    let reads = std::sync::Arc::new(tokio::sync::Semaphore::new(MAX_READS_AT_ONCE));
    // The committed height, for event readers waiting for the next block.
    let (committed, _) = tokio::sync::watch::channel(core.ledger().height());
    if let Some(s) = &options.snapshots {
        core.set_snapshot_interval(s.every_blocks);
    }
    let archived = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    if let Some(url) = &options.archive {
        match shoji_client::archive::Archive::open(url) {
            Ok(archive) => {
                tokio::spawn(archive_blocks(
                    archive,
                    core.store().reader(),
                    core.replica().config().checkpoint_interval,
                    committed.subscribe(),
                    core.metrics().clone(),
                    archived.clone(),
                ));
                if options.keep_blocks > 0 {
                    tokio::spawn(prune_blocks(
                        core.store().clone(),
                        options.keep_blocks,
                        archived,
                        committed.subscribe(),
                        core.metrics().clone(),
                    ));
                }
            }
            Err(e) => tracing::error!(error = %e, "no history archive (and so no pruning)"),
        }
    }
    let ctx = Reads {
        reads,
        committed,
        snapshots: options.snapshots.as_ref().map(|s| s.dir.clone()),
    };
    route(
        &core,
        &endpoint,
        &mut peers,
        initial,
        &mut timers,
        &mut waiting,
        &ctx.committed,
    );
    let probe = core.sync_probe();
    route(
        &core,
        &endpoint,
        &mut peers,
        probe,
        &mut timers,
        &mut waiting,
        &ctx.committed,
    );
    core.refresh_metrics();
    core.metrics().turned(unix_now_ms());
    let mut next_probe = Instant::now() + options.sync_interval;
    // Set when a due timer gave way to waiting messages (see the timer branch).
    let mut timer_deferred = false;
    tokio::pin!(shutdown);
    loop {
        let next_timer = timers.values().min_by_key(|(at, _)| *at).copied();
        let far = Instant::now() + Duration::from_secs(3600);
        let outputs = tokio::select! {
            _ = &mut shutdown => None,
            _ = sleep_until(next_probe) => {
                next_probe = Instant::now() + options.sync_interval;
                core.set_now_ms(unix_now_ms());
                Some(core.sync_probe())
            }
            msg = endpoint.recv() => {
                let Some(first) = msg else { return Ok(()) };
                core.set_now_ms(unix_now_ms());
                Some(core.on_peer_messages(waiting_messages(&endpoint, Some(first)))?)
            }
            req = endpoint.next_request() => {
                let Some(req) = req else { return Ok(()) };
                core.set_now_ms(unix_now_ms());
                // Take every request that is already waiting too: their transactions are
                // verified and relayed together.
                let mut reqs = vec![req];
                while reqs.len() < MAX_REQUESTS_AT_ONCE {
                    match endpoint.try_next_request() {
                        Some(r) => reqs.push(r),
                        None => break,
                    }
                }
                Some(handle_requests(&mut core, reqs, &mut waiting, &ctx)?)
            }
            _ = sleep_until(next_timer.map_or(far, |(at, _)| at)) => {
                core.set_now_ms(unix_now_ms());
                // Messages already waiting go first, once: a validator that was slow to get
                // the processor must not start a view change over progress sitting in its
                // inbox (they may re-arm the timer). Only once, so a flood cannot hold a
                // timer off.
                let waiting_msgs = match timer_deferred {
                    true => Vec::new(),
                    false => waiting_messages(&endpoint, None),
                };
                if !waiting_msgs.is_empty() {
                    timer_deferred = true;
                    Some(core.on_peer_messages(waiting_msgs)?)
                } else {
                    timer_deferred = false;
                    Some(match next_timer {
                        Some((_, kind)) => {
                            timers.remove(&slot(kind));
                            core.on_timer(kind)?
                        }
                        None => Vec::new(),
                    })
                }
            }
        };
        if let Some(view) = core.take_snapshot_view() {
            if let Some(s) = options.snapshots.clone() {
                let metrics = core.metrics().clone();
                tokio::task::spawn_blocking(move || {
                    let h = view.height();
                    let started = Instant::now();
                    match crate::snapshots::write(&view, &s) {
                        Ok(m) => {
                            let bytes: u64 = m.chunks.iter().map(|c| u64::from(c.len)).sum();
                            metrics
                                .snapshot_height
                                .set(i64::try_from(h).unwrap_or(i64::MAX));
                            metrics
                                .snapshot_bytes
                                .set(i64::try_from(bytes).unwrap_or(i64::MAX));
                            metrics
                                .snapshot_seconds
                                .observe(started.elapsed().as_secs_f64());
                            tracing::info!(
                                height = h,
                                chunks = m.chunks.len(),
                                nullifiers = m.nullifiers,
                                bytes,
                                "wrote a state snapshot"
                            )
                        }
                        Err(e) => tracing::warn!(height = h, error = %e, "no state snapshot"),
                    }
                });
            }
        }
        let Some(outputs) = outputs else {
            tracing::info!("shutting down");
            endpoint.shutdown().await;
            return Ok(());
        };
        route(
            &core,
            &endpoint,
            &mut peers,
            outputs,
            &mut timers,
            &mut waiting,
            &ctx.committed,
        );
        core.refresh_metrics();
        core.metrics().turned(unix_now_ms());
    }
}

/// `first` and the validator messages already waiting behind it, at most
/// [`MAX_PEER_MESSAGES_AT_ONCE`].
fn waiting_messages(
    endpoint: &ValidatorEndpoint,
    first: Option<(shoji_net::ReplicaId, Vec<u8>)>,
) -> Vec<(ReplicaId, Vec<u8>)> {
    let mut msgs = Vec::new();
    let mut next = first.or_else(|| endpoint.try_recv());
    while let Some((from, bytes)) = next {
        msgs.push((ReplicaId(from), bytes));
        next = match msgs.len() < MAX_PEER_MESSAGES_AT_ONCE {
            true => endpoint.try_recv(),
            false => None,
        };
    }
    msgs
}

/// What distinguishes the answers to a block's transactions: applied, and why not.
type AnswerKind = (bool, Option<String>);

/// Most validator messages taken from the queue for one turn of the loop.
const MAX_PEER_MESSAGES_AT_ONCE: usize = 256;

/// Most client requests taken from the queue for one turn of the loop.
const MAX_REQUESTS_AT_ONCE: usize = 512;

/// Most compact-block reads served at once, each on a blocking thread of its own: reads never
/// run on the task that runs consensus, and a flood of them queues here.
const MAX_READS_AT_ONCE: usize = 1;

/// Most bytes of compact blocks in one answer (a client's `max` may ask for up to
/// [`crate::api::MAX_COMPACT_BLOCKS`] blocks; it asks again from where the answer stops).
pub const COMPACT_ANSWER_BYTES: usize = 1 << 20;

/// Answers reads at once; admits the submissions together and keeps them waiting for their
/// commits.
fn handle_requests(
    core: &mut NodeCore,
    reqs: Vec<ClientRequest>,
    waiting: &mut BTreeMap<TxId, Vec<ClientRequest>>,
    reads: &Reads,
) -> Result<Vec<Output>, NodeError> {
    let mut submits: Vec<(ClientRequest, Vec<u8>)> = Vec::new();
    let metrics = core.metrics().clone();
    for req in reqs {
        match Request::decode(req.body()) {
            Ok(Request::Submit { tx }) => submits.push((req, tx)),
            Ok(read) => {
                metrics.client_request(read.kind(), "ok");
                answer_read(core, req, read, reads)
            }
            Err(e) => {
                metrics.client_request("malformed", "error");
                req.respond(Response::Error(e).encode())
            }
        }
    }
    if submits.is_empty() {
        return Ok(Vec::new());
    }
    let (reqs, txs): (Vec<ClientRequest>, Vec<Vec<u8>>) = submits.into_iter().unzip();
    let (out, results) = core.submit_batch(txs)?;
    for (req, result) in reqs.into_iter().zip(results) {
        match result {
            Err(e) => {
                metrics.client_request("submit", "refused");
                metrics.admission(e.reason());
                req.respond(Response::Refused(e.to_string()).encode())
            }
            Ok(id) => {
                metrics.client_request("submit", "ok");
                metrics.admission("admitted");
                waiting.entry(id).or_default().push(req)
            }
        }
    }
    Ok(out)
}

/// Answers a read (any request but a submission). Status and tree state are answered at once
/// from memory; compact blocks, blocks, transactions and events are read from the store off
/// this task (see
/// [`serve_from_store`]).
fn answer_read(core: &NodeCore, req: ClientRequest, read: Request, reads: &Reads) {
    match read {
        Request::Status => {
            let s = core.status();
            let r = Response::Status(crate::api::Status {
                node: s.id.0,
                height: s.height,
                last_block_hash: s.last_block_hash,
                state_root: s.state_root,
                time_ms: s.time_ms,
                view: s.view,
                view_changing: s.view_changing,
                leader: (!s.view_changing).then_some(s.leader.0),
                stable_checkpoint: s.stable_checkpoint,
                pending: s.pending as u64,
                epoch: s.epoch,
                validators: s.validators.iter().map(|v| v.0).collect(),
                governance_seq: s.governance_seq,
            });
            req.respond(r.encode());
        }
        Request::TreeState => {
            let l = core.ledger();
            let r = Response::TreeState {
                height: l.height(),
                anchor: fr_to_bytes(&l.tree_root()),
                size: l.frontier().size(),
            };
            req.respond(r.encode());
        }
        Request::CompactBlocks { from_height, max } => {
            serve_from_store(core.store().reader(), req, reads.reads.clone(), move |r| {
                compact_blocks(r, from_height, max)
            })
        }
        Request::Block { height } => {
            serve_from_store(core.store().reader(), req, reads.reads.clone(), move |r| {
                block(r, height)
            })
        }
        Request::Transaction { txid } => {
            serve_from_store(core.store().reader(), req, reads.reads.clone(), move |r| {
                transaction(r, txid)
            })
        }
        Request::Events {
            after,
            kinds,
            max,
            wait_ms,
        } => serve_events(
            core.store().reader(),
            req,
            EventsQuery {
                after,
                kinds,
                max: max.clamp(1, crate::api::MAX_EVENTS) as usize,
                wait: Duration::from_millis(u64::from(wait_ms.min(crate::api::MAX_EVENT_WAIT_MS))),
            },
            reads,
        ),
        Request::Certified { at_or_below } => {
            let r = match certified(core, at_or_below) {
                Ok((cert, opening)) => Response::Certified {
                    checkpoint: postcard::to_allocvec(&cert).unwrap_or_default(),
                    opening: opening.map(|o| o.to_bytes()).unwrap_or_default(),
                },
                Err(e) => Response::Error(e),
            };
            req.respond(r.encode());
        }
        Request::EpochChange { height } => {
            let r = match epoch_change(core, height) {
                Ok(Some((cert, opening, change))) => Response::EpochChange {
                    checkpoint: postcard::to_allocvec(&cert).unwrap_or_default(),
                    opening: opening.to_bytes(),
                    last: change.last,
                    validators: change.validators.into_iter().collect(),
                },
                Ok(None) => Response::EpochChange {
                    checkpoint: Vec::new(),
                    opening: Vec::new(),
                    last: 0,
                    validators: Vec::new(),
                },
                Err(e) => Response::Error(e),
            };
            req.respond(r.encode());
        }
        Request::Policy => match certified(core, u64::MAX) {
            Ok((cert, opening)) => {
                serve_from_store(core.store().reader(), req, reads.reads.clone(), move |r| {
                    let policy = match opening.map(|_| r.policy_at(cert.height)).transpose() {
                        Ok(p) => p.flatten(),
                        Err(e) => return Response::Error(e.to_string()),
                    };
                    Response::Policy {
                        checkpoint: postcard::to_allocvec(&cert).unwrap_or_default(),
                        opening: opening.map(|o| o.to_bytes()).unwrap_or_default(),
                        policy: policy.map(|p| p.to_bytes()).unwrap_or_default(),
                    }
                })
            }
            Err(e) => req.respond(Response::Error(e).encode()),
        },
        Request::Snapshot => {
            let dir = reads.snapshots.clone();
            serve_from_store(core.store().reader(), req, reads.reads.clone(), move |r| {
                snapshot_offer(r, dir.as_deref())
            })
        }
        Request::SnapshotChunk { height, index } => {
            let dir = reads.snapshots.clone();
            serve_from_store(core.store().reader(), req, reads.reads.clone(), move |_| {
                let Some(dir) = dir else {
                    return Response::SnapshotChunk(Vec::new());
                };
                match crate::snapshots::chunk(&dir, height, index) {
                    Ok(c) => Response::SnapshotChunk(c.unwrap_or_default()),
                    Err(e) => Response::Error(e.to_string()),
                }
            })
        }
        Request::Submit { .. } => {
            req.respond(Response::Error("submissions are admitted in batches".into()).encode())
        }
    }
}

/// Copies every committed block, with its commit certificate and its compact form, to the
/// archive, in height order, as the committed height moves, and every stable checkpoint
/// certificate with its state opening once stored; records the archived height in the archive
/// (`head`) and the metrics. Reads run on a blocking thread; a failed write is retried at the
/// next commit.
async fn archive_blocks(
    archive: shoji_client::archive::Archive,
    reader: shoji_store::StoreReader,
    checkpoint_interval: u64,
    mut committed: tokio::sync::watch::Receiver<u64>,
    metrics: crate::metrics::Metrics,
    archived: std::sync::Arc<std::sync::atomic::AtomicU64>,
) {
    let mut done = match archive.head().await {
        Ok(h) => h,
        Err(e) => {
            tracing::warn!(error = %e, "the history archive cannot be read: archiving from the start");
            0
        }
    };
    let k = checkpoint_interval.max(1);
    let mut checkpoints_done = done - done % k;
    loop {
        let tip = *committed.borrow_and_update();
        archive_checkpoints(&archive, &reader, k, done, &mut checkpoints_done).await;
        while done < tip {
            let upto = tip.min(done + ARCHIVE_BATCH);
            let r = reader.clone();
            let from = done + 1;
            let read = tokio::task::spawn_blocking(move || {
                (from..=upto)
                    .map(|h| {
                        let block = r.block(h)?;
                        let compact = r.compact_blocks(h, 1, usize::MAX)?;
                        Ok((h, block.zip(compact.into_iter().next())))
                    })
                    .collect::<Result<Vec<_>, shoji_store::StoreError>>()
            })
            .await;
            let heights = match read {
                Ok(Ok(heights)) => heights,
                // Not kept here (this validator started from a snapshot): others archive it.
                Ok(Err(shoji_store::StoreError::NotKept { first })) => {
                    done = first.saturating_sub(1).clamp(done, tip);
                    continue;
                }
                Ok(Err(e)) => {
                    tracing::warn!(height = from, error = %e, "not archived: the store could not be read");
                    break;
                }
                Err(_) => break,
            };
            let before = done;
            let heights = heights
                .into_iter()
                .filter_map(|(h, found)| {
                    let (block, compact) = found?;
                    Some((
                        h,
                        postcard::to_allocvec(&block).unwrap_or_default(),
                        compact,
                    ))
                })
                .collect();
            done = match archive.put_heights(heights).await {
                Ok(()) => upto,
                Err((h, e)) => {
                    tracing::warn!(height = h, error = %e, "not archived yet");
                    h - 1
                }
            };
            if done > before {
                if let Err(e) = archive.put_head(done).await {
                    tracing::warn!(error = %e, "the archive's head not recorded");
                }
                metrics
                    .archived_height
                    .set(i64::try_from(done).unwrap_or(i64::MAX));
                archived.store(done, std::sync::atomic::Ordering::Release);
            }
            if done < upto {
                break;
            }
            archive_checkpoints(&archive, &reader, k, done, &mut checkpoints_done).await;
        }
        if committed.changed().await.is_err() {
            return;
        }
    }
}

/// Most heights the archive task reads from the store at once.
const ARCHIVE_BATCH: u64 = 64;

/// A checkpoint not stored this many intervals after its height is skipped by the archive:
/// this validator never saw it stable (it caught up past it by state transfer); the others
/// archive it.
const CHECKPOINT_ARCHIVE_PATIENCE: u64 = 4;

/// Copies the stable checkpoint certificates, with their state openings, of the heights above
/// `checkpoints_done` up to `archived` (the heights whose blocks are archived) to the archive,
/// advancing `checkpoints_done`; stops at the first not yet stable.
async fn archive_checkpoints(
    archive: &shoji_client::archive::Archive,
    reader: &shoji_store::StoreReader,
    k: u64,
    archived: u64,
    checkpoints_done: &mut u64,
) {
    while *checkpoints_done + k <= archived {
        let c = *checkpoints_done + k;
        let r = reader.clone();
        let read = tokio::task::spawn_blocking(move || {
            Ok::<_, shoji_store::StoreError>((r.checkpoint(c)?, r.opening(c)?))
        })
        .await;
        match read {
            Ok(Ok((Some(cert), Some(opening)))) => {
                let cert = postcard::to_allocvec(&cert).unwrap_or_default();
                if let Err(e) = archive.put_checkpoint(c, cert, opening.to_bytes()).await {
                    tracing::warn!(height = c, error = %e, "checkpoint not archived yet");
                    return;
                }
            }
            Ok(Ok(_)) if archived >= c + CHECKPOINT_ARCHIVE_PATIENCE * k => {}
            Ok(Ok(_)) => return,
            Ok(Err(e)) => {
                tracing::warn!(height = c, error = %e, "checkpoint not archived: the store could not be read");
                return;
            }
            Err(_) => return,
        }
        *checkpoints_done = c;
    }
}

/// Most heights one pruning write transaction deletes, so that it never holds up a commit long.
const PRUNE_BATCH: u64 = 256;

/// Prunes block bodies older than the newest `keep` blocks and already archived, at stable
/// checkpoints ([`shoji_store::Store::prune`]), on a blocking thread, as the committed height
/// moves.
async fn prune_blocks(
    store: shoji_store::Store,
    keep: u64,
    archived: std::sync::Arc<std::sync::atomic::AtomicU64>,
    mut committed: tokio::sync::watch::Receiver<u64>,
    metrics: crate::metrics::Metrics,
) {
    let mut base = match store.base() {
        Ok(b) => b.map_or(0, |(h, _)| h),
        Err(e) => {
            tracing::warn!(error = %e, "no pruning: the store's base cannot be read");
            return;
        }
    };
    metrics
        .pruned_height
        .set(i64::try_from(base).unwrap_or(i64::MAX));
    loop {
        let tip = *committed.borrow_and_update();
        let up_to = tip
            .saturating_sub(keep)
            .min(archived.load(std::sync::atomic::Ordering::Acquire));
        while up_to > base {
            let s = store.clone();
            match tokio::task::spawn_blocking(move || s.prune(up_to, PRUNE_BATCH)).await {
                Ok(Ok(b)) if b > base => {
                    base = b;
                    metrics
                        .pruned_height
                        .set(i64::try_from(base).unwrap_or(i64::MAX));
                }
                Ok(Ok(_)) => break,
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, "pruning failed");
                    break;
                }
                Err(_) => return,
            }
        }
        if committed.changed().await.is_err() {
            return;
        }
    }
}

/// The newest snapshot in `dir` whose height has a stored (stable) checkpoint certificate,
/// with that certificate; both empty when there is none.
fn snapshot_offer(reader: &shoji_store::StoreReader, dir: Option<&std::path::Path>) -> Response {
    let none = Response::Snapshot {
        checkpoint: Vec::new(),
        manifest: Vec::new(),
    };
    let Some(dir) = dir else { return none };
    let answer = || -> Result<Response, String> {
        let mut heights = crate::snapshots::list(dir).map_err(|e| e.to_string())?;
        heights.sort_unstable_by(|a, b| b.cmp(a));
        for h in heights {
            let Some(cert) = reader.checkpoint(h).map_err(|e| e.to_string())? else {
                continue;
            };
            let Some(manifest) = crate::snapshots::manifest(dir, h).map_err(|e| e.to_string())?
            else {
                continue;
            };
            return Ok(Response::Snapshot {
                checkpoint: postcard::to_allocvec(&cert).unwrap_or_default(),
                manifest,
            });
        }
        Ok(none.clone())
    };
    answer().unwrap_or_else(Response::Error)
}

/// The first validator-set change whose epoch ends at or after `height`, with the first stored
/// checkpoint of the ending epoch at or after the block that decided it (its state holds the
/// decided change). `None` when no such change is known, or none of those checkpoints is
/// stable yet.
fn epoch_change(
    core: &NodeCore,
    height: u64,
) -> Result<
    Option<(
        shoji_consensus::CheckpointCertificate,
        shoji_ledger::StateOpening,
        shoji_store::EpochChange,
    )>,
    String,
> {
    let store = core.store();
    let Some(change) = store
        .epoch_change_at_or_after(height)
        .map_err(|e| e.to_string())?
    else {
        return Ok(None);
    };
    let k = core.replica().config().checkpoint_interval.max(1);
    let mut h = change.decided.div_ceil(k).saturating_mul(k);
    while h < change.last {
        let cert = store.checkpoint(h).map_err(|e| e.to_string())?;
        let opening = store.opening(h).map_err(|e| e.to_string())?;
        if let (Some(cert), Some(opening)) = (cert, opening) {
            return Ok(Some((cert, opening, change)));
        }
        h = h.saturating_add(k);
    }
    Ok(None)
}

/// How far back [`certified`] looks for a stored checkpoint, in checkpoints.
const CERTIFIED_LOOKBACK: u64 = 1024;

/// The highest stable checkpoint at or below `at_or_below` that this validator has executed,
/// with the opening of its state root (`None` at height 0).
fn certified(
    core: &NodeCore,
    at_or_below: u64,
) -> Result<
    (
        shoji_consensus::CheckpointCertificate,
        Option<shoji_ledger::StateOpening>,
    ),
    String,
> {
    let k = core.replica().config().checkpoint_interval;
    let stable = core.replica().stable_checkpoint();
    let mut h = stable.height.min(at_or_below);
    h -= h % k;
    for _ in 0..CERTIFIED_LOOKBACK {
        if h == 0 {
            return Ok((shoji_consensus::CheckpointCertificate::genesis(), None));
        }
        let cert = match h == stable.height {
            true => Some(stable.clone()),
            false => core.store().checkpoint(h).map_err(|e| e.to_string())?,
        };
        let opening = core.store().opening(h).map_err(|e| e.to_string())?;
        if let (Some(cert), Some(opening)) = (cert, opening) {
            return Ok((cert, Some(opening)));
        }
        h -= k;
    }
    Err(format!(
        "no stored checkpoint at or below height {at_or_below}"
    ))
}

/// Answers a read from the store on a blocking thread, from the store's snapshot at that
/// moment, once one of [`MAX_READS_AT_ONCE`] permits is free: the consensus task only starts it.
fn serve_from_store(
    reader: shoji_store::StoreReader,
    req: ClientRequest,
    reads: std::sync::Arc<tokio::sync::Semaphore>,
    read: impl FnOnce(&shoji_store::StoreReader) -> Response + Send + 'static,
) {
    tokio::spawn(async move {
        let Ok(_permit) = reads.acquire_owned().await else {
            return;
        };
        let response = tokio::task::spawn_blocking(move || read(&reader))
            .await
            .unwrap_or_else(|e| Response::Error(format!("the read failed: {e}")));
        req.respond(response.encode());
    });
}

/// Compact blocks from `from_height`: they are stored ready to send, and one answer holds at
/// most [`COMPACT_ANSWER_BYTES`] (one block whatever its size).
fn compact_blocks(reader: &shoji_store::StoreReader, from_height: u64, max: u32) -> Response {
    let max = max.min(crate::api::MAX_COMPACT_BLOCKS) as usize;
    match reader.compact_blocks(from_height, max, COMPACT_ANSWER_BYTES) {
        Ok(blocks) => Response::CompactBlocks(blocks),
        Err(shoji_store::StoreError::NotKept { first }) => Response::NotKept { first },
        Err(e) => Response::Error(e.to_string()),
    }
}

/// The summary and commit certificate of the block at `height` (both empty above the tip).
fn block(reader: &shoji_store::StoreReader, height: u64) -> Response {
    match reader.block(height) {
        Ok(Some((block, cert))) => Response::Block {
            summary: postcard::to_allocvec(&block.summary()).unwrap_or_default(),
            certificate: postcard::to_allocvec(&cert).unwrap_or_default(),
        },
        Ok(None) => Response::Block {
            summary: Vec::new(),
            certificate: Vec::new(),
        },
        Err(e) => Response::Error(e.to_string()),
    }
}

/// Where the transaction `txid` was committed, with its bytes and outcome.
fn transaction(reader: &shoji_store::StoreReader, txid: [u8; 32]) -> Response {
    match reader.transaction(&TxId(txid)) {
        Ok(found) => Response::Transaction(found.map(|t| crate::api::TxRecord {
            height: t.height,
            index: t.index,
            rejected: match t.outcome {
                shoji_store::StoredOutcome::Applied { .. } => None,
                shoji_store::StoredOutcome::Rejected(why) => Some(why),
            },
            tx: t.tx.to_bytes(),
        })),
        Err(e) => Response::Error(e.to_string()),
    }
}

/// What reads served off the consensus task share: the permits that bound them, and the
/// committed height (event readers wait on it for the next block).
struct Reads {
    reads: std::sync::Arc<tokio::sync::Semaphore>,
    committed: tokio::sync::watch::Sender<u64>,
    /// Where this validator's snapshots are (`None`: it serves none).
    snapshots: Option<std::path::PathBuf>,
}

/// A [`Request::Events`], bounded.
struct EventsQuery {
    after: shoji_client::events::Cursor,
    kinds: shoji_client::events::KindMask,
    max: usize,
    wait: Duration,
}

/// Most bytes of stored events read for one answer.
const EVENTS_READ_BYTES: usize = 1 << 20;

/// Most heights of stored events read for one answer.
const EVENTS_READ_HEIGHTS: usize = 1000;

/// Answers an events read on a blocking thread, from the store's snapshot, once a read permit
/// is free; when there is nothing after the cursor yet, waits (up to the query's wait) for the
/// next committed block and reads again.
fn serve_events(
    reader: shoji_store::StoreReader,
    req: ClientRequest,
    q: EventsQuery,
    reads: &Reads,
) {
    let permits = reads.reads.clone();
    let mut committed = reads.committed.subscribe();
    tokio::spawn(async move {
        let deadline = Instant::now() + q.wait;
        let response = loop {
            let read = {
                let Ok(_permit) = permits.clone().acquire_owned().await else {
                    return;
                };
                let reader = reader.clone();
                let from = q.after.height.max(1);
                // Heights from the cursor's own (its later events) on; a filter may leave
                // most of them out, so as many as the byte budget allows.
                tokio::task::spawn_blocking(move || {
                    reader.events(from, EVENTS_READ_HEIGHTS, EVENTS_READ_BYTES)
                })
                .await
            };
            let (first, heights) = match read {
                Ok(Ok(r)) => r,
                Ok(Err(e)) => break Response::Error(e.to_string()),
                Err(e) => break Response::Error(format!("the read failed: {e}")),
            };
            // Events after the cursor that are no longer kept: say so, never skip silently.
            if let Some(first) = first {
                if first > 1 && q.after.height + 1 < first {
                    break Response::EventsPruned { first };
                }
            }
            let (events, next) = match crate::events::select(&heights, q.after, q.kinds, q.max) {
                Ok(r) => r,
                Err(e) => break Response::Error(e),
            };
            if !events.is_empty() || next != q.after {
                break Response::Events { events, next };
            }
            // Nothing yet: wait for the next block, or answer empty at the deadline.
            let seen = *committed.borrow_and_update();
            let newer = async {
                while *committed.borrow_and_update() <= seen {
                    if committed.changed().await.is_err() {
                        std::future::pending::<()>().await;
                    }
                }
            };
            if tokio::time::timeout_at(deadline, newer).await.is_err() {
                break Response::Events { events, next };
            }
        };
        req.respond(response.encode());
    });
}

/// Adds the validators of a decided change to the transport: their connections are accepted
/// and they are dialed from now on. Nobody is dropped here (a validator leaving at the boundary
/// still has to finish the old epoch).
pub fn widen_transport(
    endpoint: &ValidatorEndpoint,
    validators: &BTreeMap<ReplicaId, [u8; 32]>,
    addresses: &BTreeMap<ReplicaId, String>,
) {
    let mut set = endpoint.validators();
    let mut addrs = endpoint.peer_addrs();
    for (id, key) in validators {
        match shoji_net::VerifyingKey::from_bytes(key) {
            Ok(k) => {
                set.insert(id.0, k);
            }
            Err(e) => {
                tracing::warn!(validator = id.0, error = %e, "a decided validator's key is invalid")
            }
        }
    }
    for (id, a) in addresses {
        match a.parse() {
            Ok(a) => {
                addrs.entry(id.0).or_insert(a);
            }
            // Governance accepts only canonical IP:port addresses, so this would be a bug;
            // the validator is then reached only if it dials in.
            Err(e) => tracing::warn!(validator = id.0, address = %a, error = %e,
                "a decided validator's address does not parse: it will not be dialed"),
        }
    }
    match endpoint.set_validators(set, addrs) {
        Ok(()) => tracing::info!(
            validators = ?validators.keys().map(|v| v.0).collect::<Vec<_>>(),
            "transport accepts the next validator set"
        ),
        Err(e) => tracing::warn!(error = %e, "the transport refused the next validator set"),
    }
}

#[allow(clippy::too_many_arguments)]
fn route(
    core: &NodeCore,
    endpoint: &ValidatorEndpoint,
    peers: &mut Vec<ReplicaId>,
    outputs: Vec<Output>,
    timers: &mut BTreeMap<u8, (Instant, TimerKind)>,
    waiting: &mut BTreeMap<TxId, Vec<ClientRequest>>,
    committed: &tokio::sync::watch::Sender<u64>,
) {
    for o in outputs {
        match o {
            Output::Send { to, bytes } => {
                if let Err(e) = endpoint.send(to.0, bytes) {
                    tracing::debug!(to = to.0, error = %e, "send dropped");
                }
            }
            Output::Broadcast { bytes } => {
                for p in peers.iter().filter(|p| **p != core.id()) {
                    if let Err(e) = endpoint.send(p.0, bytes.clone()) {
                        tracing::debug!(to = p.0, error = %e, "send dropped");
                    }
                }
            }
            Output::SetTimer { kind, after_ms } => {
                timers.insert(
                    slot(kind),
                    (Instant::now() + Duration::from_millis(after_ms), kind),
                );
            }
            Output::CancelTimer { kind } => {
                timers.remove(&slot(kind));
            }
            Output::ValidatorsDecided {
                validators,
                addresses,
            } => widen_transport(endpoint, &validators, &addresses),
            Output::EpochChanged { epoch, validators } => {
                tracing::info!(
                    epoch,
                    validators = ?validators.iter().map(|v| v.0).collect::<Vec<_>>(),
                    "validator-set epoch changed"
                );
                if core.is_retired() {
                    // Nothing to time any more.
                    timers.clear();
                }
                *peers = validators;
            }
            Output::Dropped { id, reason } => {
                if let Some(reqs) = waiting.remove(&id) {
                    let bytes: Arc<[u8]> = Response::Dropped(reason).encode().into();
                    for r in reqs {
                        r.respond(bytes.clone());
                    }
                }
            }
            Output::Committed {
                height,
                outcomes,
                state_root,
            } => {
                committed.send_replace(height);
                tracing::debug!(
                    height,
                    transactions = outcomes.len(),
                    state_root = %shoji_primitives::encoding::hex_encode(&state_root),
                    "committed"
                );
                // Clients get the block's summary, not its transactions: enough to check the
                // certificate and find their transaction.
                let stored = core.store().block(height).ok().flatten().map(|(b, c)| {
                    (
                        postcard::to_allocvec(&b.summary()).unwrap_or_default(),
                        postcard::to_allocvec(&c).unwrap_or_default(),
                    )
                });
                // Most transactions of a block share one answer (applied): encode each
                // distinct answer once and share it among the requests it answers.
                let mut answers: Vec<(AnswerKind, Arc<[u8]>)> = Vec::new();
                for (id, outcome) in outcomes {
                    let Some(reqs) = waiting.remove(&id) else {
                        continue;
                    };
                    let applied = matches!(outcome, TxOutcome::Applied { .. } | TxOutcome::Enacted);
                    let reason = match &outcome {
                        TxOutcome::Rejected(r) => Some(r.to_string()),
                        TxOutcome::Applied { .. } | TxOutcome::Enacted => None,
                    };
                    let key = (applied, reason);
                    let bytes = match answers.iter().find(|(k, _)| *k == key) {
                        Some((_, bytes)) => bytes.clone(),
                        None => {
                            let response = match &stored {
                                Some((summary, certificate)) => Response::Committed {
                                    height,
                                    applied: key.0,
                                    reason: key.1.clone(),
                                    summary: summary.clone(),
                                    certificate: certificate.clone(),
                                },
                                None => Response::Error(format!(
                                    "block {height} committed but not readable"
                                )),
                            };
                            let bytes: Arc<[u8]> = response.encode().into();
                            answers.push((key, bytes.clone()));
                            bytes
                        }
                    };
                    for r in reqs {
                        r.respond(bytes.clone());
                    }
                }
            }
        }
    }
}
