//! G.711 against the classic g711.c expansion tables (docs/audio.md, "Samples and encodings").

#[path = "fixtures/g711_tables.rs"]
mod tables;

use remotemedia_dsp::codec::{alaw_to_s16, s16_to_alaw, s16_to_ulaw, ulaw_to_s16};

#[test]
fn ulaw_expands_bit_exactly() {
    for code in 0..=255u8 {
        assert_eq!(ulaw_to_s16(code), tables::ULAW_TO_S16[code as usize], "code {code:#04x}");
    }
}

#[test]
fn alaw_expands_bit_exactly() {
    for code in 0..=255u8 {
        assert_eq!(alaw_to_s16(code), tables::ALAW_TO_S16[code as usize], "code {code:#04x}");
    }
}

/// Every 16-bit input must compress to the level just below or just above it on the law's
/// staircase (or the end level when it lies beyond the last one).
fn assert_picks_neighbouring_level(table: &[i16; 256], compress: fn(i16) -> u8, law: &str) {
    let mut levels: Vec<i16> = table.to_vec();
    levels.sort_unstable();
    levels.dedup();
    for s in i16::MIN..=i16::MAX {
        let got = table[compress(s) as usize];
        let above = levels.iter().copied().find(|&l| l >= s);
        let below = levels.iter().rev().copied().find(|&l| l <= s);
        let ok = Some(got) == above || Some(got) == below;
        assert!(ok, "{law}: {s} compressed to level {got}, neighbours {below:?} / {above:?}");
    }
}

#[test]
fn ulaw_compression_picks_a_neighbouring_level() {
    assert_picks_neighbouring_level(&tables::ULAW_TO_S16, s16_to_ulaw, "mu-law");
}

#[test]
fn alaw_compression_picks_a_neighbouring_level() {
    assert_picks_neighbouring_level(&tables::ALAW_TO_S16, s16_to_alaw, "A-law");
}

#[test]
fn decoded_levels_survive_a_round_trip() {
    for code in 0..=255u8 {
        let ulevel = ulaw_to_s16(code);
        assert_eq!(ulaw_to_s16(s16_to_ulaw(ulevel)), ulevel);
        let alevel = alaw_to_s16(code);
        assert_eq!(alaw_to_s16(s16_to_alaw(alevel)), alevel);
    }
}
