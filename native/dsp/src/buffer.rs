//! Planar audio buffers allocated once and reused for every frame.
//!
//! ```text
//!  data: [ ch0: f0 f1 … f(frames-1) · · · spare · · · | ch1: f0 f1 … | … ]
//!         <──────────────── stride (capacity in frames) ──────────────>
//! ```
//! Each channel is a run of `stride` samples; only the first `frames` of each run are live.

/// A planar f32 buffer with fixed capacity. Resizing within the capacity never allocates.
#[derive(Clone, Debug, Default)]
pub struct AudioBuf {
    data: Vec<f32>,
    stride: usize,
    max_channels: usize,
    channels: usize,
    frames: usize,
}

impl AudioBuf {
    /// A silent buffer able to hold `max_channels` × `max_frames`, holding 0 frames of `max_channels`.
    pub fn new(max_channels: usize, max_frames: usize) -> AudioBuf {
        AudioBuf {
            data: vec![0.0; max_channels * max_frames],
            stride: max_frames,
            max_channels,
            channels: max_channels,
            frames: 0,
        }
    }

    /// Like [`AudioBuf::new`], but `None` instead of aborting the process when the size overflows or
    /// the memory cannot be had (buffers sized from a plan are built with this).
    pub fn try_new(max_channels: usize, max_frames: usize) -> Option<AudioBuf> {
        let len = max_channels.checked_mul(max_frames)?;
        let mut data = Vec::new();
        data.try_reserve_exact(len).ok()?;
        data.resize(len, 0.0);
        Some(AudioBuf { data, stride: max_frames, max_channels, channels: max_channels, frames: 0 })
    }

    /// Live channels.
    pub fn channels(&self) -> usize {
        self.channels
    }

    /// Live frames per channel.
    pub fn frames(&self) -> usize {
        self.frames
    }

    /// Frames each channel can hold without growing.
    pub fn capacity_frames(&self) -> usize {
        self.stride
    }

    /// Sets the live shape. Grows (allocating) only when the shape exceeds the capacity; callers size
    /// buffers up front so that this never happens in steady state. Samples beyond the previous live
    /// region are unspecified until written.
    pub fn set_shape(&mut self, channels: usize, frames: usize) {
        if channels > self.max_channels || frames > self.stride {
            self.grow(channels.max(self.max_channels), frames.max(self.stride));
        }
        self.channels = channels;
        self.frames = frames;
    }

    /// Sets the live frame count, keeping the channel count.
    pub fn set_frames(&mut self, frames: usize) {
        self.set_shape(self.channels, frames);
    }

    fn grow(&mut self, max_channels: usize, stride: usize) {
        let mut data = vec![0.0; max_channels * stride];
        for c in 0..self.channels {
            data[c * stride..c * stride + self.frames].copy_from_slice(self.channel(c));
        }
        self.data = data;
        self.stride = stride;
        self.max_channels = max_channels;
    }

    /// The live samples of channel `c`.
    pub fn channel(&self, c: usize) -> &[f32] {
        let start = c * self.stride;
        &self.data[start..start + self.frames]
    }

    /// The live samples of channel `c`, writable.
    pub fn channel_mut(&mut self, c: usize) -> &mut [f32] {
        let start = c * self.stride;
        &mut self.data[start..start + self.frames]
    }

    /// The whole capacity of channel `c` (for writers that fill it before `set_frames`).
    pub fn channel_capacity_mut(&mut self, c: usize) -> &mut [f32] {
        let start = c * self.stride;
        &mut self.data[start..start + self.stride]
    }

    /// Mutable live slices of all channels at once, into a caller-provided array (no allocation).
    pub fn planes_mut<'a>(&'a mut self, out: &mut [&'a mut [f32]; crate::format::MAX_CHANNELS]) -> usize {
        let frames = self.frames;
        let channels = self.channels;
        if self.stride == 0 {
            // Never had room for a frame (a worker's fresh block buffer, shaped for an empty
            // message): every plane is empty.
            for plane in out.iter_mut().take(channels) {
                *plane = &mut [];
            }
            return channels;
        }
        for (c, chunk) in self.data.chunks_mut(self.stride).take(channels).enumerate() {
            out[c] = &mut chunk[..frames];
        }
        channels
    }

    /// A view of frames `start..start + len` of every live channel, for tiled processing.
    pub fn view_mut(&mut self, start: usize, len: usize) -> AudioView<'_> {
        debug_assert!(start + len <= self.frames);
        AudioView { data: &mut self.data, stride: self.stride, start, len, channels: self.channels }
    }

    /// Makes `self` a copy of `other` (shape and samples), without allocating when it fits.
    pub fn copy_from(&mut self, other: &AudioBuf) {
        self.set_shape(other.channels, other.frames);
        for c in 0..other.channels {
            self.channel_mut(c).copy_from_slice(other.channel(c));
        }
    }

    /// Appends the live frames of `other` (same channel count) after the live frames of `self`.
    pub fn append(&mut self, other: &AudioBuf) {
        debug_assert_eq!(self.channels, other.channels);
        let at = self.frames;
        self.set_frames(at + other.frames);
        for c in 0..other.channels {
            self.channel_mut(c)[at..].copy_from_slice(other.channel(c));
        }
    }
}

/// A window of frames over every channel of an [`AudioBuf`]; what in-place nodes process.
///
/// Its channel count may be lowered by a node that mixes channels down (and raised, up to the
/// buffer's capacity, by one that spreads them), so a chain of nodes can run over one window.
pub struct AudioView<'a> {
    data: &'a mut [f32],
    stride: usize,
    start: usize,
    len: usize,
    channels: usize,
}

impl AudioView<'_> {
    /// Channels in the window.
    pub fn channels(&self) -> usize {
        self.channels
    }

    /// Frames in the window.
    pub fn frames(&self) -> usize {
        self.len
    }

    /// Channel count after a node changed it. Must not exceed the underlying capacity.
    pub fn set_channels(&mut self, channels: usize) {
        assert!(channels * self.stride <= self.data.len(), "view has no room for {channels} channels");
        self.channels = channels;
    }

    /// Samples of channel `c` in the window.
    pub fn channel(&self, c: usize) -> &[f32] {
        let s = c * self.stride + self.start;
        &self.data[s..s + self.len]
    }

    /// Samples of channel `c` in the window, writable.
    pub fn channel_mut(&mut self, c: usize) -> &mut [f32] {
        let s = c * self.stride + self.start;
        &mut self.data[s..s + self.len]
    }

    /// Two different channels at once: (`a` writable, `b` read-only).
    pub fn channel_pair_mut(&mut self, a: usize, b: usize) -> (&mut [f32], &[f32]) {
        assert_ne!(a, b);
        let (sa, sb) = (a * self.stride + self.start, b * self.stride + self.start);
        let len = self.len;
        if sa < sb {
            let (lo, hi) = self.data.split_at_mut(sb);
            (&mut lo[sa..sa + len], &hi[..len])
        } else {
            let (lo, hi) = self.data.split_at_mut(sa);
            (&mut hi[..len], &lo[sb..sb + len])
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shape_changes_within_capacity_keep_the_allocation() {
        let mut b = AudioBuf::new(2, 480);
        let ptr = b.data.as_ptr();
        b.set_shape(1, 100);
        b.set_shape(2, 480);
        assert_eq!(ptr, b.data.as_ptr());
        b.set_shape(2, 481);
        assert_eq!(b.capacity_frames(), 481);
    }

    #[test]
    fn a_buffer_without_room_for_a_frame_has_empty_planes() {
        let mut b = AudioBuf::default();
        b.set_shape(2, 0);
        let mut planes: [&mut [f32]; crate::format::MAX_CHANNELS] = Default::default();
        assert_eq!(b.planes_mut(&mut planes), 2);
        assert!(planes[..2].iter().all(|p| p.is_empty()));
    }

    #[test]
    fn growth_keeps_live_samples() {
        let mut b = AudioBuf::new(2, 2);
        b.set_shape(2, 2);
        b.channel_mut(0).copy_from_slice(&[1.0, 2.0]);
        b.channel_mut(1).copy_from_slice(&[3.0, 4.0]);
        b.set_shape(2, 4);
        assert_eq!(&b.channel(0)[..2], &[1.0, 2.0]);
        assert_eq!(&b.channel(1)[..2], &[3.0, 4.0]);
    }

    #[test]
    fn views_address_their_window() {
        let mut b = AudioBuf::new(2, 8);
        b.set_shape(2, 8);
        let mut v = b.view_mut(2, 3);
        v.channel_mut(1).fill(1.0);
        let (a, src) = v.channel_pair_mut(0, 1);
        a.copy_from_slice(src);
        assert_eq!(b.channel(0), &[0.0, 0.0, 1.0, 1.0, 1.0, 0.0, 0.0, 0.0]);
    }
}
