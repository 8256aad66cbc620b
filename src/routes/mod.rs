//! HTTP entry points. Handlers hand writes to the actors and read through the store's
//! query functions; HTTP statuses are decided in [`error`] alone.

mod auth;
mod console;
pub mod error;
mod health;
mod metrics;
pub mod request_id;
mod projections;
mod read;
mod state;
mod webhook;
mod ws;

pub use error::ApiError;
pub use state::AppState;

use actix_web::web;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.app_data(web::QueryConfig::default().error_handler(|err, _req| {
        ApiError::BadRequest { code: "invalid_query", message: err.to_string(), path: String::new() }.into()
    }))
    .route("/api/webhooks/chainhook", web::post().to(webhook::receive))
    .route("/api/head", web::get().to(read::head))
    .route("/api/events", web::get().to(read::events))
    .route("/api/blocks/{hash}", web::get().to(read::block))
    .route("/ws", web::get().to(ws::upgrade))
    .route("/healthz", web::get().to(health::healthz))
    .route("/readyz", web::get().to(health::readyz))
    .configure(auth::configure)
    .route("/metrics", web::get().to(metrics::render))
    .configure(projections::configure)
    .configure(console::configure);
}

/// Any other path: a JSON 404 like every other error.
pub async fn not_found() -> actix_web::HttpResponse {
    actix_web::ResponseError::error_response(&ApiError::NotFound)
}
