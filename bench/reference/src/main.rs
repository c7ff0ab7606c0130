//! The bare axum "hello" reference for `bench/run.sh`: what the same HTTP stack serves on this
//! machine when nothing else runs in a request. `GET /` answers a constant text and `GET /json` a
//! constant JSON object about the size of IMS's `/auth/me` answer, so the benchmark can state IMS's
//! throughput as a share of this ceiling. Usage: `ims-bench-reference 127.0.0.1:PORT`.

use axum::{routing::get, Json, Router};
use serde_json::{json, Value};

async fn hello() -> &'static str {
    "Hello, World!"
}

async fn user() -> Json<Value> {
    Json(json!({
        "id": "0193a0c4-6f1e-7c2a-9d41-5b7e2f8a9c10",
        "email": "admin@bench.example",
        "name": "Bench Admin",
        "roles": ["ADMIN"],
        "line_ids": [],
        "email_verified": true,
        "auth_source": "local"
    }))
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:8090".to_owned());
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    let app = Router::new()
        .route("/", get(hello))
        .route("/json", get(user));
    axum::serve(listener, app).await
}
