//! `src/cuda/kernels.cu` compiled for the host with `host_shim.h` (by `c++`, or `$CXX`) and
//! loaded once per test process, and the host as the executor's device ([`Host`]), for the
//! tests of the library (`tests/cuda_kernels.rs`) and of the element's conversions and frame
//! path (included there by path).

use std::ffi::{CString, c_char};
use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

use imdn::cuda::args::Launch;
use imdn::cuda::executor::Gpu;
use libloading::{Library, Symbol};

/// The project's root: the first folder at or above the test's (cargo runs a crate's tests in
/// the crate's folder) that holds `src/cuda/kernels.cu`.
fn root() -> PathBuf {
    let here = std::env::current_dir().unwrap();
    here.ancestors()
        .find(|p| p.join("src/cuda/kernels.cu").exists())
        .expect("the project's root at or above the test's folder")
        .to_path_buf()
}

fn library() -> &'static Library {
    static LIB: OnceLock<Library> = OnceLock::new();
    LIB.get_or_init(|| {
        let dir = root().join("src/cuda");
        let out = std::env::temp_dir().join(format!("imdn-host-kernels-{}.so", std::process::id()));
        let cxx = std::env::var("CXX").unwrap_or_else(|_| "c++".into());
        let status = Command::new(&cxx)
            .args([
                "-std=c++20",
                "-pthread",
                "-O2",
                "-shared",
                "-fPIC",
                "-Wall",
                "-Werror",
                "-o",
            ])
            .arg(&out)
            .arg(dir.join("host_launch.cpp"))
            .status()
            .unwrap_or_else(|e| panic!("{cxx} (a C++ compiler) cannot run: {e}"));
        assert!(status.success(), "{cxx} failed on kernels.cu");
        // SAFETY: our own library, with no initialisers
        let lib = unsafe { Library::new(&out) }.unwrap();
        // loaded: the file may go
        let _ = std::fs::remove_file(&out);
        lib
    })
}

/// Runs kernel `name` over `grid` blocks of `block` threads with the argument struct `args`;
/// false for a kernel the host launcher does not know.
///
/// # Safety
/// `args` must be the kernel's argument struct, every address in it valid for what the kernel
/// reads and writes.
pub unsafe fn launch(name: &str, args: &[u8], grid: u32, block: u32) -> bool {
    let name = CString::new(name).unwrap();
    // SAFETY: host_launch.cpp's `int host_launch(const char*, const void*, unsigned, unsigned)`
    unsafe {
        let f: Symbol<unsafe extern "C" fn(*const c_char, *const u8, u32, u32) -> i32> =
            library().get(b"host_launch").unwrap();
        f(name.as_ptr(), args.as_ptr(), grid, block) == 0
    }
}

/// The size the C compiler gives the struct `name` (0 for one the launcher does not know).
pub fn size_of_struct(name: &str) -> usize {
    let name = CString::new(name).unwrap();
    // SAFETY: host_launch.cpp's `unsigned long host_sizeof(const char*)`
    unsafe {
        let f: Symbol<unsafe extern "C" fn(*const c_char) -> u64> =
            library().get(b"host_sizeof").unwrap();
        f(name.as_ptr()) as usize
    }
}

/// `(float → f16 bits, f16 bits → float)` as the host kernels convert.
pub fn f16_conversions() -> (
    unsafe extern "C" fn(f32) -> u16,
    unsafe extern "C" fn(u16) -> f32,
) {
    // SAFETY: host_launch.cpp's conversions
    unsafe {
        let a: Symbol<unsafe extern "C" fn(f32) -> u16> =
            library().get(b"host_float_to_half").unwrap();
        let b: Symbol<unsafe extern "C" fn(u16) -> f32> =
            library().get(b"host_half_to_float").unwrap();
        (*a, *b)
    }
}

/// Runs each launch on the CPU.
pub fn run_on_host(launches: &[Launch]) {
    for l in launches {
        // SAFETY: the launches' argument structs are their kernels', their addresses in the
        // caller's live host buffers
        let known = unsafe { launch(l.kernel, l.args.bytes(), l.grid, l.block) };
        assert!(known, "kernel {} unknown to the host launcher", l.kernel);
    }
}

/// The host as the executor's device: memory in host allocations, launches through
/// `kernels.cu` compiled for the CPU; with `graphs`, launches recorded to replay.
pub struct Host {
    pub graphs: bool,
}

pub const HOST: Host = Host { graphs: true };

impl Gpu for Host {
    /// u64s: 8-byte aligned, as the kernels' f64 and pointer-sized reads want.
    type Memory = Vec<u64>;

    fn alloc(&self, bytes: usize) -> imdn::Result<Vec<u64>> {
        Ok(vec![0; bytes.div_ceil(8)])
    }

    fn address(&self, m: &Vec<u64>) -> u64 {
        m.as_ptr() as u64
    }

    fn upload(&self, m: &mut Vec<u64>, bytes: &[u8]) -> imdn::Result<()> {
        // SAFETY: the allocation holds at least `bytes` (alloc rounds up)
        unsafe {
            std::ptr::copy_nonoverlapping(bytes.as_ptr(), m.as_mut_ptr().cast(), bytes.len())
        };
        Ok(())
    }

    fn download(&self, m: &Vec<u64>, out: &mut [u8]) -> imdn::Result<()> {
        // SAFETY: as upload
        unsafe { std::ptr::copy_nonoverlapping(m.as_ptr().cast(), out.as_mut_ptr(), out.len()) };
        Ok(())
    }

    fn launch(&self, l: &Launch) -> imdn::Result<()> {
        run_on_host(std::slice::from_ref(l));
        Ok(())
    }

    fn synchronize(&self) -> imdn::Result<()> {
        Ok(())
    }

    /// The launches themselves, replayed in order.
    type Graph = Vec<Launch>;

    fn record(&self, launches: &[Launch]) -> imdn::Result<Option<Vec<Launch>>> {
        Ok(self.graphs.then(|| launches.to_vec()))
    }

    fn replay(&self, graph: &Vec<Launch>) -> imdn::Result<()> {
        run_on_host(graph);
        Ok(())
    }
}

/// Planar frame `src` (`w`×`h`) in a `pw`×`ph` one, `margin` pixels from its top left, its
/// border pixels replicated out to the edges: what the frame kernels pad on the way in.
pub fn replicate(
    src: &[f32],
    (w, h): (usize, usize),
    (pw, ph): (usize, usize),
    margin: usize,
) -> Vec<f32> {
    let mut out = Vec::with_capacity(3 * pw * ph);
    for c in 0..3 {
        for y in 0..ph {
            for x in 0..pw {
                let sy = y.saturating_sub(margin).min(h - 1);
                let sx = x.saturating_sub(margin).min(w - 1);
                out.push(src[(c * h + sy) * w + sx]);
            }
        }
    }
    out
}

/// The `w`×`h` window at (`at`, `at`) of planar frame `src` of width `sw` and height `sh`.
pub fn window(
    src: &[f32],
    (sw, sh): (usize, usize),
    at: usize,
    (w, h): (usize, usize),
) -> Vec<f32> {
    (0..3)
        .flat_map(|c| (0..h).flat_map(move |y| (0..w).map(move |x| (c, y, x))))
        .map(|(c, y, x)| src[(c * sh + y + at) * sw + x + at])
        .collect()
}
