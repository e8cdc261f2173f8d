//! GStreamer plugin `imdn` (libgstimdn.so): the `imdnupscale` element, IMDN neural
//! super-resolution as a video filter.
//!
//! The element runs the network from the `imdn` library on a worker of three threads
//! (pre → infer → post), so converting frame k+1 and writing back frame k−1 overlap the
//! inference of frame k.

use gst::glib;

mod imdnupscale;

// For libgstimdn.so and our examples; a Rust program that links this crate with its own
// allocator turns the default feature `mimalloc` off.
#[cfg(feature = "mimalloc")]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn plugin_init(plugin: &gst::Plugin) -> Result<(), glib::BoolError> {
    imdnupscale::register(plugin)
}

// The GStreamer licence string must be one it knows; the crate is MIT OR Apache-2.0.
gst::plugin_define!(
    imdn,
    env!("CARGO_PKG_DESCRIPTION"),
    plugin_init,
    concat!(env!("CARGO_PKG_VERSION"), "-", env!("COMMIT_ID")),
    "MIT/X11",
    env!("CARGO_PKG_NAME"),
    env!("CARGO_PKG_NAME"),
    // GStreamer's own default when a build names no origin
    "Unknown package origin",
    env!("BUILD_REL_DATE")
);
