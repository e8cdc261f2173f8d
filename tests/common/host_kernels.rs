//! `src/cuda/kernels.cu` compiled for the host with `host_shim.h` (by `c++`, or `$CXX`) and
//! loaded once per test process, and the host as the executor's device ([`Host`]), for the
//! tests of the library (`tests/cuda_kernels.rs`) and of the element's conversions and frame
//! path (included there by path).

use std::cell::RefCell;
use std::collections::VecDeque;
use std::ffi::{CString, c_char};
use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

use imdn::cuda::args::Launch;
use imdn::cuda::executor::{Gpu, Lane};
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

    type Staging = Vec<u8>;

    fn alloc_staging(&self, bytes: usize) -> imdn::Result<Vec<u8>> {
        Ok(vec![0; bytes])
    }

    fn staging<'s>(&self, s: &'s mut Vec<u8>) -> imdn::Result<&'s mut [u8]> {
        Ok(s)
    }

    fn upload_staged(&self, m: &mut Vec<u64>, s: &mut Vec<u8>) -> imdn::Result<()> {
        self.upload(m, s)
    }

    fn download_staged(&self, m: &Vec<u64>, s: &mut Vec<u8>) -> imdn::Result<()> {
        self.download(m, s)
    }

    /// Everything runs when queued: no lane is ever behind.
    type Event = ();

    fn record_event(&self, _: Lane) -> imdn::Result<()> {
        Ok(())
    }

    fn wait_event(&self, _: Lane, _: &()) -> imdn::Result<()> {
        Ok(())
    }
}

/// The host as a device whose three lanes run only as events order them, and as late as
/// the host lets them: work is queued per lane and runs when the host waits (for a staging
/// buffer, a download, everything), and then the first lane of `order` that can go goes
/// first. A missing wait between lanes then shows as wrong bytes: a download run before the
/// network that writes it, an upload over inputs the network has yet to read.
pub struct Deferred {
    pub order: [Lane; 3],
    lanes: RefCell<Lanes>,
}

#[derive(Default)]
struct Lanes {
    queues: [VecDeque<Op>; 3],
    /// Ops queued and done on each lane since the start.
    queued: [u64; 3],
    done: [u64; 3],
}

enum Op {
    Copy {
        from: *const u8,
        to: *mut u8,
        len: usize,
    },
    Upload {
        to: *mut u8,
        bytes: Vec<u8>,
    },
    Launch(Launch),
    /// Waits until lane `lane` has done `upto` ops.
    Wait {
        lane: usize,
        upto: u64,
    },
}

impl Op {
    fn touches(&self, (at, len): (*const u8, usize)) -> bool {
        let overlaps = |p: *const u8, n: usize| {
            let (a, b) = (p as usize, at as usize);
            a < b + len && b < a + n
        };
        match self {
            Op::Copy { from, to, len } => overlaps(*from, *len) || overlaps(*to, *len),
            _ => false,
        }
    }
}

impl Deferred {
    pub fn new(order: [Lane; 3]) -> Self {
        Self {
            order,
            lanes: RefCell::default(),
        }
    }

    fn queue(&self, lane: Lane, op: Op) {
        let mut l = self.lanes.borrow_mut();
        l.queues[lane as usize].push_back(op);
        l.queued[lane as usize] += 1;
    }

    /// Runs one op of the first lane in `order` that can go; false when none is queued.
    fn step(&self) -> bool {
        let mut l = self.lanes.borrow_mut();
        let runnable = |l: &Lanes, lane: usize| match l.queues[lane].front() {
            Some(Op::Wait { lane: other, upto }) => l.done[*other] >= *upto,
            Some(_) => true,
            None => false,
        };
        let Some(lane) = (self.order.iter().map(|&o| o as usize)).find(|&o| runnable(&l, o)) else {
            assert!(
                l.queues.iter().all(|q| q.is_empty()),
                "the lanes wait for each other: deadlock"
            );
            return false;
        };
        let op = l.queues[lane].pop_front().expect("runnable");
        l.done[lane] += 1;
        drop(l);
        match op {
            // SAFETY: the executor keeps the buffers of queued copies alive (they are its
            // slots' and staging's) until they have run
            Op::Copy { from, to, len } => unsafe { std::ptr::copy_nonoverlapping(from, to, len) },
            Op::Upload { to, bytes } => unsafe {
                std::ptr::copy_nonoverlapping(bytes.as_ptr(), to, bytes.len())
            },
            Op::Launch(launch) => run_on_host(std::slice::from_ref(&launch)),
            Op::Wait { .. } => {}
        }
        true
    }

    /// Runs ops until `until` holds.
    fn run_until(&self, until: impl Fn(&Lanes) -> bool) {
        while !until(&self.lanes.borrow()) {
            assert!(self.step(), "nothing left to run");
        }
    }
}

impl Gpu for Deferred {
    type Memory = Vec<u64>;

    fn alloc(&self, bytes: usize) -> imdn::Result<Vec<u64>> {
        HOST.alloc(bytes)
    }

    fn address(&self, m: &Vec<u64>) -> u64 {
        m.as_ptr() as u64
    }

    fn upload(&self, m: &mut Vec<u64>, bytes: &[u8]) -> imdn::Result<()> {
        let to = m.as_mut_ptr().cast();
        let bytes = bytes.to_vec();
        self.queue(Lane::Compute, Op::Upload { to, bytes });
        Ok(())
    }

    fn download(&self, m: &Vec<u64>, out: &mut [u8]) -> imdn::Result<()> {
        let c = Lane::Compute as usize;
        self.run_until(|l| l.done[c] == l.queued[c]);
        HOST.download(m, out)
    }

    fn launch(&self, l: &Launch) -> imdn::Result<()> {
        self.queue(Lane::Compute, Op::Launch(l.clone()));
        Ok(())
    }

    fn synchronize(&self) -> imdn::Result<()> {
        self.run_until(|l| l.queues.iter().all(|q| q.is_empty()));
        Ok(())
    }

    type Graph = Vec<Launch>;

    fn record(&self, launches: &[Launch]) -> imdn::Result<Option<Vec<Launch>>> {
        Ok(Some(launches.to_vec()))
    }

    fn replay(&self, graph: &Vec<Launch>) -> imdn::Result<()> {
        graph.iter().try_for_each(|l| self.launch(l))
    }

    type Staging = Vec<u8>;

    fn alloc_staging(&self, bytes: usize) -> imdn::Result<Vec<u8>> {
        Ok(vec![0; bytes])
    }

    fn staging<'s>(&self, s: &'s mut Vec<u8>) -> imdn::Result<&'s mut [u8]> {
        let range = (s.as_ptr(), s.len());
        self.run_until(|l| !l.queues.iter().flatten().any(|op| op.touches(range)));
        Ok(s)
    }

    fn upload_staged(&self, m: &mut Vec<u64>, s: &mut Vec<u8>) -> imdn::Result<()> {
        assert!(s.len() <= 8 * m.len(), "upload past the buffer");
        let (from, to, len) = (s.as_ptr(), m.as_mut_ptr().cast(), s.len());
        self.queue(Lane::Up, Op::Copy { from, to, len });
        Ok(())
    }

    fn download_staged(&self, m: &Vec<u64>, s: &mut Vec<u8>) -> imdn::Result<()> {
        assert!(s.len() <= 8 * m.len(), "download past the buffer");
        let (from, to, len) = (m.as_ptr().cast(), s.as_mut_ptr(), s.len());
        self.queue(Lane::Down, Op::Copy { from, to, len });
        Ok(())
    }

    /// The lane and how many ops it had queued.
    type Event = (usize, u64);

    fn record_event(&self, lane: Lane) -> imdn::Result<(usize, u64)> {
        Ok((lane as usize, self.lanes.borrow().queued[lane as usize]))
    }

    fn wait_event(&self, lane: Lane, &(other, upto): &(usize, u64)) -> imdn::Result<()> {
        self.queue(lane, Op::Wait { lane: other, upto });
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
