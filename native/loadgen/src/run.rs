//! One run: a single thread, one epoll set (mio) over every session's socket, and a timerfd tick for
//! paced sends. A frame costs one `write` of a prebuilt message; answers cost one `read` per burst.
//!
//! ```text
//!   connect ──▶ stream ──────────────▶ drain ─────────────▶ stop
//!   (all sessions  (paced ticks or       (no more sends;      (product: `stop` → stats,
//!    ready, or      closed-loop top-ups   wait for answers     close; echo: close)
//!    timed out)     for `duration`)       in flight)
//! ```

use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use mio::net::TcpStream;
use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token};
use serde_json::Value;

use crate::args::{Mode, Options, Protocol};
use crate::ledger::Ledger;
use crate::report::{cpu_seconds, Tally};
use crate::ws;

const TIMER: Token = Token(usize::MAX - 1);
const READ_CHUNK: usize = 64 * 1024;

/// Where to connect.
pub struct Target {
    /// Resolved loopback address.
    pub addr: SocketAddr,
    /// `Host` header value.
    pub host: String,
    /// Request path.
    pub path: String,
}

/// What a run measured, besides the tally.
pub struct Outcome {
    /// Counters and histograms.
    pub tally: Tally,
    /// Sessions upgraded (and, for the product, started).
    pub opened: usize,
    /// Sessions open from the first frame to the end, that (product) ended with their stats.
    pub held: usize,
    /// Frames sent.
    pub sent: u64,
    /// Frames sent and never resolved (no answer, not dropped, no error).
    pub lost: u64,
    /// Seconds from the first send to the last.
    pub stream_s: f64,
    /// Answers read between the first send and the last, per second of that window.
    pub answered_in_window: u64,
    /// CPU seconds this process used over the streaming window.
    pub cpu_stream_s: f64,
    /// CPU seconds of the whole process.
    pub cpu_total_s: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Idle,
    Connecting,
    Upgrading,
    Starting,
    Ready,
    Stopping,
    Closed,
}

struct Conn {
    stream: Option<TcpStream>,
    state: State,
    rbuf: Vec<u8>,
    rlen: usize,
    wbuf: Vec<u8>,
    wpos: usize,
    ledger: Ledger,
    ready_at_start: bool,
    closed_early: bool,
    got_stats: bool,
}

/// A one-shot timerfd (CLOCK_MONOTONIC): epoll's own timeout has millisecond granularity, too coarse
/// to pace thousands of sessions.
struct Ticker(i32);

impl Ticker {
    fn new() -> io::Result<Ticker> {
        // SAFETY: a plain syscall; the descriptor is owned by the struct from here on.
        let fd = unsafe {
            libc::timerfd_create(
                libc::CLOCK_MONOTONIC,
                libc::TFD_NONBLOCK | libc::TFD_CLOEXEC,
            )
        };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(Ticker(fd))
    }

    /// Fires once, `after` from now.
    fn arm(&self, after: Duration) -> io::Result<()> {
        let zero = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        let value = libc::timespec {
            tv_sec: after.as_secs() as _,
            tv_nsec: after.subsec_nanos().max(1) as _,
        };
        let spec = libc::itimerspec {
            it_interval: zero,
            it_value: value,
        };
        // SAFETY: the descriptor is ours; the kernel only reads `spec`.
        if unsafe { libc::timerfd_settime(self.0, 0, &spec, std::ptr::null_mut()) } < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// Reads the expiry count: epoll reports a timerfd edge-triggered, so it must be drained.
    fn ack(&self) {
        let mut count = [0u8; 8];
        // SAFETY: reads 8 bytes into a buffer of 8.
        unsafe { libc::read(self.0, count.as_mut_ptr().cast(), 8) };
    }
}

impl Drop for Ticker {
    fn drop(&mut self) {
        // SAFETY: the descriptor is ours and closed once.
        unsafe { libc::close(self.0) };
    }
}

/// A tiny xorshift64* generator: phases and handshake keys need spread, not cryptography.
pub struct Rng(u64);

impl Rng {
    /// Seeded; 0 is mapped to a fixed non-zero state.
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    /// The next 64 random bits.
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

struct Runner<'a> {
    opts: &'a Options,
    target: &'a Target,
    poll: Poll,
    conns: Vec<Conn>,
    tally: Tally,
    base: Instant,
    rng: Rng,
    frames: &'a [Vec<u8>],
    frame_header: Vec<u8>,
    start_msg: Vec<u8>,
    next_to_connect: usize,
    connecting: usize,
    settled: usize,
    /// Sending is on: between the first frame and the end of `duration`.
    sending: bool,
    /// Frames outstanding over all sessions.
    outstanding: usize,
    answered_in_window: u64,
    /// When streaming began (ns since `base`).
    stream_t0: u64,
}

/// Runs the whole load: connect, stream, drain, stop.
pub fn run(opts: &Options, target: &Target, audio: &crate::audio::Audio) -> io::Result<Outcome> {
    let frames = &audio.frames;
    let cpu_begin = cpu_seconds();
    let start = serde_json::json!({
        "type": "start",
        "input": { "encoding": "s16le", "sample_rate": audio.sample_rate, "channels": audio.channels },
        "output": { "encoding": "s16le" },
    });
    let mut start_msg = Vec::new();
    ws::encode_frame(ws::OP_TEXT, start.to_string().as_bytes(), &mut start_msg);
    let mut r = Runner {
        opts,
        target,
        poll: Poll::new()?,
        conns: (0..opts.sessions)
            .map(|_| Conn {
                stream: None,
                state: State::Idle,
                rbuf: Vec::new(),
                rlen: 0,
                wbuf: Vec::new(),
                wpos: 0,
                ledger: Ledger::default(),
                ready_at_start: false,
                closed_early: false,
                got_stats: false,
            })
            .collect(),
        tally: Tally::new(),
        base: Instant::now(),
        rng: Rng::new(opts.seed),
        frames,
        frame_header: ws::frame_header(ws::OP_BINARY, frames[0].len()),
        start_msg,
        next_to_connect: 0,
        connecting: 0,
        settled: 0,
        sending: false,
        outstanding: 0,
        answered_in_window: 0,
        stream_t0: 0,
    };
    let mut events = Events::with_capacity(1024);

    // Connect: every session upgraded (and started), failed, or out of time.
    let deadline = r.now_ns() + opts.connect_timeout.as_nanos() as u64;
    r.connect_more()?;
    while r.settled < opts.sessions && r.now_ns() < deadline {
        r.poll_once(
            &mut events,
            Some(Duration::from_nanos(deadline.saturating_sub(r.now_ns()))),
        )?;
        r.connect_more()?;
    }
    for i in 0..r.conns.len() {
        if r.conns[i].state != State::Ready && r.conns[i].state != State::Closed {
            r.tally.connect_errors += 1;
            r.close(i);
        }
        r.conns[i].ready_at_start = r.conns[i].state == State::Ready;
    }
    let opened = r.conns.iter().filter(|c| c.ready_at_start).count();

    // Stream.
    eprintln!("{{\"phase\":\"streaming\"}}");
    let cpu_stream_begin = cpu_seconds();
    let t0 = r.now_ns();
    r.stream_t0 = t0;
    let end = t0 + opts.duration.as_nanos() as u64;
    r.sending = true;
    match opts.mode {
        Mode::Closed => {
            for i in 0..r.conns.len() {
                r.top_up(i);
            }
            while r.now_ns() < end {
                r.poll_once(
                    &mut events,
                    Some(Duration::from_nanos(end.saturating_sub(r.now_ns()))),
                )?;
            }
        }
        Mode::Paced => r.paced(&mut events, t0, end)?,
    }
    r.sending = false;
    let stream_s = (r.now_ns() - t0) as f64 / 1e9;
    let cpu_stream_s = cpu_seconds() - cpu_stream_begin;
    let answered_in_window = r.answered_in_window;
    eprintln!("{{\"phase\":\"draining\"}}");

    // Drain: answers still on their way.
    let deadline = r.now_ns() + opts.drain_timeout.as_nanos() as u64;
    while r.outstanding > 0 && r.now_ns() < deadline {
        r.poll_once(
            &mut events,
            Some(Duration::from_nanos(deadline.saturating_sub(r.now_ns()))),
        )?;
    }

    // Stop: the product flushes, sends `stats` and closes 1000 (docs/protocol.md §5); echo servers just close.
    let mut stop = Vec::new();
    match opts.protocol {
        Protocol::Product => ws::encode_frame(ws::OP_TEXT, br#"{"type":"stop"}"#, &mut stop),
        Protocol::Echo => ws::encode_frame(ws::OP_CLOSE, &1000u16.to_be_bytes(), &mut stop),
    }
    for i in 0..r.conns.len() {
        if r.conns[i].state == State::Ready {
            r.conns[i].state = State::Stopping;
            r.send(i, &stop);
        }
    }
    let deadline = r.now_ns() + 5_000_000_000;
    while r.conns.iter().any(|c| c.state == State::Stopping) && r.now_ns() < deadline {
        r.poll_once(
            &mut events,
            Some(Duration::from_nanos(deadline.saturating_sub(r.now_ns()))),
        )?;
    }
    let held = r
        .conns
        .iter()
        .filter(|c| {
            c.ready_at_start && !c.closed_early && (c.got_stats || opts.protocol == Protocol::Echo)
        })
        .count();
    let sent = r.conns.iter().map(|c| c.ledger.sent_count()).sum();
    let lost = r.conns.iter().map(|c| c.ledger.open() as u64).sum();
    Ok(Outcome {
        tally: r.tally,
        opened,
        held,
        sent,
        lost,
        stream_s,
        answered_in_window,
        cpu_stream_s,
        cpu_total_s: cpu_seconds() - cpu_begin,
    })
}

impl Runner<'_> {
    fn now_ns(&self) -> u64 {
        self.base.elapsed().as_nanos() as u64
    }

    /// Paced: session i sends at t0 + phase_i + k·period for every k with that time before `end`.
    /// All periods are equal, so sorting by phase once gives the order of every round.
    fn paced(&mut self, events: &mut Events, t0: u64, end: u64) -> io::Result<()> {
        let period = self.opts.frame_ms as u64 * 1_000_000;
        let mut order: Vec<(u64, usize)> = (0..self.conns.len())
            .filter(|&i| self.conns[i].state == State::Ready)
            .map(|i| (self.rng.next() % period, i))
            .collect();
        order.sort_unstable();
        if order.is_empty() {
            return Ok(());
        }
        let ticker = Ticker::new()?;
        self.poll
            .registry()
            .register(&mut SourceFd(&ticker.0), TIMER, Interest::READABLE)?;
        let tick = self.opts.tick.as_nanos() as u64;
        let (mut cursor, mut round) = (0usize, 0u64);
        // When the armed timer fires; 0 = not armed. Sends due within one tick of each other go out
        // in one wake-up, so the generator wakes at most once per tick however many sessions it paces.
        let mut armed_for = 0u64;
        loop {
            let now = self.now_ns();
            let mut due = t0 + order[cursor].0 + round * period;
            while due <= now && due < end {
                let i = order[cursor].1;
                if self.conns[i].state == State::Ready {
                    self.tally.send_lag_us.saturating_record((now - due) / 1000);
                    self.send_frame(i, now);
                }
                cursor += 1;
                if cursor == order.len() {
                    cursor = 0;
                    round += 1;
                }
                due = t0 + order[cursor].0 + round * period;
            }
            if due >= end {
                break;
            }
            if armed_for == 0 {
                let wait = due.saturating_sub(now).max(tick);
                ticker.arm(Duration::from_nanos(wait))?;
                armed_for = now + wait;
            }
            if self.poll_once(events, Some(Duration::from_nanos(end - now)))? {
                ticker.ack();
                armed_for = 0;
            }
        }
        // Sending ends at `end`, not at the last send.
        while self.now_ns() < end {
            self.poll_once(
                events,
                Some(Duration::from_nanos(end.saturating_sub(self.now_ns()))),
            )?;
        }
        self.poll.registry().deregister(&mut SourceFd(&ticker.0))
    }

    /// Waits for and handles one batch of events; true when the ticker fired.
    fn poll_once(&mut self, events: &mut Events, timeout: Option<Duration>) -> io::Result<bool> {
        match self.poll.poll(events, timeout) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => return Ok(false),
            Err(e) => return Err(e),
        }
        let mut ticked = false;
        for ev in events.iter() {
            if ev.token() == TIMER {
                ticked = true;
                continue;
            }
            let i = ev.token().0;
            if ev.is_writable() {
                self.on_writable(i);
            }
            if ev.is_readable() || ev.is_read_closed() || ev.is_error() {
                self.on_readable(i);
            }
        }
        Ok(ticked)
    }

    fn connect_more(&mut self) -> io::Result<()> {
        while self.connecting < self.opts.connect_concurrency
            && self.next_to_connect < self.conns.len()
        {
            let i = self.next_to_connect;
            self.next_to_connect += 1;
            match TcpStream::connect(self.target.addr) {
                Ok(mut stream) => {
                    self.poll.registry().register(
                        &mut stream,
                        Token(i),
                        Interest::READABLE | Interest::WRITABLE,
                    )?;
                    let c = &mut self.conns[i];
                    c.stream = Some(stream);
                    c.state = State::Connecting;
                    c.rbuf = vec![0; READ_CHUNK];
                    self.connecting += 1;
                }
                Err(_) => {
                    self.tally.connect_errors += 1;
                    self.conns[i].state = State::Closed;
                    self.settled += 1;
                }
            }
        }
        Ok(())
    }

    fn on_writable(&mut self, i: usize) {
        if self.conns[i].state == State::Connecting {
            let Some(stream) = self.conns[i].stream.as_ref() else {
                return;
            };
            // mio: a writable event on a connecting socket means it connected or failed.
            match (stream.take_error(), stream.peer_addr()) {
                (Ok(None), Ok(_)) => {}
                (Ok(None), Err(e)) if e.kind() == io::ErrorKind::NotConnected => return,
                _ => {
                    self.tally.connect_errors += 1;
                    self.fail_setup(i);
                    return;
                }
            }
            let _ = stream.set_nodelay(true);
            self.conns[i].state = State::Upgrading;
            let mut key = [0u8; 16];
            key[..8].copy_from_slice(&self.rng.next().to_le_bytes());
            key[8..].copy_from_slice(&self.rng.next().to_le_bytes());
            let request = ws::handshake_request(
                &self.target.host,
                &self.target.path,
                &ws::base64(&key),
                self.opts.token.as_deref(),
            );
            self.send(i, &request);
        } else {
            self.flush(i);
        }
    }

    fn on_readable(&mut self, i: usize) {
        loop {
            let c = &mut self.conns[i];
            let Some(stream) = c.stream.as_mut() else {
                return;
            };
            if c.rlen == c.rbuf.len() {
                if c.rbuf.len() >= ws::MAX_PAYLOAD + 14 {
                    return self.lost_connection(i);
                }
                c.rbuf.resize(c.rbuf.len() * 2, 0);
            }
            match stream.read(&mut c.rbuf[c.rlen..]) {
                Ok(0) => return self.lost_connection(i),
                Ok(n) => {
                    c.rlen += n;
                    self.process_input(i);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return self.lost_connection(i),
            }
        }
    }

    /// Consumes whole frames (and the upgrade response) from the read buffer.
    fn process_input(&mut self, i: usize) {
        let now = self.now_ns();
        let rbuf = std::mem::take(&mut self.conns[i].rbuf);
        let mut at = 0;
        if self.conns[i].state == State::Upgrading {
            match ws::parse_handshake(&rbuf[..self.conns[i].rlen]) {
                Ok(ws::Handshake::Incomplete) => {}
                Ok(ws::Handshake::Done {
                    status: 101,
                    consumed,
                }) => {
                    at = consumed;
                    match self.opts.protocol {
                        Protocol::Product => {
                            self.conns[i].state = State::Starting;
                            let start = std::mem::take(&mut self.start_msg);
                            self.send(i, &start);
                            self.start_msg = start;
                        }
                        Protocol::Echo => self.became_ready(i),
                    }
                }
                Ok(ws::Handshake::Done { status, .. }) => {
                    *self.tally.refused.entry(status).or_default() += 1;
                    self.conns[i].rbuf = rbuf;
                    return self.fail_setup(i);
                }
                Err(_) => {
                    self.tally.connect_errors += 1;
                    self.conns[i].rbuf = rbuf;
                    return self.fail_setup(i);
                }
            }
        }
        while matches!(
            self.conns[i].state,
            State::Starting | State::Ready | State::Stopping
        ) {
            match ws::parse_frame(&rbuf[at..self.conns[i].rlen]) {
                Ok(Some((frame, used))) => {
                    at += used;
                    self.on_frame(i, frame, now);
                }
                Ok(None) => break,
                Err(_) => {
                    self.tally.other_errors += 1;
                    self.conns[i].rbuf = rbuf;
                    return self.lost_connection(i);
                }
            }
        }
        let c = &mut self.conns[i];
        c.rbuf = rbuf;
        if c.state != State::Closed {
            c.rbuf.copy_within(at..c.rlen, 0);
            c.rlen -= at;
        }
    }

    fn on_frame(&mut self, i: usize, frame: ws::Frame<'_>, now: u64) {
        match frame.opcode {
            ws::OP_BINARY => self.on_answer(i, frame.payload, now),
            ws::OP_TEXT => self.on_text(i, frame.payload),
            ws::OP_PING => {
                let mut pong = Vec::new();
                ws::encode_frame(ws::OP_PONG, frame.payload, &mut pong);
                self.send(i, &pong);
            }
            ws::OP_CLOSE => {
                let code = frame
                    .payload
                    .get(..2)
                    .map_or(1005, |b| u16::from_be_bytes([b[0], b[1]]));
                self.on_closed(i, code);
            }
            _ => {}
        }
    }

    fn on_answer(&mut self, i: usize, payload: &[u8], now: u64) {
        if self.conns[i].state == State::Stopping && self.conns[i].ledger.open() == 0 {
            return; // the flush tail after `stop` (docs/protocol.md §5)
        }
        let Some((frame, sent_ns)) = self.conns[i].ledger.answer() else {
            self.tally.unexpected += 1;
            return;
        };
        self.outstanding -= 1;
        self.tally.answered += 1;
        if self.sending {
            self.answered_in_window += 1;
        }
        let bucket = sent_ns.saturating_sub(self.stream_t0) / (self.opts.timeline.as_nanos() as u64).max(1);
        self.tally
            .record_rtt((now.saturating_sub(sent_ns) / 1000).max(1), bucket as usize);
        if self.opts.protocol == Protocol::Echo {
            let echoed = payload
                .get(..8)
                .map(|b| u64::from_le_bytes(b.try_into().expect("8 bytes")));
            if echoed != Some(frame) {
                self.tally.out_of_order += 1;
            }
        }
        self.top_up(i);
    }

    fn on_text(&mut self, i: usize, payload: &[u8]) {
        let Ok(msg) = serde_json::from_slice::<Value>(payload) else {
            self.tally.other_errors += 1;
            return;
        };
        match msg["type"].as_str() {
            Some("ready") if self.conns[i].state == State::Starting => self.became_ready(i),
            Some("dropped") => {
                for f in msg["frames"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_u64)
                {
                    if self.conns[i].ledger.resolve(f) {
                        self.tally.dropped += 1;
                        self.outstanding -= 1;
                    }
                }
                self.top_up(i);
            }
            Some("error") => match msg["frame"].as_u64() {
                Some(f) if self.conns[i].ledger.resolve(f) => {
                    self.tally.frame_errors += 1;
                    self.outstanding -= 1;
                    self.top_up(i);
                }
                _ => self.tally.other_errors += 1,
            },
            Some("event") => self.tally.events += 1,
            Some("stats") => {
                self.conns[i].got_stats = true;
                self.tally.server_stats.push(msg);
            }
            _ => {}
        }
    }

    fn became_ready(&mut self, i: usize) {
        self.conns[i].state = State::Ready;
        self.connecting -= 1;
        self.settled += 1;
    }

    /// Closed-loop: keeps `in_flight` frames outstanding while sending is on.
    fn top_up(&mut self, i: usize) {
        if self.opts.mode != Mode::Closed || !self.sending {
            return;
        }
        let now = self.now_ns();
        while self.conns[i].state == State::Ready
            && self.conns[i].ledger.open() < self.opts.in_flight
        {
            self.send_frame(i, now);
        }
    }

    fn send_frame(&mut self, i: usize, now: u64) {
        let c = &mut self.conns[i];
        let frame = c.ledger.sent(now);
        self.outstanding += 1;
        let audio = &self.frames[(frame % self.frames.len() as u64) as usize];
        c.wbuf.extend_from_slice(&self.frame_header);
        let at = c.wbuf.len();
        c.wbuf.extend_from_slice(audio);
        if self.opts.protocol == Protocol::Echo {
            // The echo comes back byte for byte: the index in the first bytes checks its order.
            c.wbuf[at..at + 8].copy_from_slice(&frame.to_le_bytes());
        }
        self.flush(i);
    }

    fn send(&mut self, i: usize, bytes: &[u8]) {
        self.conns[i].wbuf.extend_from_slice(bytes);
        self.flush(i);
    }

    fn flush(&mut self, i: usize) {
        let c = &mut self.conns[i];
        let Some(stream) = c.stream.as_mut() else {
            return;
        };
        while c.wpos < c.wbuf.len() {
            match stream.write(&c.wbuf[c.wpos..]) {
                Ok(n) => c.wpos += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return self.lost_connection(i),
            }
        }
        c.wbuf.clear();
        c.wpos = 0;
    }

    fn lost_connection(&mut self, i: usize) {
        self.on_closed(i, 1006);
    }

    /// The server closed (`code`; 1006 when the TCP connection ended without a close frame).
    fn on_closed(&mut self, i: usize, code: u16) {
        match self.conns[i].state {
            State::Ready if self.sending || self.conns[i].ready_at_start => {
                self.conns[i].closed_early = true;
                *self.tally.closed_early.entry(code).or_default() += 1;
                self.close(i);
            }
            State::Ready | State::Stopping | State::Closed | State::Idle => self.close(i),
            State::Connecting | State::Upgrading | State::Starting => {
                self.tally.connect_errors += 1;
                self.fail_setup(i);
            }
        }
    }

    fn fail_setup(&mut self, i: usize) {
        self.connecting -= 1;
        self.settled += 1;
        self.close(i);
    }

    fn close(&mut self, i: usize) {
        let c = &mut self.conns[i];
        if let Some(mut stream) = c.stream.take() {
            let _ = self.poll.registry().deregister(&mut stream);
        }
        if c.state != State::Closed {
            self.outstanding -= c.ledger.open();
        }
        c.state = State::Closed;
        c.rbuf = Vec::new();
        c.wbuf = Vec::new();
    }
}
