//! Sends each argument as one letter to the inbox of process PID.
//! Usage: `direct-sender PID MESSAGE...`
use ipcx::pattern::direct::send_to;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let pid: i32 = args
        .next()
        .ok_or("usage: direct-sender PID MESSAGE...")?
        .parse()?;
    for msg in args {
        send_to(pid, msg.as_bytes())?;
    }
    Ok(())
}
