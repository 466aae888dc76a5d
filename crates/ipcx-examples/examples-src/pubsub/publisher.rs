//! Publishes prices on two topics to every subscriber, then `end`.
//! Usage: `pubsub-publisher [ADDR] [SUBSCRIBERS]` (defaults `unix:@ipcx-example-prices`, 1):
//! waits for that many subscribers before publishing. `shm:/NAME` publishes into a
//! shared-memory ring that every subscriber reads.
use std::time::Duration;

use ipcx::pattern::pubsub::Publisher;

fn main() -> Result<(), ipcx::pattern::Error> {
    let mut args = std::env::args().skip(1);
    let addr = args
        .next()
        .unwrap_or_else(|| "unix:@ipcx-example-prices".into());
    let subscribers: usize = args.next().and_then(|s| s.parse().ok()).unwrap_or(1);
    let publisher = Publisher::bind(&addr)?;
    println!("publishing on {addr}; waiting for {subscribers} subscriber(s)");
    publisher.wait_for_subscribers(subscribers, Duration::from_secs(60))?;
    for (i, price) in ["1.08", "1.09", "1.07"].iter().enumerate() {
        publisher.publish(b"eur.usd", price.as_bytes())?;
        publisher.publish(b"gbp.usd", format!("1.2{i}").as_bytes())?;
    }
    publisher.publish(b"end", b"")?;
    println!("done");
    Ok(())
}
