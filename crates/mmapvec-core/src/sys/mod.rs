//! Platform code: address-space reservations, mappings over them, syncing and advice.
//! Each platform has its own module, chosen by `cfg` (memmap2's pattern).

#[cfg(unix)]
mod unix;
#[cfg(unix)]
pub use unix::*;

#[cfg(not(unix))]
compile_error!(
    "mmapvec-core maps column files into address-space reservations with mmap(MAP_FIXED); \
     only Unix (Linux, macOS) is implemented so far"
);
