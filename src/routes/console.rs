//! The live console at `/console`: a page whose script is built from the TypeScript client
//! (`clients/typescript/console`, by `npm run build:console`). The page, its style and the
//! built script are committed under `assets/console` and compiled into the binary, so serving
//! it needs neither Node.js nor files next to the binary. CI rebuilds the script and fails
//! when it differs from the committed one.

use actix_web::{http::header, web, HttpResponse};

/// Same-origin script, style and connections only (the page talks to this server's `/ws` and
/// `/api`); inline script and style are refused.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

struct Asset {
    body: &'static [u8],
    content_type: &'static str,
}

const INDEX: Asset = Asset {
    body: include_bytes!("../../assets/console/index.html"),
    content_type: "text/html; charset=utf-8",
};
const SCRIPT: Asset = Asset {
    body: include_bytes!("../../assets/console/console.js"),
    content_type: "text/javascript; charset=utf-8",
};
const STYLE: Asset = Asset {
    body: include_bytes!("../../assets/console/console.css"),
    content_type: "text/css; charset=utf-8",
};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/console", web::get().to(|| serve(&INDEX)))
        .route("/console/", web::get().to(|| serve(&INDEX)))
        .route("/console/console.js", web::get().to(|| serve(&SCRIPT)))
        .route("/console/console.css", web::get().to(|| serve(&STYLE)));
}

async fn serve(asset: &'static Asset) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, asset.content_type))
        // The files change with the binary: revalidate rather than keep a stale console.
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .insert_header((header::CONTENT_SECURITY_POLICY, CSP))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .body(asset.body)
}
