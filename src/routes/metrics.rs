//! `GET /metrics`: the process's metrics in Prometheus' text format (see
//! [`crate::telemetry::metrics`] for what each one counts).

use crate::telemetry::metrics;
use actix_web::HttpResponse;

pub async fn render() -> HttpResponse {
    HttpResponse::Ok().content_type("text/plain; version=0.0.4; charset=utf-8").body(metrics::render())
}
