//! Put-to-wake latency: a ping-pong of `n` round trips between two tasks.
//! Shared by `benches/wake_latency.rs` and `examples/report.rs`.
//!
//! Round trip `i`: the pinger puts `i` and parks on the answer; the echo,
//! parked on the ping, wakes, answers `i + 1` and parks on the next ping.
//! So every round trip is two puts that each wake a parked waiter. Each
//! iteration checks the sum of the answers. Variants:
//!
//! - `lvars_ivar`: two chains of `IVar`s (one fresh IVar per message, as
//!   single assignment requires), tasks of one session;
//! - `lvars_counter`: two `MaxCounter`s reused for every message (put `i`,
//!   wait for at least `i`): the same wake path with no allocation;
//! - `tokio_oneshot`: two chains of tokio `oneshot` channels, two spawned
//!   tasks on a multi-thread runtime;
//! - `crossbeam_channel`: two `bounded(1)` channels between the caller and
//!   an echo thread: always two OS threads, so only measured at 2.
//!
//! The lvars and tokio variants run on a pool of `threads` workers: at 1
//! both tasks share the worker (a wake only re-queues), at 2 a wake may
//! cross threads.

#![allow(dead_code)]

use std::sync::Arc;
use std::thread::JoinHandle;

use crossbeam_channel::{Receiver, Sender};
use lvars::{IVar, MaxCounter, ThreadPool, ThreadPoolBuilder};

/// Every variant, in the order they are run.
pub const VARIANTS: [&str; 4] = ["lvars_ivar", "lvars_counter", "tokio_oneshot", "crossbeam_channel"];

/// The thread counts at which `variant` is measured (the crossbeam echo
/// always takes a second OS thread).
pub fn thread_counts(variant: &str) -> &'static [usize] {
    match variant {
        "crossbeam_channel" => &[2],
        _ => &[1, 2],
    }
}

/// The sum of the answers of `n` round trips (`i + 1` for each `i`).
pub fn expected(n: usize) -> u64 {
    let n = n as u64;
    n * (n + 1) / 2
}

fn ping_pong_ivar(pool: &ThreadPool, n: usize) -> u64 {
    pool.run_par(move |p| {
        Box::pin(async move {
            let ping: Arc<Vec<IVar<u64>>> = Arc::new((0..n).map(|_| IVar::new(p)).collect());
            let pong: Arc<Vec<IVar<u64>>> = Arc::new((0..n).map(|_| IVar::new(p)).collect());
            let (ping2, pong2) = (Arc::clone(&ping), Arc::clone(&pong));
            p.fork(async move {
                for (ping, pong) in ping2.iter().zip(pong2.iter()) {
                    let x = *ping.get().await;
                    pong.put(x + 1).unwrap();
                }
            });
            let mut sum = 0;
            for (i, (ping, pong)) in ping.iter().zip(pong.iter()).enumerate() {
                ping.put(i as u64).unwrap();
                sum += *pong.get().await;
            }
            sum
        })
    })
    .unwrap()
}

fn ping_pong_counter(pool: &ThreadPool, n: usize) -> u64 {
    pool.run_par(move |p| {
        Box::pin(async move {
            // Message i is the counter reaching i + 1 (0 is the start).
            let (ping, pong) = (MaxCounter::new(p), MaxCounter::new(p));
            let (ping2, pong2) = (ping.clone(), pong.clone());
            p.fork(async move {
                for i in 1..=n as u64 {
                    ping2.wait_at_least(i).await;
                    pong2.put(i).unwrap();
                }
            });
            let mut sum = 0;
            for i in 1..=n as u64 {
                ping.put(i).unwrap();
                pong.wait_at_least(i).await;
                sum += i;
            }
            sum
        })
    })
    .unwrap()
}

async fn ping_pong_tokio(n: usize) -> u64 {
    use tokio::sync::oneshot;
    let (ping_tx, ping_rx): (Vec<_>, Vec<_>) = (0..n).map(|_| oneshot::channel::<u64>()).unzip();
    let (pong_tx, pong_rx): (Vec<_>, Vec<_>) = (0..n).map(|_| oneshot::channel::<u64>()).unzip();
    let echo = tokio::spawn(async move {
        for (ping, pong) in ping_rx.into_iter().zip(pong_tx) {
            let x = ping.await.unwrap();
            pong.send(x + 1).unwrap();
        }
    });
    let pinger = tokio::spawn(async move {
        let mut sum = 0;
        for (i, (ping, pong)) in ping_tx.into_iter().zip(pong_rx).enumerate() {
            ping.send(i as u64).unwrap();
            sum += pong.await.unwrap();
        }
        sum
    });
    echo.await.unwrap();
    pinger.await.unwrap()
}

/// The crossbeam echo thread: answers every ping until the ping sender is
/// dropped, then ends; dropping this joins it.
struct Echo {
    ping: Option<Sender<u64>>,
    pong: Receiver<u64>,
    thread: Option<JoinHandle<()>>,
}

impl Echo {
    fn start() -> Self {
        let (ping, ping_rx) = crossbeam_channel::bounded::<u64>(1);
        let (pong_tx, pong) = crossbeam_channel::bounded::<u64>(1);
        let thread = std::thread::spawn(move || {
            while let Ok(x) = ping_rx.recv() {
                pong_tx.send(x + 1).unwrap();
            }
        });
        Echo {
            ping: Some(ping),
            pong,
            thread: Some(thread),
        }
    }

    fn ping_pong(&self, n: usize) -> u64 {
        let ping = self.ping.as_ref().expect("the echo is running");
        (0..n as u64)
            .map(|i| {
                ping.send(i).unwrap();
                self.pong.recv().unwrap()
            })
            .sum()
    }
}

impl Drop for Echo {
    fn drop(&mut self) {
        // Closing the ping channel ends the echo's loop.
        drop(self.ping.take());
        if let Some(t) = self.thread.take() {
            t.join().expect("the echo thread panicked");
        }
    }
}

/// `variant` (one of [`VARIANTS`]) at `threads` (one of its
/// [`thread_counts`]): each call of the returned closure runs `n` round
/// trips and checks their sum. The pool (or echo thread) lives as long as
/// the closure.
pub fn setup(variant: &str, threads: usize, n: usize) -> Box<dyn FnMut()> {
    let want = expected(n);
    match variant {
        "lvars_ivar" => {
            let pool = ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
            Box::new(move || assert_eq!(ping_pong_ivar(&pool, n), want))
        }
        "lvars_counter" => {
            let pool = ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
            Box::new(move || assert_eq!(ping_pong_counter(&pool, n), want))
        }
        "tokio_oneshot" => {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(threads)
                .build()
                .unwrap();
            Box::new(move || assert_eq!(rt.block_on(ping_pong_tokio(n)), want))
        }
        "crossbeam_channel" => {
            assert_eq!(threads, 2, "the crossbeam ping-pong always runs on two threads");
            let echo = Echo::start();
            Box::new(move || assert_eq!(echo.ping_pong(n), want))
        }
        other => panic!("unknown latency variant {other:?}"),
    }
}
