//! `tls:` endpoints between real `ipcx` processes: send/recv, pub/sub and bridge with
//! certificates made by rcgen at test time (PEM files), a plaintext sender refused while the
//! receiver goes on, an untrusted receiver, client certificates, and the usage errors of a
//! `tls:` endpoint given no certificates.
mod util;

use std::time::Duration;

use util::tls::Ca;
use util::{Bg, TempDir, free_port, run, send_when_ready, stderr, stdout, succeeded};

const WAIT: Duration = Duration::from_secs(30);

fn tls_addr() -> String {
    format!("tls:127.0.0.1:{}", free_port(false))
}

#[test]
fn messages_cross_and_a_plaintext_sender_is_refused_while_the_receiver_goes_on() {
    let dir = TempDir::new();
    let ca = Ca::new(&dir, "server");
    let (cert, key) = ca.leaf(&dir, "server", &["127.0.0.1"]);
    let ep = tls_addr();
    let rx = util::recv_in_background(&ep, "2", &["--cert", &cert, "--key", &key]);
    // The receiver is up once a TLS sender gets through.
    succeeded(send_when_ready(&["send", &ep, "one", "--ca", &ca.ca]));
    // A plaintext sender on the same port: refused (whatever it thinks of it).
    let plain = ep.replacen("tls:", "tcp:", 1);
    let _ = run(&["send", &plain, "in the clear"]);
    // A connection that never says a word holds up nobody: the receiver is still serving.
    let silent = std::net::TcpStream::connect(ep.strip_prefix("tls:").unwrap()).unwrap();
    succeeded(run(&["send", &ep, "two", "--ca", &ca.ca]));
    drop(silent);
    let out = rx.wait(WAIT);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "one\ntwo\n");
    assert!(
        stderr(&out).contains("does not speak TLS") && stderr(&out).contains("still serving"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_sender_that_does_not_trust_the_receiver_fails_clearly() {
    let dir = TempDir::new();
    let ca = Ca::new(&dir, "server");
    let other = Ca::new(&dir, "other");
    let (cert, key) = ca.leaf(&dir, "server", &["localhost", "127.0.0.1"]);
    let ep = tls_addr();
    let rx = util::recv_in_background(&ep, "2", &["--cert", &cert, "--key", &key]);
    succeeded(send_when_ready(&["send", &ep, "ready", "--ca", &ca.ca]));
    let wrong = run(&["send", &ep, "x", "--ca", &other.ca]);
    assert_eq!(wrong.status.code(), Some(1), "{}", stderr(&wrong));
    assert!(
        stderr(&wrong).contains("not trusted") && stderr(&wrong).contains("--ca"),
        "{}",
        stderr(&wrong)
    );
    // The right CA, through a host name the certificate carries.
    let by_name = ep.replacen("127.0.0.1", "localhost", 1);
    succeeded(run(&["send", &by_name, "trusted", "--ca", &ca.ca]));
    let out = rx.wait(WAIT);
    assert_eq!(stdout(&out), "ready\ntrusted\n", "{}", stderr(&out));
}

#[test]
fn a_receiver_requiring_client_certificates_refuses_a_sender_without_one() {
    let dir = TempDir::new();
    let server_ca = Ca::new(&dir, "server");
    let client_ca = Ca::new(&dir, "clients");
    let (cert, key) = server_ca.leaf(&dir, "server", &["127.0.0.1"]);
    let (ccert, ckey) = client_ca.leaf(&dir, "client", &["client"]);
    let ep = tls_addr();
    let rx = util::recv_in_background(
        &ep,
        "2",
        &["--cert", &cert, "--key", &key, "--client-ca", &client_ca.ca],
    );
    let signed = |msg: &'static str| {
        vec![
            "send",
            ep.as_str(),
            msg,
            "--ca",
            server_ca.ca.as_str(),
            "--cert",
            ccert.as_str(),
            "--key",
            ckey.as_str(),
        ]
    };
    succeeded(send_when_ready(&signed("ready")));
    // Without a certificate: refused, and the sender says so (not a silent loss).
    let bare = run(&["send", &ep, "bare", "--ca", &server_ca.ca]);
    assert_eq!(bare.status.code(), Some(1), "{}", stderr(&bare));
    assert!(
        stderr(&bare).contains("client certificate"),
        "{}",
        stderr(&bare)
    );
    succeeded(run(&signed("signed")));
    let out = rx.wait(WAIT);
    assert_eq!(stdout(&out), "ready\nsigned\n", "{}", stderr(&out));
    assert!(
        stderr(&out).contains("presented no certificate"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_tls_endpoint_without_certificates_is_a_usage_error_naming_the_flags() {
    let ep = tls_addr();
    let r = run(&["recv", &ep, "--timeout", "1s"]);
    assert_eq!(r.status.code(), Some(2), "{}", stderr(&r));
    assert!(
        stderr(&r).contains("--cert FILE --key FILE"),
        "{}",
        stderr(&r)
    );
    for args in [
        vec!["send", ep.as_str(), "x"],
        vec!["sub", ep.as_str(), "--timeout", "1s"],
    ] {
        let r = run(&args);
        assert_eq!(r.status.code(), Some(2), "{args:?}: {}", stderr(&r));
        assert!(stderr(&r).contains("--ca FILE"), "{args:?}: {}", stderr(&r));
    }
    let r = run(&["pub", &ep, "x", "--timeout", "1s"]);
    assert_eq!(r.status.code(), Some(2), "{}", stderr(&r));
    assert!(
        stderr(&r).contains("--cert FILE --key FILE"),
        "{}",
        stderr(&r)
    );
    // --cert without --key, and the reverse: clap says which is missing.
    let r = run(&["recv", &ep, "--cert", "c.pem"]);
    assert_eq!(r.status.code(), Some(2), "{}", stderr(&r));
    assert!(stderr(&r).contains("--key"), "{}", stderr(&r));
    // A certificate file that is not one.
    let dir = TempDir::new();
    let junk = dir.join("junk.pem");
    std::fs::write(&junk, "-----BEGIN CERTIFICATE-----\nnot base64\n").unwrap();
    let r = run(&["send", &ep, "x", "--ca", &junk]);
    assert_eq!(r.status.code(), Some(1), "{}", stderr(&r));
    assert!(stderr(&r).contains("junk.pem"), "{}", stderr(&r));
}

#[test]
fn pub_and_sub_over_tls() {
    let dir = TempDir::new();
    let ca = Ca::new(&dir, "topics");
    let (cert, key) = ca.leaf(&dir, "pub", &["127.0.0.1"]);
    let ep = tls_addr();
    let publisher = Bg::spawn(&[
        "pub",
        &ep,
        "first",
        "second",
        "--timeout",
        "20s",
        "--cert",
        &cert,
        "--key",
        &key,
    ]);
    let got = run(&[
        "sub",
        &ep,
        "--count",
        "2",
        "--timeout",
        "20s",
        "--ca",
        &ca.ca,
    ]);
    assert!(got.status.success(), "{}", stderr(&got));
    assert_eq!(stdout(&got), "first\nsecond\n");
    let p = publisher.wait(WAIT);
    assert!(p.status.success(), "{}", stderr(&p));
}

#[test]
fn bridge_carries_tls_into_a_unix_socket() {
    let dir = TempDir::new();
    let ca = Ca::new(&dir, "bridge");
    let (cert, key) = ca.leaf(&dir, "bridge", &["127.0.0.1"]);
    let from = tls_addr();
    let to = format!("unix:@{}", util::unique("tls-bridge"));
    let rx = Bg::spawn(&["recv", &to, "--count", "2", "--timeout", "20s"]);
    let bridge = Bg::spawn(&[
        "bridge",
        &from,
        &to,
        "--count",
        "2",
        "--timeout",
        "20s",
        "--cert",
        &cert,
        "--key",
        &key,
    ]);
    succeeded(send_when_ready(&["send", &from, "over", "--ca", &ca.ca]));
    succeeded(run(&["send", &from, "tls", "--ca", &ca.ca]));
    let out = rx.wait(WAIT);
    assert_eq!(stdout(&out), "over\ntls\n", "{}", stderr(&out));
    let b = bridge.wait(WAIT);
    assert!(b.status.success(), "{}", stderr(&b));
}
