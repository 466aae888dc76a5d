//! Typed messages: `Sender<T>` / `Receiver<T>` carry serde values (postcard by default)
//! between processes, over a framed and a native endpoint; a message that does not decode is a
//! recoverable `Codec` error.
mod util;

use std::time::Duration;

use ipcx::channel::{Endpoint, Error, Options, Receiver, Sender};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
enum Job {
    Resize { id: u64, width: u32, height: u32 },
    Shutdown { reason: String },
}

#[test]
fn child_role() {
    util::role_main(&[("send_jobs", |args| {
        let ep = Endpoint::parse(&args[0]).unwrap();
        let opts = Options::new().connect_timeout(Duration::from_secs(10));
        let mut raw = ep.sender(&opts).unwrap();
        // One undecodable message first: the receiver reports it and goes on.
        raw.send(&[0xff; 3]).unwrap();
        let mut tx: Sender<Job> = Sender::new(raw);
        for id in 0..10 {
            tx.send(&Job::Resize {
                id,
                width: 640,
                height: 480,
            })
            .unwrap();
        }
        tx.send(&Job::Shutdown {
            reason: "done".into(),
        })
        .unwrap();
        std::thread::sleep(Duration::from_millis(200));
    })]);
}

#[test]
fn typed_values_cross_processes() {
    let dir = util::TempDir::new("typed");
    for addr in [
        format!("unix:{}", dir.join("typed.sock").display()),
        format!("mq:{}", util::posix_name("typed")),
    ] {
        let ep = Endpoint::parse(&addr).unwrap();
        let mut rx: Receiver<Job> = Receiver::open(&ep, &Options::new()).unwrap();
        let mut child = util::spawn_role("send_jobs", &[&addr]);
        match rx.recv_timeout(Duration::from_secs(20)) {
            Err(e @ Error::Codec(_)) => assert!(e.is_recoverable()),
            other => panic!("{addr}: expected a decode error first, got {other:?}"),
        }
        for id in 0..10 {
            let (job, _meta) = rx.recv_timeout(Duration::from_secs(20)).unwrap();
            assert_eq!(
                job,
                Job::Resize {
                    id,
                    width: 640,
                    height: 480
                },
                "{addr}"
            );
        }
        let (last, _) = rx.recv_timeout(Duration::from_secs(20)).unwrap();
        assert_eq!(
            last,
            Job::Shutdown {
                reason: "done".into()
            }
        );
        child.expect_success();
    }
}
