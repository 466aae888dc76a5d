//! Calls the calculator: one call that succeeds and one that returns the service's error.
//! Usage: `rpc-client [ADDR]` (default `unix:@ipcx-example-calc`).
use std::time::Duration;

use ipcx::rpc::{RpcClient, RpcError};

fn main() -> Result<(), RpcError> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "unix:@ipcx-example-calc".into());
    let calc = RpcClient::connect(&addr, "calc", 1, Duration::from_secs(5))?;
    // Every call has a deadline.
    let sum: i64 = calc.call("add", &(40, 2), Duration::from_secs(1))?;
    println!("40 + 2 = {sum}");
    match calc.call::<_, i64>("div", &(1, 0), Duration::from_secs(1)) {
        Err(RpcError::Remote { message, .. }) => println!("1 / 0 failed: {message}"),
        other => println!("1 / 0 unexpectedly gave {other:?}"),
    }
    Ok(())
}
