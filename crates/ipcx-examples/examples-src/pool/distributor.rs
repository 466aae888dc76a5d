//! Hands out the numbers 1..=N to a pool of workers and prints their squares as they come
//! back (from whichever worker did each one).
//! Usage: `pool-distributor [ADDR] [N]` (defaults `unix:@ipcx-example-pool`, 10).
use std::time::Duration;

use ipcx::pattern::pushpull::Distributor;

fn main() -> Result<(), ipcx::pattern::Error> {
    let mut args = std::env::args().skip(1);
    let addr = args
        .next()
        .unwrap_or_else(|| "unix:@ipcx-example-pool".into());
    let n: u64 = args.next().and_then(|s| s.parse().ok()).unwrap_or(10);
    let pool = Distributor::bind(&addr)?;
    println!("distributing on {addr}; start workers with: pool-worker {addr}");
    pool.wait_for_workers(1, Duration::from_secs(60))?;
    for i in 1..=n {
        pool.submit(&i.to_be_bytes())?;
    }
    let mut squares = Vec::new();
    for _ in 1..=n {
        // Fails with NoWorkers instead of hanging if every worker has gone.
        let r = pool.recv_result()?;
        let sq = u64::from_be_bytes(r.data.try_into().unwrap_or_default());
        squares.push(sq);
        println!("result {sq} from {}", r.worker);
    }
    squares.sort_unstable();
    println!("sum of squares: {}", squares.iter().sum::<u64>());
    Ok(())
}
