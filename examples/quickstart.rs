//! The README's example: forked tasks put primes into a set, a reader waits
//! for a threshold, and the set is frozen once every task has finished.

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use lvars::lattice::SetUnion;
use lvars::{run_par_then_freeze, Freeze, IVar, LVar};

fn is_prime(n: u32) -> bool {
    n >= 2 && (2..n).take_while(|d| d * d <= n).all(|d| n % d != 0)
}

fn main() {
    let (primes, sum) = run_par_then_freeze(|p| {
        Box::pin(async move {
            let primes: LVar<SetUnion<u32>> = LVar::new(p);
            let sum: IVar<u32> = IVar::new(p);
            // One task per candidate; puts join into the set in any order.
            for n in 1..50 {
                let primes = primes.clone();
                p.fork(async move {
                    if is_prime(n) {
                        primes.put(SetUnion::singleton(n)).unwrap();
                    }
                });
            }
            // A reader blocks until {2, 3, 5, 7} is in the set. It gets the
            // threshold back, never the (timing-dependent) current state.
            let (primes2, sum2) = (primes.clone(), sum.clone());
            p.fork(async move {
                let small = primes2.get_at_least([2, 3, 5, 7].into_iter().collect()).unwrap().await;
                sum2.put(small.iter().sum()).unwrap();
            });
            // Frozen after the barrier: the same answer on every run.
            (primes, sum).then_freeze()
        })
    })
    .unwrap();
    let primes: Vec<u32> = primes.into_iter().collect();
    println!("primes below 50: {primes:?}");
    println!("sum of the first four: {}", sum.unwrap());
}
