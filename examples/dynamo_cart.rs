//! Dynamo's shopping cart, replicated, with threshold queries.
//!
//! Three replicas hold one cart in two designs side by side:
//!
//! * Dynamo's: a multi-value register of plain sets; a client that reads
//!   concurrent versions merges them by union (as the Dynamo paper
//!   describes), so an item deleted on one side of a partition comes back;
//! * an observed-remove set (`ORSet`), where it stays deleted;
//!
//! plus a checkout decision (`Flat`: the contents confirmed at checkout).
//! Clients add and remove items on both sides of a partition; the
//! partition heals; every replica ends with the same cart, and two
//! threshold queries ("has checkout been requested?", "does the
//! checked-out cart hold at least one Book?") give the same answer at
//! every replica.
//!
//! `cargo run --release --example dynamo_cart` runs the replicas in one
//! process over the deterministic network simulation (seeded: the output
//! is the same on every run). `-- --tcp` runs each replica as its own OS
//! process; they push their states to each other over loopback TCP.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::sync::Arc;
use std::time::Duration;

use lvars::crdt::sim::{NetConfig, Sim};
use lvars::crdt::{MVRegister, ORSet, Replica, ReplicaId};
use lvars::lattice::Flat;
use lvars::lvar::ThresholdSet;

type Items = BTreeSet<String>;
/// (Dynamo's cart, the OR-set cart, the checkout decision).
type Cart = (MVRegister<Items>, ORSet<String>, Flat<Items>);

const REPLICAS: usize = 3;
const SEED: u64 = 2007; // the year of the Dynamo paper
/// Every socket read, write and reply from a replica process times out.
const TIMEOUT: Duration = Duration::from_secs(5);

// ---- the client operations, the same in both modes ----------------------

/// What a Dynamo client sees: the union of the concurrent versions.
fn dynamo_view(cart: &Cart) -> Items {
    cart.0.values().flatten().cloned().collect()
}

fn add(cart: &mut Cart, id: ReplicaId, item: &str) {
    let mut items = dynamo_view(cart);
    items.insert(item.to_string());
    cart.0.write(id, items);
    cart.1.add(id, item.to_string());
}

fn remove(cart: &mut Cart, id: ReplicaId, item: &str) {
    let mut items = dynamo_view(cart);
    items.remove(item);
    cart.0.write(id, items);
    cart.1.remove(id, &item.to_string());
}

fn checkout(cart: &mut Cart) {
    cart.2 = Flat::Value(cart.1.iter().cloned().collect());
}

// ---- the threshold queries (monotone views of the cart) -----------------

/// Once checkout is decided it stays decided: `false < true`.
fn checkout_requested(cart: &Cart) -> bool {
    !matches!(cart.2, Flat::Bottom)
}

/// What the checked-out cart says about Books; `Bottom` until checkout.
fn holds_book(cart: &Cart) -> Flat<bool> {
    match &cart.2 {
        Flat::Bottom => Flat::Bottom,
        Flat::Value(items) => Flat::Value(items.contains("Book")),
        Flat::Top => Flat::Top,
    }
}

fn requested_query() -> ThresholdSet<bool> {
    ThresholdSet::single(true).expect("true is not top")
}

fn book_query() -> ThresholdSet<Flat<bool>> {
    ThresholdSet::new(vec![Flat::Value(true), Flat::Value(false)]).expect("yes and no are incompatible")
}

fn answers(replica: &Replica<Cart>) -> (String, String) {
    let requested = match replica.query_view(checkout_requested, &requested_query()) {
        Some(_) => "yes".to_string(),
        None => "not yet".to_string(),
    };
    let book = match replica.query_view(holds_book, &book_query()) {
        Some(Flat::Value(true)) => "yes".to_string(),
        Some(_) => "no".to_string(),
        None => "not yet".to_string(),
    };
    (requested, book)
}

const LEGEND: &str = "Each replica line: the Dynamo cart's concurrent versions and a client's union of them,
the OR-set cart, and two threshold queries: \"has checkout been requested?\" (checkout?)
and \"does the checked-out cart hold at least one Book?\" (Book?).
";

/// The example checks what it claims: after the partition heals, Shoes is
/// back in Dynamo's cart and not in the OR-set cart, every replica holds
/// the same cart and gives the same answers.
fn check_converged(replicas: &[&Replica<Cart>]) -> Result<(), Box<dyn std::error::Error>> {
    let first = replicas[0].state();
    if !dynamo_view(&first).contains("Shoes") || first.1.contains(&"Shoes".to_string()) {
        return Err("expected Shoes back in Dynamo's cart only".into());
    }
    for r in replicas {
        if r.encode_state() != replicas[0].encode_state() || answers(r) != answers(replicas[0]) {
            return Err(format!("replica {} differs from replica 0", r.id()).into());
        }
    }
    Ok(())
}

fn show(items: &Items) -> String {
    format!("{{{}}}", items.iter().cloned().collect::<Vec<_>>().join(", "))
}

/// One line describing a replica's cart, the same in both modes.
fn describe(name: &str, replica: &Replica<Cart>) -> String {
    let cart = replica.state();
    let versions: Vec<String> = cart.0.values().map(show).collect();
    let orset: Items = cart.1.iter().cloned().collect();
    let (requested, book) = answers(replica);
    format!(
        "{name}: Dynamo versions [{}] merged {} | OR-set {} | checkout? {requested} | Book? {book}",
        versions.join(", "),
        show(&dynamo_view(&cart)),
        show(&orset),
    )
}

// ---- default mode: the simulation ---------------------------------------

fn run_simulated() -> Result<(), Box<dyn std::error::Error>> {
    println!("Dynamo's shopping cart on {REPLICAS} replicas, simulated network (seed {SEED}):");
    println!("messages are delayed, reordered, duplicated and dropped.");
    println!("{LEGEND}");
    let mut sim: Sim<Cart> = Sim::new(REPLICAS, NetConfig::default(), SEED);
    let id = |i: usize| ReplicaId(i as u32);
    sim.update(0, |c| add(c, id(0), "Book"))?;
    sim.update(0, |c| add(c, id(0), "Shoes"))?;
    sim.settle()?;
    println!("1. a client adds Book and Shoes at r0; gossip reaches every replica.");
    println!("2. partition: {{r0}} | {{r1, r2}}");
    sim.partition(&[&[0], &[1, 2]]);
    sim.update(0, |c| remove(c, id(0), "Shoes"))?;
    sim.update(2, |c| add(c, id(2), "Hat"))?;
    sim.run(30)?;
    println!("   at r0 a client removes Shoes; at r2 another adds a Hat.");
    for i in 0..REPLICAS {
        println!("   {}", describe(&format!("r{i}"), sim.replica(i)));
    }
    let ticks = sim.settle()?;
    println!("3. the partition heals; all replicas converge after {ticks} ticks:");
    for i in 0..REPLICAS {
        println!("   {}", describe(&format!("r{i}"), sim.replica(i)));
    }
    let all: Vec<&Replica<Cart>> = (0..REPLICAS).map(|i| sim.replica(i)).collect();
    check_converged(&all)?;
    println!("   Dynamo's cart: Shoes is back (a union of versions cannot tell a removal from");
    println!("   an item never added). The OR-set cart keeps it removed.");

    println!("4. a client requests checkout at r1; gossip spreads it:");
    sim.update(1, checkout)?;
    let mut first_yes = [None; REPLICAS];
    while first_yes.iter().any(Option::is_none) {
        sim.step()?;
        for (i, seen) in first_yes.iter_mut().enumerate() {
            if seen.is_none()
                && sim
                    .replica(i)
                    .query_view(checkout_requested, &requested_query())
                    .is_some()
            {
                *seen = Some(sim.tick_count());
            }
        }
    }
    sim.settle()?;
    let all: Vec<&Replica<Cart>> = (0..REPLICAS).map(|i| sim.replica(i)).collect();
    check_converged(&all)?;
    for (i, tick) in first_yes.iter().enumerate() {
        let tick = tick.expect("every replica answered");
        println!(
            "   {} (answering since tick {tick})",
            describe(&format!("r{i}"), sim.replica(i))
        );
    }
    let s = sim.stats();
    println!(
        "\nnetwork: {} messages sent ({} bytes), {} dropped, {} lost to the partition, {} duplicated",
        s.sent, s.bytes, s.dropped, s.partitioned, s.duplicated
    );
    println!("every replica holds the same state: {}", sim.converged());
    Ok(())
}

// ---- --tcp mode: one OS process per replica ----------------------------

/// Frames are a 4-byte little-endian length and the bytes.
fn write_frame(stream: &mut TcpStream, bytes: &[u8]) -> std::io::Result<()> {
    let len = u32::try_from(bytes.len()).map_err(|_| std::io::Error::other("frame too large"))?;
    stream.write_all(&len.to_le_bytes())?;
    stream.write_all(bytes)
}

fn read_frame(stream: &mut TcpStream) -> std::io::Result<Vec<u8>> {
    let mut len = [0u8; 4];
    stream.read_exact(&mut len)?;
    let len = u32::from_le_bytes(len) as usize;
    if len > 16 << 20 {
        return Err(std::io::Error::other("frame over 16 MiB"));
    }
    let mut bytes = vec![0; len];
    stream.read_exact(&mut bytes)?;
    Ok(bytes)
}

/// A peer pushed its state: merge it and acknowledge (1 = merged).
fn serve(replica: &Replica<Cart>, mut stream: TcpStream) -> std::io::Result<()> {
    stream.set_read_timeout(Some(TIMEOUT))?;
    stream.set_write_timeout(Some(TIMEOUT))?;
    let bytes = read_frame(&mut stream)?;
    let ok = replica.merge_bytes(&bytes).is_ok();
    stream.write_all(&[u8::from(ok)])
}

fn push(replica: &Replica<Cart>, port: u16) -> std::io::Result<()> {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let mut stream = TcpStream::connect_timeout(&addr, TIMEOUT)?;
    stream.set_read_timeout(Some(TIMEOUT))?;
    stream.set_write_timeout(Some(TIMEOUT))?;
    write_frame(&mut stream, &replica.encode_state())?;
    let mut ack = [0u8];
    stream.read_exact(&mut ack)?;
    match ack[0] {
        1 => Ok(()),
        _ => Err(std::io::Error::other("peer refused the state")),
    }
}

/// Runs `fut` to completion on this thread, parking between polls.
fn block_on<F: std::future::Future>(fut: F) -> F::Output {
    struct Unpark(std::thread::Thread);
    impl std::task::Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = std::task::Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut cx = std::task::Context::from_waker(&waker);
    let mut fut = std::pin::pin!(fut);
    loop {
        if let std::task::Poll::Ready(v) = fut.as_mut().poll(&mut cx) {
            return v;
        }
        std::thread::park();
    }
}

/// A replica process: serves pushes, obeys line commands on stdin, answers
/// one line per command on stdout.
fn run_replica(index: usize) -> Result<(), Box<dyn std::error::Error>> {
    // Never outlive a stuck parent.
    std::thread::spawn(|| {
        std::thread::sleep(Duration::from_secs(30));
        std::process::exit(3);
    });
    let id = ReplicaId(index as u32);
    let replica: Arc<Replica<Cart>> = Arc::new(Replica::new(id));
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
    let port = listener.local_addr()?.port();
    {
        let replica = Arc::clone(&replica);
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                if let Err(e) = serve(&replica, stream) {
                    eprintln!("r{index}: serving a peer failed: {e}");
                }
            }
        });
    }
    // A thread parked on a threshold wait, woken by whichever merge brings
    // the checkout.
    let waiter = {
        let replica = Arc::clone(&replica);
        std::thread::spawn(move || block_on(replica.wait_view(checkout_requested, requested_query())))
    };
    let mut waiter = Some(waiter);
    let mut out = std::io::stdout().lock();
    writeln!(out, "port {port}")?;
    out.flush()?;
    let mut peers: Vec<u16> = Vec::new();
    let mut reachable: Vec<usize> = Vec::new();
    for line in std::io::stdin().lock().lines() {
        let line = line?;
        let words: Vec<&str> = line.split_whitespace().collect();
        let reply = match words.as_slice() {
            ["peers", ports @ ..] => {
                peers = ports.iter().map(|p| p.parse()).collect::<Result<_, _>>()?;
                reachable = (0..peers.len()).collect();
                "ok".to_string()
            }
            ["reach", who @ ..] => {
                reachable = who.iter().map(|w| w.parse()).collect::<Result<_, _>>()?;
                "ok".to_string()
            }
            ["add", item] => {
                replica.update(|c| add(c, id, item))?;
                "ok".to_string()
            }
            ["remove", item] => {
                replica.update(|c| remove(c, id, item))?;
                "ok".to_string()
            }
            ["checkout"] => {
                replica.update(checkout)?;
                "ok".to_string()
            }
            ["sync"] => {
                for &peer in reachable.iter().filter(|&&p| p != index) {
                    push(&replica, peers[peer])?;
                }
                "ok".to_string()
            }
            ["show"] => {
                let mut line = describe(&format!("r{index}"), &replica);
                if replica.query_view(checkout_requested, &requested_query()).is_some() {
                    // The state answers, so the parked wait must have been
                    // woken: joining cannot block for long.
                    if let Some(w) = waiter.take() {
                        w.join().map_err(|_| "waiter panicked")?;
                    }
                    line.push_str(" | parked wait woke: yes");
                }
                line
            }
            ["quit"] => return Ok(()),
            _ => return Err(format!("unknown command {line:?}").into()),
        };
        writeln!(out, "{reply}")?;
        out.flush()?;
    }
    Ok(())
}

/// The parent's handle on one replica process.
struct Proc {
    child: Child,
    stdin: ChildStdin,
    lines: Receiver<String>,
}

impl Proc {
    fn send(&mut self, command: &str) -> Result<(), Box<dyn std::error::Error>> {
        writeln!(self.stdin, "{command}")?;
        self.stdin.flush()?;
        Ok(())
    }

    fn reply(&mut self) -> Result<String, Box<dyn std::error::Error>> {
        Ok(self
            .lines
            .recv_timeout(TIMEOUT)
            .map_err(|_| "a replica process did not answer in time")?)
    }
}

/// Kills every replica process when dropped, on success or error.
struct Procs(Vec<Proc>);

impl Drop for Procs {
    fn drop(&mut self) {
        for p in &mut self.0 {
            let _ = p.child.kill();
            let _ = p.child.wait();
        }
    }
}

impl Procs {
    /// Sends `command` to the replicas in `to`, then waits for each reply.
    fn all(&mut self, to: &[usize], command: &str) -> Result<Vec<String>, Box<dyn std::error::Error>> {
        for &i in to {
            self.0[i].send(command)?;
        }
        to.iter()
            .map(|&i| {
                let reply = self.0[i].reply()?;
                if command != "show" && reply != "ok" {
                    return Err(format!("r{i} answered {reply:?} to {command:?}").into());
                }
                Ok(reply)
            })
            .collect()
    }
}

/// The replicas' `show` lines, checked to agree (apart from the name).
fn agreeing(lines: Vec<String>) -> Result<Vec<String>, Box<dyn std::error::Error>> {
    let body = |l: &String| l.split_once(": ").map(|(_, rest)| rest.to_string());
    if lines.iter().any(|l| body(l) != body(&lines[0])) {
        return Err("replicas disagree after the sync".into());
    }
    Ok(lines)
}

fn run_tcp() -> Result<(), Box<dyn std::error::Error>> {
    println!("Dynamo's shopping cart on {REPLICAS} replica processes over loopback TCP.");
    println!("{LEGEND}");
    let exe = std::env::current_exe()?;
    let mut procs = Procs(Vec::new());
    for i in 0..REPLICAS {
        let mut child = Command::new(&exe)
            .args(["--replica", &i.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()?;
        let stdin = child.stdin.take().ok_or("no stdin")?;
        let stdout = child.stdout.take().ok_or("no stdout")?;
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        procs.0.push(Proc { child, stdin, lines });
    }
    let mut ports = Vec::new();
    for p in &mut procs.0 {
        let line = p.reply()?;
        ports.push(
            line.strip_prefix("port ")
                .ok_or("replica did not report its port")?
                .to_string(),
        );
    }
    let everyone: Vec<usize> = (0..REPLICAS).collect();
    procs.all(&everyone, &format!("peers {}", ports.join(" ")))?;

    procs.all(&[0], "add Book")?;
    procs.all(&[0], "add Shoes")?;
    procs.all(&everyone, "sync")?;
    println!("1. a client adds Book and Shoes at r0; r0 pushes its state to every replica.");
    println!("2. partition: {{r0}} | {{r1, r2}}");
    procs.all(&[0], "reach 0")?;
    procs.all(&[1, 2], "reach 1 2")?;
    procs.all(&[0], "remove Shoes")?;
    procs.all(&[2], "add Hat")?;
    procs.all(&everyone, "sync")?;
    println!("   at r0 a client removes Shoes; at r2 another adds a Hat.");
    for line in procs.all(&everyone, "show")? {
        println!("   {line}");
    }
    procs.all(&everyone, "reach 0 1 2")?;
    procs.all(&everyone, "sync")?;
    println!("3. the partition heals; every replica pushes its state to every other:");
    for line in agreeing(procs.all(&everyone, "show")?)? {
        println!("   {line}");
    }
    println!("4. a client requests checkout at r1; it pushes its state:");
    procs.all(&[1], "checkout")?;
    procs.all(&[1], "sync")?;
    for line in agreeing(procs.all(&everyone, "show")?)? {
        println!("   {line}");
    }
    for p in &mut procs.0 {
        p.send("quit")?;
    }
    for p in &mut procs.0 {
        let status = p.child.wait()?;
        if !status.success() {
            return Err(format!("a replica process exited with {status}").into());
        }
    }
    Ok(())
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.iter().map(String::as_str).collect::<Vec<_>>().as_slice() {
        [] => run_simulated(),
        ["--tcp"] => run_tcp(),
        ["--replica", i] => i
            .parse()
            .map_err(|e| format!("bad replica index {i:?}: {e}").into())
            .and_then(run_replica),
        _ => Err("usage: dynamo_cart [--tcp]".into()),
    };
    if let Err(e) = result {
        eprintln!("dynamo_cart: {e}");
        std::process::exit(1);
    }
}
