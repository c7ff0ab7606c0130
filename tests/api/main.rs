//! Black-box tests of the `ims` service over HTTP and through its binary, in one test binary.
//! Run on SQLite by default and on PostgreSQL with `IMS_TEST_BACKEND=postgres` (see
//! `scripts/test.sh`).

mod access;
mod admin;
mod auth;
mod aws_events;
mod aws_mail;
mod aws_secrets;
mod cli;
mod demo;
mod edge;
mod faults;
mod helpers;
mod mail;
mod moto;
mod oidc;
mod pg_cluster;
mod production;
mod production_ids;
mod recovery;
mod scale_out;
mod serve;
mod web;
