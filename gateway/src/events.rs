//! The event stream over HTTP: as server-sent events (`/v1/events`), each with its cursor as
//! its `id` so that a reconnecting `EventSource` resumes through `Last-Event-ID`, and as JSON
//! pages (`/v1/events/batch`) for consumers that poll.

use crate::error::{ApiError, ErrorBody};
use crate::upstream::Retry;
use crate::State;
use axum::extract::{Query, State as Extract};
use axum::http::HeaderMap;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::Json;
use futures_util::stream::Stream;
use serde::{Deserialize, Serialize};
use shoji_client::events::{Cursor, Event, EventBody, EventKind, KindMask, ALL_KINDS};
use shoji_primitives::encoding::hex_encode;
use std::convert::Infallible;
use std::time::Duration;
use utoipa::{IntoParams, ToSchema};

/// Events asked of a validator at once by a stream.
const STREAM_PAGE: u32 = 1000;

/// How long a stream's request waits at the validator for the next block.
const STREAM_WAIT_MS: u32 = 10_000;

/// Longest wait a page request may ask for.
const MAX_PAGE_WAIT_MS: u32 = 10_000;

/// One event, as JSON.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct EventJson {
    /// Its cursor, `HEIGHT.INDEX`: resume after it.
    pub cursor: String,
    /// `block`, `transaction`, `governance`, `validator_set` or `epoch`.
    pub kind: &'static str,
    /// The block's height.
    pub height: u64,
    /// What happened.
    pub data: EventData,
}

/// What happened (hashes and ids in hex).
#[derive(Clone, Debug, Serialize, ToSchema)]
#[serde(untagged)]
pub enum EventData {
    /// A block was committed.
    Block {
        /// Its hash.
        hash: String,
        /// The previous block's hash.
        prev_hash: String,
        /// Block time, Unix milliseconds.
        time_ms: u64,
        /// The view that committed it.
        view: u64,
        /// Payloads it orders.
        transactions: u32,
        /// Signatures in its commit certificate.
        signatures: u32,
    },
    /// A transaction's outcome.
    Transaction {
        /// Its id.
        txid: String,
        /// `transfer`, `mint`, `redeem`, `governance` or `opaque`.
        payload: &'static str,
        /// Applied (or enacted).
        applied: bool,
        /// Why not (a rejection code's name).
        reason: Option<&'static str>,
    },
    /// A governance transaction was enacted.
    Governance {
        /// Its sequence number.
        seq: u64,
        /// The action, in words.
        action: String,
    },
    /// Governance decided the next validator set, which orders blocks from `last + 1`.
    ValidatorSet {
        /// The next epoch.
        epoch: u64,
        /// The last height the current set orders.
        last: u64,
        /// The next set's members.
        validators: Vec<u16>,
    },
    /// A validator-set epoch began with this block.
    Epoch {
        /// The epoch.
        epoch: u64,
        /// Its members.
        validators: Vec<u16>,
    },
}

impl From<&Event> for EventJson {
    fn from(e: &Event) -> EventJson {
        let (kind, data) = match &e.body {
            EventBody::Block {
                hash,
                prev_hash,
                time_ms,
                view,
                transactions,
                signatures,
            } => (
                "block",
                EventData::Block {
                    hash: hex_encode(hash),
                    prev_hash: hex_encode(prev_hash),
                    time_ms: *time_ms,
                    view: *view,
                    transactions: *transactions,
                    signatures: *signatures,
                },
            ),
            EventBody::Transaction {
                txid,
                kind,
                applied,
                ..
            } => (
                "transaction",
                EventData::Transaction {
                    txid: hex_encode(txid),
                    payload: kind.name(),
                    applied: *applied,
                    reason: e.body.reason_name(),
                },
            ),
            EventBody::Governance { seq, action } => (
                "governance",
                EventData::Governance {
                    seq: *seq,
                    action: action.clone(),
                },
            ),
            EventBody::ValidatorSet {
                epoch,
                last,
                validators,
            } => (
                "validator_set",
                EventData::ValidatorSet {
                    epoch: *epoch,
                    last: *last,
                    validators: validators.clone(),
                },
            ),
            EventBody::Epoch { epoch, validators } => (
                "epoch",
                EventData::Epoch {
                    epoch: *epoch,
                    validators: validators.clone(),
                },
            ),
        };
        EventJson {
            cursor: e.cursor.to_string(),
            kind,
            height: e.cursor.height,
            data,
        }
    }
}

/// Which events, from where.
#[derive(Clone, Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StreamQuery {
    /// The last cursor the consumer has (`HEIGHT.INDEX`), or `0` for the first event. A
    /// `Last-Event-ID` header takes precedence.
    pub after: Option<String>,
    /// Kinds wanted, comma-separated: `block`, `transaction`, `governance`, `validator_set`
    /// (which includes `epoch` events). All when absent.
    pub kinds: Option<String>,
}

/// A page of events.
#[derive(Clone, Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// The last cursor the consumer has, or `0` for the first event.
    pub after: Option<String>,
    /// Kinds wanted, comma-separated (see `/v1/events`).
    pub kinds: Option<String>,
    /// Most events in the page (1 to 10,000; default 1,000).
    pub max: Option<u32>,
    /// When there are none yet, how long to wait for the next block, in milliseconds (at most
    /// 10,000; default 0).
    pub wait_ms: Option<u32>,
}

/// A page of events, and where to resume.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct EventsPage {
    /// The events, in stream order.
    pub events: Vec<EventJson>,
    /// The cursor to ask after next (it may be past the last event returned: the filter left
    /// the rest out).
    pub next: String,
}

/// Parses a kind list (`block,transaction`); all kinds when absent or empty.
pub fn parse_kinds(kinds: Option<&str>) -> Result<KindMask, ApiError> {
    let Some(list) = kinds.filter(|k| !k.trim().is_empty()) else {
        return Ok(ALL_KINDS);
    };
    let mut mask = 0;
    for name in list.split(',').map(str::trim) {
        let kind = match name {
            "epoch" => EventKind::ValidatorSet,
            _ => EventKind::parse(name).ok_or_else(|| {
                ApiError::bad_request(format!(
                    "unknown event kind {:?}: the kinds are block, transaction, governance, validator_set",
                    name.chars().take(40).collect::<String>()
                ))
            })?,
        };
        mask |= kind.bit();
    }
    Ok(mask)
}

fn parse_cursor(s: &str) -> Result<Cursor, ApiError> {
    s.trim()
        .parse()
        .map_err(|e: shoji_client::events::CursorError| ApiError::bad_request(e.to_string()))
}

/// The cursor to resume after: `Last-Event-ID` if sent, else `after`, else the start.
fn resume_cursor(headers: &HeaderMap, after: Option<&str>) -> Result<Cursor, ApiError> {
    if let Some(id) = headers.get("last-event-id") {
        let id = id
            .to_str()
            .map_err(|_| ApiError::bad_request("Last-Event-ID is not text"))?;
        return parse_cursor(id);
    }
    after.map_or(Ok(Cursor::START), parse_cursor)
}

/// The event stream as server-sent events, from the event after the cursor on, live: each
/// event's `id` is its cursor and its `event` its kind; its data is an [`EventJson`].
#[utoipa::path(get, path = "/v1/events", tag = "events",
    params(StreamQuery,
        ("Last-Event-ID" = Option<String>, Header, description = "The last cursor received; sent by a reconnecting EventSource")),
    responses(
        (status = 200, description = "A stream of events (text/event-stream); each `data` is an EventJson", content_type = "text/event-stream", body = String),
        (status = 400, description = "A malformed cursor or kind", body = ErrorBody),
        (status = 410, description = "The events after the cursor are no longer kept", body = ErrorBody),
        (status = 503, description = "Too many streams, or no validator reachable", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn stream(
    Extract(state): Extract<State>,
    headers: HeaderMap,
    Query(q): Query<StreamQuery>,
) -> Result<Sse<impl Stream<Item = Result<SseEvent, Infallible>>>, ApiError> {
    let after = resume_cursor(&headers, q.after.as_deref())?;
    let kinds = parse_kinds(q.kinds.as_deref())?;
    let permit = state.subscribers.clone().try_acquire_owned().map_err(|_| {
        ApiError::new(
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            "too_many_subscribers",
            "this gateway serves as many event streams as it is configured for; try again later",
        )
    })?;
    // The first page is fetched before the answer starts, so that a pruned cursor or an
    // unreachable network is an HTTP error, not an empty stream.
    let first = state
        .upstream
        .call(Retry::Yes, move |c| c.events(after, kinds, STREAM_PAGE, 0))
        .await?;
    let (tx, rx) = tokio::sync::mpsc::channel::<SseEvent>(STREAM_PAGE as usize);
    let upstream = state.upstream.clone();
    tokio::spawn(async move {
        let _permit = permit;
        let (mut events, mut next) = first;
        loop {
            for e in &events {
                let event = EventJson::from(e);
                let sse = SseEvent::default()
                    .id(&event.cursor)
                    .event(event.kind)
                    .data(serde_json::to_string(&event).unwrap_or_default());
                if tx.send(sse).await.is_err() {
                    return;
                }
            }
            if tx.is_closed() {
                return;
            }
            let after = next;
            match upstream
                .call(Retry::Yes, move |c| {
                    c.events(after, kinds, STREAM_PAGE, STREAM_WAIT_MS)
                })
                .await
            {
                Ok((e, n)) => (events, next) = (e, n),
                Err(e) => {
                    // Tell the consumer and end the stream; it reconnects with its last id.
                    let body = ApiError::from(e).body();
                    let json = serde_json::to_string(&body).unwrap_or_default();
                    let _ = tx.send(SseEvent::default().event("error").data(json)).await;
                    return;
                }
            }
        }
    });
    let stream =
        futures_util::stream::unfold(
            rx,
            |mut rx| async move { rx.recv().await.map(|e| (Ok(e), rx)) },
        );
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}

/// A page of events after the cursor, as JSON: for consumers that poll instead of streaming.
#[utoipa::path(get, path = "/v1/events/batch", tag = "events",
    params(PageQuery),
    responses(
        (status = 200, description = "Events after the cursor, and where to resume", body = EventsPage),
        (status = 400, description = "A malformed cursor or kind", body = ErrorBody),
        (status = 410, description = "The events after the cursor are no longer kept", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn page(
    Extract(state): Extract<State>,
    Query(q): Query<PageQuery>,
) -> Result<Json<EventsPage>, ApiError> {
    let after = q.after.as_deref().map_or(Ok(Cursor::START), parse_cursor)?;
    let kinds = parse_kinds(q.kinds.as_deref())?;
    let max = q
        .max
        .unwrap_or(1000)
        .clamp(1, shoji_client::api::MAX_EVENTS);
    let wait = q.wait_ms.unwrap_or(0).min(MAX_PAGE_WAIT_MS);
    let (events, next) = state
        .upstream
        .call(Retry::Yes, move |c| c.events(after, kinds, max, wait))
        .await?;
    Ok(Json(EventsPage {
        events: events.iter().map(EventJson::from).collect(),
        next: next.to_string(),
    }))
}
