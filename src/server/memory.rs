//! The process's allocator: jemalloc, whose background threads hand freed pages back to the system on a decay timer
//! (its options: .cargo/config.toml), so the memory a burst of large queries freed is returned with no trim call and
//! no `unsafe` (chosen by `kyc-bench --scenario me-hot,burst`: BENCHMARKS.md, "Allocator").

#[cfg(not(target_env = "msvc"))]
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;
