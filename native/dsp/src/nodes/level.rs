//! `level`: reports RMS, peak and clipped samples every `interval_ms` (docs/pipelines.md); the audio passes
//! through untouched.
//!
//! Intervals are counted in this node's input frames and run on across blocks, so the events,
//! and the sample positions they carry (the frame just after each interval's last frame), do not
//! depend on how the stream is cut into messages. At the end of the stream the partial interval
//! is reported if it holds any frames.

use serde::Deserialize;
use serde_json::Value;

use crate::buffer::AudioBuf;
use crate::format::Format;
use crate::node::{check_range, param_number, parse_params, AnalysisNode, Ctx, NodeCore, NodeError};

const TYPE: &str = "level";
/// Levels of silence are reported as this, so the JSON never holds `-inf`.
pub const FLOOR_DBFS: f64 = -120.0;

/// Params of `level`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LevelParams {
    /// Reporting interval, 10..=10000 ms.
    pub interval_ms: f64,
}

impl Default for LevelParams {
    fn default() -> Self {
        LevelParams { interval_ms: 100.0 }
    }
}

/// Level meter; see the module docs.
pub struct Level {
    format: Format,
    /// Frames per interval now.
    interval: usize,
    /// Frames per interval from the next interval on (a live change does not cut the current one).
    next_interval: usize,
    frames: usize,
    sum_squares: f64,
    peak: f32,
    clipped: u64,
}

fn interval_of(ms: f64, format: Format) -> Result<usize, NodeError> {
    let ms = check_range(TYPE, "interval_ms", ms, 10.0, 10_000.0)?;
    Ok(format.frames_in_ms(ms).max(1))
}

/// dBFS of a linear level, floored at [`FLOOR_DBFS`] and always finite.
fn dbfs(linear: f64) -> f64 {
    let db = 20.0 * linear.log10();
    if db.is_nan() || db < FLOOR_DBFS {
        FLOOR_DBFS
    } else {
        // Only infinite samples get here with +inf; f64::MAX keeps the JSON a number.
        db.min(f64::MAX)
    }
}

impl Level {
    /// Builds a level meter for `input`.
    pub fn new(params: &Value, input: Format) -> Result<Level, NodeError> {
        let p: LevelParams = parse_params(TYPE, params)?;
        let interval = interval_of(p.interval_ms, input)?;
        Ok(Level {
            format: input,
            interval,
            next_interval: interval,
            frames: 0,
            sum_squares: 0.0,
            peak: 0.0,
            clipped: 0,
        })
    }

    fn report(&mut self, ctx: &mut Ctx<'_>, offset: usize, channels: usize) {
        let samples = (self.frames * channels.max(1)) as f64;
        let rms = dbfs((self.sum_squares / samples).sqrt());
        let peak = dbfs(f64::from(self.peak));
        ctx.emit(
            "level",
            offset,
            format_args!("{{\"rms_dbfs\":{rms:.3},\"peak_dbfs\":{peak:.3},\"clipped\":{}}}", self.clipped),
        );
        self.frames = 0;
        self.sum_squares = 0.0;
        self.peak = 0.0;
        self.clipped = 0;
        self.interval = self.next_interval;
    }
}

impl NodeCore for Level {
    fn node_type(&self) -> &'static str {
        TYPE
    }

    fn output_format(&self) -> Format {
        self.format
    }

    fn set_param(&mut self, name: &str, value: &Value) -> Result<(), NodeError> {
        match name {
            "interval_ms" => {
                let ms = param_number(TYPE, name, value)?;
                self.next_interval = interval_of(ms, self.format)?;
                Ok(())
            }
            other => Err(NodeError::params(TYPE, format!("no param '{other}'"))),
        }
    }

    fn reset(&mut self) {
        self.interval = self.next_interval;
        self.frames = 0;
        self.sum_squares = 0.0;
        self.peak = 0.0;
        self.clipped = 0;
    }
}

impl AnalysisNode for Level {
    fn analyze(&mut self, input: &AudioBuf, ctx: &mut Ctx<'_>) {
        let (frames, channels) = (input.frames(), input.channels());
        let mut start = 0;
        while start < frames {
            let len = (self.interval - self.frames).min(frames - start);
            for c in 0..channels {
                let mut sum = 0.0;
                for &x in &input.channel(c)[start..start + len] {
                    sum += f64::from(x) * f64::from(x);
                    self.peak = self.peak.max(x.abs());
                    // Full scale is 1.0; a sample there or beyond clips on conversion to PCM.
                    self.clipped += u64::from(x.abs() >= 1.0);
                }
                self.sum_squares += sum;
            }
            self.frames += len;
            start += len;
            if self.frames == self.interval {
                self.report(ctx, start, channels);
            }
        }
    }

    fn finish(&mut self, ctx: &mut Ctx<'_>) {
        if self.frames > 0 {
            self.report(ctx, 0, self.format.channels);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{buf_of, noise, sine, EventLog};
    use serde_json::json;

    const RATE: u32 = 48_000;

    /// Feeds `planes` in blocks of `block` frames, then finishes; returns (sample, data) per event.
    fn run(node: &mut Level, planes: &[Vec<f32>], block: usize) -> Vec<(u64, Value)> {
        let total = planes[0].len();
        let mut log = EventLog::default();
        let mut at = 0;
        while at < total {
            let len = block.min(total - at);
            let b = buf_of(&planes.iter().map(|p| p[at..at + len].to_vec()).collect::<Vec<_>>());
            node.analyze(&b, &mut log.ctx("lv", 0, at as u64));
            at += len;
        }
        node.finish(&mut log.ctx("lv", 0, total as u64));
        log.parsed()
            .into_iter()
            .map(|e| {
                assert_eq!(
                    (e["type"].as_str(), e["node"].as_str(), e["name"].as_str()),
                    (Some("event"), Some("lv"), Some("level"))
                );
                (e["sample"].as_u64().unwrap(), e["data"].clone())
            })
            .collect()
    }

    #[test]
    fn a_minus_six_dbfs_sine_reads_its_peak_and_rms() {
        // Amplitude 0.5 = -6.02 dBFS peak; a sine's RMS is 3.01 dB lower, -9.03 dBFS.
        let s = sine(1000.0, RATE, 0.5, 48_000);
        let mut lv = Level::new(&json!({}), Format::new(RATE, 2).unwrap()).unwrap();
        let events = run(&mut lv, &[s.clone(), s], 480);
        assert_eq!(events.len(), 10);
        for (k, (sample, data)) in events.iter().enumerate() {
            assert_eq!(*sample, 4800 * (k as u64 + 1));
            assert!((data["peak_dbfs"].as_f64().unwrap() - -6.0206).abs() < 0.001, "{data}");
            assert!((data["rms_dbfs"].as_f64().unwrap() - -9.0309).abs() < 0.001, "{data}");
            assert_eq!(data["clipped"], 0);
        }
    }

    #[test]
    fn events_fall_on_interval_ends_and_the_tail_is_reported() {
        let n = 50_000; // 10 intervals of 4800 and 2000 frames over
        let s = noise(1, 0.1, n);
        let mut lv = Level::new(&json!({ "interval_ms": 100 }), Format::new(RATE, 1).unwrap()).unwrap();
        let events = run(&mut lv, &[s], 1776);
        let samples: Vec<u64> = events.iter().map(|e| e.0).collect();
        let mut want: Vec<u64> = (1..=10).map(|k| k * 4800).collect();
        want.push(50_000);
        assert_eq!(samples, want);
        assert_eq!(n / 4800, 10);
    }

    #[test]
    fn events_do_not_depend_on_chunking() {
        let n = 100_000;
        let planes = vec![sine(300.0, RATE, 1.2, n), noise(4, 0.5, n)];
        let f = Format::new(RATE, 2).unwrap();
        let whole = run(&mut Level::new(&json!({ "interval_ms": 37 }), f).unwrap(), &planes, n);
        for ms in [10, 20, 37] {
            let block = ms * RATE as usize / 1000;
            assert_eq!(
                run(&mut Level::new(&json!({ "interval_ms": 37 }), f).unwrap(), &planes, block),
                whole,
                "{ms} ms"
            );
        }
        assert_eq!(run(&mut Level::new(&json!({ "interval_ms": 37 }), f).unwrap(), &planes, 1), whole);
    }

    #[test]
    fn clipped_samples_are_counted_on_every_channel() {
        let mut a = vec![0.25f32; 480];
        let mut b = vec![0.0f32; 480];
        a[3] = 1.0;
        a[10] = -1.5;
        a[11] = 0.999_999;
        b[7] = -1.0;
        b[479] = 2.0;
        let mut lv = Level::new(&json!({ "interval_ms": 10 }), Format::new(RATE, 2).unwrap()).unwrap();
        let events = run(&mut lv, &[a, b], 100);
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].1["clipped"], 4);
        assert!((events[0].1["peak_dbfs"].as_f64().unwrap() - 6.0206).abs() < 0.001);
    }

    #[test]
    fn silence_reads_the_floor_and_the_json_stays_numeric() {
        let mut lv = Level::new(&json!({ "interval_ms": 10 }), Format::new(RATE, 1).unwrap()).unwrap();
        let events = run(&mut lv, &[vec![0.0; 480]], 480);
        assert_eq!(events[0].1, json!({ "rms_dbfs": -120.0, "peak_dbfs": -120.0, "clipped": 0 }));
        let events = run(&mut lv, &[vec![f32::NAN; 480]], 480);
        assert_eq!(events[0].1["rms_dbfs"], -120.0);
    }

    #[test]
    fn interval_changes_apply_from_the_next_interval() {
        let mut lv = Level::new(&json!({ "interval_ms": 10 }), Format::new(RATE, 1).unwrap()).unwrap();
        let mut log = EventLog::default();
        lv.analyze(&buf_of(&[vec![0.1; 240]]), &mut log.ctx("lv", 0, 0));
        lv.set_param("interval_ms", &json!(20)).unwrap();
        lv.analyze(&buf_of(&[vec![0.1; 2000]]), &mut log.ctx("lv", 1, 240));
        let samples: Vec<u64> = log.parsed().iter().map(|e| e["sample"].as_u64().unwrap()).collect();
        assert_eq!(samples, vec![480, 1440]);
        assert!(lv.set_param("interval_ms", &json!(5)).is_err());
        assert!(lv.set_param("window", &json!(5)).is_err());
    }

    #[test]
    fn params_are_validated() {
        let f = Format::new(RATE, 1).unwrap();
        for bad in [
            json!({ "interval_ms": 9 }),
            json!({ "interval_ms": 10_001 }),
            json!({ "interval_ms": "100" }),
            json!({ "x": 1 }),
        ] {
            assert!(matches!(Level::new(&bad, f), Err(NodeError::BadParams { .. })), "{bad}");
        }
        assert!(Level::new(&Value::Null, f).is_ok());
    }
}
