//! The console's files are served from the binary: `/console` is the page, its script and
//! style are the committed build under `assets/console`, each with a same-origin-only
//! Content-Security-Policy. (What the page does is tested in a browser:
//! clients/typescript/test/browser, run by `.ci/typescript`.)

mod common;
use common::{Backend, TestApp};

#[actix_web::test]
async fn console_files_are_served_from_the_binary() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let assets = concat!(env!("CARGO_MANIFEST_DIR"), "/assets/console/");
    for (path, file, content_type) in [
        ("/console", "index.html", "text/html"),
        ("/console/", "index.html", "text/html"),
        ("/console/console.js", "console.js", "text/javascript"),
        ("/console/console.css", "console.css", "text/css"),
    ] {
        let res = app.client.get(format!("{}{path}", app.base)).send().await.expect("request");
        assert_eq!(res.status(), 200, "{path}");
        let header = |name: &str| res.headers()[name].to_str().expect("ascii").to_string();
        assert!(header("content-type").starts_with(content_type), "{path}: {}", header("content-type"));
        assert!(header("content-security-policy").contains("default-src 'none'"), "{path}");
        assert_eq!(header("x-content-type-options"), "nosniff");
        let body = res.bytes().await.expect("body");
        assert_eq!(body.as_ref(), std::fs::read(format!("{assets}{file}")).expect("asset").as_slice(), "{path}");
    }
    let page = std::fs::read_to_string(format!("{assets}index.html")).expect("index.html");
    assert!(page.contains(r#"src="/console/console.js""#) && page.contains(r#"href="/console/console.css""#));

    let res = app.client.get(format!("{}/console/missing.js", app.base)).send().await.expect("request");
    assert_eq!(res.status(), 404);
    app.stop().await;
}
