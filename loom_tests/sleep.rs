//! The worker sleep protocol (`src/sched/sleep.rs`): a job published while
//! a worker goes to sleep is never missed, and a latch set while its owner
//! goes to sleep always wakes it. Loom reports a deadlock if a worker parks
//! forever.

use loom::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use loom::sync::Arc;
use loom::thread;

use lvars::sched::loom_exports::Sleep;

/// A worker loop against a one-slot "queue".
fn worker(sleep: &Sleep, index: usize, jobs: &AtomicUsize, want: usize, done: &AtomicUsize) {
    sleep.register_current_thread(index);
    loop {
        // Take a job if there is one.
        let n = jobs.load(SeqCst);
        if n > 0 && jobs.compare_exchange(n, n - 1, SeqCst, SeqCst).is_ok() {
            if done.fetch_add(1, SeqCst) + 1 == want {
                // Everything is done: release the other workers.
                for i in 0..sleep.num_workers() {
                    sleep.wake_specific(i);
                }
            }
            continue;
        }
        if done.load(SeqCst) == want {
            return;
        }
        sleep.sleep(index, || jobs.load(SeqCst) > 0 || done.load(SeqCst) == want, || {});
    }
}

#[test]
fn a_job_pushed_while_the_worker_falls_asleep_is_not_lost() {
    loom::model(|| {
        let sleep = Arc::new(Sleep::new(1));
        let jobs = Arc::new(AtomicUsize::new(0));
        let done = Arc::new(AtomicUsize::new(0));
        let w = {
            let (sleep, jobs, done) = (sleep.clone(), jobs.clone(), done.clone());
            thread::spawn(move || worker(&sleep, 0, &jobs, 1, &done))
        };
        jobs.fetch_add(1, SeqCst);
        sleep.notify_one(0);
        w.join().unwrap();
        assert_eq!(done.load(SeqCst), 1);
        assert_eq!(sleep.sleepers(), 0);
    });
}

#[test]
fn two_workers_two_jobs_every_job_runs() {
    loom::model(|| {
        let sleep = Arc::new(Sleep::new(2));
        let jobs = Arc::new(AtomicUsize::new(0));
        let done = Arc::new(AtomicUsize::new(0));
        let ws: Vec<_> = (0..2)
            .map(|i| {
                let (sleep, jobs, done) = (sleep.clone(), jobs.clone(), done.clone());
                thread::spawn(move || worker(&sleep, i, &jobs, 2, &done))
            })
            .collect();
        for _ in 0..2 {
            jobs.fetch_add(1, SeqCst);
            sleep.notify_one(0);
        }
        for w in ws {
            w.join().unwrap();
        }
        assert_eq!(done.load(SeqCst), 2);
    });
}

#[test]
fn a_latch_set_while_its_owner_falls_asleep_wakes_it() {
    loom::model(|| {
        let sleep = Arc::new(Sleep::new(1));
        let latch = Arc::new(AtomicUsize::new(0));
        let owner = {
            let (sleep, latch) = (sleep.clone(), latch.clone());
            thread::spawn(move || {
                sleep.register_current_thread(0);
                while latch.load(SeqCst) == 0 {
                    sleep.sleep(0, || latch.load(SeqCst) != 0, || {});
                }
            })
        };
        // The setter: publish, then wake the specific owner.
        latch.store(1, SeqCst);
        sleep.wake_specific(0);
        owner.join().unwrap();
        assert_eq!(sleep.sleepers(), 0, "the sleeper count is exact afterwards");
    });
}
