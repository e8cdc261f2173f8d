#!/usr/bin/env bash
# Builds the imdnupscale GStreamer plugin in release and installs libgstimdn.so into the
# per-user plugin directory that GStreamer scans (~/.local/share/gstreamer-1.0/plugins), then
# checks that gst-inspect-1.0 finds the element. Extra arguments go to cargo build, e.g.
#   scripts/install-plugin.sh --features cuda
# Uninstall: rm ~/.local/share/gstreamer-1.0/plugins/libgstimdn.so
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -p gst-plugin-imdn --lib "$@"
lib=target/release/libgstimdn.so
dir=${XDG_DATA_HOME:-$HOME/.local/share}/gstreamer-1.0/plugins
mkdir -p "$dir"
# copy to a temporary name, then rename: a running GStreamer process keeps its mapping intact
cp "$lib" "$dir/.libgstimdn.so.tmp"
mv -f "$dir/.libgstimdn.so.tmp" "$dir/libgstimdn.so"
echo "installed $dir/libgstimdn.so"
# The registry cache notices the new mtime and rescans the file.
if ! gst-inspect-1.0 imdnupscale >/dev/null; then
    echo "gst-inspect-1.0 does not find imdnupscale; run GST_DEBUG=GST_PLUGIN_LOADING:4 \
gst-inspect-1.0 $dir/libgstimdn.so to see why" >&2
    exit 1
fi
gst-inspect-1.0 imdnupscale | sed -n '/^Factory Details/,/^$/p'
echo "imdnupscale is available, e.g.:"
echo "  gst-launch-1.0 videotestsrc num-buffers=30 ! videoconvert ! imdnupscale scale=2 \
! videoconvert ! autovideosink"
