//! Serves a small calculator: `add` and `div` (which can fail) until killed.
//! Usage: `rpc-server [ADDR]` (default `unix:@ipcx-example-calc`).
use ipcx::rpc::Service;

fn main() -> Result<(), ipcx::pattern::Error> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "unix:@ipcx-example-calc".into());
    let server = Service::new("calc", 1)
        .method("add", |(a, b): (i64, i64)| Ok::<_, String>(a + b))
        .method("div", |(a, b): (i64, i64)| {
            a.checked_div(b)
                .ok_or_else(|| "division by zero".to_string())
        })
        .serve(&addr)?;
    println!("serving calc v1 on {addr}");
    server.run_forever()
}
