//! The health crate's integration suite: scripted timelines on simulated time, and
//! property tests. (The allocation count lives in `alloc.rs`: it needs its own binary.)

mod suite;
