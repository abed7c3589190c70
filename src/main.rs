//! tollgate: parse the command line, load config and catalog, serve.

use std::process::ExitCode;

use clap::Parser;
use tollgate::cli::Cli;

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let cli = Cli::parse();
    let state = match tollgate::server::load(&cli) {
        Ok(state) => state,
        Err(e) => {
            eprintln!("tollgate: {e}");
            return ExitCode::from(2);
        }
    };
    if cli.is_check() {
        println!(
            "tollgate: configuration ok ({})",
            tollgate::check::summary(&state)
        );
        return ExitCode::SUCCESS;
    }
    match tollgate::server::run(cli, state) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tollgate: {e}");
            ExitCode::from(1)
        }
    }
}

/// mimalloc instead of glibc malloc: pingora allocates and frees per request
/// (header maps, 64 KiB read buffers, tasks); see the commit for the measurement.
#[global_allocator]
static GLOBAL: Mimalloc = Mimalloc;

/// mimalloc through its plain entry points wherever they give the alignment asked.
///
/// The `mimalloc` crate calls `mi_malloc_aligned` for every allocation, and
/// mimalloc serves that from its fast path only for blocks up to 1 KiB: larger
/// ones (pingora's boxed session futures, buffers, header maps; about 17 a
/// request) took the generic aligned path, ~200 instructions each. `mi_malloc`
/// aligns every block to 8 bytes and nearly all to 16 (`MI_MAX_ALIGN_SIZE`, not
/// the 8-byte size class), so for alignments up to 16 it is tried first, the
/// result is checked, and a misaligned block is freed for the aligned call: no
/// layout is ever served wrong.
struct Mimalloc;

/// The alignment `mi_malloc` gives nearly every block (`MI_MAX_ALIGN_SIZE`).
const MI_MAX_ALIGN: usize = 16;

/// The alignment `mi_malloc` gives every block (a machine word).
const MI_MIN_ALIGN: usize = std::mem::size_of::<usize>();

/// A block for `layout` from `plain` when that gives the alignment asked, else
/// from `aligned` (the pair is mimalloc's malloc or zalloc entry points).
///
/// # Safety
/// `layout.size()` is non-zero (the GlobalAlloc contract), and both functions
/// are mimalloc's, so their blocks are freed by `mi_free`.
unsafe fn alloc_with(
    layout: std::alloc::Layout,
    plain: unsafe extern "C" fn(usize) -> *mut std::ffi::c_void,
    aligned: unsafe extern "C" fn(usize, usize) -> *mut std::ffi::c_void,
) -> *mut u8 {
    let (size, align) = (layout.size(), layout.align());
    if align <= MI_MAX_ALIGN {
        // SAFETY: a plain mimalloc call on a non-zero size.
        let p = unsafe { plain(size) };
        if p.is_null() || (p as usize) & (align - 1) == 0 {
            return p.cast();
        }
        // SAFETY: `p` came from mimalloc and is not used again.
        unsafe { libmimalloc_sys::mi_free(p) };
    }
    // SAFETY: as above; `align` is a power of two (Layout guarantees it).
    unsafe { aligned(size, align).cast() }
}

// SAFETY: every path returns a block of at least `layout.size()` bytes aligned
// to `layout.align()` (or null), and frees with `mi_free`, which accepts blocks
// from every mimalloc allocation call.
unsafe impl std::alloc::GlobalAlloc for Mimalloc {
    unsafe fn alloc(&self, layout: std::alloc::Layout) -> *mut u8 {
        use libmimalloc_sys::{mi_malloc, mi_malloc_aligned};
        // SAFETY: the GlobalAlloc contract gives a non-zero size.
        unsafe { alloc_with(layout, mi_malloc, mi_malloc_aligned) }
    }

    unsafe fn alloc_zeroed(&self, layout: std::alloc::Layout) -> *mut u8 {
        use libmimalloc_sys::{mi_zalloc, mi_zalloc_aligned};
        // SAFETY: as in `alloc`.
        unsafe { alloc_with(layout, mi_zalloc, mi_zalloc_aligned) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, _layout: std::alloc::Layout) {
        // SAFETY: `ptr` was allocated by this allocator, so by mimalloc.
        unsafe { libmimalloc_sys::mi_free(ptr.cast()) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: std::alloc::Layout, new_size: usize) -> *mut u8 {
        // Only alignments every block has go to `mi_realloc`: it frees `ptr` when
        // it moves, so a misaligned result could not be undone if a second move
        // then failed (a null realloc must leave `ptr` valid).
        if layout.align() <= MI_MIN_ALIGN {
            // SAFETY: `ptr` is a live mimalloc block; on success it is consumed.
            unsafe { libmimalloc_sys::mi_realloc(ptr.cast(), new_size).cast() }
        } else {
            // SAFETY: as above; the alignment is a power of two.
            unsafe {
                libmimalloc_sys::mi_realloc_aligned(ptr.cast(), new_size, layout.align()).cast()
            }
        }
    }
}
