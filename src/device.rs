//! Choosing where the networks run: a real GPU through wgpu when one exists, otherwise
//! burn's flex CPU backend (a software Vulkan adapter is 10–16× slower than flex).

use burn::backend::wgpu::wgpu;
use burn::tensor::{Device, DeviceKind};
use std::sync::atomic::{AtomicBool, Ordering};

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum DevicePref {
    #[default]
    Auto,
    Cpu,
    Gpu,
}

impl std::str::FromStr for DevicePref {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let choices: &[(&[&str], _)] = &[(&["auto"], DevicePref::Auto), (&["cpu"], DevicePref::Cpu), (&["gpu"], DevicePref::Gpu)];
        crate::choice::parse(s, "device", choices)
    }
}

#[derive(Debug, Clone)]
pub struct Chosen {
    pub device: Device,
    /// For the status bar: the GPU's name or "CPU".
    pub name: String,
    pub is_gpu: bool,
}

/// A wgpu adapter as seen before opening it.
#[derive(Debug, Clone)]
pub struct AdapterInfo {
    pub name: String,
    pub kind: wgpu::DeviceType,
    pub backend: String,
}

static VERBOSE: AtomicBool = AtomicBool::new(false);

/// `--verbose`: let the graphics stack's own messages through while probing, and list what
/// the probe found.
pub fn set_verbose(on: bool) {
    VERBOSE.store(on, Ordering::Relaxed);
}

/// Lists the adapters wgpu can see (no device is opened).
pub fn adapters() -> Vec<AdapterInfo> {
    let verbose = VERBOSE.load(Ordering::Relaxed);
    // The Vulkan loader's layers and EGL print lines such as "error: XDG_RUNTIME_DIR is invalid"
    // while they look for a display; finding no display is not an error for a headless probe.
    let found = muted_stderr(!verbose, || {
        let instance = wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle());
        pollster::block_on(instance.enumerate_adapters(wgpu::Backends::all()))
    });
    let found: Vec<AdapterInfo> = found
        .into_iter()
        .map(|a| {
            let info = a.get_info();
            AdapterInfo { name: info.name, kind: info.device_type, backend: format!("{:?}", info.backend) }
        })
        .collect();
    if verbose {
        for a in &found {
            eprintln!("device probe: {} ({:?}, {})", a.name, a.kind, a.backend);
        }
        if found.is_empty() {
            eprintln!("device probe: wgpu sees no adapter");
        }
    }
    found
}

/// Runs `f` with file descriptor 2 pointed at /dev/null (when `mute`), so C libraries that
/// write to stderr directly stay quiet; Rust's own panics still reach the terminal afterwards.
fn muted_stderr<T>(mute: bool, f: impl FnOnce() -> T) -> T {
    #[cfg(unix)]
    if mute {
        // SAFETY: plain fd calls on descriptors this function owns; 2 is restored before return.
        unsafe {
            let saved = libc::dup(2);
            let null = libc::open(c"/dev/null".as_ptr(), libc::O_WRONLY);
            if saved >= 0 && null >= 0 {
                libc::dup2(null, 2);
                libc::close(null);
                let out = f();
                libc::dup2(saved, 2);
                libc::close(saved);
                return out;
            }
            if saved >= 0 {
                libc::close(saved);
            }
            if null >= 0 {
                libc::close(null);
            }
        }
    }
    f()
}

/// Picks the device for a preference. `Gpu` on a machine with only a software adapter uses
/// that adapter (useful for testing the GPU path); `Auto` then prefers the CPU backend.
pub fn choose(pref: DevicePref) -> Result<Chosen, String> {
    let cpu = || Chosen { device: Device::flex(), name: "CPU".into(), is_gpu: false };
    if pref == DevicePref::Cpu {
        return Ok(cpu());
    }
    let found = adapters();
    let pick = |kind: wgpu::DeviceType| found.iter().find(|a| a.kind == kind);
    if let Some(a) = pick(wgpu::DeviceType::DiscreteGpu) {
        return Ok(Chosen { device: Device::wgpu(DeviceKind::DiscreteGpu(0)), name: a.name.clone(), is_gpu: true });
    }
    if let Some(a) = pick(wgpu::DeviceType::IntegratedGpu) {
        return Ok(Chosen { device: Device::wgpu(DeviceKind::IntegratedGpu(0)), name: a.name.clone(), is_gpu: true });
    }
    match pref {
        DevicePref::Gpu => match pick(wgpu::DeviceType::Cpu) {
            Some(a) => Ok(Chosen { device: Device::wgpu(DeviceKind::Cpu), name: format!("{} (software)", a.name), is_gpu: true }),
            None => Err("no GPU adapter found (wgpu sees none); use --device cpu".into()),
        },
        _ => Ok(cpu()),
    }
}
