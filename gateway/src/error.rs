//! Errors as the gateway answers them: an HTTP status and a JSON body whose `code` is stable
//! (a program matches on it; the message is for people and may change).

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use shoji_client::ClientError;
use utoipa::ToSchema;

/// The body of every error answer.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// What went wrong.
    pub error: ErrorDetail,
}

/// What went wrong.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// A stable machine-readable code: `bad_request`, `unauthorized`, `not_found`,
    /// `payload_too_large`, `refused`, `rejected`, `not_ordered`, `events_pruned`,
    /// `too_many_subscribers`, `unavailable`, `bad_validator`, `validator_error`.
    pub code: &'static str,
    /// The reason, in words.
    pub message: String,
}

/// An error answer.
#[derive(Clone, Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl ApiError {
    /// An error with this status and code.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
        }
    }

    /// 400 `bad_request`.
    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }

    /// 404 `not_found`.
    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    /// The stable code.
    pub fn code(&self) -> &'static str {
        self.code
    }

    /// The body.
    pub fn body(&self) -> ErrorBody {
        ErrorBody {
            error: ErrorDetail {
                code: self.code,
                message: self.message.clone(),
            },
        }
    }
}

impl From<ClientError> for ApiError {
    fn from(e: ClientError) -> ApiError {
        let (status, code) = match &e {
            ClientError::Unreachable(_) | ClientError::Connection { .. } => {
                (StatusCode::SERVICE_UNAVAILABLE, "unavailable")
            }
            ClientError::Refused(_) => (StatusCode::UNPROCESSABLE_ENTITY, "refused"),
            ClientError::NotOrdered(_) => (StatusCode::SERVICE_UNAVAILABLE, "not_ordered"),
            ClientError::Rejected { .. } => (StatusCode::CONFLICT, "rejected"),
            ClientError::EventsPruned { .. } => (StatusCode::GONE, "events_pruned"),
            ClientError::Server(_) => (StatusCode::BAD_GATEWAY, "validator_error"),
            _ => (StatusCode::BAD_GATEWAY, "bad_validator"),
        };
        ApiError::new(status, code, e.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, axum::Json(self.body())).into_response()
    }
}
