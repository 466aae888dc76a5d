//! Command-line definitions (the "low" arguments: as close to the flags as possible).

use clap::{Parser, Subcommand};

/// Exercise, inspect, clean up and benchmark Linux IPC.
#[derive(Debug, Parser)]
#[command(name = "ipcx", version, about, propagate_version = true)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Send messages to an endpoint (each MSG one message; with none, each line of stdin).
    ///
    /// udp: a datagram the receiver has no room for is lost without an error on either side;
    /// use a unix or tcp endpoint when every message must arrive.
    Send(crate::command::send::SendArgs),
    /// Receive messages from an endpoint and print each on its own line.
    ///
    /// udp: datagrams are lost under load without an error; on exit recv prints (on stderr)
    /// how many it received.
    Recv(crate::command::recv::RecvArgs),
    /// List every IPC object on the machine: kind, name, owner, mode, size or message count,
    /// creator pid and whether it is alive (with --services: every live ipcx service; with
    /// --waiters: every lock-like object with its holder and waiters).
    Ls(crate::command::ls::LsArgs),
    /// Remove objects, named as `ipcx ls` prints them.
    Rm(crate::command::rm::RmArgs),
    /// Remove what dead processes left behind (only what ipcx can prove is stale).
    Clean(crate::command::clean::CleanArgs),
    /// Find processes deadlocked on IPC locks and semaphores: print each cycle of the
    /// wait-for graph with its pids and objects; exit 1 when there is one.
    Deadlock(crate::command::deadlock::DeadlockArgs),
    /// Shared memory: create, write, read, rm.
    Shm(crate::command::shm::ShmArgs),
    /// Semaphores: create, post, wait, get, rm.
    Sem(crate::command::sem::SemArgs),
    /// Signals: send (with a payload), wait.
    Signal(crate::command::signal::SignalArgs),
    /// Subscribe to a pub/sub topic (shm:/NAME, unix:PATH, unix:@NAME, tcp:HOST:PORT) and print
    /// each message; waits for the publisher (within --timeout) when it is not there yet.
    Sub(crate::command::sub::SubArgs),
    /// Publish messages on a pub/sub topic (each MSG one message; with none, each line of
    /// stdin), after waiting (within --timeout) for at least one subscriber.
    Pub(crate::command::r#pub::PubArgs),
    /// Forward every message arriving at endpoint FROM to endpoint TO, in order, until
    /// stopped (Ctrl-C, SIGTERM) or --count; keeps priorities (mq) and types (sysv-mq).
    Bridge(crate::command::bridge::BridgeArgs),
    /// Call a method of an RPC service (an endpoint, or a service's name) with a JSON
    /// argument and print the result as one line of JSON; --list prints its methods.
    Call(crate::command::call::CallArgs),
    /// Measure every mechanism between two processes: round-trip latency, throughput, and each
    /// p50 as a multiple of the physical floor (the `limit` row).
    Bench(crate::command::bench::BenchArgs),
    /// Internal: the peer process of `ipcx bench`.
    #[command(name = "__bench-peer", hide = true)]
    BenchPeer(crate::command::bench::BenchPeerArgs),
}
