//! unclip: unCLIP (DALL·E 2, "Hierarchical Text-Conditional Image Generation with CLIP
//! Latents") on burn: the networks, the samplers, the pipelines, and the desktop app.

pub mod app;
pub mod bench;
pub mod diffusion;
pub mod imaging;
pub mod kernels;
pub mod model;
pub mod pipeline;
pub mod choice;
pub mod cli;
pub mod device;
pub mod files;
pub mod image_io;
pub mod memory;
pub mod recipe;
pub mod tensor;
pub mod train;
pub mod bench_pipeline;
pub mod bench_ui;
