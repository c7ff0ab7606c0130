//! The web app as `ims serve` serves it from `IMS_WEB_DIR`: files with their types and cache
//! policies, `index.html` for client-side routes, the strict CSP on every page, and nothing
//! outside the directory or in place of an API answer.

use crate::helpers::*;

fn built_app() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("ims-web-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(dir.join("assets")).unwrap();
    std::fs::write(
        dir.join("index.html"),
        "<!doctype html><script type=\"module\" src=\"/assets/app-1a2b.js\"></script>",
    )
    .unwrap();
    std::fs::write(dir.join("assets/app-1a2b.js"), "console.log('ims')").unwrap();
    std::fs::write(dir.join("assets/app-1a2b.css"), "body{}").unwrap();
    std::fs::write(dir.join(".env"), "SECRET=canary").unwrap();
    dir
}

#[tokio::test]
async fn the_web_app_is_served_at_the_root_with_its_routes_and_a_strict_csp() {
    let web = built_app();
    let app = spawn_app_with(&[("IMS_WEB_DIR", web.to_str().unwrap())]).await;
    let get = |path: &str| app.client.get(app.url(path)).send();

    for path in ["/", "/manager/orders", "/leader/tasks/7", "/index.html"] {
        let r = get(path).await.unwrap();
        assert_eq!(r.status(), 200, "{path}");
        assert_eq!(r.headers()["content-type"], "text/html; charset=utf-8");
        assert_eq!(r.headers()["cache-control"], "no-cache");
        let csp = r.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(
            csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"),
            "{csp}"
        );
        assert!(r.text().await.unwrap().contains("/assets/app-1a2b.js"));
    }
    let js = get("/assets/app-1a2b.js").await.unwrap();
    assert_eq!(js.status(), 200);
    assert_eq!(
        js.headers()["content-type"],
        "text/javascript; charset=utf-8"
    );
    assert_eq!(
        js.headers()["cache-control"],
        "public, max-age=31536000, immutable"
    );
    let css = get("/assets/app-1a2b.css").await.unwrap();
    assert_eq!(css.headers()["content-type"], "text/css; charset=utf-8");

    // Missing assets, hidden files, escapes and API paths are not the app.
    for path in [
        "/assets/missing.js",
        "/.env",
        "/%2E%2E%2F%2E%2E%2Fetc%2Fpasswd",
        "/assets/..%2f..%2fCargo.toml",
        "/api/nothing-here",
        "/auth/nothing-here",
    ] {
        let r = get(path).await.unwrap();
        assert_eq!(r.status(), 404, "{path}");
        let body = r.text().await.unwrap();
        assert!(
            !body.contains("canary") && !body.contains("root:"),
            "{path}: {body}"
        );
    }
    let r = get("/api/nothing-here").await.unwrap();
    assert_problem(r, 404, "not_found").await;
    let post = app
        .client
        .post(app.url("/manager/orders"))
        .send()
        .await
        .unwrap();
    assert_eq!(post.status(), 404);
    std::fs::remove_dir_all(&web).unwrap();
}

#[tokio::test]
async fn without_a_built_app_the_root_says_how_to_build_it() {
    let app = spawn_app_with(&[("IMS_WEB_DIR", "/nonexistent/ims-web")]).await;
    let r = app.client.get(app.url("/")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "text/html; charset=utf-8");
    assert!(r.text().await.unwrap().contains("./scripts/run.sh"));
}
