//! IMS: production management for electronics factories. This crate is the `ims` binary's
//! library: [`app::App`] assembles the service from a [`config::Config`]; `main.rs` is only the
//! command line. See the README's architecture section for where things live.

#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

pub mod app;
pub mod auth;
pub mod aws;
pub mod cli;
pub mod clock;
pub mod config;
pub mod db;
pub mod events;
pub mod http;
pub mod logging;
pub mod mail;
pub mod metrics;
pub mod production;
pub mod secrets;
pub mod storage;
pub mod users;
pub mod workers;

pub use app::App;
pub use config::Config;
