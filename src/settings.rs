//! What the user asked for, read from and written to HDF5 cd_values.
//!
//! Two forms exist (slot numbers in [`crate::wire::user_cd`] and [`crate::wire::stored_cd`],
//! spec in docs/cd_values.md): the short *user* form someone types into h5repack, and the
//! *stored* form `set_local` writes into the file, which adds the dtype and chunk shape. A
//! stored form passed back in (h5repack of a file written with this filter) is accepted
//! wherever a user form is.

use crate::samples::element_count;
use crate::wire::{
    self, flags, short_cd, stored_cd, user_cd, CompressorChoice, DType, Mode, TargetKind,
    MAX_DECIMALS,
};

/// Why cd_values were rejected. The text ends up on the HDF5 error stack, so it says what
/// to type instead.
#[derive(Debug, thiserror::Error, PartialEq)]
#[non_exhaustive]
pub enum SettingsError {
    /// No words, or more than the user form has.
    #[error("deepcq expects 1 to {plain} cd_values (target, kind, decimals, compressor, mode, flags), or {max} with a missing value (flags bit 1), got {0}; e.g. UD=357,0,1,60 for PSNR >= 60 dB", plain = user_cd::PLAIN_LEN, max = user_cd::MAX_LEN)]
    WrongCount(usize),
    /// A slot holds a number that names nothing.
    #[error("deepcq cd_values slot {slot} ({what}) = {value} is not valid: {hint}")]
    BadSlot {
        /// Slot index.
        slot: usize,
        /// Slot name.
        what: &'static str,
        /// The number found.
        value: u32,
        /// What is allowed.
        hint: &'static str,
    },
    /// The target value is out of range for its kind.
    #[error("deepcq target {value} is out of range for {kind}: {hint}")]
    BadTarget {
        /// Target kind name.
        kind: &'static str,
        /// The decoded target.
        value: f64,
        /// The allowed range.
        hint: &'static str,
    },
    /// The target value is in range but cd_values cannot hold it (too many digits, or an
    /// absolute bound beyond what a mantissa and decimals span).
    #[error("deepcq target {value} for {kind} cannot be packed into cd_values: {hint}")]
    Unpackable {
        /// Target kind name.
        kind: &'static str,
        /// The target given.
        value: f64,
        /// How targets are packed.
        hint: &'static str,
    },
    /// A missing value the dataset's type cannot hold.
    #[error("deepcq missing value {value:e} does not fit {dtype} values (the nearest f32 is more than a millionth away: beyond ±3.4e38 or below about 1e-39)")]
    MissingOutOfRange {
        /// The missing value given.
        value: f64,
        /// The dataset's element type.
        dtype: &'static str,
    },
    /// A stored form that does not hold together (corrupt file or newer writer).
    #[error("deepcq stored cd_values are malformed: {0}")]
    BadStored(String),
}

/// A quality target: `mantissa / 10^decimals` of some [`TargetKind`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Target {
    /// What the number means.
    pub kind: TargetKind,
    /// The integer typed into cd_values.
    pub mantissa: u32,
    /// Decimal places of the mantissa.
    pub decimals: u32,
}

impl Target {
    /// The target as a number (dB, SSIM, ratio or absolute bound).
    pub fn value(&self) -> f64 {
        self.mantissa as f64 / 10f64.powi(self.decimals as i32)
    }

    /// Encodes `value` with the fewest decimals that represent it exactly (up to the
    /// scaling's own rounding, a few ulps), so `62.5` becomes mantissa 625, decimals 1;
    /// a value outside its kind's range is refused as such. A value that is exactly a
    /// single-precision float (C's `62.3f`, Fortran's default real, 62.2999992…) is read as
    /// the shortest decimal that float prints as (62.3), the value its writer meant.
    pub fn from_value(kind: TargetKind, value: f64) -> Result<Self, SettingsError> {
        check_range(kind, value)?;
        let single = value as f32;
        let shortest = (f64::from(single) == value)
            .then(|| single.to_string().parse::<f64>().ok())
            .flatten();
        Target::packed(kind, value)
            .or_else(|| shortest.and_then(|v| Target::packed(kind, v)))
            .ok_or(SettingsError::Unpackable {
                kind: kind_name(kind),
                value,
                hint: "cd_values hold a target as an integer below 2^31 times 10^-d with \
                       d <= 12: at most 9 significant digits, from 1e-12 to 2147483647 \
                       (round it; an absolute bound outside that span cannot be given: use \
                       a PSNR target)",
            })
    }

    /// `value` as mantissa × 10^−decimals with the fewest decimals, if any packs it
    /// exactly and stays in its kind's range.
    fn packed(kind: TargetKind, value: f64) -> Option<Self> {
        for decimals in 0..=MAX_DECIMALS {
            let scaled = value * 10f64.powi(decimals as i32);
            let rounded = scaled.round();
            if rounded > i32::MAX as f64 {
                return None;
            }
            // Only the rounding error of the scaling itself (a few ulps): a looser
            // tolerance packed SSIM 0.999999999 (at 1e-12, 0.999999999999) as 1, which
            // means lossless.
            if rounded >= 1.0 && (scaled - rounded).abs() <= 4.0 * f64::EPSILON * scaled.max(1.0) {
                let target = Target {
                    kind,
                    mantissa: rounded as u32,
                    decimals,
                };
                // Nor may those few ulps carry an SSIM below 1 up to 1 (0.9999999999999999
                // at 0 decimals).
                let lossless = kind == TargetKind::Ssim && value < 1.0 && target.value() >= 1.0;
                return (target.validate().is_ok() && !lossless).then_some(target);
            }
        }
        None
    }

    fn validate(&self) -> Result<(), SettingsError> {
        check_range(self.kind, self.value())
    }
}

/// Largest ratio target: HDF5's largest chunk, 4 GiB, over a chunk header of a few dozen
/// bytes. A larger one is no target any chunk can meet, most likely a float's bit pattern
/// given where an integer was expected (H5Z-ZFP's and H5Z-SZ3's habit), which would store
/// every chunk at the loosest bound tried.
const MAX_RATIO: f64 = 1e8;

/// Refuses a target value outside its kind's range, saying what the range is.
fn check_range(kind: TargetKind, value: f64) -> Result<(), SettingsError> {
    let (ok, hint) = match kind {
        TargetKind::Psnr => (value > 0.0 && value <= 400.0, "PSNR must be in (0, 400] dB"),
        TargetKind::Ssim => (value > 0.0 && value <= 1.0, "SSIM must be in (0, 1]"),
        TargetKind::Ratio => (
            (1.0..=MAX_RATIO).contains(&value),
            "a compression ratio must be in [1, 1e8]: no chunk (at most 4 GiB) stores in \
             fewer bytes than its header, and a float's bit pattern read as an integer \
             (20.0f is 1101004800) is over 1e9",
        ),
        TargetKind::AbsBound => (value > 0.0, "an absolute bound must be > 0"),
    };
    if ok {
        Ok(())
    } else {
        Err(SettingsError::BadTarget {
            kind: kind_name(kind),
            value,
            hint,
        })
    }
}

/// Human name of a target kind.
pub fn kind_name(kind: TargetKind) -> &'static str {
    match kind {
        TargetKind::Psnr => "PSNR",
        TargetKind::Ssim => "SSIM",
        TargetKind::Ratio => "compression ratio",
        TargetKind::AbsBound => "absolute bound",
    }
}

/// Everything the user chose.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Settings {
    /// The quality target.
    pub target: Target,
    /// Which compressors may be used.
    pub compressor: CompressorChoice,
    /// Predict or guarantee.
    pub mode: Mode,
    /// [`crate::wire::flags`] bits.
    pub flags: u32,
    /// A missing value named in the user form ([`flags::MISSING_VALUE`]), as an f64's
    /// bits (so that a NaN compares equal to itself): values equal to it are missing data,
    /// like a dataset's fill value. `None` in the stored form, which keeps it as the fill.
    pub missing: Option<u64>,
}

/// [`Settings`] plus what `set_local` learned about the dataset.
#[derive(Clone, Debug, PartialEq)]
pub struct StoredSettings {
    /// The user's choices.
    pub settings: Settings,
    /// Element type ([`DType::Opaque`] for anything but f32/f64).
    pub dtype: DType,
    /// The f32/f64 values are big-endian in the file: the filter swaps them to
    /// little-endian before compressing and back after decoding
    /// ([`wire::BIG_ENDIAN_DTYPE`]).
    pub big_endian: bool,
    /// Element size in bytes.
    pub elem_size: usize,
    /// Chunk dims, slowest first.
    pub chunk: Vec<usize>,
    /// The dataset's user-defined fill value, little-endian bytes of one f32/f64
    /// ([`wire::FILL_DTYPE`]): values equal to it are missing data.
    pub fill: Option<Vec<u8>>,
    /// The fill value is a missing value the user form named ([`wire::NAMED_FILL_DTYPE`]).
    pub fill_named: bool,
}

impl Settings {
    /// PSNR ≥ `db`, automatic compressor, guarantee mode.
    pub fn psnr(db: f64) -> Result<Self, SettingsError> {
        Ok(Settings {
            target: Target::from_value(TargetKind::Psnr, db)?,
            compressor: CompressorChoice::Auto,
            mode: Mode::Guarantee,
            flags: 0,
            missing: None,
        })
    }

    /// These settings with `value` marking missing data ([`flags::MISSING_VALUE`]).
    pub fn with_missing(self, value: f64) -> Self {
        Settings {
            flags: self.flags | flags::MISSING_VALUE,
            missing: Some(value.to_bits()),
            ..self
        }
    }

    /// The missing value named in the user form, if any.
    pub fn missing_value(&self) -> Option<f64> {
        self.missing.map(f64::from_bits)
    }

    /// The missing value as one `T`, the dataset's element type: rounded to the nearest
    /// f32 for f32 data (1e20 typed as a double marks the f32 1e20 a program wrote), an
    /// error when it does not fit (beyond f32's range, or so small that rounding moves it
    /// by more than a millionth, e.g. to 0, which would mark every zero).
    pub fn missing_as<T: crate::samples::Element>(&self) -> Result<Option<T>, SettingsError> {
        let Some(value) = self.missing_value() else {
            return Ok(None);
        };
        let narrowed = T::from_f64(value);
        let back = narrowed.to_f64();
        let fits =
            !value.is_finite() || back.is_finite() && (back - value).abs() <= 1e-6 * value.abs();
        if !fits {
            return Err(SettingsError::MissingOutOfRange {
                value,
                dtype: T::DTYPE.name(),
            });
        }
        Ok(Some(narrowed))
    }

    /// Reads either form.
    pub fn parse(cd: &[u32]) -> Result<Self, SettingsError> {
        if is_stored(cd) {
            return Ok(StoredSettings::parse(cd)?.settings);
        }
        if cd.is_empty() || cd.len() > user_cd::MAX_LEN {
            return Err(SettingsError::WrongCount(cd.len()));
        }
        let word = |slot: usize, default: u32| cd.get(slot).copied().unwrap_or(default);
        let settings = Self::from_words(
            [
                word(user_cd::KIND, TargetKind::Psnr as u32),
                word(user_cd::TARGET, 0),
                word(user_cd::DECIMALS, 0),
                word(user_cd::COMPRESSOR, CompressorChoice::Auto as u32),
                word(user_cd::MODE, Mode::Guarantee as u32),
                word(user_cd::FLAGS, 0),
            ],
            [
                user_cd::KIND,
                user_cd::TARGET,
                user_cd::DECIMALS,
                user_cd::COMPRESSOR,
                user_cd::MODE,
                user_cd::FLAGS,
            ],
        )?;
        let wants_missing = settings.flags & flags::MISSING_VALUE != 0;
        match (wants_missing, cd.len()) {
            (true, user_cd::MAX_LEN) => Ok(Settings {
                missing: Some(
                    u64::from(cd[user_cd::MISSING_LO]) | u64::from(cd[user_cd::MISSING_HI]) << 32,
                ),
                ..settings
            }),
            (false, n) if n <= user_cd::PLAIN_LEN => Ok(settings),
            (true, _) => Err(SettingsError::BadSlot {
                slot: user_cd::FLAGS,
                what: "flags",
                value: settings.flags,
                hint: "bit 1 (a missing value) needs the value's f64 bits in words 6 and 7, 8 words in all (deepcq cdvalues --missing prints them)",
            }),
            (false, n) => Err(SettingsError::WrongCount(n)),
        }
    }

    /// Validates words given as `[kind, mantissa, decimals, compressor, mode, flags]`,
    /// with the slot each came from for the error message.
    fn from_words(words: [u32; 6], slots: [usize; 6]) -> Result<Self, SettingsError> {
        let [kind, mantissa, decimals, compressor, mode, flag_bits] = words;
        let bad = |i: usize, what, hint| SettingsError::BadSlot {
            slot: slots[i],
            what,
            value: words[i],
            hint,
        };
        let kind = TargetKind::from_u32(kind).ok_or_else(|| {
            bad(
                0,
                "kind",
                "0 = PSNR dB, 1 = SSIM, 2 = compression ratio, 3 = absolute bound",
            )
        })?;
        if mantissa == 0 || mantissa > i32::MAX as u32 {
            return Err(bad(
                1,
                "target",
                "a positive integer below 2^31 (use the decimals slot for fractions)",
            ));
        }
        if decimals > MAX_DECIMALS {
            return Err(bad(2, "decimals", "0 to 12"));
        }
        let compressor = CompressorChoice::from_u32(compressor)
            .ok_or_else(|| bad(3, "compressor", "0 = auto, 1 = sz3, 2 = zfp, 3 = sperr"))?;
        let mode = Mode::from_u32(mode)
            .ok_or_else(|| bad(4, "mode", "0 = guarantee, 1 = predict, 2 = fast"))?;
        if flag_bits & !flags::KNOWN != 0 {
            return Err(bad(
                5,
                "flags",
                "bit 0 = allow the analytic fallback, bit 1 = a missing value in words 6 and 7; no other bits",
            ));
        }
        let target = Target {
            kind,
            mantissa,
            decimals,
        };
        target.validate()?;
        Ok(Settings {
            target,
            compressor,
            mode,
            flags: flag_bits,
            missing: None,
        })
    }

    /// The shortest user form that means these settings (what `deepcq cdvalues` prints).
    pub fn to_user_cd(&self) -> Vec<u32> {
        let mut cd = vec![0; user_cd::PLAIN_LEN];
        cd[user_cd::TARGET] = self.target.mantissa;
        cd[user_cd::KIND] = self.target.kind as u32;
        cd[user_cd::DECIMALS] = self.target.decimals;
        cd[user_cd::COMPRESSOR] = self.compressor as u32;
        cd[user_cd::MODE] = self.mode as u32;
        cd[user_cd::FLAGS] = self.flags & !flags::MISSING_VALUE;
        if let Some(bits) = self.missing {
            cd[user_cd::FLAGS] |= flags::MISSING_VALUE;
            cd.extend([bits as u32, (bits >> 32) as u32]);
            return cd;
        }
        while cd.len() > 1 && cd.last() == Some(&0) {
            cd.pop();
        }
        cd
    }
}

/// The missing value `cd` names for a dataset of `dtype`, as its little-endian bytes: the
/// user form's words 6–7 narrowed to the dtype ([`Settings::missing_as`]), or the named
/// missing value a stored form passed back in carries ([`wire::NAMED_FILL_DTYPE`]: a
/// repack keeps what the first writer named, converted as a named value is where the
/// dtype changed (an f32 dataset's -9999 set up for f64 data), an error where it does not
/// fit; a stored dataset fill value is not carried, the new dataset's own is read).
/// `None` when the cd_values name none: the dataset's own user-defined fill value, if any,
/// then marks missing data.
pub fn named_missing(cd: &[u32], dtype: DType) -> Result<Option<Vec<u8>>, SettingsError> {
    let settings = if is_stored(cd) {
        let stored = StoredSettings::parse(cd)?;
        let Some(fill) = stored.fill.filter(|_| stored.fill_named) else {
            return Ok(None);
        };
        if dtype.natural_size() == Some(fill.len()) {
            return Ok(Some(fill));
        }
        let value = match fill.len() {
            // Widened through its shortest decimal, the literal its writer named (-999.9,
            // 1e20), not the f32's exact value (-999.9000244…), which f64 data written
            // with that literal does not hold.
            4 => crate::chunk::shortest_decimal(f32::from_le_bytes(
                fill[..].try_into().expect("4 bytes"),
            )),
            8 => f64::from_le_bytes(fill[..].try_into().expect("8 bytes")),
            _ => return Ok(None),
        };
        stored.settings.with_missing(value)
    } else {
        Settings::parse(cd)?
    };
    Ok(match dtype {
        DType::F32 => settings
            .missing_as::<f32>()?
            .map(|v| v.to_le_bytes().to_vec()),
        DType::F64 => settings
            .missing_as::<f64>()?
            .map(|v| v.to_le_bytes().to_vec()),
        DType::Opaque => None,
    })
}

/// Settings for buffers compressed outside HDF5 (the in-situ API).
#[derive(Clone, Debug, PartialEq)]
pub struct BufferSettings {
    /// The user's choices.
    pub settings: Settings,
    /// The dataset the chunks are for, when the words are its stored cd_values (read
    /// from a file, to write the chunks with `H5Dwrite_chunk`): buffers must hold its
    /// element type, and a big-endian dataset's chunks must say so, or the dataset would
    /// not read them back.
    pub dataset: Option<DatasetType>,
}

/// A dataset's element type, byte order and chunk dims, as its stored cd_values record
/// them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DatasetType {
    /// Element type ([`DType::Opaque`] for anything but f32/f64).
    pub dtype: DType,
    /// The values are big-endian in the file ([`wire::BIG_ENDIAN_DTYPE`]).
    pub big_endian: bool,
    /// Its chunk dims, slowest first.
    pub chunk: Vec<usize>,
}

/// [`Settings::parse`] for the in-situ API, where no dataset supplies a fill value: a
/// stored form's fill value (cd_values read from a file, to compress buffers for
/// `H5Dwrite_chunk`) becomes the missing value, so buffers are treated as the filter
/// treats that dataset's chunks, and the stored form's dataset type comes along.
pub fn parse_for_buffers(cd: &[u32]) -> Result<BufferSettings, SettingsError> {
    if !is_stored(cd) {
        return Ok(BufferSettings {
            settings: Settings::parse(cd)?,
            dataset: None,
        });
    }
    let stored = StoredSettings::parse(cd)?;
    let fill = stored.fill.as_deref().and_then(|b| match b.len() {
        4 => Some(f32::from_le_bytes(b.try_into().ok()?) as f64),
        8 => Some(f64::from_le_bytes(b.try_into().ok()?)),
        _ => None,
    });
    let dataset = Some(DatasetType {
        dtype: stored.dtype,
        big_endian: stored.big_endian,
        chunk: stored.chunk.clone(),
    });
    Ok(BufferSettings {
        settings: match fill {
            Some(value) => stored.settings.with_missing(value),
            None => stored.settings,
        },
        dataset,
    })
}

/// The bytes of the dataset's chunk that stored cd_values `cd` describe, read from the
/// element size, rank and dims alone (the long layout's slots, or the short layout's
/// shape word and dims, [`wire::short_cd`]): what a decoded chunk is padded to where the
/// rest does not parse (a file from a newer build: a later layout must keep the long
/// layout's slots 8–10+, or hold a number no rank is in slot 9 and go unpadded),
/// because HDF5 copies a whole chunk out of the filter's buffer. None without the marker
/// or with slots that give no size under HDF5's 4 GiB chunk limit; 0 where a dim or the
/// element size is 0 (then nothing pads).
pub fn stored_chunk_bytes(cd: &[u32]) -> Option<usize> {
    if !is_stored(cd) {
        return None;
    }
    let shape = StoredShape::of(cd)?;
    let dims = shape.words.get(..shape.rank)?;
    let dims: Vec<usize> = dims.iter().map(|&d| d as usize).collect();
    let bytes = element_count(&dims)?.checked_mul(shape.elem_size)?;
    (bytes as u64 <= u64::from(u32::MAX)).then_some(bytes)
}

/// The dataset words of a stored form, wherever its version keeps them: the short layout
/// ([`wire::short_cd`]) packs them into one word, every other version (a newer one
/// included) has the long layout's slots ([`stored_cd`]).
struct StoredShape {
    /// The dtype word: [`DType`] and its flag bits.
    dtype_word: u32,
    elem_size: usize,
    rank: usize,
    /// The chunk dims, then the fill value's words.
    words: Vec<u32>,
}

impl StoredShape {
    fn of(cd: &[u32]) -> Option<StoredShape> {
        if cd.first()? & 0xFF == wire::CD_VERSION_SHORT {
            let word = *cd.get(short_cd::SHAPE)?;
            let around = [
                cd.get(short_cd::WORDS..short_cd::SHAPE)?,
                &cd[short_cd::SHAPE + 1..],
            ];
            return Some(StoredShape {
                dtype_word: word & 0xFFFF,
                elem_size: (word >> 16 & 0xFF) as usize,
                rank: (word >> 24) as usize,
                words: around.concat(),
            });
        }
        Some(StoredShape {
            dtype_word: *cd.get(stored_cd::DTYPE)?,
            elem_size: *cd.get(stored_cd::ELEM_SIZE)? as usize,
            rank: *cd.get(stored_cd::RANK)? as usize,
            words: cd.get(stored_cd::DIMS..)?.to_vec(),
        })
    }

    /// The short layout's word for a long form's dtype word, element size and rank; None
    /// where one of them does not fit its bits.
    fn packed(dtype_word: u32, elem_size: usize, rank: usize) -> Option<u32> {
        (dtype_word <= 0xFFFF && elem_size <= 0xFF && (1..=0xFF).contains(&rank))
            .then_some(dtype_word | (elem_size as u32) << 16 | (rank as u32) << 24)
    }
}

/// The settings words of a stored form in the long layout's order (kind, mantissa,
/// decimals, compressor, mode, flags) and the slot each came from.
fn stored_settings_words(cd: &[u32], version: u32) -> ([u32; 6], [usize; 6]) {
    if version == wire::CD_VERSION_SHORT {
        let w = cd[short_cd::SETTINGS];
        let nibble = |at: u32| w >> at & 0xF;
        let words = [
            nibble(0),
            cd[short_cd::TARGET],
            nibble(4),
            nibble(8),
            nibble(12),
            w >> 16,
        ];
        let packed = short_cd::SETTINGS;
        return (
            words,
            [packed, short_cd::TARGET, packed, packed, packed, packed],
        );
    }
    let slots = [
        stored_cd::KIND,
        stored_cd::TARGET,
        stored_cd::DECIMALS,
        stored_cd::COMPRESSOR,
        stored_cd::MODE,
        stored_cd::FLAGS,
    ];
    (slots.map(|s| cd[s]), slots)
}

/// True when slot 0 carries the stored-form marker. A user's mantissa in the marker's
/// range (1145262336–1145262591: an absolute bound of 0.001145262337) is taken for a
/// stored form too, and refused as one that is cut short ([`StoredSettings::parse`]):
/// reading it as a user form instead would read a stored form cut to the 8 words of a
/// user-sized buffer (`H5Pget_filter_by_id2` into `H5Z_DEEPCQ_CD_MAX` words) with every
/// slot shifted, as another target.
pub fn is_stored(cd: &[u32]) -> bool {
    cd.first()
        .is_some_and(|w| w & 0xFFFF_FF00 == wire::STORED_MARKER)
}

impl StoredSettings {
    /// Reads the stored form.
    pub fn parse(cd: &[u32]) -> Result<Self, SettingsError> {
        if !is_stored(cd) {
            return Err(SettingsError::BadStored(format!(
                "{} words, no marker",
                cd.len()
            )));
        }
        let version = cd[stored_cd::MARKER] & 0xFF;
        let least = match version {
            wire::CD_VERSION_SHORT => short_cd::MIN_LEN,
            _ => stored_cd::DIMS + 1,
        };
        let cut_short = |len: usize| {
            SettingsError::BadStored(format!(
                "slot 0 holds the stored form's marker but there are only {len} words: stored \
                 cd_values have 10 + rank + up to 2, or 4 + rank + up to 2 where that would \
                 be over 16 (read them into a buffer that large); a target mantissa of \
                 1145262336–1145262591 reads as that marker, so give it with one decimal \
                 fewer",
            ))
        };
        if cd.len() < least {
            return Err(cut_short(cd.len()));
        }
        if version == 0 || version > wire::CD_VERSION {
            let what = match version {
                0 => "which no build writes",
                _ => "newer than this build's",
            };
            return Err(SettingsError::BadStored(format!(
                "cd_values version {version}, {what} ({})",
                wire::CD_VERSION
            )));
        }
        let (setting_words, slots) = stored_settings_words(cd, version);
        let settings = Settings::from_words(setting_words, slots)?;
        if settings.flags & flags::MISSING_VALUE != 0 {
            return Err(SettingsError::BadStored(
                "flags bit 1 (a missing value) belongs to the user form".into(),
            ));
        }
        let StoredShape {
            dtype_word: word,
            elem_size,
            rank,
            words,
        } = StoredShape::of(cd).expect("the length was checked");
        let big_endian = word & wire::BIG_ENDIAN_DTYPE != 0;
        let has_fill = word & wire::FILL_DTYPE != 0;
        let fill_named = word & wire::NAMED_FILL_DTYPE != 0;
        let flag_bits = wire::BIG_ENDIAN_DTYPE | wire::FILL_DTYPE | wire::NAMED_FILL_DTYPE;
        let dtype = u8::try_from(word & !flag_bits)
            .ok()
            .and_then(DType::from_u8)
            .filter(|&d| !(big_endian || has_fill) || d != DType::Opaque)
            .filter(|_| has_fill || !fill_named)
            .ok_or_else(|| SettingsError::BadStored(format!("dtype {word:#x}")))?;
        let fill_words = if has_fill { elem_size.div_ceil(4) } else { 0 };
        // A float type has its own size (set_local writes it so); a file whose words say
        // otherwise would have the filter read its chunks as values of the wrong width.
        // (A fill value comes only with a float type: the dtype test above.)
        if dtype.natural_size().is_some_and(|n| n != elem_size) {
            return Err(SettingsError::BadStored(format!(
                "{} values of {elem_size} bytes",
                dtype.name()
            )));
        }
        if elem_size == 0 || rank == 0 || rank > wire::MAX_RANK || words.len() != rank + fill_words
        {
            if rank <= wire::MAX_RANK && elem_size != 0 && words.len() < rank + fill_words {
                return Err(cut_short(cd.len()));
            }
            return Err(SettingsError::BadStored(format!(
                "element size {elem_size}, rank {rank}, {} words",
                cd.len()
            )));
        }
        let dims = &words[..rank];
        let chunk: Vec<usize> = dims.iter().map(|&d| d as usize).collect();
        let fill = has_fill.then(|| {
            let bytes = words[rank..].iter().flat_map(|w| w.to_le_bytes());
            bytes.take(elem_size).collect::<Vec<u8>>()
        });
        if chunk.contains(&0) {
            return Err(SettingsError::BadStored("a chunk dim is 0".into()));
        }
        // HDF5 chunks hold at most 4 GiB; the filter multiplies these without checks.
        let bytes = element_count(&chunk).and_then(|n| n.checked_mul(elem_size));
        if bytes.is_none_or(|n| n as u64 > u64::from(u32::MAX)) {
            return Err(SettingsError::BadStored(format!(
                "chunk dims {chunk:?} of {elem_size}-byte values exceed HDF5's 4 GiB chunk"
            )));
        }
        Ok(StoredSettings {
            settings,
            dtype,
            big_endian,
            elem_size,
            chunk,
            fill,
            fill_named,
        })
    }

    /// Writes the stored form: the long layout, or the short one where the long would
    /// hold more than [`wire::STORED_CD_FITS`] words.
    pub fn to_cd(&self) -> Vec<u32> {
        let long = self.to_long_cd();
        if long.len() <= wire::STORED_CD_FITS {
            return long;
        }
        let s = &self.settings;
        let Some(shape) =
            StoredShape::packed(long[stored_cd::DTYPE], self.elem_size, self.chunk.len())
        else {
            return long;
        };
        let settings = s.target.kind as u32
            | s.target.decimals << 4
            | (s.compressor as u32) << 8
            | (s.mode as u32) << 12
            | (s.flags & !flags::MISSING_VALUE) << 16;
        let head = [
            wire::STORED_MARKER | wire::CD_VERSION_SHORT,
            settings,
            s.target.mantissa,
        ];
        // The dims and fill words around the shape word in slot 9 (`short_cd`).
        let (before, after) = long[stored_cd::DIMS..].split_at(short_cd::SHAPE - short_cd::WORDS);
        [&head[..], before, &[shape], after].concat()
    }

    /// The long layout ([`stored_cd`]).
    fn to_long_cd(&self) -> Vec<u32> {
        let s = &self.settings;
        let mut cd = vec![0; stored_cd::DIMS];
        let named = self.fill.is_some() && self.fill_named;
        let version = if named {
            wire::CD_VERSION_NAMED
        } else {
            wire::CD_VERSION_PLAIN
        };
        cd[stored_cd::MARKER] = wire::STORED_MARKER | version;
        cd[stored_cd::KIND] = s.target.kind as u32;
        cd[stored_cd::TARGET] = s.target.mantissa;
        cd[stored_cd::DECIMALS] = s.target.decimals;
        cd[stored_cd::COMPRESSOR] = s.compressor as u32;
        cd[stored_cd::MODE] = s.mode as u32;
        cd[stored_cd::FLAGS] = s.flags & !flags::MISSING_VALUE;
        let flag = |set: bool, bit: u32| if set { bit } else { 0 };
        cd[stored_cd::DTYPE] = self.dtype as u32
            | flag(self.big_endian, wire::BIG_ENDIAN_DTYPE)
            | flag(self.fill.is_some(), wire::FILL_DTYPE)
            | flag(named, wire::NAMED_FILL_DTYPE);
        cd[stored_cd::ELEM_SIZE] = self.elem_size as u32;
        cd[stored_cd::RANK] = self.chunk.len() as u32;
        cd.extend(self.chunk.iter().map(|&d| d as u32));
        if let Some(fill) = &self.fill {
            let mut bytes = fill.clone();
            bytes.resize(self.elem_size.div_ceil(4) * 4, 0);
            cd.extend(
                bytes
                    .chunks_exact(4)
                    .map(|w| u32::from_le_bytes(w.try_into().unwrap())),
            );
        }
        cd
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_word_means_psnr_auto_guarantee() {
        let s = Settings::parse(&[60]).unwrap();
        assert_eq!(s, Settings::psnr(60.0).unwrap());
        assert_eq!(s.target.value(), 60.0);
        assert_eq!(s.to_user_cd(), vec![60]);
    }

    #[test]
    fn fractional_targets_are_typeable() {
        let t = Target::from_value(TargetKind::Psnr, 62.5).unwrap();
        assert_eq!((t.mantissa, t.decimals), (625, 1));
        let t = Target::from_value(TargetKind::Ssim, 0.995).unwrap();
        assert_eq!((t.mantissa, t.decimals), (995, 3));
        let t = Target::from_value(TargetKind::AbsBound, 1e-9).unwrap();
        assert_eq!((t.mantissa, t.decimals), (1, 9));
        assert_eq!(Settings::parse(&[625, 0, 1]).unwrap().target.value(), 62.5);
        // Nines are kept: SSIM 1 would mean lossless.
        let t = Target::from_value(TargetKind::Ssim, 0.999999999).unwrap();
        assert_eq!((t.mantissa, t.decimals), (999_999_999, 9));
        let t = Target::from_value(TargetKind::Psnr, 0.1 + 0.2).unwrap();
        assert_eq!((t.mantissa, t.decimals), (3, 1));
        // A single-precision caller's value means its shortest decimal.
        let t = Target::from_value(TargetKind::Psnr, f64::from(62.3f32)).unwrap();
        assert_eq!((t.mantissa, t.decimals), (623, 1));
        let t = Target::from_value(TargetKind::Ssim, f64::from(0.9999f32)).unwrap();
        assert_eq!((t.mantissa, t.decimals), (9999, 4));
        // A double that no 12 decimals hold is refused, not rounded, and said as such.
        let digits = Target::from_value(TargetKind::Psnr, 62.345_678_901_23)
            .unwrap_err()
            .to_string();
        assert!(
            digits.contains("cannot be packed into cd_values") && !digits.contains("range"),
            "{digits}"
        );
        // Nor packed as SSIM 1, lossless.
        for ssim in [
            0.999_999_999_999,
            0.999_999_999_999_5,
            1.0 - f64::EPSILON / 2.0,
        ] {
            assert!(
                Target::from_value(TargetKind::Ssim, ssim).is_err(),
                "{ssim}"
            );
        }
        // The largest mantissa at the most decimals it takes.
        let t = Target::from_value(TargetKind::AbsBound, 0.021_474_836_47).unwrap();
        assert_eq!((t.mantissa, t.decimals), (2_147_483_647, 11));
        // A ratio no chunk can reach: 20.0f's bit pattern.
        let message = Settings::parse(&[1_101_004_800, 2])
            .unwrap_err()
            .to_string();
        assert!(message.contains("1e8"), "{message}");
        assert!(Target::from_value(TargetKind::Ratio, 1e8).is_ok());
        // Out of range is said as such, not as unrepresentable.
        for (kind, value) in [
            (TargetKind::Psnr, 0.0),
            (TargetKind::Psnr, f64::INFINITY),
            (TargetKind::AbsBound, -1.0),
            (TargetKind::Ssim, f64::NAN),
        ] {
            let message = Target::from_value(kind, value).unwrap_err().to_string();
            assert!(message.contains("must be"), "{kind:?} {value}: {message}");
        }
    }

    #[test]
    fn the_chunk_size_of_cd_values_from_a_newer_build_is_read_from_its_slots() {
        let stored = StoredSettings {
            settings: Settings::psnr(60.0).unwrap(),
            dtype: DType::F64,
            big_endian: false,
            elem_size: 8,
            chunk: vec![6, 10, 12],
            fill: None,
            fill_named: false,
        };
        let mut cd = stored.to_cd();
        assert_eq!(stored_chunk_bytes(&cd), Some(6 * 10 * 12 * 8));
        // A version this build does not read, with a word more: unparsed, still sized.
        cd[stored_cd::MARKER] = wire::STORED_MARKER | (wire::CD_VERSION + 1);
        cd.push(0);
        assert!(StoredSettings::parse(&cd).is_err());
        assert_eq!(stored_chunk_bytes(&cd), Some(6 * 10 * 12 * 8));
        // No marker, slots cut short, or a size past HDF5's 4 GiB: none.
        assert_eq!(stored_chunk_bytes(&[60, 0, 0]), None);
        assert_eq!(stored_chunk_bytes(&cd[..stored_cd::DIMS + 1]), None);
        cd[stored_cd::DIMS] = u32::MAX;
        assert_eq!(stored_chunk_bytes(&cd), None);
    }

    #[test]
    fn bad_words_are_named() {
        assert_eq!(Settings::parse(&[]), Err(SettingsError::WrongCount(0)));
        assert_eq!(Settings::parse(&[1; 7]), Err(SettingsError::WrongCount(7)));
        for cd in [
            &[0][..],
            &[60, 9],
            &[60, 0, 13],
            &[60, 0, 0, 4],
            &[60, 0, 0, 0, 3],
            &[60, 0, 0, 0, 0, 2],
            &[u32::MAX],
            &[2, 1],
            &[500],
        ] {
            let err = Settings::parse(cd).unwrap_err();
            assert!(!err.to_string().is_empty(), "{cd:?}");
        }
        let modes = [Mode::Guarantee, Mode::Predict, Mode::Fast];
        for (word, mode) in modes.into_iter().enumerate() {
            let settings = Settings::parse(&[60, 0, 0, 0, word as u32]).unwrap();
            assert_eq!(settings.mode, mode);
        }
    }

    #[test]
    fn a_missing_value_takes_two_words_and_becomes_the_stored_fill() {
        for value in [1e20, -9999.0, 0.0, f64::NAN, 9.969_209_968_386_869e36] {
            let settings = Settings::psnr(60.0).unwrap().with_missing(value);
            let cd = settings.to_user_cd();
            assert_eq!(cd.len(), user_cd::MAX_LEN, "{value}: zeros are not trimmed");
            assert_eq!(cd[user_cd::FLAGS], flags::MISSING_VALUE);
            let back = Settings::parse(&cd).unwrap();
            assert_eq!(back, settings);
            assert_eq!(back.missing_value().unwrap().to_bits(), value.to_bits());
            // f32 datasets get the nearest f32, which is what a program writing 1e20 wrote.
            let narrow = named_missing(&cd, DType::F32).unwrap().unwrap();
            assert_eq!(narrow, (value as f32).to_le_bytes());
            let wide = named_missing(&cd, DType::F64).unwrap().unwrap();
            assert_eq!(wide, value.to_le_bytes());
            assert_eq!(named_missing(&cd, DType::Opaque).unwrap(), None);
        }
        for unfit in [1e300, 1e-50, -1e-45] {
            let cd = Settings::psnr(60.0)
                .unwrap()
                .with_missing(unfit)
                .to_user_cd();
            let err = named_missing(&cd, DType::F32).unwrap_err();
            assert!(err.to_string().contains("does not fit f32"), "{err}");
            assert!(named_missing(&cd, DType::F64).unwrap().is_some());
        }
        assert_eq!(named_missing(&[60], DType::F32).unwrap(), None);
        // The flag needs both words; the words need the flag.
        let cd = Settings::psnr(60.0)
            .unwrap()
            .with_missing(1e20)
            .to_user_cd();
        for short in [user_cd::PLAIN_LEN, 7] {
            assert!(matches!(
                Settings::parse(&cd[..short]),
                Err(SettingsError::BadSlot {
                    slot: user_cd::FLAGS,
                    ..
                })
            ));
        }
        let mut unflagged = cd.clone();
        unflagged[user_cd::FLAGS] = 0;
        assert_eq!(
            Settings::parse(&unflagged),
            Err(SettingsError::WrongCount(8))
        );
        // The stored form holds it as a named fill value and never the flag; a stored form
        // passed back in (a second repack) carries a named fill where the dtype agrees,
        // never the dataset's own fill value (the new dataset's own is read).
        let stored = StoredSettings {
            settings: Settings::parse(&cd).unwrap(),
            dtype: DType::F32,
            big_endian: false,
            elem_size: 4,
            chunk: vec![8, 8],
            fill: named_missing(&cd, DType::F32).unwrap(),
            fill_named: true,
        };
        let stored_cd = stored.to_cd();
        assert_eq!(stored_cd[stored_cd::FLAGS], 0);
        assert_eq!(
            stored_cd[stored_cd::DTYPE],
            DType::F32 as u32 | wire::FILL_DTYPE | wire::NAMED_FILL_DTYPE
        );
        // Version 2 only with a named missing value: other cd_values stay as they were.
        assert_eq!(stored_cd[0], wire::STORED_MARKER | 2);
        let wide = StoredSettings {
            dtype: DType::F64,
            elem_size: 8,
            fill: named_missing(&cd, DType::F64).unwrap(),
            ..stored.clone()
        };
        let wide_cd = wide.to_cd();
        assert_eq!(wide_cd.len(), stored_cd.len() + 1);
        assert_eq!(
            named_missing(&wide_cd, DType::F64).unwrap(),
            Some(1e20f64.to_le_bytes().to_vec())
        );
        let own_fill = StoredSettings {
            fill_named: false,
            ..stored.clone()
        };
        assert_eq!(named_missing(&own_fill.to_cd(), DType::F32).unwrap(), None);
        assert_eq!(own_fill.to_cd()[0], wire::STORED_MARKER | 1);
        let mut named_without_fill = StoredSettings {
            fill: None,
            ..stored.clone()
        }
        .to_cd();
        named_without_fill[stored_cd::DTYPE] |= wire::NAMED_FILL_DTYPE;
        assert!(StoredSettings::parse(&named_without_fill).is_err());
        assert_eq!(Settings::parse(&stored_cd).unwrap().missing, None);
        assert_eq!(
            named_missing(&stored_cd, DType::F32).unwrap(),
            Some(1e20f32.to_le_bytes().to_vec())
        );
        // Set up for data of the other float type (a dcpl reused), the named value is
        // converted as a named one is, not dropped: it would have become data.
        assert_eq!(
            named_missing(&stored_cd, DType::F64).unwrap(),
            Some(1e20f64.to_le_bytes().to_vec())
        );
        let decimal = StoredSettings {
            fill: Some((-999.9f32).to_le_bytes().to_vec()),
            ..stored.clone()
        };
        assert_eq!(
            named_missing(&decimal.to_cd(), DType::F64).unwrap(),
            Some((-999.9f64).to_le_bytes().to_vec())
        );
        let nan = StoredSettings {
            fill: Some(f32::NAN.to_le_bytes().to_vec()),
            ..stored.clone()
        };
        let wide_nan = named_missing(&nan.to_cd(), DType::F64).unwrap().unwrap();
        assert!(f64::from_le_bytes(wide_nan[..].try_into().unwrap()).is_nan());
        assert_eq!(
            named_missing(&wide_cd, DType::F32).unwrap(),
            Some(1e20f32.to_le_bytes().to_vec())
        );
        let huge = StoredSettings {
            fill: Some(1e300f64.to_le_bytes().to_vec()),
            ..wide.clone()
        };
        assert!(named_missing(&huge.to_cd(), DType::F32).is_err());
        assert_eq!(named_missing(&stored_cd, DType::Opaque).unwrap(), None);
        let plain = Settings::psnr(60.0).unwrap();
        let expected = StoredSettings {
            settings: plain,
            ..stored.clone()
        };
        assert_eq!(StoredSettings::parse(&stored_cd).unwrap(), expected);
        let mut flagged = stored_cd.clone();
        flagged[stored_cd::FLAGS] = flags::MISSING_VALUE;
        assert!(StoredSettings::parse(&flagged).is_err());
        // Buffers compressed with a file's stored cd_values treat its fill value as the
        // filter does.
        let for_buffers = parse_for_buffers(&own_fill.to_cd()).unwrap();
        assert_eq!(
            for_buffers.settings.missing_as::<f32>().unwrap(),
            Some(1e20f32)
        );
        let f32_little = DatasetType {
            dtype: DType::F32,
            big_endian: false,
            chunk: own_fill.chunk.clone(),
        };
        assert_eq!(for_buffers.dataset, Some(f32_little));
        let user_form = parse_for_buffers(&[60]).unwrap();
        assert_eq!(user_form.settings, Settings::psnr(60.0).unwrap());
        assert_eq!(user_form.dataset, None);
    }

    #[test]
    fn stored_form_round_trips_and_is_accepted_as_input() {
        let stored = StoredSettings {
            settings: Settings::parse(&[995, 1, 3, 3, 1, 1]).unwrap(),
            dtype: DType::F32,
            big_endian: false,
            elem_size: 4,
            chunk: vec![16, 32, 64],
            fill: None,
            fill_named: false,
        };
        let cd = stored.to_cd();
        assert!(is_stored(&cd));
        assert_eq!(StoredSettings::parse(&cd).unwrap(), stored);
        assert_eq!(cd[stored_cd::DTYPE], DType::F32 as u32);
        // Big-endian floats set one bit of the dtype slot; opaque data cannot be swapped.
        let big = StoredSettings {
            big_endian: true,
            ..stored.clone()
        };
        let big_cd = big.to_cd();
        assert_eq!(
            big_cd[stored_cd::DTYPE],
            DType::F32 as u32 | wire::BIG_ENDIAN_DTYPE
        );
        assert_eq!(StoredSettings::parse(&big_cd).unwrap(), big);
        let opaque = StoredSettings {
            dtype: DType::Opaque,
            ..big
        };
        assert!(StoredSettings::parse(&opaque.to_cd()).is_err());
        assert_eq!(Settings::parse(&cd).unwrap(), stored.settings);
        let mut newer = cd.clone();
        newer[0] = wire::STORED_MARKER | 9;
        let err = StoredSettings::parse(&newer).unwrap_err().to_string();
        assert!(err.contains("newer"), "{err}");
        let unversioned = [&[wire::STORED_MARKER][..], &cd[1..]].concat();
        let err = StoredSettings::parse(&unversioned).unwrap_err().to_string();
        assert!(err.contains("version 0, which no build writes"), "{err}");
        assert!(StoredSettings::parse(&cd[..cd.len() - 1]).is_err());
        // A fill value follows the dims: one word for f32, two for f64.
        let filled = StoredSettings {
            fill: Some(1e35f32.to_le_bytes().to_vec()),
            ..stored.clone()
        };
        let filled_cd = filled.to_cd();
        assert_eq!(filled_cd.len(), cd.len() + 1);
        assert_eq!(
            filled_cd[stored_cd::DTYPE],
            DType::F32 as u32 | wire::FILL_DTYPE
        );
        assert_eq!(StoredSettings::parse(&filled_cd).unwrap(), filled);
        assert!(StoredSettings::parse(&filled_cd[..filled_cd.len() - 1]).is_err());
        let wide = StoredSettings {
            dtype: DType::F64,
            elem_size: 8,
            fill: Some(f64::NAN.to_le_bytes().to_vec()),
            ..stored.clone()
        };
        let wide_cd = wide.to_cd();
        assert_eq!(wide_cd.len(), cd.len() + 2);
        assert_eq!(StoredSettings::parse(&wide_cd).unwrap(), wide);
        // A stored form cut to a user-sized buffer is refused, not read as a user form
        // with its slots shifted (an absolute bound of 1e-3, slot 3 = 1, would read as a
        // target of 114526233.7), and the message names both readings.
        let bound = Settings::parse(&[1, TargetKind::AbsBound as u32, 3]).unwrap();
        let cut = StoredSettings {
            settings: bound,
            ..stored
        }
        .to_cd()[..user_cd::MAX_LEN]
            .to_vec();
        let err = Settings::parse(&cut).unwrap_err().to_string();
        assert!(
            err.contains("only 8 words") && err.contains("one decimal fewer"),
            "{err}"
        );
    }

    #[test]
    fn a_stored_form_over_16_words_is_packed_to_fit_h5pys_buffer() {
        // Settings with every packed field away from its default.
        let settings = Settings::parse(&[625, TargetKind::Ratio as u32, 1, 3, 2, 1]).unwrap();
        // How builds before version 3 size a chunk whose cd_values they cannot read: from
        // the long layout's slots. On a short form that must find nothing (or the truth).
        let earlier_builds_size = |cd: &[u32]| {
            let (elem, rank) = (*cd.get(8)? as usize, *cd.get(9)? as usize);
            let dims = cd.get(10..10usize.checked_add(rank)?)?;
            Some(dims.iter().map(|&d| d as usize).product::<usize>() * elem)
        };
        let of = |rank: usize, fill: Option<Vec<u8>>, named: bool| StoredSettings {
            settings,
            dtype: DType::F64,
            big_endian: true,
            elem_size: 8,
            chunk: (2..2 + rank).collect(),
            fill,
            fill_named: named,
        };
        let nan = Some(f64::NAN.to_le_bytes().to_vec());
        // Up to 16 words the long layout stays, as builds before version 3 read it.
        let four = of(4, nan.clone(), true).to_cd();
        assert_eq!((four.len(), four[0] & 0xFF), (16, wire::CD_VERSION_NAMED));
        for (rank, fill, named) in [(5, nan.clone(), true), (9, nan, false), (11, None, false)] {
            let stored = of(rank, fill, named);
            let cd = stored.to_cd();
            assert!(
                cd.len() <= wire::STORED_CD_FITS,
                "rank {rank}: {}",
                cd.len()
            );
            assert_eq!(cd[0], wire::STORED_MARKER | wire::CD_VERSION_SHORT);
            assert_eq!(StoredSettings::parse(&cd).unwrap(), stored, "rank {rank}");
            assert_eq!(Settings::parse(&cd).unwrap(), settings);
            let bytes = stored.chunk.iter().product::<usize>() * 8;
            assert_eq!(stored_chunk_bytes(&cd), Some(bytes));
            assert_eq!(earlier_builds_size(&cd), None, "rank {rank}");
            // A chunk of ones (1 × … × 1 × 24): slot 9 is still no rank.
            let ones = StoredSettings {
                chunk: [vec![1; rank - 1], vec![24]].concat(),
                ..stored.clone()
            };
            let ones_cd = ones.to_cd();
            assert_eq!(StoredSettings::parse(&ones_cd).unwrap(), ones);
            assert_eq!(earlier_builds_size(&ones_cd), None, "rank {rank}");
            // Cut short (to a user-sized buffer too, said as such) or a word too long,
            // refused.
            assert!(StoredSettings::parse(&cd[..cd.len() - 1]).is_err());
            assert!(StoredSettings::parse(&[&cd[..], &[0]].concat()).is_err());
            let err = Settings::parse(&cd[..user_cd::MAX_LEN])
                .unwrap_err()
                .to_string();
            assert!(err.contains("only 8 words"), "{err}");
        }
        // What does not pack (an opaque type of 300 bytes) keeps the long layout.
        let opaque = StoredSettings {
            dtype: DType::Opaque,
            big_endian: false,
            elem_size: 300,
            fill: None,
            ..of(8, None, false)
        };
        let cd = opaque.to_cd();
        assert_eq!((cd.len(), cd[0] & 0xFF), (18, wire::CD_VERSION_PLAIN));
        assert_eq!(StoredSettings::parse(&cd).unwrap(), opaque);
        // A packed field out of range is named like a long form's slot.
        let mut bad = of(7, None, false).to_cd();
        assert_eq!(bad[0] & 0xFF, wire::CD_VERSION_SHORT);
        bad[short_cd::SETTINGS] |= 0xF << 12;
        let err = StoredSettings::parse(&bad).unwrap_err().to_string();
        assert!(err.contains("slot 1 (mode)"), "{err}");
    }

    #[test]
    fn stored_words_a_file_could_not_have_been_given_are_refused() {
        let stored = StoredSettings {
            settings: Settings::psnr(60.0).unwrap(),
            dtype: DType::F32,
            big_endian: false,
            elem_size: 4,
            chunk: vec![16, 16],
            fill: None,
            fill_named: false,
        };
        assert!(StoredSettings::parse(&stored.to_cd()).is_ok());
        // f32 values of 2 bytes: the filter would read 128 values for 256.
        let narrow = StoredSettings {
            elem_size: 2,
            ..stored.clone()
        };
        let err = StoredSettings::parse(&narrow.to_cd()).unwrap_err();
        assert!(err.to_string().contains("f32 values of 2 bytes"), "{err}");
        // Dims whose product overflows, or passes HDF5's 4 GiB chunk limit.
        for chunk in [vec![1 << 31, 1 << 31, 1 << 31], vec![1 << 16, 1 << 15]] {
            let huge = StoredSettings {
                chunk,
                ..stored.clone()
            };
            let err = StoredSettings::parse(&huge.to_cd()).unwrap_err();
            assert!(err.to_string().contains("4 GiB"), "{err}");
        }
        // Opaque data takes any element size.
        let bytes = StoredSettings {
            dtype: DType::Opaque,
            elem_size: 3,
            ..stored
        };
        assert!(StoredSettings::parse(&bytes.to_cd()).is_ok());
    }
}
