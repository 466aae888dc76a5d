//! Squares the numbers the distributor hands out, one at a time (one credit), until the
//! distributor goes away. Usage: `pool-worker [ADDR]` (default `unix:@ipcx-example-pool`).
use std::time::Duration;

use ipcx::pattern::pushpull::Worker;

fn main() -> Result<(), ipcx::pattern::Error> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "unix:@ipcx-example-pool".into());
    let mut worker = Worker::connect(&addr, 1, Duration::from_secs(5))?;
    worker.run(|task| {
        let n = u64::from_be_bytes(task.data.try_into().unwrap_or_default());
        (n * n).to_be_bytes().to_vec()
    })
}
