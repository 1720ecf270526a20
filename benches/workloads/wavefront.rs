//! An `IStructure` wavefront: the longest common subsequence of two
//! deterministic pseudo-random strings, as a dynamic-programming grid of
//! blocks. Shared by `benches/wavefront.rs` and `examples/report.rs`.
//!
//! Block `(i, j)` needs the bottom row of the block above and the right
//! column of the block on its left, and produces its own. Variants:
//!
//! - `sequential`: the plain row-by-row DP over the whole grid (one block);
//! - `rayon`: anti-diagonal wavefront of blocks, each diagonal a
//!   `par_iter` (a barrier between diagonals);
//! - `lvars`: one task per block, forked up front; each waits on its top
//!   and left neighbours' slots of an `IStructure` and puts its own (no
//!   barrier: a block starts as soon as its two inputs exist).
//!
//! Every iteration checks the LCS length against the sequential one.

#![allow(dead_code)]

use std::sync::Arc;

use lvars::{IStructure, ThreadPool, ThreadPoolBuilder};
use rayon::prelude::*;

/// The baseline, measured once (it has no thread count).
pub const SEQUENTIAL: &str = "sequential";
/// The variants measured at every thread count, in the order they are run.
pub const PARALLEL: [&str; 2] = ["rayon", "lvars"];

/// What a finished block hands on.
#[derive(Debug, Clone, PartialEq)]
pub struct Boundary {
    /// DP values of the block's last row, from the column just left of the
    /// block (the corner the block below needs) to its last column.
    bottom: Vec<u32>,
    /// DP values of the block's last column, one per row.
    right: Vec<u32>,
}

/// Two strings of length `n` over a 4-letter alphabet (xorshift64 from a
/// fixed seed), and the block size of the grid.
pub struct Grid {
    a: Vec<u8>,
    b: Vec<u8>,
    block: usize,
}

impl Grid {
    pub fn new(n: usize, block: usize) -> Self {
        assert!(n > 0 && block > 0);
        let mut s = 0x9E37_79B9_7F4A_7C15_u64;
        let mut letter = || {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            b"ACGT"[(s >> 32) as usize & 3]
        };
        let a = (0..n).map(|_| letter()).collect();
        let b = (0..n).map(|_| letter()).collect();
        Grid { a, b, block }
    }

    /// Blocks down (over `a`) and across (over `b`).
    fn blocks(&self) -> (usize, usize) {
        (self.a.len().div_ceil(self.block), self.b.len().div_ceil(self.block))
    }

    /// The DP of the rows `a` by the columns `b`, given the row above
    /// (`top`, one longer than `b`: its first value is the corner) and the
    /// column on the left (`left`, one per row).
    fn dp(a: &[u8], b: &[u8], top: &[u32], left: &[u32]) -> Boundary {
        let mut prev = top.to_vec();
        let mut cur = vec![0u32; b.len() + 1];
        let mut right = Vec::with_capacity(a.len());
        for (&ca, &l) in a.iter().zip(left) {
            cur[0] = l;
            for (c, &cb) in b.iter().enumerate() {
                cur[c + 1] = if ca == cb { prev[c] + 1 } else { prev[c + 1].max(cur[c]) };
            }
            right.push(cur[b.len()]);
            std::mem::swap(&mut prev, &mut cur);
        }
        Boundary { bottom: prev, right }
    }

    /// Block `(i, j)` from its neighbours' boundaries (`None` at the grid's
    /// edge, where the DP is 0).
    fn block(&self, i: usize, j: usize, top: Option<&Boundary>, left: Option<&Boundary>) -> Boundary {
        let rows = &self.a[i * self.block..((i + 1) * self.block).min(self.a.len())];
        let cols = &self.b[j * self.block..((j + 1) * self.block).min(self.b.len())];
        let zeros = vec![0u32; rows.len().max(cols.len()) + 1];
        let top = top.map_or(&zeros[..cols.len() + 1], |t| &t.bottom[..]);
        let left = left.map_or(&zeros[..rows.len()], |l| &l.right[..]);
        Self::dp(rows, cols, top, left)
    }

    /// The LCS length from the last block's boundary.
    fn answer(last: &Boundary) -> u32 {
        *last.bottom.last().expect("a block has at least one column")
    }

    /// The plain DP, row by row over the whole grid.
    pub fn lcs_sequential(&self) -> u32 {
        let top = vec![0u32; self.b.len() + 1];
        let left = vec![0u32; self.a.len()];
        Self::answer(&Self::dp(&self.a, &self.b, &top, &left))
    }

    /// Anti-diagonals of blocks in order, the blocks of each in parallel.
    pub fn lcs_rayon(&self) -> u32 {
        let (rows, cols) = self.blocks();
        let mut done: Vec<Option<Boundary>> = vec![None; rows * cols];
        for d in 0..rows + cols - 1 {
            let first = d.saturating_sub(cols - 1);
            let last = d.min(rows - 1);
            let diagonal: Vec<(usize, Boundary)> = (first..=last)
                .into_par_iter()
                .map(|i| {
                    let j = d - i;
                    let top = (i > 0).then(|| done[(i - 1) * cols + j].as_ref().unwrap());
                    let left = (j > 0).then(|| done[i * cols + j - 1].as_ref().unwrap());
                    (i * cols + j, self.block(i, j, top, left))
                })
                .collect();
            for (k, b) in diagonal {
                done[k] = Some(b);
            }
        }
        Self::answer(done.last().unwrap().as_ref().unwrap())
    }

    /// One task per block on an `IStructure` of boundaries.
    pub fn lcs_lvars(self: &Arc<Self>, pool: &ThreadPool) -> u32 {
        let grid = Arc::clone(self);
        pool.run_par(move |p| {
            Box::pin(async move {
                let (rows, cols) = grid.blocks();
                let slots: IStructure<Boundary> = IStructure::new(p, rows * cols);
                // Forked last to first, so that with a LIFO local queue the
                // corner block, the only one ready, tends to run first.
                for k in (0..rows * cols).rev() {
                    let (slots, grid) = (slots.clone(), Arc::clone(&grid));
                    p.fork(async move {
                        let (i, j) = (k / cols, k % cols);
                        let top = if i > 0 {
                            Some(slots.get(k - cols).unwrap().await)
                        } else {
                            None
                        };
                        let left = if j > 0 {
                            Some(slots.get(k - 1).unwrap().await)
                        } else {
                            None
                        };
                        slots.put(k, grid.block(i, j, top, left)).unwrap();
                    });
                }
                Self::answer(slots.get(rows * cols - 1).unwrap().await)
            })
        })
        .unwrap()
    }
}

/// `variant` (one of [`SEQUENTIAL`], [`PARALLEL`]) on its own pool of
/// `threads` workers: each call of the returned closure computes the LCS
/// once and checks it against `want` (the sequential answer). The pool
/// lives as long as the closure.
pub fn setup(variant: &str, threads: usize, grid: &Arc<Grid>, want: u32) -> Box<dyn FnMut()> {
    let grid = Arc::clone(grid);
    match variant {
        SEQUENTIAL => Box::new(move || assert_eq!(grid.lcs_sequential(), want)),
        "rayon" => {
            let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
            Box::new(move || assert_eq!(pool.install(|| grid.lcs_rayon()), want))
        }
        "lvars" => {
            let pool = ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
            Box::new(move || assert_eq!(grid.lcs_lvars(&pool), want))
        }
        other => panic!("unknown wavefront variant {other:?}"),
    }
}
