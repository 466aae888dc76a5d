//! Subscribes to the topics starting with PREFIX and prints what arrives until `end`.
//! Usage: `pubsub-subscriber [ADDR] [PREFIX]` (defaults `unix:@ipcx-example-prices`, `eur.`).
use std::time::Duration;

use ipcx::pattern::pubsub::Subscriber;

fn main() -> Result<(), ipcx::pattern::Error> {
    let mut args = std::env::args().skip(1);
    let addr = args
        .next()
        .unwrap_or_else(|| "unix:@ipcx-example-prices".into());
    let prefix = args.next().unwrap_or_else(|| "eur.".into());
    let mut sub = Subscriber::connect(&addr, &[prefix.as_bytes(), b"end"], Duration::from_secs(5))?;
    loop {
        let d = sub.recv()?;
        if d.topic == b"end" {
            return Ok(());
        }
        println!(
            "{} = {}",
            String::from_utf8_lossy(&d.topic),
            String::from_utf8_lossy(&d.data)
        );
    }
}
