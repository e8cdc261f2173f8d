//! The networks of the IMDN family by name: a leaf module, so that the weights readers, the
//! model and the executors can all name a variant without depending on each other.

/// Which network of the family.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Variant {
    /// IMDN: 64 channels, 6 blocks with CCA, ×2/×3/×4.
    Imdn,
    /// IMDN_RTC: 12 channels, 5 blocks without CCA (real time).
    Rtc,
    /// IMDN_AS: stride-2 front end, runs on a frame already bicubic-upscaled to the target size.
    As,
}

impl Variant {
    pub const ALL: [Variant; 3] = [Variant::Imdn, Variant::Rtc, Variant::As];

    /// The paper's name: IMDN, IMDN_RTC, IMDN_AS.
    pub fn name(self) -> &'static str {
        match self {
            Variant::Imdn => "IMDN",
            Variant::Rtc => "IMDN_RTC",
            Variant::As => "IMDN_AS",
        }
    }

    /// The short name the CLI, the element's `model` property and checkpoints use.
    pub fn key(self) -> &'static str {
        match self {
            Variant::Imdn => "imdn",
            Variant::Rtc => "rtc",
            Variant::As => "as",
        }
    }
}

impl std::fmt::Display for Variant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A name that is no variant's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownVariant(pub String);

impl std::fmt::Display for UnknownVariant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let keys = Variant::ALL.map(Variant::key).join(", ");
        write!(f, "unknown network {:?}: use {keys}", self.0)
    }
}

impl std::error::Error for UnknownVariant {}

impl std::str::FromStr for Variant {
    type Err = UnknownVariant;

    /// The short name or the paper's, in any case (`rtc`, `IMDN_RTC`).
    fn from_str(s: &str) -> Result<Self, UnknownVariant> {
        Variant::ALL
            .into_iter()
            .find(|v| s.eq_ignore_ascii_case(v.key()) || s.eq_ignore_ascii_case(v.name()))
            .ok_or_else(|| UnknownVariant(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_back_in_any_case() {
        for v in Variant::ALL {
            assert_eq!(v.key().parse::<Variant>(), Ok(v));
            assert_eq!(v.to_string().parse::<Variant>(), Ok(v));
            assert_eq!(v.name().to_lowercase().parse::<Variant>(), Ok(v));
        }
        let err = "srcnn".parse::<Variant>().unwrap_err().to_string();
        assert_eq!(err, "unknown network \"srcnn\": use imdn, rtc, as");
    }
}
