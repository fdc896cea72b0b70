//! `pace`: a constant-rate (open-loop) HTTP/1.1 load generator for the benchmark scripts.
//!
//! It answers "what is the p99 latency at a fixed request rate R?". Request k is due at
//! t0 + k/R whatever happened to the requests before it; requests are dealt round-robin to N
//! keep-alive connections, each of which sends its next request when it is due (at once if it
//! is behind, never skipping one) and reads the whole response before sending the next.
//! Latency runs from the *scheduled* send time to the last byte of the response, so a server
//! that stalls is charged for the requests that queued up behind the stall (the correction for
//! coordinated omission that wrk2 makes). wrk measures from the actual send, which hides such
//! stalls, and its `delay()` hook paces in whole milliseconds. Sends are timed with a timerfd
//! (tokio's timer has 1 ms resolution), all on one thread, so it takes little CPU beside the
//! server under test. Requests due in the first `--warmup` seconds are not recorded; measured
//! requests still unanswered 10 s after the schedule ends count as errors.
//!
//! stdout gets `RESULT <requests> <duration_us> <p50_us> <p99_us> <p999_us> <errors>`, as
//! bench/wrk-report.lua prints it; stderr gets a readable summary.

use std::io::{self, ErrorKind};
use std::net::{SocketAddr, ToSocketAddrs};
use std::ops::Range;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use hdrhistogram::Histogram;
use tokio::io::unix::AsyncFd;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

#[derive(Parser)]
#[command(
    about = "Constant-rate (open-loop, coordinated-omission corrected) HTTP/1.1 load generator"
)]
struct Args {
    /// Target: http://IP:PORT/path or http://localhost:PORT/path
    #[arg(long)]
    url: String,
    /// Requests per second, all connections together
    #[arg(long)]
    rate: f64,
    /// Seconds measured, after the warm-up
    #[arg(long)]
    duration: f64,
    /// Persistent keep-alive connections
    #[arg(long)]
    connections: u64,
    /// Seconds sent at the same rate before measuring
    #[arg(long, default_value_t = 1.0)]
    warmup: f64,
    /// Extra request header 'Name: value' (repeatable)
    #[arg(short = 'H', long = "header")]
    headers: Vec<String>,
}

/// How long requests still under way when the schedule ends may take before they count as errors.
const GRACE_NS: u64 = 10_000_000_000;
/// Buffer per connection; bodies stream through it, so it bounds only the length of one line.
const BUF: usize = 64 * 1024;

/// The schedule: request k is due at `t0 + k / rate`; those from `k_measure` on are recorded.
struct Plan {
    addr: SocketAddr,
    request: Vec<u8>,
    rate: f64,
    conns: u64,
    t0: u64,
    k_measure: u64,
    k_end: u64,
}

impl Plan {
    /// When request k is due, in ns of CLOCK_MONOTONIC.
    fn due(&self, k: u64) -> u64 {
        self.t0 + (k as f64 * 1e9 / self.rate) as u64
    }
}

/// One connection's results; `next` is the next request it is to send.
struct Stats {
    hist: Histogram<u64>,
    errors: u64,
    late: u64,
    next: u64,
    last_done: u64,
}

fn now_ns() -> u64 {
    let mut ts: libc::timespec = unsafe { std::mem::zeroed() };
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

fn invalid(msg: &str) -> io::Error {
    io::Error::new(ErrorKind::InvalidData, msg.to_string())
}

fn number(digits: &[u8], radix: u32, what: &str) -> io::Result<u64> {
    let n = std::str::from_utf8(digits.trim_ascii()).map(|s| u64::from_str_radix(s, radix));
    n.ok().and_then(Result::ok).ok_or_else(|| invalid(what))
}

/// A timerfd on CLOCK_MONOTONIC: sends keep to the schedule well below a millisecond.
struct Timer(AsyncFd<OwnedFd>);

impl Timer {
    fn new() -> io::Result<Self> {
        let flags = libc::TFD_NONBLOCK | libc::TFD_CLOEXEC;
        let fd = unsafe { libc::timerfd_create(libc::CLOCK_MONOTONIC, flags) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: the fd is new and owned by the AsyncFd, which closes it when dropped.
        let fd = unsafe { AsyncFd::register(OwnedFd::from_raw_fd(fd)) };
        Ok(Timer(fd.map_err(io::Error::from)?))
    }

    async fn sleep_until(&self, t: u64) -> io::Result<()> {
        if now_ns() >= t {
            return Ok(());
        }
        let at = |ns: u64| libc::timespec {
            tv_sec: (ns / 1_000_000_000) as _,
            tv_nsec: (ns % 1_000_000_000) as _,
        };
        let spec = libc::itimerspec {
            it_interval: at(0),
            it_value: at(t),
        };
        let (fd, abs) = (self.0.as_raw_fd(), libc::TFD_TIMER_ABSTIME);
        if unsafe { libc::timerfd_settime(fd, abs, &spec, std::ptr::null_mut()) } < 0 {
            return Err(io::Error::last_os_error());
        }
        loop {
            let mut guard = self.0.readable().await?;
            let mut expirations = 0u64;
            let n = unsafe { libc::read(fd, (&raw mut expirations).cast(), 8) };
            // Drained either way (edge-triggered): the next readiness is the next expiry.
            guard.clear_ready();
            if n == 8 {
                return Ok(());
            }
            let e = io::Error::last_os_error();
            if e.kind() != ErrorKind::WouldBlock {
                return Err(e);
            }
        }
    }
}

/// One keep-alive connection and its read buffer (`buf[pos..end]` is read but not yet parsed).
struct Conn {
    s: TcpStream,
    buf: Vec<u8>,
    pos: usize,
    end: usize,
}

impl Conn {
    async fn open(addr: SocketAddr) -> io::Result<Conn> {
        let s = TcpStream::connect(addr).await?;
        s.set_nodelay(true)?;
        Ok(Conn {
            s,
            buf: vec![0; BUF],
            pos: 0,
            end: 0,
        })
    }

    async fn fill(&mut self) -> io::Result<()> {
        if self.pos == self.end {
            (self.pos, self.end) = (0, 0);
        } else if self.end == self.buf.len() {
            self.buf.copy_within(self.pos..self.end, 0);
            (self.pos, self.end) = (0, self.end - self.pos);
            if self.end == self.buf.len() {
                return Err(invalid("line longer than the buffer"));
            }
        }
        let n = self.s.read(&mut self.buf[self.end..]).await?;
        self.end += n;
        if n == 0 {
            Err(ErrorKind::UnexpectedEof.into())
        } else {
            Ok(())
        }
    }

    /// The next line, without its CR LF, as a range of `buf`.
    async fn line(&mut self) -> io::Result<Range<usize>> {
        let mut scanned = 0;
        loop {
            let from = self.pos + scanned;
            if let Some(i) = self.buf[from..self.end].iter().position(|&b| b == b'\n') {
                let (start, end) = (self.pos, from + i);
                self.pos = end + 1;
                let cr = end > start && self.buf[end - 1] == b'\r';
                return Ok(start..end - usize::from(cr));
            }
            scanned = self.end - self.pos;
            self.fill().await?;
        }
    }

    async fn skip(&mut self, mut n: u64) -> io::Result<()> {
        loop {
            let k = n.min((self.end - self.pos) as u64);
            (self.pos, n) = (self.pos + k as usize, n - k);
            if n == 0 {
                return Ok(());
            }
            self.fill().await?;
        }
    }

    async fn chunked_body(&mut self) -> io::Result<()> {
        loop {
            let range = self.line().await?;
            let size = self.buf[range]
                .split(|&b| b == b';')
                .next()
                .unwrap_or_default();
            match number(size, 16, "bad chunk size")? {
                0 => {
                    while !self.line().await?.is_empty() {} // trailer fields
                    return Ok(());
                }
                size => self.skip(size).await?,
            }
            if !self.line().await?.is_empty() {
                return Err(invalid("chunk not followed by CR LF"));
            }
        }
    }

    /// Sends the request and reads the whole response: its status, and whether the connection
    /// stays open.
    async fn exchange(&mut self, request: &[u8]) -> io::Result<(u64, bool)> {
        self.s.write_all(request).await?;
        loop {
            let range = self.line().await?;
            let (status, mut close) = match &self.buf[range] {
                [b'H', b'T', b'T', b'P', b'/', b'1', b'.', v, b' ', d @ ..] if d.len() >= 3 => {
                    (number(&d[..3], 10, "bad status")?, *v == b'0')
                }
                _ => return Err(invalid("bad status line")),
            };
            let (mut length, mut chunked) = (None, false);
            loop {
                let range = self.line().await?;
                let header = &self.buf[range];
                if header.is_empty() {
                    break;
                }
                let colon = header.iter().position(|&b| b == b':');
                let (name, value) = header.split_at(colon.ok_or_else(|| invalid("bad header"))?);
                let value = value[1..].trim_ascii();
                let has = |token: &[u8]| {
                    let mut tokens = value.split(|&b| b == b',');
                    tokens.any(|t| t.trim_ascii().eq_ignore_ascii_case(token))
                };
                if name.eq_ignore_ascii_case(b"content-length") {
                    length = Some(number(value, 10, "bad Content-Length")?);
                } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
                    chunked = has(b"chunked");
                } else if name.eq_ignore_ascii_case(b"connection") {
                    close = has(b"close") || (close && !has(b"keep-alive"));
                }
            }
            match (status, length) {
                (100..200, _) => continue, // interim response, e.g. 100 Continue
                (204 | 304, _) => {}
                _ if chunked => self.chunked_body().await?,
                (_, Some(n)) => self.skip(n).await?,
                (_, None) => {
                    // The body ends where the server closes the connection.
                    while self.fill().await.is_ok() {
                        self.pos = self.end;
                    }
                    close = true;
                }
            }
            return Ok((status, !close));
        }
    }
}

/// Sends this connection's share of the schedule (k = i, i + N, i + 2N, ...).
async fn drive(plan: &Plan, st: &mut Stats, timer: &Timer, mut conn: Option<Conn>) {
    while st.next < plan.k_end {
        let (due, measured) = (plan.due(st.next), st.next >= plan.k_measure);
        if let Err(e) = timer.sleep_until(due).await {
            die(format_args!("timerfd: {e}"));
        }
        st.late += u64::from(measured && now_ns() > due + 1_000_000);
        let mut c = match conn.take() {
            Some(c) => Ok(c),
            None => Conn::open(plan.addr).await,
        };
        let result = match &mut c {
            Ok(c) => c.exchange(&plan.request).await,
            Err(_) => Err(ErrorKind::NotConnected.into()),
        };
        let done = now_ns();
        match result {
            Ok((status, keep_alive)) => {
                conn = c.ok().filter(|_| keep_alive);
                if measured {
                    st.hist.saturating_record(((done - due) / 1000).max(1));
                    st.errors += u64::from(!(200..300).contains(&status));
                    st.last_done = done;
                }
            }
            Err(_) => st.errors += u64::from(measured),
        }
        st.next += plan.conns;
    }
}

async fn run(i: u64, plan: Arc<Plan>, timer: Timer, conn: Option<Conn>) -> Stats {
    let mut st = Stats {
        hist: histogram(),
        errors: 0,
        late: 0,
        next: i,
        last_done: 0,
    };
    let deadline = plan.due(plan.k_end) + GRACE_NS;
    let left = Duration::from_nanos(deadline.saturating_sub(now_ns()));
    let drive = drive(&plan, &mut st, &timer, conn);
    if tokio::time::timeout(left, drive).await.is_err() {
        // Measured requests not answered by the deadline (in flight or never sent) are errors.
        let mut k = st.next;
        if k < plan.k_measure {
            k += (plan.k_measure - k).div_ceil(plan.conns) * plan.conns;
        }
        st.errors += plan.k_end.saturating_sub(k).div_ceil(plan.conns);
    }
    st
}

fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000, 3).expect("valid histogram bounds")
}

fn die(msg: impl std::fmt::Display) -> ! {
    eprintln!("pace: {msg}");
    std::process::exit(2)
}

fn cpu_seconds() -> f64 {
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    secs(ru.ru_utime) + secs(ru.ru_stime)
}

/// Checks the arguments; gives the target's authority, its addresses and the request bytes.
fn prepare(args: &Args) -> (String, Vec<SocketAddr>, Vec<u8>) {
    let positive = |x: f64| x.is_finite() && x > 0.0;
    if !positive(args.rate) || !positive(args.duration) || args.warmup.is_nan() || args.warmup < 0.0
    {
        die("--rate and --duration must be > 0, --warmup >= 0");
    }
    if args.connections == 0 {
        die("--connections must be at least 1");
    }
    let Some(rest) = args.url.strip_prefix("http://") else {
        die("only http:// URLs are supported");
    };
    let (authority, path) = rest.find('/').map_or((rest, "/"), |i| rest.split_at(i));
    let host_port = match authority.rsplit_once(':') {
        Some((_, port)) if !port.is_empty() && !port.contains(']') => authority.to_string(),
        _ => format!("{authority}:80"),
    };
    let addrs = host_port.to_socket_addrs();
    let addrs = addrs.unwrap_or_else(|e| die(format_args!("cannot resolve {authority}: {e}")));
    let mut request = format!("GET {path} HTTP/1.1\r\n");
    let host_given = |h: &String| h.to_ascii_lowercase().starts_with("host:");
    if !args.headers.iter().any(host_given) {
        request += &format!("Host: {authority}\r\n");
    }
    for h in &args.headers {
        match h.split_once(':') {
            Some((name, _)) if !name.is_empty() && !name.contains(char::is_whitespace) => {}
            _ => die(format_args!("bad header {h:?}, expected 'Name: value'")),
        }
        request += &format!("{h}\r\n");
    }
    request += "\r\n";
    (authority.to_string(), addrs.collect(), request.into_bytes())
}

async fn bench(args: Args, authority: String, addrs: Vec<SocketAddr>, request: Vec<u8>) {
    // The first connection must work; the others are retried when their first request is due.
    let mut first = Err(io::Error::new(ErrorKind::NotFound, "no address"));
    for &a in &addrs {
        first = Conn::open(a).await;
        if first.is_ok() {
            break;
        }
    }
    let first = first.unwrap_or_else(|e| die(format_args!("cannot connect to {authority}: {e}")));
    let addr = first.s.peer_addr().unwrap_or_else(|e| die(e));
    let mut opened = vec![Some(first)];
    for _ in 1..args.connections {
        opened.push(Conn::open(addr).await.ok());
    }
    let (rate, conns, t0) = (args.rate, args.connections, now_ns() + 1_000_000);
    let k_measure = (args.warmup * rate).ceil() as u64;
    let k_end = ((args.warmup + args.duration) * rate).ceil() as u64;
    let plan = Arc::new(Plan {
        addr,
        request,
        rate,
        conns,
        t0,
        k_measure,
        k_end,
    });
    let (wall0, cpu0) = (now_ns(), cpu_seconds());
    let mut tasks = Vec::new();
    for (i, conn) in (0..).zip(opened) {
        let timer = Timer::new().unwrap_or_else(|e| die(format_args!("timerfd: {e}")));
        tasks.push(tokio::spawn(run(i, plan.clone(), timer, conn)));
    }
    let (mut hist, mut errors, mut late, mut last_done) = (histogram(), 0, 0, 0);
    for t in tasks {
        let st = t.await.unwrap_or_else(|e| die(e));
        hist.add(&st.hist).expect("same histogram bounds");
        (errors, late) = (errors + st.errors, late + st.late);
        last_done = last_done.max(st.last_done);
    }
    let cpu = (cpu_seconds() - cpu0) / ((now_ns() - wall0) as f64 / 1e9);
    // The measured window, stretched to the last response if the server fell behind.
    let dur_us = (last_done.max(plan.due(k_end)) - plan.due(k_measure)) / 1000;
    let q = |q: f64| hist.value_at_quantile(q);
    let (n, p50, p90, p99, p999) = (hist.len(), q(0.5), q(0.9), q(0.99), q(0.999));
    println!("RESULT {n} {dur_us} {p50} {p99} {p999} {errors}");
    let (url, max, mean) = (&args.url, hist.max(), hist.mean());
    let (secs, achieved) = (dur_us as f64 / 1e6, n as f64 / (dur_us.max(1) as f64 / 1e6));
    let (share, cpu) = (100.0 * achieved / rate, 100.0 * cpu);
    let (duration, warmup) = (args.duration, args.warmup);
    eprintln!(
        "pace: {url} at {rate} req/s for {duration} s (+{warmup} s warm-up), {conns} connections\n  \
         {n} requests in {secs:.3} s = {achieved:.1} req/s ({share:.2}% of target), \
         {errors} errors, {late} sent >1 ms late\n  \
         latency µs from scheduled send: p50 {p50}  p90 {p90}  p99 {p99}  p99.9 {p999}  \
         max {max}  mean {mean:.0}\n  client CPU {cpu:.1}% of one core"
    );
}

fn main() {
    let args = Args::try_parse().unwrap_or_else(|e| match e.kind() {
        clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion => e.exit(),
        _ => {
            let text = e.render().to_string();
            let first = text.split("\n\n").next().unwrap_or_default();
            die(first.split_whitespace().collect::<Vec<_>>().join(" "))
        }
    });
    let (authority, addrs, request) = prepare(&args);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build();
    let rt = rt.unwrap_or_else(|e| die(e));
    rt.block_on(bench(args, authority, addrs, request));
}
