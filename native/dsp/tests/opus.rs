//! Sessions with `opus` edges (docs/protocol.md §2): packets in, packets out, lost packets concealed,
//! bad packets refused without harm, and formats Opus cannot carry refused when the session is built.

use remotemedia_dsp::codec::{CodecError, Encoding};
use remotemedia_dsp::format::Format;
use remotemedia_dsp::opus::{Decoder, Encoder, MAX_PACKET_BYTES};
use remotemedia_dsp::plan::Plan;
use remotemedia_dsp::session::{Encodings, Session, SessionError, Wire};
use remotemedia_dsp::testing::sine;
use serde_json::json;

const OPUS: Encodings = Encodings { input: Wire::Opus, output: Wire::Opus };

fn gain_plan(sample_rate: u32, channels: usize, output_rate: Option<u32>) -> Plan {
    let mut nodes = vec![json!({ "id": "g", "type": "gain", "params": { "db": 0 }, "input": null })];
    if let Some(rate) = output_rate {
        nodes.push(json!({ "id": "r", "type": "resample", "params": { "sample_rate": rate }, "input": "g" }));
    }
    let output = if output_rate.is_some() { "r" } else { "g" };
    let p = json!({ "input": { "sample_rate": sample_rate, "channels": channels }, "nodes": nodes, "output": output });
    Plan::from_json(&p.to_string()).unwrap()
}

fn mean_square(x: &[f32]) -> f64 {
    x.iter().map(|&v| f64::from(v) * f64::from(v)).sum::<f64>() / x.len().max(1) as f64
}

/// 20 ms packets of a mono tone, as a client would send them.
fn packets(sample_rate: u32, hz: f64, seconds: f64) -> Vec<Vec<u8>> {
    let f = Format::new(sample_rate, 1).unwrap();
    let tone = sine(hz, sample_rate, 0.5, (seconds * f64::from(sample_rate)) as usize);
    let mut encoder = Encoder::new(f, 0).unwrap();
    tone.chunks(f.frames_in_ms(20.0))
        .map(|chunk| {
            encoder.push(&[chunk], chunk.len());
            let mut packet = Vec::with_capacity(MAX_PACKET_BYTES);
            encoder.encode(false, &mut packet);
            packet
        })
        .collect()
}

#[test]
fn opus_in_and_out_carries_a_tone_and_conceals_a_lost_packet() {
    let p = gain_plan(48_000, 1, None);
    let mut session = Session::new(&p, p.input, OPUS, 4096).unwrap();
    let mut decoder = Decoder::new(p.input).unwrap();
    let mut heard = Vec::new();
    let mut concealed = Vec::new();
    for (k, packet) in packets(48_000, 1_000.0, 1.0).iter().enumerate() {
        // Message 30 is lost on the way: the client sends an empty message in its place.
        let message: &[u8] = if k == 30 { &[] } else { packet };
        session.process(k as u64, message).unwrap();
        assert_eq!(session.input_frames(), 960, "message {k} decodes to 20 ms");
        let answer = decoder.decode(session.output()).unwrap();
        assert_eq!(answer.len(), 960, "answer {k} is one 20 ms packet");
        if k == 30 {
            concealed = answer.to_vec();
        }
        heard.extend_from_slice(answer);
    }
    let steady = mean_square(&heard[9_600..28_800]);
    let level_db = 10.0 * (steady / 0.125).log10();
    assert!(level_db.abs() < 1.0, "tone level after two Opus passes off by {level_db:.2} dB");
    let concealed_db = 10.0 * (mean_square(&concealed) / steady).log10();
    assert!(concealed_db > -10.0, "the lost packet's 20 ms are {concealed_db:.1} dB down: not a continuation");
}

#[test]
fn a_bad_packet_is_refused_and_the_session_goes_on() {
    let p = gain_plan(16_000, 1, None);
    let mut session = Session::new(&p, p.input, OPUS, 4096).unwrap();
    let good = packets(16_000, 440.0, 0.2);
    session.process(0, &good[0]).unwrap();
    assert_eq!(session.process(1, &[0x03, 0x00]), Err(CodecError::BadPacket("not a valid Opus packet")));
    session.process(2, &good[1]).unwrap();
    assert_eq!(session.input_frames(), 320);
    assert!(!session.output().is_empty());
}

#[test]
fn pcm_in_opus_out_answers_whole_frames_and_flush_sends_the_rest() {
    // 37 ms messages of s16le at 24 kHz, answered in Opus: each answer is one packet of the whole 20 ms
    // frames ready (or nothing yet); the flush pads the last partial frame.
    let p = gain_plan(24_000, 1, None);
    let encodings = Encodings { input: Wire::Pcm(Encoding::S16le), output: Wire::Opus };
    let mut session = Session::new(&p, p.input, encodings, 1 << 16).unwrap();
    let mut decoder = Decoder::new(p.input).unwrap();
    let tone = sine(700.0, 24_000, 0.5, 23_000);
    let mut heard = 0;
    for (k, chunk) in tone.chunks(888).enumerate() {
        let bytes: Vec<u8> = chunk.iter().flat_map(|&x| ((x * 32767.0) as i16).to_le_bytes()).collect();
        session.process(k as u64, &bytes).unwrap();
        if !session.output().is_empty() {
            heard += decoder.decode(session.output()).unwrap().len();
        }
    }
    assert_eq!(heard, 23_000 / 480 * 480, "every whole 20 ms frame so far");
    session.flush(26);
    assert!(!session.output().is_empty());
    heard += decoder.decode(session.output()).unwrap().len();
    assert_eq!(heard, 23_000_usize.next_multiple_of(480));
}

#[test]
fn formats_opus_cannot_carry_are_refused_when_the_session_is_built() {
    let p = gain_plan(44_100, 1, None);
    let err = Session::new(&p, p.input, OPUS, 4096).err().unwrap();
    assert!(matches!(&err, SessionError::Format(m) if m.contains("44100")), "{err}");

    let p = gain_plan(48_000, 1, Some(22_050));
    let encodings = Encodings { input: Wire::Opus, output: Wire::Opus };
    let err = Session::new(&p, p.input, encodings, 4096).err().unwrap();
    assert!(matches!(&err, SessionError::Format(m) if m.contains("output") && m.contains("22050")), "{err}");

    let p = gain_plan(48_000, 3, None);
    let err = Session::new(&p, p.input, OPUS, 4096).err().unwrap();
    assert!(matches!(&err, SessionError::Format(m) if m.contains("channels")), "{err}");

    // Resampled to an Opus rate, the same pipeline answers in Opus.
    let p = gain_plan(44_100, 1, Some(16_000));
    let encodings = Encodings { input: Wire::Pcm(Encoding::S16le), output: Wire::Opus };
    assert!(Session::new(&p, p.input, encodings, 4096).is_ok());
}
