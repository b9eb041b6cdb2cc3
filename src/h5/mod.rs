//! The HDF5 dynamic filter plugin: discovery entry points, callbacks, and the HDF5 API
//! resolved at run time from whichever libhdf5 the host loaded.

pub mod api;
pub mod filter;
pub mod plugin;
pub mod rewrites;
