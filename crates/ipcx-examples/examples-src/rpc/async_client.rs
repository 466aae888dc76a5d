//! Calls the calculator from a tokio runtime: one call that succeeds and one that returns the
//! service's error, the two at once on one connection.
//! Usage: `rpc-async-client [ADDR]` (default `unix:@ipcx-example-calc`).
use std::time::Duration;

use ipcx::rpc::{AsyncRpcClient, RpcError};

#[tokio::main]
async fn main() -> Result<(), RpcError> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "unix:@ipcx-example-calc".into());
    let calc = AsyncRpcClient::connect(&addr, "calc", 1, Duration::from_secs(5)).await?;
    // Every call has a deadline; calls on one connection run concurrently.
    let (sum, quotient) = tokio::join!(
        calc.call::<_, i64>("add", &(40, 2), Duration::from_secs(1)),
        calc.call::<_, i64>("div", &(1, 0), Duration::from_secs(1)),
    );
    println!("40 + 2 = {}", sum?);
    match quotient {
        Err(RpcError::Remote { message, .. }) => println!("1 / 0 failed: {message}"),
        other => println!("1 / 0 unexpectedly gave {other:?}"),
    }
    Ok(())
}
