//! Creates the mailbox (a POSIX message queue) and takes COUNT messages from it. Several
//! consumers may share one mailbox: each message goes to exactly one of them.
//! Usage: `mailbox-consumer [NAME] [COUNT]` (defaults `/ipcx-example-jobs`, 3).
use ipcx::pattern::mailbox::Mailbox;

fn main() -> Result<(), ipcx::pattern::Error> {
    let mut args = std::env::args().skip(1);
    let name = args.next().unwrap_or_else(|| "/ipcx-example-jobs".into());
    let count: usize = args.next().and_then(|s| s.parse().ok()).unwrap_or(3);
    // The creating handle removes the queue when it is dropped.
    let mailbox = Mailbox::create(&name)?;
    println!("mailbox {name} ready");
    for _ in 0..count {
        let msg = mailbox.recv()?;
        println!("got: {}", String::from_utf8_lossy(&msg));
    }
    Ok(())
}
