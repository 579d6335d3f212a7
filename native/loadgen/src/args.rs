//! Command-line options of `rm-loadgen`.

use std::time::Duration;

/// How sessions send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// One frame every `frame_ms` per session, each session at a random phase of the period.
    Paced,
    /// `in_flight` frames outstanding per session, the next sent as soon as one is answered.
    Closed,
}

/// What the far end speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// docs/protocol.md: start → ready, binary frames each answered once, stop → stats.
    Product,
    /// A raw echo server that answers every message with the same bytes.
    Echo,
}

/// Everything a run needs.
#[derive(Debug, Clone)]
pub struct Options {
    /// `ws://host:port/path`; `{id}` in it is replaced by the pipeline id.
    pub url: String,
    /// The pipeline to stream through (replaces `{id}`).
    pub pipeline: Option<String>,
    /// A pipeline document (JSON file) to create over REST first, at `api`.
    pub create: Option<String>,
    /// `http://host:port` of the REST API, for `create`.
    pub api: Option<String>,
    /// Bearer token for the upgrade and REST (when the server has API_KEYS).
    pub token: Option<String>,
    /// Far-end protocol.
    pub protocol: Protocol,
    /// Sending mode.
    pub mode: Mode,
    /// Sessions to open.
    pub sessions: usize,
    /// Streaming time.
    pub duration: Duration,
    /// Audio per frame, in ms.
    pub frame_ms: u32,
    /// Frames outstanding per session (closed loop).
    pub in_flight: usize,
    /// A 16-bit PCM WAV (any rate and channel count) to stream instead of the built-in tone.
    pub wav: Option<String>,
    /// Handshakes in progress at once while connecting.
    pub connect_concurrency: usize,
    /// Time allowed for opening every session.
    pub connect_timeout: Duration,
    /// Time allowed after the last send for answers still on their way.
    pub drain_timeout: Duration,
    /// Paced-mode timer resolution.
    pub tick: Duration,
    /// Width of the round-trip timeline's buckets (by when a frame was sent).
    pub timeline: Duration,
    /// Seed of the phase generator.
    pub seed: u64,
    /// A free-form label copied into the report.
    pub label: String,
}

/// Printed by `--help`.
pub const USAGE: &str = "\
rm-loadgen: native WebSocket load generator for RemoteMedia's realtime protocol and raw echo servers.
Prints one JSON report on stdout; `{\"phase\":\"streaming\"}` / `{\"phase\":\"draining\"}` lines on stderr.

  rm-loadgen --url ws://127.0.0.1:8081/v1/pipelines/{id}/stream --pipeline pl_… [options]
  rm-loadgen --url ws://127.0.0.1:8081/v1/pipelines/{id}/stream --create doc.json --api http://127.0.0.1:8080
  rm-loadgen --url ws://127.0.0.1:9000/echo --protocol echo [options]

  --protocol product|echo     far end (default product)
  --mode paced|closed         paced: one frame per frame-ms per session, random phase (default);
                              closed: --in-flight frames outstanding per session
  --sessions N                sessions (default 10)
  --duration S                seconds of streaming (default 10)
  --frame-ms MS               ms of audio per frame (default 20)
  --in-flight K               frames outstanding per session in closed mode (default 4)
  --wav FILE                  stream a 16-bit PCM WAV (its own rate and channels) instead of the
                              built-in 440 Hz tone (48 kHz stereo); sessions loop over it
  --token KEY                 Authorization: Bearer KEY on the upgrade and REST calls
  --connect-concurrency N     handshakes at once (default 64)
  --connect-timeout S         time to open all sessions (default 30)
  --drain-timeout S           time after the last send for late answers (default 5)
  --tick-us US                paced timer resolution (default 200)
  --timeline-ms MS            bucket width of the report's round-trip timeline, by send time
                              (default 1000)
  --seed N                    phase seed (default 1)
  --label TEXT                copied into the report
  --help                      this text
";

impl Options {
    /// Parses `--key value` pairs; `Err` carries a message for the user.
    pub fn parse(args: impl IntoIterator<Item = String>) -> Result<Options, String> {
        let mut o = Options {
            url: String::new(),
            pipeline: None,
            create: None,
            api: None,
            token: None,
            protocol: Protocol::Product,
            mode: Mode::Paced,
            sessions: 10,
            duration: Duration::from_secs(10),
            frame_ms: 20,
            in_flight: 4,
            wav: None,
            connect_concurrency: 64,
            connect_timeout: Duration::from_secs(30),
            drain_timeout: Duration::from_secs(5),
            tick: Duration::from_micros(200),
            timeline: Duration::from_secs(1),
            seed: 1,
            label: String::new(),
        };
        let mut it = args.into_iter();
        while let Some(flag) = it.next() {
            if flag == "--help" || flag == "-h" {
                return Err(String::new());
            }
            let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
            let num = |max: f64| -> Result<f64, String> {
                value
                    .parse::<f64>()
                    .ok()
                    .filter(|v| *v > 0.0 && *v <= max)
                    .ok_or_else(|| format!("{flag} must be a number in (0, {max}], got {value}"))
            };
            match flag.as_str() {
                "--url" => o.url = value,
                "--pipeline" => o.pipeline = Some(value),
                "--create" => o.create = Some(value),
                "--api" => o.api = Some(value),
                "--token" => o.token = Some(value),
                "--wav" => o.wav = Some(value),
                "--label" => o.label = value,
                "--protocol" => {
                    o.protocol = match value.as_str() {
                        "product" => Protocol::Product,
                        "echo" => Protocol::Echo,
                        _ => return Err("--protocol is product or echo".into()),
                    }
                }
                "--mode" => {
                    o.mode = match value.as_str() {
                        "paced" => Mode::Paced,
                        "closed" => Mode::Closed,
                        _ => return Err("--mode is paced or closed".into()),
                    }
                }
                "--sessions" => o.sessions = num(50_000.0)? as usize,
                "--duration" => o.duration = Duration::from_secs_f64(num(3600.0)?),
                "--frame-ms" => o.frame_ms = num(1000.0)? as u32,
                "--in-flight" => o.in_flight = num(1024.0)? as usize,
                "--connect-concurrency" => o.connect_concurrency = num(10_000.0)? as usize,
                "--connect-timeout" => o.connect_timeout = Duration::from_secs_f64(num(600.0)?),
                "--drain-timeout" => o.drain_timeout = Duration::from_secs_f64(num(600.0)?),
                "--tick-us" => o.tick = Duration::from_micros(num(100_000.0)? as u64),
                "--timeline-ms" => o.timeline = Duration::from_secs_f64(num(3_600_000.0)? / 1000.0),
                "--seed" => {
                    o.seed = value
                        .parse()
                        .map_err(|_| "--seed is an integer".to_string())?
                }
                _ => return Err(format!("unknown option {flag}")),
            }
        }
        if o.url.is_empty() {
            return Err("--url is required".into());
        }
        if o.url.contains("{id}") && o.pipeline.is_none() && o.create.is_none() {
            return Err("the URL has {id}: give --pipeline ID or --create FILE --api URL".into());
        }
        if o.create.is_some() && o.api.is_none() {
            return Err("--create needs --api http://host:port".into());
        }
        Ok(o)
    }
}

/// `host:port` and path of a `ws://` or `http://` URL on loopback; anything else is refused, so the
/// generator never sends load off the machine.
pub fn split_url(url: &str, scheme: &str) -> Result<(String, String), String> {
    let rest = url
        .strip_prefix(scheme)
        .ok_or_else(|| format!("{url}: expected {scheme}…"))?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let host = authority.rsplit_once(':').map_or(authority, |(h, _)| h);
    if !(host == "localhost" || host == "[::1]" || host.starts_with("127.")) {
        return Err(format!("{url}: only loopback targets are allowed"));
    }
    if !authority.contains(':') {
        return Err(format!("{url}: give the port"));
    }
    Ok((
        authority.replace("localhost", "127.0.0.1"),
        path.to_string(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Options, String> {
        Options::parse(args.iter().map(|s| s.to_string()))
    }

    #[test]
    fn defaults_and_overrides() {
        let o = parse(&[
            "--url",
            "ws://127.0.0.1:1/echo",
            "--protocol",
            "echo",
            "--mode",
            "closed",
        ])
        .unwrap();
        assert_eq!(
            (o.protocol, o.mode, o.sessions, o.in_flight),
            (Protocol::Echo, Mode::Closed, 10, 4)
        );
        assert!(parse(&["--url", "ws://127.0.0.1:1/v1/pipelines/{id}/stream"]).is_err());
        assert!(parse(&["--url", "ws://127.0.0.1:1/x", "--sessions", "0"]).is_err());
        assert_eq!(parse(&["--help"]).unwrap_err(), "");
    }

    #[test]
    fn only_loopback_urls() {
        assert_eq!(
            split_url("ws://127.0.0.1:8081/v1/x", "ws://").unwrap(),
            ("127.0.0.1:8081".to_string(), "/v1/x".to_string())
        );
        assert!(split_url("ws://10.0.0.1:80/x", "ws://").is_err());
        assert!(split_url("ws://example.com:80/x", "ws://").is_err());
    }
}
