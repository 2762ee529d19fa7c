//! `/networks`: the network endpoints.

use axum::Router;

use super::SharedState;

/// This module's routes, merged into [`super::router`].
pub(super) fn routes() -> Router<SharedState> {
    Router::new()
}
