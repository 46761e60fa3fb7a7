//! The embedded example dataset.
//!
//! Optical Recognition of Handwritten Digits (UCI Machine Learning Repository, E. Alpaydin and
//! C. Kaynak, 1998; CC BY 4.0, <https://doi.org/10.24432/C50P49>): 1,797 images of 8x8 pixels,
//! counts 0..16, features `p0..p63` row-major, label `digit`.

use std::io::Read;
use std::path::Path;

use crate::error::{Error, Result};
use crate::table::Table;

const DIGITS_GZ: &[u8] = include_bytes!("../data/digits.csv.gz");

/// The digits data as a [`Table`] (labels "0".."9").
pub fn digits() -> Result<Table> {
    let mut text = String::new();
    flate2::read::GzDecoder::new(DIGITS_GZ)
        .read_to_string(&mut text)
        .map_err(|source| Error::Io {
            path: "digits.csv.gz (embedded)".into(),
            source,
        })?;
    Table::from_reader(text.as_bytes(), Path::new("digits.csv"), Some("digit"))
}

#[cfg(test)]
mod tests {
    #[test]
    fn digits_shape() {
        let t = super::digits().unwrap();
        assert_eq!(t.x.dim(), (1797, 64));
        assert_eq!(t.y.iter().filter(|l| *l == "3").count(), 183);
        assert!(t.x.iter().all(|&v| (0.0..=16.0).contains(&v)));
    }
}
