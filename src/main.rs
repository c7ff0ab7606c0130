//! `ims`: the command line. Everything else lives in the library (`ims::cli`).
//!
//! The server allocates a little on every request from every worker thread; mimalloc's
//! per-thread heaps do that without the lock contention of the system allocator's arenas (see
//! "Where the time goes" in `bench/README.md`).

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    ims::cli::run().await
}
