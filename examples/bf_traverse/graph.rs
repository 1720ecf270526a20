//! Shared by `examples/bf_traverse` and `benches/bf_traverse.rs`: a
//! deterministic PBBS-style random local graph, an edge-list loader,
//! calibrated busy work, the LVar traversal, and the two baselines
//! (sequential BFS and a rayon level-synchronous BFS with an atomic visited
//! bitmap).

#![allow(dead_code)]

use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use lvars::{Freeze, HandlerPool, ISet, ThreadPool};
use rayon::prelude::*;

/// A directed graph in compressed sparse row form.
pub struct Graph {
    /// `offsets[v]..offsets[v + 1]` indexes `targets` for vertex `v`.
    pub offsets: Vec<usize>,
    pub targets: Vec<u32>,
}

impl Graph {
    pub fn num_vertices(&self) -> usize {
        self.offsets.len() - 1
    }

    pub fn num_edges(&self) -> usize {
        self.targets.len()
    }

    pub fn neighbours(&self, v: u32) -> &[u32] {
        &self.targets[self.offsets[v as usize]..self.offsets[v as usize + 1]]
    }

    fn from_edges(n: usize, mut edges: Vec<(u32, u32)>) -> Self {
        edges.sort_unstable();
        edges.dedup();
        let mut offsets = vec![0usize; n + 1];
        for &(u, _) in &edges {
            offsets[u as usize + 1] += 1;
        }
        for i in 0..n {
            offsets[i + 1] += offsets[i];
        }
        Graph {
            offsets,
            targets: edges.into_iter().map(|(_, v)| v).collect(),
        }
    }

    /// A random local graph in the spirit of PBBS `randLocalGraph`: every
    /// vertex gets `edges / vertices` out-edges to vertices at a distance
    /// drawn log-uniformly (most neighbours are near, a few are far), made
    /// symmetric so the traversal reaches a large component. Deterministic:
    /// the same arguments give the same graph.
    pub fn rand_local(vertices: usize, edges: usize, seed: u64) -> Self {
        assert!(vertices >= 2, "need at least two vertices");
        let degree = (edges / vertices).max(1) / 2;
        let mut rng = XorShift(seed | 1);
        let mut list = Vec::with_capacity(vertices * degree * 2);
        let n = vertices as f64;
        for u in 0..vertices {
            for _ in 0..degree {
                let dist = n.powf(rng.unit()).floor() as usize % vertices;
                let dist = dist.max(1);
                let v = if rng.next() & 1 == 0 {
                    (u + dist) % vertices
                } else {
                    (u + vertices - dist) % vertices
                };
                list.push((u as u32, v as u32));
                list.push((v as u32, u as u32));
            }
        }
        Self::from_edges(vertices, list)
    }

    /// Loads a plain edge list: one `u v` pair per line (`#` comments and
    /// blank lines are skipped); vertices are numbered from 0.
    pub fn load_edge_list(text: &str) -> Result<Self, String> {
        let mut edges = Vec::new();
        let mut max = 0u32;
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let mut it = line.split_whitespace();
            let (Some(a), Some(b)) = (it.next(), it.next()) else {
                return Err(format!("line {}: expected two vertex numbers", i + 1));
            };
            let parse = |s: &str| s.parse::<u32>().map_err(|e| format!("line {}: {s:?}: {e}", i + 1));
            let (u, v) = (parse(a)?, parse(b)?);
            max = max.max(u).max(v);
            edges.push((u, v));
        }
        if edges.is_empty() {
            return Err("no edges".into());
        }
        Ok(Self::from_edges(max as usize + 1, edges))
    }
}

struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Busy work of a fixed duration, calibrated once.
#[derive(Clone, Copy)]
pub struct Work {
    iterations: u64,
    pub micros: u64,
}

impl Work {
    /// Calibrates a spin loop to `micros` microseconds on this machine.
    pub fn calibrate(micros: u64) -> Self {
        let probe = 200_000u64;
        let mut best = Duration::MAX;
        for _ in 0..5 {
            let t = Instant::now();
            spin(probe);
            best = best.min(t.elapsed());
        }
        let per_micro = probe as f64 / (best.as_nanos() as f64 / 1000.0);
        Work {
            iterations: (per_micro * micros as f64).round().max(1.0) as u64,
            micros,
        }
    }

    /// Does the work; the vertex number is mixed in so it cannot be hoisted.
    #[inline]
    pub fn run(&self, vertex: u32) -> u64 {
        spin(self.iterations) ^ vertex as u64
    }
}

#[inline(never)]
fn spin(iterations: u64) -> u64 {
    let mut x = black_box(0x9E37_79B9_7F4A_7C15u64);
    for _ in 0..iterations {
        x = black_box(x.rotate_left(5) ^ 0x2545_F491_4F6C_DD1D);
    }
    x
}

/// The busy work of a traversal that reaches `reached` vertices, without
/// the traversal: what the ideal time (this / threads) is made of. Measured
/// in the same run as the traversals, it keeps the ideal honest when the
/// calibration ran on a slower or faster machine than the benchmark.
pub fn work_only(reached: usize, work: Work) -> u64 {
    (0..reached as u32).fold(0, |sink, v| sink ^ work.run(v))
}

/// What every traversal reports: identical for every correct traversal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reached {
    pub vertices: usize,
    /// Order-independent checksum of the reached vertices.
    pub checksum: u64,
}

/// A per-vertex mixing function for the checksum.
pub fn mix(v: u32) -> u64 {
    let mut x = v as u64 ^ 0xD6E8_FEB8_6659_FD93;
    x = (x ^ (x >> 32)).wrapping_mul(0xD6E8_FEB8_6659_FD93);
    x ^ (x >> 32)
}

/// Sequential BFS from `start`, doing `work` at every reached vertex.
pub fn bfs_sequential(g: &Graph, start: u32, work: Work) -> Reached {
    let mut visited = vec![false; g.num_vertices()];
    let mut queue = std::collections::VecDeque::new();
    visited[start as usize] = true;
    queue.push_back(start);
    let (mut count, mut checksum, mut sink) = (0usize, 0u64, 0u64);
    while let Some(v) = queue.pop_front() {
        sink ^= work.run(v);
        count += 1;
        checksum = checksum.wrapping_add(mix(v));
        for &w in g.neighbours(v) {
            if !visited[w as usize] {
                visited[w as usize] = true;
                queue.push_back(w);
            }
        }
    }
    black_box(sink);
    Reached {
        vertices: count,
        checksum,
    }
}

/// Level-synchronous BFS on rayon with an atomic visited bitmap.
pub fn bfs_rayon(g: &Graph, start: u32, work: Work) -> Reached {
    let visited: Vec<AtomicU64> = (0..g.num_vertices().div_ceil(64)).map(|_| AtomicU64::new(0)).collect();
    let claim = |v: u32| {
        let bit = 1u64 << (v % 64);
        visited[(v / 64) as usize].fetch_or(bit, Relaxed) & bit == 0
    };
    claim(start);
    let mut frontier = vec![start];
    let (mut count, mut checksum) = (0usize, 0u64);
    while !frontier.is_empty() {
        count += frontier.len();
        checksum = frontier.iter().fold(checksum, |c, &v| c.wrapping_add(mix(v)));
        frontier = frontier
            .par_iter()
            .flat_map_iter(|&v| {
                black_box(work.run(v));
                g.neighbours(v)
                    .iter()
                    .copied()
                    .filter(|&w| claim(w))
                    .collect::<Vec<_>>()
            })
            .collect();
    }
    Reached {
        vertices: count,
        checksum,
    }
}

/// The LVar traversal: a visited set and a handler that inserts neighbours.
pub fn bfs_lvars(pool: &ThreadPool, g: &Arc<Graph>, start: u32, work: Work) -> Reached {
    let g = Arc::clone(g);
    let visited = pool
        .run_par_then_freeze(move |p| {
            // Shared by reference for the session: no reference count
            // updated per reached vertex.
            let g: &Graph = p.keep(g).as_ref();
            Box::pin(async move {
                let set: ISet<u32> = ISet::dense(p, g.num_vertices());
                let handlers = HandlerPool::new(p);
                let s = set;
                handlers
                    .add_handler(&set, move |v| async move {
                        black_box(work.run(v));
                        for &w in g.neighbours(v) {
                            s.insert(w).expect("insert into the visited set");
                        }
                    })
                    .expect("add the traversal handler");
                set.insert(start).expect("insert the start vertex");
                set.then_freeze()
            })
        })
        .expect("the traversal session failed");
    Reached {
        vertices: visited.len(),
        checksum: visited.iter().fold(0u64, |c, &v| c.wrapping_add(mix(v))),
    }
}
