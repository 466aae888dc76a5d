//! Creates the mailbox and takes COUNT messages from it. Several consumers may share one
//! mailbox: each message goes to exactly one of them. NAME `/NAME` is a POSIX message queue,
//! `shm:/NAME` a shared-memory ring.
//! Usage: `mailbox-consumer [NAME] [COUNT]` (defaults `/ipcx-example-jobs`, 3).
use ipcx::pattern::mailbox::Mailbox;

fn main() -> Result<(), ipcx::pattern::Error> {
    let mut args = std::env::args().skip(1);
    let name = args.next().unwrap_or_else(|| "/ipcx-example-jobs".into());
    let count: usize = args.next().and_then(|s| s.parse().ok()).unwrap_or(3);
    // A POSIX queue is removed when the creating handle is dropped, a ring when the last
    // handle to it is.
    let mailbox = Mailbox::create(&name)?;
    println!("mailbox {name} ready");
    for _ in 0..count {
        let msg = mailbox.recv()?;
        println!("got: {}", String::from_utf8_lossy(&msg));
    }
    Ok(())
}
