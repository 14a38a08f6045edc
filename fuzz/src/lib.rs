//! Shared set-up of the cargo-fuzz targets: each target is one line naming its harness in
//! `wsaudit::fuzzing::targets`, which states and checks the invariant.

pub use libfuzzer_sys;
pub use wsaudit;

/// Defines a fuzz target running `wsaudit::fuzzing::targets::$name` under the allocation cap,
/// so any allocation sized by a claim in the input aborts as a crash.
#[macro_export]
macro_rules! target {
    ($name:ident) => {
        #[global_allocator]
        static ALLOC: $crate::wsaudit::fuzzing::alloc::CappedAlloc =
            $crate::wsaudit::fuzzing::alloc::CappedAlloc::new(
                $crate::wsaudit::fuzzing::alloc::DEFAULT_CAP,
            );

        $crate::libfuzzer_sys::fuzz_target!(|data: &[u8]| {
            $crate::wsaudit::fuzzing::targets::$name(data)
        });
    };
}
