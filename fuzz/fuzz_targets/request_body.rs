//! JSON request bodies through IMS's extractor (`http::extract::ApiJson`) into the request types of
//! the busiest and most sensitive routes. Invariants: nothing panics, and every refusal is a client
//! error (400, 413, 415 or 422) — never a 500.
#![no_main]

use axum::body::Body;
use axum::extract::FromRequest;
use axum::http::Request;
use ims::http::extract::ApiJson;
use libfuzzer_sys::fuzz_target;
use serde::de::DeserializeOwned;

fn check<T: DeserializeOwned>(content_type: &str, body: &[u8]) {
    let request = Request::builder()
        .method("POST")
        .uri("/fuzz")
        .header("content-type", content_type)
        .body(Body::from(body.to_vec()))
        .expect("request");
    if let Err(e) = futures_executor::block_on(ApiJson::<T>::from_request(request, &())) {
        let status = e.status().as_u16();
        assert!(matches!(status, 400 | 413 | 415 | 422), "refused with {status}");
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, body)) = data.split_first() else {
        return;
    };
    let content_type = match selector >> 4 {
        0 => "text/plain",
        1 => "application/problem+json",
        2 => "application/json; charset=latin1",
        _ => "application/json",
    };
    match selector % 8 {
        0 => check::<ims::http::auth_routes::LoginRequest>(content_type, body),
        1 => check::<ims::http::admin_routes::CreateUser>(content_type, body),
        2 => check::<ims::production::orders::NewOrder>(content_type, body),
        3 => check::<ims::production::execution::OutputBody>(content_type, body),
        4 => check::<ims::production::execution::DowntimeBody>(content_type, body),
        5 => check::<ims::production::work_orders::WorkOrderPatch>(content_type, body),
        6 => check::<ims::production::lines::NewLine>(content_type, body),
        _ => check::<ims::production::schedule::PublishBody>(content_type, body),
    }
});
