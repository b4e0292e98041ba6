//! Which archive rows a replay may not vouch for: those of files that failed verification
//! (`replay --force`), or that no valid signature covers. Alerts resting on them are marked
//! `unverified`.

use crate::archive::verify::{ProblemClass, VerifyReport};
use crate::source::archive::SealedFile;

/// Replay `--force` of an archive that failed verification: which rows are not to be trusted.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Unverified {
    /// Everything verified.
    #[default]
    Nothing,
    /// Rows (archive `seq` ranges) of files that failed verification.
    Rows(Vec<std::ops::Range<u64>>),
    /// The chain or its signature is broken: no row can be vouched for.
    Everything,
}

impl Unverified {
    /// Does `alert` rest on a row that is not verified?
    ///
    /// ```
    /// use secpipe::pipeline::unverified::Unverified;
    /// let u = Unverified::Rows(vec![10..20]);
    /// assert!(u.covers_seq(Some(10)) && !u.covers_seq(Some(20)) && !u.covers_seq(None));
    /// ```
    pub fn covers_seq(&self, seq: Option<u64>) -> bool {
        match self {
            Unverified::Nothing => false,
            Unverified::Everything => true,
            Unverified::Rows(ranges) => seq.is_some_and(|s| ranges.iter().any(|r| r.contains(&s))),
        }
    }

    /// The rows a verify report does not vouch for: the files it names, or everything when the
    /// chain itself (manifests, checkpoint, signature) is in doubt.
    pub fn untrusted(files: &[SealedFile], report: &VerifyReport) -> Unverified {
        let mut rows = Vec::new();
        for problem in &report.problems {
            let in_chain = files.iter().find(|f| f.path == problem.file);
            match (problem.class, in_chain) {
                // A file no manifest names is not replayed at all.
                (ProblemClass::ExtraFile, _) => {}
                (_, Some(f)) => rows.push(f.first_seq..f.first_seq + f.rows),
                (_, None) => return Unverified::Everything,
            }
        }
        Unverified::Rows(rows)
    }

    /// The event rows of the files no valid signature covers.
    pub fn unsigned(report: &VerifyReport) -> Unverified {
        Unverified::Rows(
            report
                .unsigned
                .iter()
                .flat_map(|span| &span.files)
                .filter(|file| file.table == "events")
                .map(|file| file.first_seq..file.first_seq + file.rows)
                .collect(),
        )
    }

    /// Rows neither `self` nor `other` vouches for.
    pub fn merge(self, other: Unverified) -> Unverified {
        match (self, other) {
            (Unverified::Everything, _) | (_, Unverified::Everything) => Unverified::Everything,
            (Unverified::Nothing, x) | (x, Unverified::Nothing) => x,
            (Unverified::Rows(mut x), Unverified::Rows(y)) => {
                x.extend(y);
                Unverified::Rows(x)
            }
        }
    }
}
