//! One chunk of float values → its self-describing bytes: trim the padding, choose codec
//! and bound, wrap. The HDF5 filter and the in-situ API both call this, so a buffer
//! compressed in situ is stored exactly as the filter would store it.

use std::borrow::Cow;

use crate::chunk::{self, Quality};
use crate::padding;
use crate::samples::Element;
use crate::select::{self, Outcome, Proposer, SelectError};
use crate::settings::Settings;

/// Compresses `values` (a chunk of `shape`) to the settings' target with `proposer`.
/// Trailing constant slabs are trimmed first ([`padding`]): only the prefix block is
/// compressed and the fill value is stored, so edge chunks neither spoil the target nor
/// cost bits.
pub fn float_chunk<T: bytemuck::Pod + Element>(
    values: &[T],
    shape: &[usize],
    settings: &Settings,
    proposer: &dyn Proposer,
) -> Result<(Vec<u8>, Outcome), SelectError> {
    let pad = padding::find(values, shape);
    let inner: Cow<[T]> = match &pad {
        Some(p) => Cow::Owned(padding::extract(values, shape, &p.inner)),
        None => Cow::Borrowed(values),
    };
    let kept_shape = pad.as_ref().map_or(shape, |p| &p.inner[..]);
    let data = T::samples(&inner);
    let outcome = select::compress_to_target(data, kept_shape, settings, proposer)?;
    let bytes = chunk::wrap(
        outcome.codec,
        &data,
        shape,
        outcome.bound,
        pad,
        Some(Quality::new(settings, outcome.predicted, outcome.measured)),
        &outcome.payload,
    );
    Ok((bytes, outcome))
}
