//! The OpenAPI 3.1 document of this API.
//!
//! It is written by hand in `crates/server/openapi.json` and compiled into the
//! binary. Why not generate it (utoipa)? The response shapes are the
//! `hanzo-core` types, which would need schema derives in that crate, and the
//! document would still need review as the contract the CLI and the UI code
//! against. Instead `tests/openapi.rs` keeps the file honest, both ways:
//! every path of [`super::route_paths`] is in the document and every documented
//! path is routed; every documented method answers (not 405) and every other
//! method gets 405; and the bodies the API returns in the tests (applications,
//! deployments, events, tokens, audit rows, errors) validate against the
//! document's schemas. The schemathesis run (`scripts/lib/schemathesis.sh`)
//! checks the document against a live server once more.

use axum::http::header;
use axum::response::{IntoResponse, Response};

/// The document as served at `GET /api/v1/openapi.json`.
pub const DOCUMENT: &str = include_str!("../../openapi.json");

pub async fn serve() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], DOCUMENT).into_response()
}
