//! Opens this process's inbox and prints the letters it receives, with the sender's verified
//! pid. Usage: `direct-receiver [COUNT]` (default 3 letters).
use ipcx::pattern::direct::Inbox;

fn main() -> Result<(), ipcx::pattern::Error> {
    let count: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(3);
    let inbox = Inbox::open()?;
    println!("inbox open: send to pid {}", inbox.pid());
    for _ in 0..count {
        let letter = inbox.recv()?;
        // The kernel vouches for the sender's pid and uid: check them before trusting a letter.
        println!(
            "from pid {} (uid {}): {}",
            letter.from.pid,
            letter.from.uid,
            String::from_utf8_lossy(&letter.data)
        );
    }
    Ok(())
}
