//! Pixel-level image work that must match the reference bit for bit.

pub mod resample;
