//! `ims`: the command line. Everything else lives in the library (`ims::cli`).

#[tokio::main]
async fn main() -> std::process::ExitCode {
    ims::cli::run().await
}
