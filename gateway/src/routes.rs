//! The `/v1` routes but the event stream ([`crate::events`]): status, blocks, transactions and
//! submission. Every handler is annotated for the OpenAPI document, which is built from the
//! same list the router is ([`crate::app`]).

use crate::error::{ApiError, ErrorBody};
use crate::upstream::Retry;
use crate::State;
use axum::body::Bytes;
use axum::extract::{Path, State as Extract};
use axum::Json;
use serde::Serialize;
use shoji_client::CertifiedBlock;
use shoji_primitives::account::AccountTx;
use shoji_primitives::encoding::{hex_decode, hex_encode};
use shoji_primitives::tx::{Transaction, TxId};
use utoipa::ToSchema;

/// Where the answering validator stands: its word, not checked against certificates.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct StatusBody {
    /// The validator that answered.
    pub validator: u16,
    /// Last committed height.
    pub height: u64,
    /// Hash of the block at `height` (hex; zeros at height 0).
    pub last_block_hash: String,
    /// The ledger's state root after `height` (hex).
    pub state_root: String,
    /// Block time of `height`, Unix milliseconds.
    pub time_ms: u64,
    /// The consensus view.
    pub view: u64,
    /// Whether a view change is running.
    pub view_changing: bool,
    /// The leader of `view` (absent during a view change).
    pub leader: Option<u16>,
    /// Height of the last stable checkpoint.
    pub stable_checkpoint: u64,
    /// Transactions waiting to be ordered at that validator.
    pub pending: u64,
    /// Validator-set epoch.
    pub epoch: u64,
    /// The validators' ids.
    pub validators: Vec<u16>,
    /// Governance transactions enacted.
    pub governance_seq: u64,
    /// The network's identifier (hex).
    pub network_id: String,
    /// Set when the network runs on development keys, with why that is unsafe.
    pub insecure: Option<String>,
}

/// A committed block, checked by the gateway against its commit certificate.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct BlockBody {
    /// Height.
    pub height: u64,
    /// The block's hash (hex), which the certificate signs.
    pub hash: String,
    /// The previous block's hash (hex).
    pub prev_hash: String,
    /// The view that committed it.
    pub view: u64,
    /// The validator that proposed it.
    pub proposer: u16,
    /// Block time, Unix milliseconds.
    pub time_ms: u64,
    /// The hash of each payload it orders (hex), in order.
    pub transactions: Vec<String>,
    /// Its commit certificate.
    pub certificate: CertificateBody,
}

/// A commit certificate: a quorum's signatures on the block.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct CertificateBody {
    /// The view of the votes.
    pub view: u64,
    /// The signatures, by validator.
    pub signatures: Vec<SignatureBody>,
}

/// One validator's signature (Ed25519, hex).
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct SignatureBody {
    /// The validator.
    pub validator: u16,
    /// The signature.
    pub signature: String,
}

/// Where a transaction was committed and what happened to it.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct TransactionBody {
    /// Its id (hex).
    pub txid: String,
    /// `transfer`, `mint` or `redeem`.
    pub kind: &'static str,
    /// `applied` or `rejected`.
    pub outcome: &'static str,
    /// Why it was rejected.
    pub reason: Option<String>,
    /// The block's height.
    pub height: u64,
    /// Its index in the block.
    pub index: u32,
    /// Whether the gateway checked the outcome against the certified compact block of
    /// `height`. `false` for up to one checkpoint interval after the commit; ask again.
    pub certified: bool,
}

/// A submitted transaction, final.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct SubmittedBody {
    /// Its id (hex), when it is a shielded transaction.
    pub txid: Option<String>,
    /// The block that holds it.
    pub height: u64,
    /// That block's hash (hex).
    pub block_hash: String,
    /// Signatures of the commit certificate the gateway checked.
    pub signatures: usize,
}

/// Where the network stands, as one validator sees it.
#[utoipa::path(get, path = "/v1/status", tag = "network",
    responses(
        (status = 200, description = "The answering validator's status", body = StatusBody),
        (status = 503, description = "No validator is reachable", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn status(Extract(state): Extract<State>) -> Result<Json<StatusBody>, ApiError> {
    let s = state.upstream.call(Retry::Yes, |c| c.status()).await?;
    let network = state.upstream.network();
    Ok(Json(StatusBody {
        validator: s.node,
        height: s.height,
        last_block_hash: hex_encode(&s.last_block_hash),
        state_root: hex_encode(&s.state_root),
        time_ms: s.time_ms,
        view: s.view,
        view_changing: s.view_changing,
        leader: s.leader,
        stable_checkpoint: s.stable_checkpoint,
        pending: s.pending,
        epoch: s.epoch,
        validators: s.validators,
        governance_seq: s.governance_seq,
        network_id: hex_encode(&network.network_id),
        insecure: network.insecure.clone(),
    }))
}

/// A committed block's summary and commit certificate, checked against the validator set.
#[utoipa::path(get, path = "/v1/blocks/{height}", tag = "ledger",
    params(("height" = u64, Path, description = "Block height (from 1)")),
    responses(
        (status = 200, description = "The block, its certificate checked", body = BlockBody),
        (status = 404, description = "No block at that height yet", body = ErrorBody),
        (status = 502, description = "The validators' answers did not check", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn block(
    Extract(state): Extract<State>,
    Path(height): Path<u64>,
) -> Result<Json<BlockBody>, ApiError> {
    let block = state
        .upstream
        .call(Retry::Yes, move |c| c.block(height))
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no block at height {height} yet")))?;
    Ok(Json(block_body(&block)))
}

fn block_body(b: &CertifiedBlock) -> BlockBody {
    BlockBody {
        height: b.summary.height,
        hash: hex_encode(&b.hash.0),
        prev_hash: hex_encode(&b.summary.prev_hash.0),
        view: b.summary.view,
        proposer: b.summary.proposer.0,
        time_ms: b.summary.time_ms,
        transactions: b
            .summary
            .tx_hashes
            .iter()
            .map(|h| hex_encode(&h.0))
            .collect(),
        certificate: CertificateBody {
            view: b.certificate.view,
            signatures: b
                .certificate
                .signatures
                .iter()
                .map(|(id, sig)| SignatureBody {
                    validator: id.0,
                    signature: hex_encode(&sig.to_bytes()),
                })
                .collect(),
        },
    }
}

/// A transaction's block and outcome, by its id.
#[utoipa::path(get, path = "/v1/transactions/{txid}", tag = "ledger",
    params(("txid" = String, Path, description = "Transaction id, 64 hex digits")),
    responses(
        (status = 200, description = "Where it was committed and its outcome", body = TransactionBody),
        (status = 404, description = "No transaction with that id is committed", body = ErrorBody),
        (status = 400, description = "Not a transaction id", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn transaction(
    Extract(state): Extract<State>,
    Path(txid): Path<String>,
) -> Result<Json<TransactionBody>, ApiError> {
    let id: [u8; 32] = hex_decode("txid", &txid)
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| ApiError::bad_request("a transaction id is 64 hex digits"))?;
    let status = state
        .upstream
        .call(Retry::Yes, move |c| c.transaction(TxId(id)))
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no committed transaction {txid}")))?;
    Ok(Json(TransactionBody {
        txid: hex_encode(&id),
        kind: status.kind.name(),
        outcome: match status.rejected {
            None => "applied",
            Some(_) => "rejected",
        },
        reason: status.rejected,
        height: status.height,
        index: status.index,
        certified: status.certified,
    }))
}

/// Submits an encoded transaction built elsewhere (the bytes a wallet or an issuer produced)
/// and answers when it is final: committed, with a commit certificate the gateway checked.
#[utoipa::path(post, path = "/v1/transactions", tag = "ledger",
    request_body(content = Vec<u8>, content_type = "application/octet-stream",
        description = "The encoded transaction"),
    responses(
        (status = 200, description = "Committed and applied", body = SubmittedBody),
        (status = 409, description = "Committed but rejected (a double spend, an expired anchor)", body = ErrorBody),
        (status = 422, description = "Refused before ordering (malformed, invalid proof)", body = ErrorBody),
        (status = 413, description = "Larger than the gateway accepts", body = ErrorBody),
        (status = 503, description = "Not ordered, or no validator reachable: it may still be ordered until it expires", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn submit(
    Extract(state): Extract<State>,
    body: Bytes,
) -> Result<Json<SubmittedBody>, ApiError> {
    if body.is_empty() {
        return Err(ApiError::bad_request(
            "the body is empty: send the encoded transaction",
        ));
    }
    let txid = match AccountTx::is_account(&body) {
        true => AccountTx::from_bytes(&body)
            .ok()
            .map(|t| t.id().to_string()),
        false => Transaction::from_bytes(&body)
            .ok()
            .map(|t| t.id().to_string()),
    };
    let bytes = body.to_vec();
    let finality = state
        .upstream
        .call(Retry::No, move |c| c.submit_bytes(bytes.clone()))
        .await?;
    Ok(Json(SubmittedBody {
        txid,
        height: finality.height,
        block_hash: hex_encode(&finality.block_hash.0),
        signatures: finality.signatures,
    }))
}
