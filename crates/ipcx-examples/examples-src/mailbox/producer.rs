//! Puts each argument into the mailbox as one message (the consumer must have created it).
//! Usage: `mailbox-producer NAME MESSAGE...` (NAME `/NAME` or `shm:/NAME`, as the consumer's).
use ipcx::pattern::mailbox::Mailbox;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let name = args
        .next()
        .ok_or("usage: mailbox-producer NAME MESSAGE...")?;
    let mailbox = Mailbox::open(&name)?;
    for msg in args {
        mailbox.send(msg.as_bytes())?;
    }
    Ok(())
}
