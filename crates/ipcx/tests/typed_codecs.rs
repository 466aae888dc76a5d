//! Typed messages in both codecs, between processes: a typed channel over a POSIX queue, a
//! Unix socket and a shared-memory ring in postcard and in MessagePack, and with the two
//! interleaved on one channel (the receiver tells each message's codec); an empty message, an
//! unknown codec tag and hostile values (cut short, lengths far beyond the message, bytes left
//! over) are named, recoverable errors after which the receiver goes on; typed pub/sub and
//! push/pull in MessagePack (a worker answers each task in its codec); and a Python program
//! (standard library and `msgpack`) sending typed messages to a Rust `Receiver<T>` over a Unix
//! socket, and reading those of a Rust `Sender<T>`, from `docs/PROTOCOL.md` section 9.
//!
//! Without python3's `msgpack` the Python tests print a skip note, unless `IPCX_INTEROP=1`,
//! which makes them fail with the command to install it.
mod util;

use std::io::BufRead;
use std::time::Duration;

use ipcx::channel::{Codec, CodecError, Endpoint, Error, Options, Receiver, Sender};
use ipcx::pattern::pubsub::{Publisher, Subscriber};
use ipcx::pattern::pushpull::{Distributor, Worker};
use serde::{Deserialize, Serialize};

const LONG: Duration = Duration::from_secs(20);
const JOBS: u64 = 6;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Job {
    id: u64,
    width: u32,
    name: String,
    tags: Vec<String>,
    scale: Option<f64>,
}

fn job(id: u64) -> Job {
    Job {
        id,
        width: 640 + id as u32,
        name: format!("photo-{id}.jpg"),
        tags: (0..id % 3).map(|t| format!("t{t}")).collect(),
        scale: (id % 2 == 1).then_some(id as f64 / 4.0),
    }
}

/// The codec a sender uses for message `id`: one codec, or `mixed` (postcard for even ids,
/// MessagePack for odd ones).
fn codec_of(spec: &str, id: u64) -> Codec {
    match spec {
        "postcard" => Codec::Postcard,
        "msgpack" => Codec::MsgPack,
        "mixed" if id.is_multiple_of(2) => Codec::Postcard,
        "mixed" => Codec::MsgPack,
        other => panic!("no codec {other}"),
    }
}

fn sender_options() -> Options {
    Options::new().connect_timeout(LONG)
}

#[test]
fn child_role() {
    util::role_main(&[
        ("send_jobs", |args| {
            // addr codec-spec: JOBS jobs over one connection, each in its codec.
            let ep = Endpoint::parse(&args[0]).unwrap();
            let mut raw = ep.sender(&sender_options()).unwrap();
            for id in 0..JOBS {
                let mut tx: Sender<Job> = Sender::new(raw).with_codec(codec_of(&args[1], id));
                tx.send_timeout(&job(id), LONG).unwrap();
                raw = tx.into_inner();
            }
            raw.finish().unwrap();
        }),
        ("send_hostile", |args| {
            // addr: the messages of `hostile_messages`, then a postcard and a msgpack job.
            let ep = Endpoint::parse(&args[0]).unwrap();
            let mut raw = ep.sender(&sender_options()).unwrap();
            for (m, _) in hostile_messages() {
                raw.send_timeout(&m, LONG).unwrap();
            }
            let mut tx: Sender<Job> = Sender::new(raw);
            tx.send_timeout(&job(1), LONG).unwrap();
            let mut tx = Sender::new(tx.into_inner()).with_codec(Codec::MsgPack);
            tx.send_timeout(&job(2), LONG).unwrap();
            tx.into_inner().finish().unwrap();
        }),
        ("typed_subscriber", |args| {
            // addr: JOBS msgpack jobs on topic "jobs.", checked here.
            let mut sub = util::wait_for(LONG, || {
                Subscriber::connect(&args[0], &[b"jobs."], LONG).ok()
            });
            for id in 0..JOBS {
                let d = sub.recv_timeout(LONG).unwrap();
                assert_eq!(d.topic, format!("jobs.{id}").as_bytes());
                let (got, codec): (Job, Codec) = Codec::decode_message(&d.data).unwrap();
                assert_eq!((got, codec), (job(id), Codec::MsgPack));
            }
        }),
        ("typed_worker", |args| {
            // addr: answers each job with "name:width", in the job's codec.
            let mut w = util::wait_for(LONG, || Worker::connect(&args[0], 2, LONG).ok());
            loop {
                let task = match w.recv_timeout(LONG) {
                    Ok(t) => t,
                    Err(ipcx::pattern::Error::PeerGone { .. }) => return,
                    Err(e) => panic!("{e}"),
                };
                let (j, codec): (Job, Codec) = Codec::decode_message(&task.data).unwrap();
                let answer = codec
                    .encode_message(&format!("{}:{}", j.name, j.width))
                    .unwrap();
                if w.reply(task.id, &answer).is_err() {
                    return;
                }
            }
        }),
    ]);
}

/// The typed endpoints of the channel tests, with guards that remove them.
fn endpoints(dir: &util::TempDir) -> Vec<(String, Box<dyn std::any::Any>)> {
    let (mq, mq_guard) = util::mq_name("typed-mq");
    let (ring, ring_guard) = util::ring_name("typed-ring");
    vec![
        (format!("mq:{mq}"), Box::new(mq_guard)),
        (
            format!("unix:{}", dir.join("typed.sock").display()),
            Box::new(()),
        ),
        (format!("shm:{ring}"), Box::new(ring_guard)),
    ]
}

fn receive_jobs(rx: &mut Receiver<Job>, addr: &str, spec: &str) {
    for id in 0..JOBS {
        let (got, meta) = rx
            .recv_timeout(LONG)
            .unwrap_or_else(|e| panic!("{addr} {spec}: job {id}: {e}"));
        assert_eq!(got, job(id), "{addr} {spec}");
        assert_eq!(
            meta.codec,
            Some(codec_of(spec, id)),
            "{addr} {spec} job {id}"
        );
    }
}

#[test]
fn typed_channels_carry_either_codec_and_both_interleaved() {
    let dir = util::TempDir::new("typed-codecs");
    for (addr, _guard) in endpoints(&dir) {
        for spec in ["postcard", "msgpack", "mixed"] {
            let ep = Endpoint::parse(&addr).unwrap();
            let mut rx: Receiver<Job> = Receiver::open(&ep, &Options::new()).unwrap();
            let mut child = util::spawn_role("send_jobs", &[&addr, spec]);
            receive_jobs(&mut rx, &addr, spec);
            child.expect_success();
        }
    }
}

/// Messages no receiver may take for a `Job`, each with a check of the error it is.
#[allow(clippy::type_complexity)]
fn hostile_messages() -> Vec<(Vec<u8>, fn(&CodecError) -> bool)> {
    let mp = |v: &[u8]| [&[1u8][..], v].concat();
    let valid_mp = Codec::MsgPack.encode_message(&job(3)).unwrap();
    let decode_mp = |e: &CodecError| {
        matches!(
            e,
            CodecError::Decode {
                codec: Codec::MsgPack,
                ..
            }
        )
    };
    let decode_pc = |e: &CodecError| {
        matches!(
            e,
            CodecError::Decode {
                codec: Codec::Postcard,
                ..
            }
        )
    };
    vec![
        (vec![7, 0x80], |e| *e == CodecError::UnknownTag(7)),
        (vec![0xff], |e| *e == CodecError::UnknownTag(0xff)),
        (vec![], |e| *e == CodecError::Empty),
        // An array of 5 fields with one present.
        (mp(&[0x95, 0x07]), decode_mp),
        // An array of 2^32 - 1 fields: the length is not believed.
        (mp(&[0xdd, 0xff, 0xff, 0xff, 0xff, 0x07]), decode_mp),
        // {"name": str of 2^32 - 1 bytes}, then one byte.
        (
            mp(&[
                0x81, 0xa4, b'n', b'a', b'm', b'e', 0xdb, 0xff, 0xff, 0xff, 0xff, b'a',
            ]),
            decode_mp,
        ),
        // {"tags": array of 2^32 - 1 strings}, then one.
        (
            mp(&[
                0x81, 0xa4, b't', b'a', b'g', b's', 0xdd, 0xff, 0xff, 0xff, 0xff, 0xa1, b'x',
            ]),
            decode_mp,
        ),
        // A whole job and one byte more.
        ([&valid_mp[..], &[0xc0]].concat(), decode_mp),
        // postcard: id 7, width 640, a name of 2^32 - 1 bytes.
        (
            vec![0, 0x07, 0x80, 0x05, 0xff, 0xff, 0xff, 0xff, 0x0f, b'a'],
            decode_pc,
        ),
        // postcard: cut short after the id.
        (vec![0, 0x07], decode_pc),
    ]
}

#[test]
fn bad_messages_are_named_errors_and_the_receiver_goes_on() {
    let dir = util::TempDir::new("typed-hostile");
    let (mq, _mq_guard) = util::mq_name("typed-hostile");
    for addr in [
        format!("unix:{}", dir.join("hostile.sock").display()),
        format!("mq:{mq}"),
    ] {
        let ep = Endpoint::parse(&addr).unwrap();
        let mut rx: Receiver<Job> = Receiver::open(&ep, &Options::new()).unwrap();
        let mut child = util::spawn_role("send_hostile", &[&addr]);
        for (i, (bytes, is_expected)) in hostile_messages().into_iter().enumerate() {
            match rx.recv_timeout(LONG) {
                Err(e @ Error::Codec(_)) => {
                    assert!(e.is_recoverable(), "{addr}: {e}");
                    let Error::Codec(c) = &e else { unreachable!() };
                    assert!(is_expected(c), "{addr}: message {i} {bytes:02x?}: {c:?}");
                    assert!(!e.to_string().is_empty());
                }
                other => {
                    panic!("{addr}: message {i} {bytes:02x?}: expected an error, got {other:?}")
                }
            }
        }
        let (first, meta) = rx.recv_timeout(LONG).unwrap();
        assert_eq!(
            (first, meta.codec),
            (job(1), Some(Codec::Postcard)),
            "{addr}"
        );
        let (second, meta) = rx.recv_timeout(LONG).unwrap();
        assert_eq!(
            (second, meta.codec),
            (job(2), Some(Codec::MsgPack)),
            "{addr}"
        );
        child.expect_success();
    }
}

#[test]
fn typed_pubsub_in_msgpack() {
    let (ring, _ring_guard) = util::ring_name("typed-pubsub");
    for addr in [
        format!("unix:@{}", util::unique("typed-pubsub")),
        format!("shm:{ring}"),
    ] {
        let publisher = Publisher::bind(&addr).unwrap();
        let mut child = util::spawn_role("typed_subscriber", &[&addr]);
        publisher.wait_for_subscribers(1, LONG).unwrap();
        for id in 0..JOBS {
            let msg = Codec::MsgPack.encode_message(&job(id)).unwrap();
            publisher
                .publish_timeout(format!("jobs.{id}").as_bytes(), &msg, LONG)
                .unwrap();
        }
        child.expect_success();
    }
}

#[test]
fn typed_pushpull_answers_in_each_tasks_codec() {
    let addr = format!("unix:@{}", util::unique("typed-pushpull"));
    let pool = Distributor::bind(&addr).unwrap();
    let _worker = util::spawn_role("typed_worker", &[&addr]);
    let mut sent = std::collections::HashMap::new();
    for id in 0..JOBS {
        let codec = codec_of("mixed", id);
        let task = pool
            .submit(&codec.encode_message(&job(id)).unwrap())
            .unwrap();
        sent.insert(task, (codec, job(id)));
    }
    for _ in 0..JOBS {
        let r = pool.recv_result_timeout(LONG).unwrap();
        let (codec, j) = sent.remove(&r.id).expect("a result for a task sent");
        let (text, got): (String, Codec) = Codec::decode_message(&r.data).unwrap();
        assert_eq!((text, got), (format!("{}:{}", j.name, j.width), codec));
    }
    assert!(sent.is_empty());
}

/// Sends typed messages over a Unix stream socket (argv[1]), from `docs/PROTOCOL.md` section
/// 9: a message with an unknown tag, then the jobs of argv[2:] (JSON) in MessagePack, the
/// first as a map and the second as an array of its fields.
const PY_SEND: &str = r#"
import json, socket, struct, sys, msgpack

def frame(body):
    return struct.pack(">I", len(body)) + body

s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect(sys.argv[1])
s.sendall(frame(b"\x07" + msgpack.packb("no such codec")))
for i, j in enumerate(json.loads(a) for a in sys.argv[2:]):
    if i == 1:
        j = [j["id"], j["width"], j["name"], j["tags"], j["scale"]]
    s.sendall(frame(b"\x01" + msgpack.packb(j)))
s.close()
"#;

/// Listens on a Unix stream socket (argv[1]), says `ready`, then prints each typed message
/// of the one sender that connects as `tag id width name tags scale` until it closes.
const PY_RECV: &str = r#"
import os, socket, struct, sys, msgpack

def recv_exact(s, n):
    b = b""
    while len(b) < n:
        chunk = s.recv(n - len(b))
        if not chunk:
            return None
        b += chunk
    return b

l = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
l.bind(sys.argv[1])
os.chmod(sys.argv[1], 0o600)
l.listen(1)
l.settimeout(20)
print("ready", flush=True)
conn, _ = l.accept()
conn.settimeout(20)
while True:
    head = recv_exact(conn, 4)
    if head is None:
        break
    body = recv_exact(conn, struct.unpack(">I", head)[0])
    tag, v = body[0], msgpack.unpackb(body[1:])
    print(tag, v["id"], v["width"], v["name"], ",".join(v["tags"]), v["scale"], flush=True)
print("end", flush=True)
"#;

fn job_json(j: &Job) -> String {
    let tags: Vec<String> = j.tags.iter().map(|t| format!("\"{t}\"")).collect();
    let scale = j.scale.map_or("null".to_string(), |s| format!("{s:?}"));
    format!(
        r#"{{"id": {}, "width": {}, "name": "{}", "tags": [{}], "scale": {}}}"#,
        j.id,
        j.width,
        j.name,
        tags.join(", "),
        scale
    )
}

#[test]
fn python_sends_typed_messages_to_a_rust_receiver() {
    if !util::python::ready("msgpack") {
        return;
    }
    let dir = util::TempDir::new("typed-py-send");
    let path = dir.join("jobs.sock");
    let ep = Endpoint::parse(&format!("unix:{}", path.display())).unwrap();
    let mut rx: Receiver<Job> = Receiver::open(&ep, &Options::new()).unwrap();
    let jobs: Vec<Job> = (0..3).map(job).collect();
    let mut args = vec![path.display().to_string()];
    args.extend(jobs.iter().map(job_json));
    let python = std::thread::spawn(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        util::python::run(PY_SEND, &args);
    });
    match rx.recv_timeout(LONG) {
        Err(Error::Codec(CodecError::UnknownTag(7))) => {}
        other => panic!("expected the unknown tag 7 first, got {other:?}"),
    }
    for j in &jobs {
        let (got, meta) = rx.recv_timeout(LONG).unwrap();
        assert_eq!((&got, meta.codec), (j, Some(Codec::MsgPack)));
    }
    python.join().unwrap();
}

#[test]
fn a_rust_sender_is_read_by_python() {
    if !util::python::ready("msgpack") {
        return;
    }
    let dir = util::TempDir::new("typed-py-recv");
    let path = dir.join("jobs.sock");
    let (_python, mut out) = util::python::spawn(PY_RECV, &[&path.display().to_string()]);
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "ready");
    let ep = Endpoint::parse(&format!("unix:{}", path.display())).unwrap();
    let mut tx: Sender<Job> = Sender::open(&ep, &sender_options())
        .unwrap()
        .with_codec(Codec::MsgPack);
    let jobs: Vec<Job> = (0..4).map(job).collect();
    for j in &jobs {
        tx.send_timeout(j, LONG).unwrap();
    }
    drop(tx);
    for j in &jobs {
        line.clear();
        out.read_line(&mut line).unwrap();
        let scale = j.scale.map_or("None".to_string(), |s| format!("{s:?}"));
        let want = format!(
            "1 {} {} {} {} {scale}",
            j.id,
            j.width,
            j.name,
            j.tags.join(",")
        );
        assert_eq!(line.trim_end(), want);
    }
    line.clear();
    out.read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "end");
}
