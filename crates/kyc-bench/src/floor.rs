//! The floor: a bare axum handler that answers every `POST /graphql` with the JSON of a warm `me`, in a child process
//! of its own (this binary again, `--floor-child`) so that its CPU time and resident set are measured like a
//! gateway's. What a gateway spends above it is GraphQL, authorization and the cache, not HTTP.

use std::path::Path;
use std::process::ExitCode;

use axum::body::Bytes;
use axum::http::header::CONTENT_TYPE;
use axum::routing::post;
use axum::Router;

/// The answer the floor serves, set by the benchmark.
pub const BODY_ENV: &str = "KYC_BENCH_FLOOR_BODY";

/// Serves until killed, after writing the listening address to `addr_file` (read with
/// `kyc_gateway::cli::wait_for_addr_file`, as for the gateway).
pub fn serve(addr_file: &Path) -> ExitCode {
    let Ok(body) = std::env::var(BODY_ENV) else {
        eprintln!("kyc-bench --floor-child: {BODY_ENV} is not set");
        return ExitCode::FAILURE;
    };
    let body = Bytes::from(body);
    // The same multi-threaded runtime as the gateway's (`kyc_gateway::cli::serve`).
    let runtime = tokio::runtime::Runtime::new().expect("a tokio runtime starts");
    runtime.block_on(async move {
        let listener = match tokio::net::TcpListener::bind("127.0.0.1:0").await {
            Ok(l) => l,
            Err(e) => {
                eprintln!("kyc-bench --floor-child: {e}");
                return ExitCode::FAILURE;
            }
        };
        let addr = listener.local_addr().expect("a bound listener has an address");
        // Written whole, then renamed, like the gateway's address file (src/cli.rs, write_addr_file).
        let partial = addr_file.with_extension("partial");
        if std::fs::write(&partial, addr.to_string()).and_then(|()| std::fs::rename(&partial, addr_file)).is_err() {
            eprintln!("kyc-bench --floor-child: cannot write {}", addr_file.display());
            return ExitCode::FAILURE;
        }
        // The request body is read (as a gateway must) and ignored.
        let app = Router::new().route(
            "/graphql",
            post(move |_request: Bytes| {
                let body = body.clone();
                async move { ([(CONTENT_TYPE, "application/json")], body) }
            }),
        );
        match axum::serve(listener, app).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("kyc-bench --floor-child: {e}");
                ExitCode::FAILURE
            }
        }
    })
}
