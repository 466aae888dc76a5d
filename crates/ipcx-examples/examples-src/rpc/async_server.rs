//! Serves the calculator from a tokio runtime: `add` as a sync handler, `div` as an async one,
//! until killed. Sync and async clients both call it (`rpc-client`, `rpc-async-client`).
//! Usage: `rpc-async-server [ADDR]` (default `unix:@ipcx-example-calc`).
use ipcx::rpc::{CallContext, Service};

#[tokio::main]
async fn main() -> Result<(), ipcx::pattern::Error> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "unix:@ipcx-example-calc".into());
    let _server = Service::new("calc", 1)
        // Sync handlers run on tokio's blocking pool.
        .method("add", |(a, b): (i64, i64)| Ok::<_, String>(a + b))
        // Async handlers run as tasks; the context carries the caller's deadline.
        .method_async("div", |(a, b): (i64, i64), ctx: CallContext| async move {
            if ctx.expired() {
                return Err("the caller stopped waiting".to_string());
            }
            a.checked_div(b)
                .ok_or_else(|| "division by zero".to_string())
        })
        .serve_async(&addr)
        .await?;
    println!("serving calc v1 on {addr}");
    std::future::pending::<()>().await;
    Ok(())
}
